"""Faults: a full disk, an SQLite file locked by another process, a file changing while imported.

Each must give a clear StoreError, lose nothing, and a retry once the fault
has cleared must succeed. (The backing S3 server dying mid-push is tested in
``tests/stores/test_fsspec_faults.py``.)
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from storegui.stores import MemoryStore, StoreError
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.importing import import_file
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite import schema
from storegui.stores.sqlite.store import SqliteStore

KiB, MiB = 1 << 10, 1 << 20
NO_SPACE = os.strerror(errno.ENOSPC)


def _internal_files(path) -> list[str]:
    return sorted(os.listdir(os.path.join(path, ".storegui", "tmp")) +
                  os.listdir(os.path.join(path, ".storegui", "trash")))


def _pending_blobs(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM blobs WHERE owner IS NOT NULL").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------------- a full disk: real tmpfs


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (skipped where this process may not mount one)."""
    where = tmp_path / "small"
    where.mkdir()
    if sys.platform != "linux":
        pytest.skip("mounting a small tmpfs needs Linux")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if done.returncode != 0:
        pytest.skip(f"this process may not mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(folder) -> str:
    """Fill the filesystem holding ``folder`` to the last byte; the filler file's path."""
    path = os.path.join(folder, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        while True:
            os.write(fd, b"\0" * (4 * KiB))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def test_a_full_disk_under_a_filesystem_store(small_disk):
    store = FileSystemStore(small_disk / "store")
    old_big = os.urandom(200 * KiB)
    store.from_bytes("small", b"keep me", {"v": 1})
    store.from_bytes("big", old_big, {"v": 1})
    filler = fill(small_disk)
    new = os.urandom(1 * MiB)
    for write in (lambda: store.from_bytes("new", new, {"v": 2}),
                  lambda: store.from_bytes("big", new, {"v": 2}),
                  lambda: store.multiset(["small", "new"],
                                         [(io.BytesIO(b"x"), {}), (io.BytesIO(new), {})])):
        with pytest.raises(StoreError) as info:
            write()
        assert NO_SPACE in str(info.value) and str(small_disk) in str(info.value)
        assert not store.exists("new")
        assert store.to_bytes("big") == old_big and store.get_metadata("big") == {"v": 1}
        assert store.to_bytes("small") == b"keep me"
        assert _internal_files(small_disk / "store") == []
    os.unlink(filler)  # the fault clears
    store.from_bytes("new", new, {"v": 2})
    store.from_bytes("big", new, {"v": 2})
    assert store.to_bytes("new") == new and store.to_bytes("big") == new
    store.disconnect()


def test_a_full_disk_under_an_sqlite_store(small_disk):
    db = str(small_disk / "store.db")
    store = SqliteStore(db)
    store.from_bytes("small", b"keep me", {"v": 1})
    filler = fill(small_disk)
    new = os.urandom(2 * MiB)
    with pytest.raises(StoreError) as info:
        store.from_bytes("new", new, {"v": 2})
    assert "full" in str(info.value) and db in str(info.value)
    assert not store.exists("new")
    assert store.to_bytes("small") == b"keep me"
    os.unlink(filler)
    store.from_bytes("new", new, {"v": 2})
    assert store.to_bytes("new") == new
    store.disconnect()
    store.connect()  # a failed write's pending chunks are gone by now at the latest
    assert _pending_blobs(db) == 0
    assert store.to_bytes("small") == b"keep me"
    store.disconnect()


def test_a_push_into_a_full_backing_store_keeps_the_mount_copy(small_disk, tmp_path):
    mount = FileSystemStore(tmp_path / "mount")
    backing = FileSystemStore(small_disk / "backing")
    mounted = MountedStore("", mount, backing)
    data = os.urandom(1 * MiB)
    mounted.from_bytes("k", data, {"v": 1})
    filler = fill(small_disk)
    with pytest.raises(StoreError) as info:
        mounted.push("k")
    assert "'k'" in str(info.value) and NO_SPACE in str(info.value)
    assert mounted.origin("k") == "local" and mount.to_bytes("k") == data
    assert _internal_files(small_disk / "backing") == []
    os.unlink(filler)
    assert mounted.push("k") == ["k"]
    assert mounted.origin("k") == "remote" and backing.to_bytes("k") == data
    mounted.disconnect()


# ---------------------------------------------------------------------- a full disk: injected


class DiskBudget:
    """Makes writes under ``root`` fail with ENOSPC once ``budget`` bytes are written.

    The store's own code runs unchanged; only ``os.write`` and the kernel
    copy calls fail, as they would on a full disk (``fsync`` too with
    ``at_fsync``, as delayed allocation reports it on some filesystems).
    """

    def __init__(self, monkeypatch, root, budget: int, at_fsync: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.left = budget
        self.at_fsync = at_fsync
        self.full = True
        real_write, real_fsync = os.write, os.fsync

        def write(fd, data):
            if self._ours(fd) and not self.at_fsync:
                if self.left <= 0:
                    raise OSError(errno.ENOSPC, NO_SPACE)
                data = memoryview(data)[: self.left]
                self.left -= len(data)
            return real_write(fd, data)

        def fsync(fd):
            if self.at_fsync and self._ours(fd):
                raise OSError(errno.ENOSPC, NO_SPACE)
            return real_fsync(fd)

        def no_kernel_copy(*args, **kwargs):
            raise OSError(errno.EXDEV, "cross-device")  # fall back to os.write

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "copy_file_range", no_kernel_copy, raising=False)
        monkeypatch.setattr(os, "sendfile", no_kernel_copy, raising=False)

    def _ours(self, fd: int) -> bool:
        if not self.full:
            return False
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return target.startswith(self.root + os.sep)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize(("budget", "at_fsync"), [(0, False), (100 * KiB, False), (0, True)],
                         ids=["no-space-at-all", "space-runs-out-mid-value", "fsync-fails"])
def test_a_filesystem_store_whose_writes_fail_with_enospc(tmp_path, monkeypatch, budget,
                                                          at_fsync):
    # only a store that waits for the disk sees an error that the disk reports at fsync
    store = FileSystemStore(tmp_path / "store", sync="full" if at_fsync else "normal")
    old = os.urandom(300 * KiB)
    store.from_bytes("big", old, {"v": 1})
    store.from_bytes("small", b"keep", {"v": 1})
    disk = DiskBudget(monkeypatch, tmp_path / "store", budget, at_fsync)
    new = os.urandom(512 * KiB)
    attempts = [
        lambda: store.from_bytes("big", new, {"v": 2}),
        lambda: store.from_bytes("fresh", new, {"v": 2}),
        lambda: store.from_bytes("small", b"x" * 100, {"v": 2}),
    ]
    if budget == 0:  # a metadata-only write needs a new record too
        attempts.append(lambda: store.set_metadata("big", {"v": 3, "pad": "y" * 5000}))
    for attempt in attempts:
        with pytest.raises(StoreError) as info:
            attempt()
        assert NO_SPACE in str(info.value) and str(tmp_path / "store") in str(info.value)
        assert store.to_bytes("big") == old and store.get_metadata("big") == {"v": 1}
        assert store.to_bytes("small") == b"keep" and not store.exists("fresh")
        assert _internal_files(tmp_path / "store") == []
    disk.full = False
    store.from_bytes("big", new, {"v": 2})
    store.from_bytes("fresh", new, {"v": 2})
    assert store.to_bytes("big") == new and store.to_bytes("fresh") == new
    store.disconnect()


def test_an_sqlite_store_that_cannot_grow(tmp_path, monkeypatch):
    """``max_page_count`` makes SQLite itself answer SQLITE_FULL, as on a full disk."""
    db = str(tmp_path / "store.db")
    # values inside the database file, where SQLite's own limit applies
    store = SqliteStore(db, external_from=None)
    store.from_bytes("small", b"keep", {"v": 1})
    store.disconnect()
    conns = []
    real_connect = schema.connect

    def connect(path, readonly, timeout):
        conn = real_connect(path, readonly, timeout)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        conns.append(conn)
        return conn

    monkeypatch.setattr(schema, "connect", connect)
    store = SqliteStore(db, external_from=None)
    new = os.urandom(3 * MiB)
    with pytest.raises(StoreError) as info:
        store.from_bytes("new", new, {"v": 2})
    assert "full" in str(info.value) and db in str(info.value)
    with pytest.raises(StoreError), store.transaction("big"):
        store.from_bytes("small", b"changed")
        store.from_bytes("new", new)
    assert not store.exists("new") and store.to_bytes("small") == b"keep"
    for conn in conns:  # the fault clears
        conn.execute("PRAGMA max_page_count = 1073741823")
    store.from_bytes("new", new, {"v": 2})
    assert store.to_bytes("new") == new
    store.disconnect()
    monkeypatch.undo()
    with SqliteStore(db) as again:
        assert again.to_bytes("small") == b"keep" and again.to_bytes("new") == new
    assert _pending_blobs(db) == 0


# ----------------------------------------------------------------- SQLite locked by another process

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS other_program (x)")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


class Locker:
    """Another process holding ``BEGIN EXCLUSIVE`` on an SQLite file until released."""

    def __init__(self, db: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", LOCKER, db], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.proc.stdout.close()
        if not self.proc.stdin.closed:
            self.proc.stdin.close()


@pytest.fixture
def locked_db(tmp_path):
    db = str(tmp_path / "store.db")
    with SqliteStore(db) as store:
        store.from_bytes("k", b"before", {"v": 1})
        store.from_bytes("big", b"B" * (3 * MiB), {"v": 1})
    locker = Locker(db)
    yield db, locker
    locker.close()


def test_an_sqlite_file_locked_by_another_process(locked_db):
    db, locker = locked_db
    store = SqliteStore(db, timeout=0.2)
    assert store.to_bytes("k") == b"before"  # WAL: readers do not wait for the writer
    writes = [
        lambda: store.from_bytes("k2", b"new"),
        lambda: store.from_bytes("big", os.urandom(2 * MiB)),
        lambda: store.update_metadata("k", {"v": 2}),
        lambda: store.delete("k"),
        lambda: store.multiset(["a", "b"], [(io.BytesIO(b"1"), {}), (io.BytesIO(b"2"), {})]),
    ]
    for write in writes:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            write()
        assert "busy" in str(info.value) and db in str(info.value)
        assert time.monotonic() - started < 10
    locker.release()  # the fault clears
    assert store.to_bytes("k") == b"before" and store.get_metadata("k") == {"v": 1}
    assert not store.exists("k2") and store.to_bytes("big") == b"B" * (3 * MiB)
    store.from_bytes("k2", b"new")
    store.update_metadata("k", {"v": 2})
    assert store.to_bytes("k2") == b"new" and store.get_metadata("k") == {"v": 2}
    store.disconnect()
    store.connect()
    assert _pending_blobs(db) == 0
    store.disconnect()


def test_a_push_into_a_locked_sqlite_backing_keeps_the_mount_copy(locked_db, tmp_path):
    db, locker = locked_db
    mounted = MountedStore("m/", FileSystemStore(tmp_path / "mount"), SqliteStore(db, timeout=0.2))
    data = os.urandom(1 * MiB)
    mounted.from_bytes("m/x", data, {"v": 1})
    with pytest.raises(StoreError) as info:
        mounted.push("m/x")
    assert "'m/x'" in str(info.value) and "busy" in str(info.value)
    assert mounted.origin("m/x") == "local"
    locker.release()
    assert mounted.push("m/x") == ["m/x"]
    assert mounted.origin("m/x") == "remote" and mounted.to_bytes("m/x") == data
    mounted.disconnect()


# ------------------------------------------------------------------ a file changing while imported

STORES = {
    "memory": lambda tmp: MemoryStore(),
    "filesystem": lambda tmp: FileSystemStore(tmp / "fs"),
    "sqlite": lambda tmp: SqliteStore(str(tmp / "store.db")),
}


def _truncate(path):
    os.truncate(path, 1000)


def _append(path):
    with open(path, "ab") as f:
        f.write(b"more")


def _overwrite(path):
    with open(path, "r+b") as f:
        f.seek(10)
        f.write(b"changed")


def _delete(path):
    os.unlink(path)


def _replace(path):
    with open(str(path) + ".new", "wb") as f:
        f.write(b"another file")
    os.replace(str(path) + ".new", path)


CHANGES = {"truncated": _truncate, "appended-to": _append, "overwritten": _overwrite,
           "deleted": _delete, "replaced": _replace}


@pytest.mark.parametrize("kind", sorted(STORES))
@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("existed", [False, True], ids=["new-key", "existing-key"])
def test_a_file_that_changes_while_it_is_imported(tmp_path, kind, change, existed):
    store = STORES[kind](tmp_path)
    source = tmp_path / "source.bin"
    data = os.urandom(1 * MiB)
    source.write_bytes(data)
    # an mtime in the past, as for any file not written this very instant (see docs)
    os.utime(source, (1_600_000_000, 1_600_000_000))
    if existed:
        store.from_bytes("k", b"old value", {"v": "old"})
    fired = []

    def progress(done, total):
        if done >= 256 * KiB and not fired:
            fired.append(done)
            CHANGES[change](source)

    with pytest.raises(StoreError) as info:
        import_file(store, "k", source, progress=progress, buffer_size=64 * KiB)
    assert fired and "changed while it was being imported" in str(info.value)
    assert str(source) in str(info.value) and "'k'" in str(info.value)
    if existed:
        assert store.to_bytes("k") == b"old value" and store.get_metadata("k") == {"v": "old"}
    else:
        assert not store.exists("k")
    source.write_bytes(data)  # the fault clears: the file is whole again
    md = import_file(store, "k", source, buffer_size=64 * KiB)
    assert store.to_bytes("k") == data and md["size"] == len(data)
    store.disconnect()


def test_a_file_moved_while_it_is_imported_is_imported_whole(tmp_path):
    """Renaming a file does not change its bytes: the import completes, consistent."""
    store = FileSystemStore(tmp_path / "fs")
    source = tmp_path / "source.bin"
    data = os.urandom(1 * MiB)
    source.write_bytes(data)

    def progress(done, total):
        if done >= 256 * KiB and source.exists():
            os.rename(source, tmp_path / "moved.bin")

    md = import_file(store, "k", source, progress=progress, buffer_size=64 * KiB)
    assert store.to_bytes("k") == data and store.get_metadata("k") == md
    store.disconnect()
