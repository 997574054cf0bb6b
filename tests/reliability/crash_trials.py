"""Crash-safety trials: kill a push, pull or import with SIGKILL and check nothing was lost.

Each trial builds fresh stores in its own folder, starts :mod:`crash_child`
on them, kills it with SIGKILL after a random delay (seeded) within the
operation's measured duration, then reopens the stores in this process and
checks (see :mod:`crash_checks`):

- every key is intact in the mount store or intact in the backing store
  (data and metadata equal to the original), and no key holds anything but a
  whole version it held before or the one being written;
- the stores open without repair, and what the killed child left behind
  (temp files, undo folders, pending blobs) is gone after the next connect.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storegui.stores.filesystem import FileSystemStore
from storegui.stores.importing import file_metadata
from storegui.stores.sqlite import SqliteStore

from .child_processes import CHILD_DEADLINE, ChildPool
from .crash_checks import (
    Seen,
    fs_temp_files_before_connect,
    inspect_store,
    leftovers_after_connect,
)

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
        if self.op == "import":
            return f"import-into-{self.mount}"
        return f"{self.op}-{self.mount}-mount-{self.backing}-backing"


SCENARIOS = (
    [Scenario("push", m, b) for m in KINDS for b in KINDS]
    + [Scenario("pull", m, b) for m in KINDS for b in KINDS]
    + [Scenario("import", k) for k in KINDS]
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


def run_trial(trial: Trial, pool: ChildPool, delay: float | None) -> TrialResult:
    """Run ``trial``'s operation in a child, SIGKILL it ``delay`` seconds after it starts, check.

    ``delay`` None lets it run to the end (or to its own crash point).
    """
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
                timed = _uninterrupted(scenario, workdir, payloads, pool, rng, len(durations))
                if timed.problems:
                    summary.results.append(timed)
                elif timed.elapsed is not None:
                    durations.append(timed.elapsed)
                    summary.duration = statistics.median(durations)
            folder = os.path.join(workdir, f"{scenario.name}-{i}")
            os.makedirs(folder)
            trial = Trial(scenario, folder, payloads, rng)
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
    trial = Trial(scenario, folder, payloads, rng)
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
