"""What the crash-safety harness checks after each killed push, pull or import.

:func:`inspect_store` opens a store the way a user would (plain ``connect()``,
no repair step) and reads every key; :func:`fs_temp_files_before_connect`
and :func:`leftovers_after_connect` look for what a killed writer may leave
behind: temp files, transaction folders, orphaned blobs and chunks.

FileSystemStore removes an abandoned temp file at connect once nobody holds
its ``flock`` *and* it has not changed for a minute (the minute covers the
instant between creating a temp file and locking it, see
``storegui.stores.filesystem.layout``). The harness checks the first condition for
real (the killed child's locks must be gone) and simulates the minute by
setting the files' times back, so it does not have to wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from storegui.stores.errors import StoreError
from storegui.stores.filesystem.layout import INTERNAL
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.localfiles.tempfiles import STALE_AFTER
from storegui.stores.sqlite.store import SqliteStore


@dataclass(frozen=True)
class Seen:
    """A value as read back: sha256 and length of its bytes, its size field and metadata."""

    digest: str
    length: int
    size: int | None
    metadata: dict

    @classmethod
    def of(cls, data: bytes, metadata: dict) -> Seen:
        """The value a store should hold for ``data`` and ``metadata``."""
        return cls(hashlib.sha256(data).hexdigest(), len(data), len(data), dict(metadata))

    def describe(self) -> str:
        """A short description for failure messages."""
        return f"{self.length} bytes sha256 {self.digest[:12]}… metadata {self.metadata}"


@dataclass
class StoreState:
    """What :func:`inspect_store` found."""

    values: dict[str, Seen | None] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def open_kind(kind: str, path: str) -> Any:
    """A store of ``kind`` ("fs" or "sqlite") at ``path`` (the folder / file must exist)."""
    return FileSystemStore(path, create=False) if kind == "fs" else SqliteStore(path)


def read_value(store: Any, key: str) -> Seen | None:
    """The value of ``key`` (streamed and hashed), or None if the store has no such key."""
    try:
        value = store.get(key)
    except KeyError:
        return None
    digest = hashlib.sha256()
    length = 0
    with value.data as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            length += len(chunk)
    return Seen(digest.hexdigest(), length, value.size, value.metadata)


def inspect_store(kind: str, path: str, keys: list[str], label: str) -> StoreState:
    """Connect to the store, read ``keys`` and list every key it holds."""
    state = StoreState()
    store = open_kind(kind, path)
    try:
        store.connect()
        for key in keys:
            state.values[key] = read_value(store, key)
        state.keys = sorted(store.keys())
    except (StoreError, OSError) as exc:
        state.problems.append(f"{label} store cannot be opened or read without repair: {exc}")
    finally:
        store.disconnect()
    return state


def fs_temp_files_before_connect(path: str, label: str) -> tuple[int, list[str]]:
    """Files a killed writer left in a FileSystemStore folder, before anyone connects.

    Every temp file and transaction ``lock`` must be unlocked (its writer is
    dead). The times of temp files (and of transaction folders without a
    journal) are then set back by more than :data:`STALE_AFTER`, standing in
    for the minute the store waits before it removes them; a transaction
    folder with a journal is rolled back at the next connect whatever its
    age, so it is left as it is. Returns (how many files, problems).
    """
    problems: list[str] = []
    internal = os.path.join(path, INTERNAL)
    stale: list[str] = []
    locks: list[str] = []
    count = 0
    for sub in ("tmp", "trash"):
        folder = os.path.join(internal, sub)
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            count += 1
            if not entry.is_dir():
                stale.append(entry.path)
                locks.append(entry.path)
                continue
            inside = [e.path for e in os.scandir(entry.path)]
            count += len(inside)
            locks += [p for p in inside if os.path.basename(p) == "lock"]
            if not any(os.path.basename(p) == "journal" for p in inside):
                stale += [entry.path, *inside]
    for name in locks:
        fd = os.open(name, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            problems.append(f"{label}: {name} is still locked although its writer is dead")
        finally:
            os.close(fd)
    old = time.time() - STALE_AFTER - 5
    for name in stale:
        os.utime(name, (old, old))
    return count, problems


def fs_orphan_blobs(path: str) -> set[str]:
    """Blob files of a FileSystemStore that no record (nor undo copy) names."""
    store = FileSystemStore(path, create=False)
    store.connect()
    try:
        used = set()
        for key in store.keys():
            record = store._load(key, False)[0]
            if record.blob:
                used.add(record.blob)
        from storegui.stores.filesystem.undo import blobs_in_undo_logs

        used |= blobs_in_undo_logs(store._dirs.trash)
    finally:
        store.disconnect()
    blobs = os.path.join(path, INTERNAL, "blobs")
    return {name for name in os.listdir(blobs)} - used


def leftovers_after_connect(kind: str, path: str, label: str) -> tuple[int, list[str]]:
    """Leftovers the connect should have removed; (orphaned FS blobs, problems).

    FileSystemStore: ``tmp/`` and ``trash/`` must be empty. Blobs no record
    names (a writer killed between moving its blob in and renaming its
    record) are counted, not failed: they only cost space and
    ``collect_garbage`` removes them (checked here). SqliteStore: no pending
    or garbage blob, no chunk or blob without its key, and ``PRAGMA
    integrity_check`` says ok.
    """
    problems: list[str] = []
    if kind == "fs":
        internal = os.path.join(path, INTERNAL)
        for sub in ("tmp", "trash"):
            left = os.listdir(os.path.join(internal, sub))
            if left:
                problems.append(f"{label}: .storegui/{sub} still holds {left} after connect")
        orphans = fs_orphan_blobs(path)
        if orphans:
            store = FileSystemStore(path, create=False)
            with store:
                removed = store.collect_garbage(min_age=0)
            if removed != len(orphans) or fs_orphan_blobs(path):
                problems.append(f"{label}: collect_garbage left orphaned blobs behind")
        return len(orphans), problems
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        checks = {
            "pending or garbage blobs": "SELECT count(*) FROM blobs WHERE owner IS NOT NULL",
            "chunks without a blob":
                "SELECT count(*) FROM chunks WHERE blob_id NOT IN (SELECT id FROM blobs)",
            "blobs no key points at": "SELECT count(*) FROM blobs WHERE id NOT IN "
                                      "(SELECT blob_id FROM keys WHERE blob_id IS NOT NULL)",
        }
        for what, sql in checks.items():
            count = conn.execute(sql).fetchone()[0]
            if count:
                problems.append(f"{label}: {count} {what} after connect")
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"{label}: integrity_check says {verdict}")
    finally:
        conn.close()
    return 0, problems
