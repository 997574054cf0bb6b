"""Concurrency: threads and processes writing and reading the same keys see whole versions only.

Writers alternate every key between two known versions "A" and "B" (each
with metadata naming its version and its data's digest); readers check that
every ``get`` returns one whole version: its data, size and metadata all of
"A" or all of "B". See :mod:`concurrency_worker`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from storegui.stores import MemoryStore, StoreError
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite.store import SqliteStore

from .child_processes import child_env
from .concurrency_worker import Expected, keys_for, read_once, write_version

WORKER = str(Path(__file__).with_name("concurrency_worker.py"))
THREAD_ROUNDS = 8
PROCESS_ROUNDS = 6
DEADLINE = 120.0


def _mounted(tmp):
    return MountedStore("m/", FileSystemStore(tmp / "mount"), SqliteStore(str(tmp / "b.db")))


STORES = {
    "memory": (lambda tmp: MemoryStore(), ""),
    "filesystem": (lambda tmp: FileSystemStore(tmp / "fs"), ""),
    "sqlite-file": (lambda tmp: SqliteStore(str(tmp / "store.db")), ""),
    "sqlite-memory": (lambda tmp: SqliteStore(":memory:"), ""),
    "mounted-filesystem-over-sqlite": (_mounted, "m/"),
}


class Worker(threading.Thread):
    """A thread that records the exception that ended it."""

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.parametrize("kind", sorted(STORES))
def test_threads_writing_and_reading_the_same_keys(tmp_path, kind):
    build, prefix = STORES[kind]
    store = build(tmp_path)
    keys = keys_for(prefix)
    for key in keys:
        write_version(store, key, "A")
    expected = Expected(keys)
    writers_done = threading.Event()
    problems: list[str] = []
    reads = [0]
    listings = [0]
    seen: set = set()

    def writer(start: str) -> None:
        version = start
        for _ in range(THREAD_ROUNDS):
            for key in keys:
                write_version(store, key, version)
            version = "B" if version == "A" else "A"

    def reader() -> None:
        deadline = time.monotonic() + DEADLINE
        while not writers_done.is_set() and time.monotonic() < deadline:
            for key in keys:
                problem = read_once(store, key, expected, seen)
                reads[0] += 1
                if problem:
                    problems.append(problem)

    def lister() -> None:
        deadline = time.monotonic() + DEADLINE
        while not writers_done.is_set() and time.monotonic() < deadline:
            found = sorted(store.keys())
            listed = sorted(e.key for e in store.list_dir(prefix) if not e.is_dir)
            listings[0] += 1
            if found != sorted(keys) or listed != sorted(keys):
                problems.append(f"listing showed {found} / {listed}")

    writers = [Worker(lambda: writer("B")), Worker(lambda: writer("A"))]
    others = [Worker(reader), Worker(reader), Worker(lister)]
    for thread in writers + others:
        thread.start()
    for thread in writers:
        thread.join(DEADLINE)
    writers_done.set()
    for thread in others:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in writers + others), "a thread did not finish"
    errors = [t.error for t in writers + others if t.error is not None]
    assert not errors, errors
    assert not problems, problems[:10]
    assert reads[0] >= len(keys) and listings[0] >= 1
    assert seen == {"A", "B"}, "the readers never overlapped a write"
    for key in keys:  # and what is left is one whole version
        assert read_once(store, key, expected) is None
    store.disconnect()


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


def _finish(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["fs", "sqlite"])
def test_processes_writing_and_reading_the_same_keys(tmp_path, kind):
    path = str(tmp_path / ("fs" if kind == "fs" else "store.db"))
    store = FileSystemStore(path) if kind == "fs" else SqliteStore(path)
    keys = keys_for()
    for key in keys:
        write_version(store, key, "A")
    store.disconnect()
    stop, ready = str(tmp_path / "stop"), tmp_path / "ready"
    ready.mkdir()
    readers = [_start(["read", kind, path, "100000", stop, str(ready)]) for _ in range(2)]
    writers = [_start(["write", kind, path, str(PROCESS_ROUNDS), start, str(ready), "2"])
               for start in "BA"]
    written = [_finish(p) for p in writers]
    Path(stop).touch()
    read = [_finish(p) for p in readers]
    problems = [p for r in written + read for p in r["problems"]]
    assert not problems, problems[:10]
    assert all(r["ops"] == PROCESS_ROUNDS * len(keys) for r in written)
    assert sum(r["ops"] for r in read) >= len(keys)
    assert {v for r in read for v in r["seen"]} == {"A", "B"}, "no read overlapped a write"
    expected = Expected(keys)
    with (FileSystemStore(path, create=False) if kind == "fs" else SqliteStore(path)) as again:
        for key in keys:
            assert read_once(again, key, expected) is None
        assert sorted(again.keys()) == sorted(keys)
    if kind == "fs":
        assert list((Path(path) / ".storegui" / "tmp").iterdir()) == []


def test_a_reader_in_another_process_gets_a_clear_error_not_torn_data(tmp_path):
    """SQLite: a chunked value replaced by another process while it is read."""
    db = str(tmp_path / "store.db")
    writer = SqliteStore(db)
    write_version(writer, "large", "A")
    reader = SqliteStore(db)
    value = reader.get("large")
    stream = value.data
    first = stream.read(1 << 20)
    # the reader's lease lives in its own process only: a writer elsewhere frees the chunks
    proc = _start(["write", "sqlite", db, "2", "B", str(tmp_path), "0"])
    _finish(proc)
    try:
        rest = stream.read()
    except StoreError as exc:
        assert "read it again" in str(exc) and db in str(exc)
    else:  # the chunks were still there: then the bytes must be version A whole
        data = first + rest
        assert Expected(["large"]).judge("large", data, value.size, value.metadata) is None
    stream.close()
    reader.disconnect()
    writer.disconnect()
