"""Crash-safety trials: kill a push, pull, import or writer with SIGKILL; check nothing was lost.

Each trial builds fresh stores in its own folder, starts :mod:`crash_child`
on them, kills it with SIGKILL after a random delay (seeded) within the
operation's measured duration, then reopens the stores in this process and
checks (see :mod:`crash_checks`):

- every key is intact in the mount store or intact in the backing store
  (data and metadata equal to the original), and no key holds anything but a
  whole version it held before or the one being written;
- the stores open without repair, and what the killed child left behind
  (temp files, undo folders, pending blobs) is gone after the next connect.

The ``two-writers-sqlite`` scenario (:class:`SharingTrial`) runs two writer
children on one SQLite store file at once, one keeping the store open with
two threads and one opening and closing it for each operation (as the app
and ``storegui put`` do), and kills one of them (which one is drawn): every
operation the survivor acknowledged, and every one the killed child
acknowledged before the kill, must be there, its key found by its metadata.

``tests/reliability/test_crash_safety.py`` runs a few trials per scenario;
``tools/crash_harness.py --trials N`` runs many.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storegui.stores.errors import StoreError
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.importing import file_metadata
from storegui.stores.sqlite.store import SqliteStore

from .child_processes import CHILD_DEADLINE, Child, ChildPool
from .crash_checks import (
    Seen,
    fs_temp_files_before_connect,
    inspect_store,
    leftovers_after_connect,
)
from .sharing_worker import data_for, metadata_for, operations

KINDS = ("fs", "sqlite")
MOUNT_POINT = "m/"
#: Keys under the mount point and their sizes: two chunked values and a small inline one.
SIZES = {"data/a.bin": 4 << 20, "data/b.bin": 1 << 20, "data/c.txt": 1500}
IMPORT_KEY = "in/a.bin"
BUFFER_SIZE = 64 * 1024


@dataclass(frozen=True)
class Scenario:
    """One operation over one pair of store kinds (``backing`` is None for an import)."""

    op: str
    mount: str
    backing: str | None = None

    @property
    def name(self) -> str:
        if self.op == "share":
            return f"two-writers-{self.mount}"
        if self.op == "import":
            return f"import-into-{self.mount}"
        return f"{self.op}-{self.mount}-mount-{self.backing}-backing"


SCENARIOS = (
    [Scenario("push", m, b) for m in KINDS for b in KINDS]
    + [Scenario("pull", m, b) for m in KINDS for b in KINDS]
    + [Scenario("import", k) for k in KINDS]
    + [Scenario("share", "sqlite")]
)


def scenario_named(name: str) -> Scenario:
    """The scenario called ``name``."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


class Payloads:
    """The values the trials write: an original and an older version of each key."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.new: dict[str, tuple[bytes, dict]] = {}
        self.old: dict[str, tuple[bytes, dict]] = {}
        for short, size in SIZES.items():
            self.new[short] = (rng.randbytes(size), {"name": short, "version": "new",
                                                     "nested": {"n": size, "tags": ["a", "b"]}})
            self.old[short] = (rng.randbytes(size // 2 + 7), {"name": short, "version": "old"})

    def seen(self, which: str, short: str) -> Seen:
        data, metadata = (self.new if which == "new" else self.old)[short]
        return Seen.of(data, metadata)


@dataclass
class TrialResult:
    """The outcome of one trial."""

    scenario: str
    delay: float | None
    killed: bool
    problems: list[str] = field(default_factory=list)
    leftovers: int = 0
    orphan_blobs: int = 0
    elapsed: float | None = None
    folder: str = ""


def _new_store(kind: str, path: str) -> Any:
    return FileSystemStore(path) if kind == "fs" else SqliteStore(path)


def _path(folder: str, role: str, kind: str) -> str:
    return os.path.join(folder, f"{role}.db" if kind == "sqlite" else role)


class Trial:
    """The stores of one trial: prepares them, says what the child runs, checks them after."""

    def __init__(self, scenario: Scenario, folder: str, payloads: Payloads,
                 rng: random.Random, crash_at: str | None = None) -> None:
        self.scenario = scenario
        self.folder = folder
        self.payloads = payloads
        self.crash_at = crash_at
        shorts = list(SIZES)
        # Which keys start with an older version where the operation writes.
        self.older = {s for s in shorts if rng.random() < 0.5}
        self.overwrite = rng.random() < 0.5
        self.mount_path = _path(folder, "mount", scenario.mount)
        self.backing_path = _path(folder, "backing", scenario.backing or "fs")
        self.source = os.path.join(folder, "source", "a.bin")
        self.prepared = False

    # ------------------------------------------------------------------ before

    def prepare(self) -> None:
        """Create the stores and write the state the operation starts from."""
        sc, p = self.scenario, self.payloads
        self.prepared = True
        mount = _new_store(sc.mount, self.mount_path)
        with mount:
            if sc.op == "push":
                for short, (data, md) in p.new.items():
                    mount.from_bytes(short, data, md)
            elif sc.op == "pull":
                for short in self.older:
                    mount.from_bytes(short, *p.old[short])
            elif "data/a.bin" in self.older:
                mount.from_bytes(IMPORT_KEY, *p.old["data/a.bin"])
        if sc.op == "import":
            os.makedirs(os.path.dirname(self.source))
            Path(self.source).write_bytes(p.new["data/a.bin"][0])
            os.utime(self.source, (1_700_000_000.25, 1_700_000_000.25))
            return
        backing = _new_store(sc.backing, self.backing_path)
        with backing:
            for short, (data, md) in p.new.items():
                if sc.op == "pull":
                    backing.from_bytes(MOUNT_POINT + short, data, md)
                elif short in self.older:
                    backing.from_bytes(MOUNT_POINT + short, *p.old[short])

    def command(self) -> dict:
        """The child's command line (JSON)."""
        sc = self.scenario
        common = {"op": sc.op, "buffer_size": BUFFER_SIZE, "crash_at": self.crash_at}
        if sc.op == "import":
            return {**common, "store": [sc.mount, self.mount_path], "key": IMPORT_KEY,
                    "source": self.source}
        return {**common, "mount": [sc.mount, self.mount_path],
                "backing": [sc.backing, self.backing_path], "mount_point": MOUNT_POINT,
                "target": MOUNT_POINT + "data/", "overwrite": self.overwrite}

    # ------------------------------------------------------------------ after

    def check(self, completed: bool) -> tuple[list[str], int, int]:
        """(problems, leftover files found, orphaned blobs) after the child ended.

        ``completed``: the operation ran to its end, so its final state is due.
        """
        sc = self.scenario
        problems: list[str] = []
        leftovers = 0
        stores = [("mount", sc.mount, self.mount_path)]
        if sc.op != "import":
            stores.append(("backing", sc.backing, self.backing_path))
        for label, kind, path in stores:
            if kind == "fs":
                found, bad = fs_temp_files_before_connect(path, label)
                leftovers += found
                problems += bad
        if sc.op == "import":
            problems += self._check_import(completed)
        else:
            problems += self._check_transfer(completed)
        orphans = 0
        for label, kind, path in stores:
            count, bad = leftovers_after_connect(kind, path, label)
            orphans += count
            problems += bad
        return problems, leftovers, orphans

    def _check_transfer(self, completed: bool) -> list[str]:
        sc, p = self.scenario, self.payloads
        shorts = list(SIZES)
        fulls = [MOUNT_POINT + s for s in shorts]
        mount = inspect_store(sc.mount, self.mount_path, shorts, "mount")
        backing = inspect_store(sc.backing, self.backing_path, fulls, "backing")
        problems = mount.problems + backing.problems
        if problems:
            return problems
        problems += _unexpected_keys("mount", mount.keys, shorts)
        problems += _unexpected_keys("backing", backing.keys, fulls)
        for short in shorts:
            new, old = p.seen("new", short), p.seen("old", short)
            m, b = mount.values[short], backing.values[MOUNT_POINT + short]
            if sc.op == "push":
                allowed_m = [new] if not completed else []
                allowed_b = [new] + ([old] if short in self.older and not completed else [])
                lost = m is None and b != new
            else:
                had = short in self.older
                allowed_b = [new]
                if had and not self.overwrite:
                    allowed_m = [old]
                else:
                    allowed_m = [new] + ([old] if had and not completed else [])
                lost = b != new
            problems += _judge(short, "mount", m, allowed_m, none_ok=sc.op == "push"
                               or not (completed or short in self.older))
            problems += _judge(short, "backing", b, allowed_b,
                               none_ok=sc.op == "push" and short not in self.older
                               and not completed)
            if lost:
                problems.append(f"{short!r} is intact in neither store")
        return problems

    def _check_import(self, completed: bool) -> list[str]:
        p = self.payloads
        state = inspect_store(self.scenario.mount, self.mount_path, [IMPORT_KEY], "target")
        if state.problems:
            return state.problems
        data = p.new["data/a.bin"][0]
        expected = {**file_metadata(self.source)}
        new = Seen.of(data, expected)
        new = Seen(new.digest, new.length, new.size,
                   {**expected, "size": len(data), "sha256": new.digest})
        had = "data/a.bin" in self.older
        allowed = [new] + ([p.seen("old", "data/a.bin")] if had and not completed else [])
        problems = _unexpected_keys("target", state.keys, [IMPORT_KEY])
        problems += _judge(IMPORT_KEY, "target", state.values[IMPORT_KEY], allowed,
                           none_ok=not had and not completed)
        return problems


def _unexpected_keys(label: str, found: list[str], allowed: list[str]) -> list[str]:
    extra = sorted(set(found) - set(allowed))
    return [f"{label} store holds unexpected keys {extra}"] if extra else []


def _judge(key: str, label: str, seen: Seen | None, allowed: list[Seen],
           none_ok: bool) -> list[str]:
    if seen is None:
        return [] if none_ok else [f"{key!r} is missing from the {label} store"]
    if seen in allowed:
        return []
    if not allowed:
        return [f"{key!r} is still in the {label} store after the operation completed"]
    want = " or ".join(a.describe() for a in allowed)
    return [f"{key!r} in the {label} store is {seen.describe()}; expected {want}"]


#: Keys per writer thread (long-lived writer) or per writer (short-lived), and the threads
#: of the long-lived one: the two take about as long.
SHARE_KEYS = {"long": 150, "short": 40}
SHARE_THREADS = 2


class SharingTrial:
    """Two writer children on one SQLite store file; one of them is killed (see the module doc).

    ``acks`` maps each writer ("victim", "survivor") to the last version it
    acknowledged of each key (0: deleted).
    """

    def __init__(self, scenario: Scenario, folder: str, rng: random.Random) -> None:
        self.scenario = scenario
        self.folder = folder
        self.db = os.path.join(folder, "shared.db")
        self.modes = {"victim": rng.choice(("long", "short"))}
        self.modes["survivor"] = "short" if self.modes["victim"] == "long" else "long"
        self.acks: dict[str, dict[str, int]] = {"victim": {}, "survivor": {}}
        self.errors: list[str] = []
        self.prepared = False

    def prepare(self) -> None:
        """An existing store, closed cleanly (no ``-wal`` file), as writers usually find it."""
        self.prepared = True
        with SqliteStore(self.db):
            pass

    def command(self, writer: str) -> dict:
        """The command of ``writer``'s child."""
        mode = self.modes[writer]
        return {"op": "write-keys", "db": self.db, "name": writer, "mode": mode,
                "threads": SHARE_THREADS, "count": SHARE_KEYS[mode]}

    def keys(self, writer: str) -> list[tuple[str, int]]:
        """Every key ``writer`` writes, with its index (which says its operations)."""
        count = SHARE_KEYS[self.modes[writer]]
        if self.modes[writer] == "short":
            return [(f"{writer}/k{i:05d}", i) for i in range(count)]
        return [(f"{writer}/t{t}/k{i:05d}", i) for t in range(SHARE_THREADS)
                for i in range(count)]

    def check(self, completed: bool) -> tuple[list[str], int, int]:
        """(problems, 0, 0): every acknowledged operation visible, the store sound.

        ``completed``: the victim ran to its end, so all its operations are due.
        """
        problems = list(self.errors)
        store = SqliteStore(self.db)
        try:
            store.connect()  # as a user would: no repair step
        except StoreError as exc:
            return [f"the store does not open after the kill: {exc}"], 0, 0
        try:
            known: set[str] = set()
            for writer in ("survivor", "victim"):
                done = completed or writer == "survivor"
                unacknowledged = 0
                for key, index in self.keys(writer):
                    known.add(key)
                    steps = operations(index)
                    acked = self.acks[writer].get(key)
                    at = steps.index(acked) if acked is not None else -1
                    if done:
                        allowed = [steps[-1]]
                    else:  # the operation after the last acknowledged one may have run
                        allowed = ([steps[at]] if at >= 0 else [0]) + steps[at + 1:at + 2]
                    state, problem = _key_state(store, key)
                    if problem:
                        problems.append(f"{writer}: {key!r} {problem}")
                    elif state not in allowed:
                        problems.append(f"{writer}: {key!r} is {_describe(state)}; its last "
                                        f"acknowledged operation left {_describe(allowed[0])}")
                    unacknowledged += acked is None and state != 0
                if unacknowledged > SHARE_THREADS:
                    problems.append(f"{writer}: {unacknowledged} keys written but never "
                                    "acknowledged (at most one per thread was in progress)")
            extra = sorted(set(store.keys()) - known)
            if extra:
                problems.append(f"the store holds keys nobody wrote: {extra[:5]}")
        except StoreError as exc:
            problems.append(f"the store cannot be read after the kill: {exc}")
        finally:
            store.disconnect()
        _, bad = leftovers_after_connect("sqlite", self.db, "shared")
        return problems + bad, 0, 0


def _describe(version: int) -> str:
    return "absent" if version == 0 else f"version {version}"


def _key_state(store: SqliteStore, key: str) -> tuple[int, str | None]:
    """(the version ``key`` holds, 0 if none; what is wrong with it, if anything)."""
    by_tag = list(store.query_keys(tag=key))
    if not store.exists(key):
        return 0, f"is deleted but the index still finds it: {by_tag}" if by_tag else None
    value = store.get(key)
    with value.data as stream:
        data = stream.read()
    version = value.metadata.get("v")
    if version not in (1, 2) or value.metadata != metadata_for(key, version):
        return -1, f"holds metadata {value.metadata} of no version"
    if data != data_for(key, version):
        return version, f"holds data that is not that of its version {version}"
    if by_tag != [key]:
        return version, f"is not found by its metadata: tag={key!r} gives {by_tag}"
    return version, None


class _Lines(threading.Thread):
    """Reads a child's output lines (whole lines only) until it exits."""

    def __init__(self, child: Child) -> None:
        super().__init__(daemon=True)
        self.child = child
        self.lines: list[str] = []
        self.started = threading.Event()

    def run(self) -> None:
        with open(self.child.proc.stdout.fileno(), "rb", closefd=False) as out:
            for raw in out:
                if raw.endswith(b"\n"):  # a line cut by the kill is no acknowledgement
                    line = raw.decode().strip()
                    self.lines.append(line)
                    if line == "start":
                        self.started.set()
        self.started.set()


def run_sharing(trial: SharingTrial, pool: ChildPool, delay: float | None) -> TrialResult:
    """Run both writers of ``trial`` at once; SIGKILL the victim ``delay`` s after it starts.

    The victim's ``done`` line gives ``elapsed``; the survivor always runs to its end.
    """
    if not trial.prepared:
        trial.prepare()
    result = TrialResult(trial.scenario.name, delay, False, folder=trial.folder)
    children = {"survivor": pool.take(), "victim": pool.take()}
    readers = {}
    try:
        for writer, child in children.items():
            child.proc.stdin.write((json.dumps(trial.command(writer)) + "\n").encode())
            child.proc.stdin.close()
            readers[writer] = _Lines(child)
            readers[writer].start()
        for writer, reader in readers.items():
            if not reader.started.wait(CHILD_DEADLINE) or "start" not in reader.lines:
                result.problems.append(f"the {writer} failed before starting: "
                                       f"{children[writer].errors()}")
        victim = children["victim"].proc
        if delay is not None and not result.problems:
            try:
                victim.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                victim.kill()  # SIGKILL
                result.killed = True
        for writer, child in children.items():
            try:
                child.proc.wait(timeout=CHILD_DEADLINE)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                result.problems.append(f"the {writer} did not finish in time")
            readers[writer].join(CHILD_DEADLINE)
        for writer, reader in readers.items():
            for line in reader.lines:
                kind, _, rest = line.partition(" ")
                if kind == "ack":
                    key, version = rest.rsplit(" ", 1)
                    trial.acks[writer][key] = int(version)
                elif kind == "error":
                    trial.errors.append(f"{writer}: a write failed: {rest}")
                elif kind == "done" and writer == "victim":
                    result.elapsed = float(rest)
        if result.elapsed is not None:
            result.killed = False  # any kill came after the writer had finished
        survivor = children["survivor"].proc
        if survivor.returncode != 0:
            result.problems.append(f"the survivor failed (exit {survivor.returncode}): "
                                   f"{children['survivor'].errors()}")
        if result.elapsed is None and not result.killed:  # killed after "done" is fine
            result.problems.append(f"the victim failed (exit {victim.returncode}): "
                                   f"{children['victim'].errors()}")
    finally:
        for child in children.values():
            child.close()
    return result


def new_trial(scenario: Scenario, folder: str, payloads: Payloads,
              rng: random.Random) -> Trial | SharingTrial:
    """The trial of ``scenario`` in ``folder``."""
    if scenario.op == "share":
        return SharingTrial(scenario, folder, rng)
    return Trial(scenario, folder, payloads, rng)


def run_trial(trial: Trial | SharingTrial, pool: ChildPool,
              delay: float | None) -> TrialResult:
    """Run ``trial``'s operation in a child, SIGKILL it ``delay`` seconds after it starts, check.

    ``delay`` None lets it run to the end (or to its own crash point).
    """
    if isinstance(trial, SharingTrial):
        result = run_sharing(trial, pool, delay)
    else:
        result = run_child(trial, pool, delay)
    problems, result.leftovers, result.orphan_blobs = trial.check(result.elapsed is not None)
    result.problems += problems
    return result


def run_child(trial: Trial, pool: ChildPool, delay: float | None) -> TrialResult:
    """Prepare ``trial``'s stores (unless done) and run its child as :func:`run_trial` does.

    No checks: the caller makes its own.
    """
    if not trial.prepared:
        trial.prepare()
    child = pool.take()
    result = TrialResult(trial.scenario.name, delay, False, folder=trial.folder)
    try:
        child.proc.stdin.write((json.dumps(trial.command()) + "\n").encode())
        child.proc.stdin.close()
        started = child.read_line(time.monotonic() + CHILD_DEADLINE)
        if started != "start":
            result.problems.append(f"the child failed before starting: {started!r} "
                                   f"{child.errors()}")
        elif delay is not None:
            try:
                child.proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                child.proc.kill()  # SIGKILL
                result.killed = True
        try:
            child.proc.wait(timeout=CHILD_DEADLINE)
        except subprocess.TimeoutExpired:
            result.problems.append("the child did not finish in time")
        done = child.read_line(time.monotonic() + 1)
        if done.startswith("done "):
            result.elapsed = float(done.split()[1])
        code = child.proc.returncode
        if trial.crash_at is not None:
            result.killed = code == -9
            if not result.killed:
                result.problems.append(f"the child did not reach its crash point (exit {code}) "
                                       f"{child.errors()}")
        elif result.elapsed is not None:
            result.killed = False  # any kill came after the operation had finished
        elif not result.killed:
            result.problems.append(f"the operation failed (exit {code}): {child.errors()}")
    finally:
        child.close()
    return result


@dataclass
class Summary:
    """The trials of one scenario."""

    scenario: str
    seed: int
    duration: float = 0.0
    results: list[TrialResult] = field(default_factory=list)

    @property
    def failures(self) -> list[TrialResult]:
        return [r for r in self.results if r.problems]

    @property
    def killed(self) -> int:
        """Trials killed while the operation ran."""
        return sum(r.killed for r in self.results)

    @property
    def finished(self) -> int:
        """Trials whose operation finished before the kill."""
        return sum(r.elapsed is not None for r in self.results)

    def line(self) -> str:
        """One line for a report."""
        leftovers = sum(r.leftovers for r in self.results)
        orphans = sum(r.orphan_blobs for r in self.results)
        return (f"{self.scenario:34} trials {len(self.results):4}  killed mid-way "
                f"{self.killed:4}  finished first {self.finished:3}  failures "
                f"{len(self.failures):3}  leftover files {leftovers:4}  orphan blobs {orphans:3}"
                f"  (op {self.duration * 1000:.0f} ms, seed {self.seed})")


def run_scenario(scenario: Scenario, trials: int, seed: int, workdir: str,
                 payloads: Payloads | None = None, pool: ChildPool | None = None,
                 keep_failed: bool = False) -> Summary:
    """Uninterrupted runs (to time the operation and check its end state), and ``trials`` kills.

    An uninterrupted run that moves every key comes first and again before
    every tenth trial; each kill comes at a delay drawn uniformly from 0 to
    1.2 times the median of their durations (from ``random.Random(seed)``),
    so a few trials let the operation finish. (Re-timing now and then keeps
    one run slowed down by other work on the machine from spoiling the rest.)
    """
    payloads = payloads or Payloads()
    own_pool = pool is None
    pool = pool or ChildPool()
    rng = random.Random(seed)
    summary = Summary(scenario.name, seed, duration=0.5)
    durations: list[float] = []
    try:
        for i in range(trials):
            if i % 10 == 0:
                timed = _uninterrupted(scenario, workdir, payloads, pool, rng, i)
                if timed.problems:
                    summary.results.append(timed)
                elif timed.elapsed is not None:
                    durations.append(timed.elapsed)
                    summary.duration = statistics.median(durations)
            folder = os.path.join(workdir, f"{scenario.name}-{i}")
            os.makedirs(folder)
            trial = new_trial(scenario, folder, payloads, rng)
            result = run_trial(trial, pool, rng.uniform(0, 1.2 * summary.duration))
            summary.results.append(result)
            if not (keep_failed and result.problems):
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if own_pool:
            pool.close()
    return summary


def _uninterrupted(scenario: Scenario, workdir: str, payloads: Payloads, pool: ChildPool,
                   rng: random.Random, n: int) -> TrialResult:
    """A run that is not killed and moves every key (nothing to skip), checked at its end."""
    folder = os.path.join(workdir, f"{scenario.name}-timing-{n}")
    os.makedirs(folder)
    trial = new_trial(scenario, folder, payloads, rng)
    if isinstance(trial, Trial):
        trial.older, trial.overwrite = set(), True
    result = run_trial(trial, pool, None)
    if not result.problems:
        shutil.rmtree(folder, ignore_errors=True)
    return result


#: Deterministic crash points worth a trial, per scenario (see crash_child.CRASH_POINTS).
CRASH_POINT_CASES = (
    ("import-into-fs", "before-digest"),
    ("import-into-sqlite", "before-digest"),
    ("push-fs-mount-sqlite-backing", "before-mount-delete"),
    ("push-sqlite-mount-fs-backing", "before-mount-delete"),
    ("push-sqlite-mount-fs-backing", "before-record-install"),
    ("push-fs-mount-fs-backing", "before-record-install"),
)


def run_crash_point(scenario: Scenario, crash_at: str, workdir: str, pool: ChildPool,
                    payloads: Payloads | None = None, seed: int = 0) -> TrialResult:
    """One trial whose child kills itself at the crash point ``crash_at``."""
    folder = os.path.join(workdir, f"{scenario.name}-{crash_at}-{seed}")
    os.makedirs(folder)
    trial = Trial(scenario, folder, payloads or Payloads(), random.Random(seed), crash_at)
    return run_trial(trial, pool, None)
