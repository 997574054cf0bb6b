"""Several processes share one SQLite store file: no acknowledged write is ever lost.

Real processes (:mod:`sharing_worker`, and the real ``storegui put``) write
one real store file in three open/close patterns:

- ``long+short``: one long-lived process keeps the store open and writes
  from several threads (while another reads) as the app does; short-lived
  processes open the store, write one key and close it, over and over;
- ``all-short``: every process opens and closes the store for each write;
- ``long+cli``: the long-lived process, and ``storegui put`` subprocesses
  (with ``--force`` for overwrites) from two loops at once.

Writes carry indexed metadata; some keys are overwritten, some deleted.
After each round every acknowledged operation must be visible: the data and
metadata of the last acknowledged version, no deleted key, and the metadata
index finding each key by its metadata (and not by a replaced version's).
The figure of interest is the number of acknowledged operations whose result
is missing, which must be 0.

A longer run, printing the figures of each round::

    cd tests && python -m reliability.test_sqlite_sharing --rounds 20
    cd tests && python -m reliability.test_sqlite_sharing --rounds 50 --pattern long+cli

The tests run ``STOREGUI_SHARING_ROUNDS`` rounds of each pattern (default 2).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storegui.stores.errors import StoreError
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.sqlite.store import SqliteStore

from .child_processes import child_env
from .sharing_worker import data_for, metadata_for

WORKER = str(Path(__file__).with_name("sharing_worker.py"))
#: Seconds a round may take before its processes are killed and the round fails.
ROUND_DEADLINE = 120.0
ROUNDS = int(os.environ.get("STOREGUI_SHARING_ROUNDS", "2"))
PATTERNS = ("long+short", "all-short", "long+cli")


@dataclass
class Expectation:
    """What an acknowledged operation left: the data and metadata fields (None: deleted)."""

    data: bytes | None
    metadata: dict = field(default_factory=dict)
    exact: bool = True  # False: ``metadata`` is a subset (the CLI adds its own fields)
    replaced: dict | None = None  # the metadata of a replaced version, no longer indexed


@dataclass
class RoundResult:
    """The figures of one round."""

    pattern: str
    acknowledged: dict[str, int] = field(default_factory=dict)  # per writer
    lost: dict[str, int] = field(default_factory=dict)  # per writer
    problems: list[str] = field(default_factory=list)  # lost writes and anything else wrong
    errors: list[str] = field(default_factory=list)  # writes that raised
    seconds: float = 0.0

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    def line(self) -> str:
        writers = ", ".join(f"{w} {self.lost.get(w, 0)}/{n}"
                            for w, n in sorted(self.acknowledged.items()))
        return (f"{self.pattern:11} lost {self.total_lost:4} of "
                f"{sum(self.acknowledged.values()):4} acknowledged ({writers}); "
                f"{len(self.errors)} errors, {len(self.problems)} problems, "
                f"{self.seconds:.1f} s")


class WorkerProcess:
    """A :mod:`sharing_worker` process and the operations it acknowledged."""

    def __init__(self, mode: str, db: str, name: str, *args: int) -> None:
        self.name = name
        self.acks: dict[str, int] = {}
        self.errors: list[str] = []
        self.started = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, mode, db, name, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=child_env(), text=True)
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "ack":
                key, version = rest.rsplit(" ", 1)
                self.acks[key] = int(version)
                self.started.set()  # the short-lived processes print no "started"
            elif kind == "error":
                self.errors.append(rest)
            elif kind == "started":
                self.started.set()
        self.started.set()

    def stop(self) -> None:
        """Close stdin: a long-lived worker finishes its keys in progress and exits."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def finish(self, deadline: float) -> None:
        """Wait for the process (killed at ``deadline``) and its output."""
        self.stop()
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.errors.append("did not finish in time (killed)")
        self._reader.join(10)
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        if self.proc.returncode != 0:
            self.errors.append(f"exit status {self.proc.returncode}: {self.stderr[-1500:]}")

    def expectations(self) -> dict[str, Expectation]:
        """The state each acknowledged key must be in."""
        found = {}
        for key, version in self.acks.items():
            replaced = metadata_for(key, 1) if version == 2 else None
            if version == 0:
                found[key] = Expectation(None, {"tag": key})
            else:
                found[key] = Expectation(data_for(key, version), metadata_for(key, version),
                                         replaced=replaced)
        return found


class CliLoop:
    """``storegui put`` subprocesses, one after the other, into the mount store ``db``."""

    def __init__(self, folder: Path, db: str, name: str, count: int) -> None:
        self.name = name
        self.acks: dict[str, Expectation] = {}
        self.errors: list[str] = []
        self._args = [sys.executable, "-m", "storegui", "--backing", str(folder / "backing"),
                      "--mount", f"sqlite://{db}"]
        self._folder = folder
        self._count = count
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _put(self, key: str, version: int) -> None:
        data = data_for(key, version)
        source = self._folder / f"{key.replace('/', '_')}-{version}.bin"
        source.write_bytes(data)
        command = [*self._args, "put", key, str(source), "--meta", f"tag={key}",
                   "--meta", f"v={version}", "--meta", f"writer={self.name}"]
        if version == 2:
            command.append("--force")
        done = subprocess.run(command, capture_output=True, text=True, env=child_env(),
                              timeout=ROUND_DEADLINE)
        if done.returncode != 0:
            self.errors.append(f"{key}: exit status {done.returncode}: {done.stderr.strip()}")
            return
        metadata = {"tag": key, "v": version, "writer": self.name,
                    "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        replaced = {"tag": key, "v": 1} if version == 2 else None
        self.acks[key] = Expectation(data, metadata, exact=False, replaced=replaced)

    def _run(self) -> None:
        for i in range(self._count):
            key = f"{self.name}/k{i:05d}"
            self._put(key, 1)
            if i % 5 == 0:
                self._put(key, 2)


def check_store(db: str, expected: dict[str, dict[str, Expectation]]) -> tuple[dict, list]:
    """Lost operations per writer, and every problem found, in the store file ``db``."""
    lost: dict[str, int] = {}
    problems: list[str] = []
    store = SqliteStore(db)
    try:
        store.connect()
    except StoreError as exc:
        lost = {writer: len(keys) for writer, keys in expected.items()}
        return lost, [f"the store does not open: {exc}"]
    try:
        for writer, keys in expected.items():
            lost[writer] = 0
            for key, want in sorted(keys.items()):
                try:
                    problem = _check_key(store, key, want)
                except StoreError as exc:
                    problem = f"cannot be read: {exc}"
                if problem:
                    lost[writer] += 1
                    problems.append(f"{key}: {problem}")
        every = {k for keys in expected.values() for k, w in keys.items() if w.data is not None}
        try:
            extra = set(store.keys()) - every
        except StoreError as exc:
            extra = set()
            problems.append(f"the keys cannot be listed: {exc}")
        if extra:
            problems.append(f"{len(extra)} keys nobody acknowledged, e.g. {sorted(extra)[:3]}")
    finally:
        store.disconnect()
    with sqlite3.connect(Path(db).as_uri() + "?mode=ro", uri=True) as conn:
        verdict = conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    if verdict != [("ok",)]:
        problems.append(f"integrity_check: {verdict[:5]}")
    return lost, problems


def _check_key(store: SqliteStore, key: str, want: Expectation) -> str | None:
    by_tag = list(store.query_keys(tag=key))
    if want.data is None:
        if store.exists(key):
            return "deleted (acknowledged) but still there"
        return f"deleted but the index still finds it: {by_tag}" if by_tag else None
    if not store.exists(key):
        return "missing"
    value = store.get(key)
    with value.data as stream:
        data = stream.read()
    metadata = value.metadata
    if data != want.data:
        return f"holds {len(data)} other bytes, not the acknowledged version"
    if want.exact and metadata != want.metadata:
        return f"metadata {metadata} is not the acknowledged {want.metadata}"
    if not want.exact and any(metadata.get(k) != v for k, v in want.metadata.items()):
        return f"metadata {metadata} lacks the acknowledged fields {want.metadata}"
    if by_tag != [key]:
        return f"the metadata index finds {by_tag} for tag={key!r}"
    if want.replaced is not None and list(store.query_keys(**want.replaced)):
        return "the metadata index still finds the replaced version"
    return None


#: Tries, in another process, to take SQLite's EXCLUSIVE lock on the file (a
#: write lock on its "shared" byte range, the lock a closing connection takes to
#: find out whether it is the file's last user): "held" if another process holds
#: a lock there.
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, os.SEEK_SET)
except OSError:
    print("held")
else:
    print("free")
"""


def _lock_on(db: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, db], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.strip()


def test_an_open_store_keeps_its_lock_on_the_file(tmp_path):
    """The root cause: closing a descriptor of our own dropped SQLite's locks on the file."""
    db = str(tmp_path / "shared.db")
    with SqliteStore(db) as store:  # an existing store, closed cleanly
        store.from_bytes("old", b"x", {"tag": "old"})
    app = SqliteStore(db)
    app.connect()
    try:
        app.from_bytes("a", b"1", {"tag": "a"})
        assert _lock_on(db) == "held", "the connect dropped the connection's lock"
        with SqliteStore(db) as other:  # another store on the file, in this process
            other.from_bytes("b", b"2", {"tag": "b"})
        assert _lock_on(db) == "held", "another store's connect and close dropped it"
        app.flush_to_disk()
        assert _lock_on(db) == "held", "flush_to_disk dropped it"
        app.from_bytes("c", b"3", {"tag": "c"})
    finally:
        app.disconnect()
    assert _lock_on(db) == "free"  # the probe does see a lock going
    with SqliteStore(db) as store:
        assert {k: store.to_bytes(k) for k in store.keys()} == {
            "old": b"x", "a": b"1", "b": b"2", "c": b"3"}


def test_flush_to_disk_has_sqlite_sync_the_wal(tmp_path):
    """The sync goes through SQLite (a commit with synchronous = FULL), seen with strace."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    db = str(tmp_path / "s.db")
    script = (
        "import sys\n"
        "from storegui.stores.sqlite.store import SqliteStore\n"
        "store = SqliteStore(sys.argv[1])\n"
        "store.connect()\n"
        "store.from_bytes('k', b'data', {'tag': 'k'})\n"
        "print('FLUSH', flush=True)\n"
        "store.flush_to_disk()\n"
        "print('DONE', flush=True)\n"
        "store.disconnect()\n"
    )
    done = subprocess.run(
        [strace, "-f", "-y", "-e", "trace=fsync,fdatasync,write", sys.executable, "-c",
         script, db], capture_output=True, text=True, env=child_env(), timeout=60)
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    trace = done.stderr
    during = trace[trace.index('"FLUSH'):trace.index('"DONE')]
    assert "sync(" in during and f"{db}-wal>" in during.split("sync(", 1)[1].split(")")[0], \
        during
    assert _synchronous_after_flush(db) == 1


def _synchronous_after_flush(db: str) -> int:
    """``synchronous`` of a connection that flushed: back to NORMAL (1) afterwards."""
    with SqliteStore(db) as store:
        store.from_bytes("k2", b"x")
        store.flush_to_disk()
        with store._db.use() as conn:
            return conn.execute("PRAGMA synchronous").fetchone()[0]


def run_round(pattern: str, folder: Path, scale: int = 1) -> RoundResult:
    """One round of ``pattern`` on a new store file in ``folder``; its figures."""
    result = RoundResult(pattern)
    folder.mkdir(parents=True, exist_ok=True)
    db = str(folder / "shared.db")
    FileSystemStore(folder / "backing").connect()  # the CLI's workspace needs a backing store
    with SqliteStore(db):  # an existing store, closed cleanly (no -wal file), as usual
        pass
    began = time.monotonic()
    deadline = began + ROUND_DEADLINE
    long = None
    if pattern in ("long+short", "long+cli"):
        pause_ms = 5 if pattern == "long+short" else 20
        long = WorkerProcess("long", db, "app", 3, 3000 * scale, pause_ms)
        if not long.started.wait(60) or long.proc.poll() is not None:
            long.finish(deadline)
            raise RuntimeError(f"the long-lived writer did not start: {long.errors}")
    shorts: list[WorkerProcess] = []
    clis: list[CliLoop] = []
    if pattern == "long+short":
        shorts = [WorkerProcess("short", db, f"short{n}", 25 * scale) for n in range(2)]
    elif pattern == "all-short":
        shorts = [WorkerProcess("short", db, f"short{n}", 30 * scale) for n in range(3)]
    else:
        clis = [CliLoop(folder, db, f"cli{n}", 4 * scale) for n in range(2)]
        for cli in clis:
            cli.thread.start()
    for short in shorts:
        short.finish(deadline)
    for cli in clis:
        cli.thread.join(max(0.1, deadline - time.monotonic()))
        if cli.thread.is_alive():
            cli.errors.append("did not finish in time")
    if long is not None:
        long.finish(deadline)
    expected: dict[str, dict[str, Expectation]] = {}
    for proc in ([long] if long else []) + shorts:
        expected[proc.name] = proc.expectations()
        result.errors += [f"{proc.name}: {e}" for e in proc.errors]
    for cli in clis:
        expected[cli.name] = dict(cli.acks)
        result.errors += [f"{cli.name}: {e}" for e in cli.errors]
    result.acknowledged = {w: len(keys) for w, keys in expected.items()}
    result.lost, result.problems = check_store(db, expected)
    result.seconds = time.monotonic() - began
    return result


def _rounds(pattern: str, tmp_path: Path) -> None:
    for n in range(ROUNDS):
        result = run_round(pattern, tmp_path / f"round-{n}")
        print(result.line())
        assert not result.errors, result.errors[:5]
        assert result.total_lost == 0, (result.line(), result.problems[:10])
        assert not result.problems, result.problems[:10]
        assert all(result.acknowledged.values()), f"a writer acknowledged nothing: {result.line()}"


def test_a_long_lived_process_and_short_lived_ones(tmp_path):
    _rounds("long+short", tmp_path)


def test_every_process_opening_and_closing_for_each_write(tmp_path):
    _rounds("all-short", tmp_path)


def test_the_app_open_while_cli_puts_run(tmp_path):
    _rounds("long+cli", tmp_path)


def main(argv: list[str] | None = None) -> int:
    """Run rounds of the patterns and print the figures of each; exit status 1 if any lost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pattern", action="append", choices=PATTERNS)
    parser.add_argument("--scale", type=int, default=1, help="multiply the keys per writer")
    args = parser.parse_args(argv)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="storegui-sharing-") as tmp:
        for pattern in args.pattern or PATTERNS:
            lost = acked = 0
            for n in range(args.rounds):
                result = run_round(pattern, Path(tmp) / f"{pattern}-{n}", args.scale)
                print(result.line(), flush=True)
                for problem in (result.errors + result.problems)[:3]:
                    print(f"    {problem[:300]}", flush=True)
                lost += result.total_lost
                acked += sum(result.acknowledged.values())
                bad += bool(result.total_lost or result.problems or result.errors)
            print(f"{pattern}: {args.rounds} rounds, {lost} of {acked} acknowledged operations "
                  "lost", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())


def test_importing_an_open_stores_own_database_file_is_refused(tmp_path):
    # Reading it through a descriptor of ours would drop SQLite's locks when it closes.
    from storegui.stores import MemoryStore, SqliteStore, StoreError
    from storegui.stores.importing import import_file

    db = tmp_path / "s.db"
    store = SqliteStore(str(db))
    store.connect()
    store.from_bytes("k", b"v")
    target = MemoryStore()
    target.connect()
    for name in (db, tmp_path / "s.db-wal"):
        with pytest.raises(StoreError, match="open in this program"):
            import_file(target, "copy", name)
        with pytest.raises(StoreError, match="open in this program"):
            target.from_file("copy", name)
    assert not target.exists("copy")
    store.disconnect()
    import_file(target, "copy", db)  # closed: an ordinary file again
    assert target.exists("copy")
