"""SqliteStore's large values as files beside the database, and its ``sync`` setting."""

from __future__ import annotations

import fcntl
import io
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storegui.stores import CancelToken, ProgressReader, StoreError, TransferCancelled
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.sqlite import files as sqlite_files
from storegui.stores.sqlite.blobs import INLINE_MAX
from storegui.stores.sqlite.schema import SCHEMA_VERSION
from storegui.stores.sqlite.store import SqliteStore

REPO = Path(__file__).resolve().parents[2]
KiB = 1024
MiB = 1 << 20
LIMIT = 64 * KiB  # external_from of most tests: small values are quick to write
OLD = time.time() - 3600  # an mtime older than the clean-up's minute


def data_of(size: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


class Unsized(io.RawIOBase):
    """A stream that cannot tell its size (a pipe, a socket): no seek, no total."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return self._data.readinto(b)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db):
    s = SqliteStore(db, external_from=LIMIT)
    s.connect()
    yield s
    s.disconnect()


def folder(db: Path) -> Path:
    return Path(f"{db}-values")


def value_files(db: Path) -> list[str]:
    """Names of the value files (not the temp folder)."""
    if not folder(db).exists():
        return []
    return sorted(p.name for p in folder(db).iterdir() if p.is_file())


def temp_files(db: Path) -> list[str]:
    tmp = folder(db) / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def file_of(db: Path, key: str) -> str | None:
    """The value file the key's row names (None: inline or chunks)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT b.file FROM keys AS k JOIN blobs AS b ON b.id = k.blob_id"
                           " WHERE k.key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def chunk_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM chunks").fetchone()[0]


def put(store, key: str, data: bytes, metadata=None) -> None:
    store.set(key, (io.BytesIO(data), metadata or {}))


# ---------------------------------------------------------------- where values go


@pytest.mark.parametrize("wrap", [io.BytesIO, Unsized], ids=["sized", "unsized"])
def test_values_just_under_the_threshold_are_chunks_and_from_it_on_files(db, store, wrap):
    sizes = {"inline": INLINE_MAX, "under": LIMIT - 1, "at": LIMIT, "over": LIMIT + 1}
    for key, size in sizes.items():
        store.set(key, (wrap(data_of(size, size % 7)), {"n": size}))
    assert file_of(db, "inline") is None and file_of(db, "under") is None
    assert chunk_count(db) == 1  # the value just under the threshold
    named = {file_of(db, "at"), file_of(db, "over")}
    assert None not in named and sorted(named) == value_files(db)
    for key, size in sizes.items():
        assert store.to_bytes(key) == data_of(size, size % 7)
        assert store.get_metadata(key) == {"n": size} and store.stat(key).size == size
    assert (folder(db) / file_of(db, "over")).read_bytes() == data_of(LIMIT + 1, (LIMIT + 1) % 7)
    assert [n for n in temp_files(db) if not n.startswith("writer-")] == []


def test_tiny_or_no_threshold_and_bad_settings(tmp_path):
    with SqliteStore(tmp_path / "tiny.db", external_from=0) as tiny:
        put(tiny, "small", b"s" * INLINE_MAX)  # always inline
        put(tiny, "file", b"f" * (INLINE_MAX + 1))
        assert file_of(tmp_path / "tiny.db", "small") is None
        assert file_of(tmp_path / "tiny.db", "file") is not None
        assert tiny.info()["external_from"] == 0 and tiny.info()["sync"] == "normal"
    with SqliteStore(tmp_path / "inside.db", external_from=None) as inside:
        put(inside, "big", data_of(2 * MiB))
        assert inside.to_bytes("big") == data_of(2 * MiB)
        assert inside.info()["external_from"] is None
    assert not folder(tmp_path / "inside.db").exists()  # never made when unused
    assert SqliteStore(":memory:").info()["external_from"] is None
    with pytest.raises(StoreError, match="unknown sync setting 'bogus'"):
        SqliteStore(tmp_path / "x.db", sync="bogus")
    for bad in (-1, "1MiB", 1.5, True):
        with pytest.raises(StoreError, match="external_from"):
            SqliteStore(tmp_path / "x.db", external_from=bad)


def test_multiset_of_large_values_writes_files_and_rolls_back_whole(db, store):
    store.multiset(["a", "b", "small"], [(io.BytesIO(data_of(LIMIT * 2, 1)), {"x": 1}),
                                         (Unsized(data_of(LIMIT * 3, 2)), {"x": 2}),
                                         (io.BytesIO(b"tiny"), {"x": 3})])
    assert len(value_files(db)) == 2 and store.to_bytes("b") == data_of(LIMIT * 3, 2)
    before = value_files(db)

    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise OSError("source gone")

    with pytest.raises(OSError, match="source gone"):
        store.multiset(["c", "a", "d"], [(io.BytesIO(data_of(LIMIT * 2, 3)), {}),
                                         (io.BytesIO(data_of(LIMIT * 2, 4)), {}), (Broken(), {})])
    assert value_files(db) == before and not store.exists("c")
    assert store.to_bytes("a") == data_of(LIMIT * 2, 1)


# ---------------------------------------------------------------- replacing, deleting, rollback


def test_replace_and_delete_free_the_old_file_only_after_the_commit(db, store):
    put(store, "k", data_of(LIMIT * 2, 1))
    put(store, "gone", data_of(LIMIT * 2, 2))
    first, doomed = file_of(db, "k"), file_of(db, "gone")
    with store.transaction("replace and delete"):
        put(store, "k", data_of(LIMIT * 3, 3))
        store.delete("gone")
        assert {first, doomed} <= set(value_files(db))  # not yet committed: still there
    assert first not in value_files(db) and doomed not in value_files(db)
    assert value_files(db) == [file_of(db, "k")]
    put(store, "k", data_of(LIMIT, 4))  # outside a transaction: freed once it commits
    assert value_files(db) == [file_of(db, "k")]
    store.set_metadata("k", {"m": 1})  # metadata only: the same file
    assert value_files(db) == [file_of(db, "k")] and store.to_bytes("k") == data_of(LIMIT, 4)
    store.delete("k")
    assert value_files(db) == []


def test_a_rollback_removes_the_files_it_made_and_keeps_the_old_ones(db, store):
    put(store, "k", data_of(LIMIT * 2, 1))
    put(store, "other", data_of(LIMIT * 2, 2))
    before = value_files(db)
    with pytest.raises(RuntimeError), store.transaction("fails"):
        put(store, "k", data_of(LIMIT * 3, 3))
        put(store, "new", data_of(LIMIT * 4, 4))
        store.delete("other")
        assert len(value_files(db)) == 4
        raise RuntimeError("boom")
    assert value_files(db) == before
    assert store.to_bytes("k") == data_of(LIMIT * 2, 1)
    assert store.to_bytes("other") == data_of(LIMIT * 2, 2) and not store.exists("new")


def test_a_failed_write_inside_a_transaction_leaves_no_file(db, store):
    put(store, "k", data_of(LIMIT * 2, 1))
    with store.transaction("one write fails, the others commit"):
        put(store, "a", data_of(LIMIT * 2, 2))
        with pytest.raises(KeyError):  # data written, then the key turns out missing
            store.set_metadata("missing", {"x": 1})
        token = CancelToken()
        token.cancel()
        reader = ProgressReader(io.BytesIO(data_of(LIMIT * 2, 3)), cancel=token)
        with pytest.raises(TransferCancelled):
            store.set("cancelled", (reader, {}))
    assert sorted(value_files(db)) == sorted([file_of(db, "k"), file_of(db, "a")])


def test_a_reader_keeps_its_version_when_the_key_is_replaced_or_deleted(db, store):
    old, new = data_of(LIMIT * 4, 1), data_of(LIMIT * 2, 2)
    put(store, "k", old)
    other = SqliteStore(db, external_from=LIMIT)  # another connection, as another program
    try:
        stream = store.get_data("k")
        head = stream.read(1000)
        value = other.get("k")
        put(other, "k", new)
        assert store.to_bytes("k") == new
        other.delete("k")
        assert head + stream.read() == old
        assert value.read() == old and value.range(10, 20).read() == old[10:20]
        stream.close()
    finally:
        other.disconnect()
    assert value_files(db) == []


# ---------------------------------------------------------------- streams, links


def test_streams_offer_their_file_only_when_whole(db, store):
    data = data_of(LIMIT * 2, 5)
    put(store, "k", data)
    with store.get_data("k") as whole:
        fd = whole.shared_file()
        assert isinstance(fd, int) and os.fstat(fd).st_ino == os.stat(
            folder(db) / file_of(db, "k")).st_ino
        assert whole.fileno() == fd
        whole.read(1)
        assert whole.shared_file() is None
    with store.get_data_range("k", 1) as part:
        assert part.shared_file() is None and part.read() == data[1:]
    with store.get_data_range("k", 0, 10) as part:
        assert part.shared_file() is None and part.read() == data[:10]
    out = db.parent / "export.bin"
    store.to_file("k", out)
    assert out.read_bytes() == data


def test_copies_between_local_stores_are_hard_links(tmp_path):
    data = data_of(LIMIT * 3, 6)
    fs = FileSystemStore(tmp_path / "fs")
    one = SqliteStore(tmp_path / "one.db", external_from=LIMIT)
    two = SqliteStore(tmp_path / "two.db", external_from=LIMIT, sync="full")
    try:
        fs.set("k", (io.BytesIO(data), {"from": "fs"}))
        progress = []
        value = fs.get("k")
        reader = ProgressReader(value.data, value.size, lambda d, t: progress.append((d, t)))
        one.set("k", (reader, value.metadata))
        assert progress == [(len(data), len(data))]  # reported once, with the full size
        blob = next(p for p in (tmp_path / "fs" / ".storegui" / "blobs").iterdir())
        mine = folder(tmp_path / "one.db") / file_of(tmp_path / "one.db", "k")
        assert os.stat(mine).st_ino == os.stat(blob).st_ino
        two.set("k", one.get("k"))  # SQLite to SQLite, the copy fsynced ("full")
        theirs = folder(tmp_path / "two.db") / file_of(tmp_path / "two.db", "k")
        assert os.stat(theirs).st_ino == os.stat(mine).st_ino and os.stat(mine).st_nlink == 3
        # A digest to compute means the bytes must be read: a real copy.
        hashed = ProgressReader(one.get_data("k"), len(data), digest="sha256")
        two.set("hashed", (hashed, {}))
        copy = folder(tmp_path / "two.db") / file_of(tmp_path / "two.db", "hashed")
        assert os.stat(copy).st_ino != os.stat(mine).st_ino and copy.read_bytes() == data
        # Replacing one store's key leaves the others' links alone.
        put(one, "k", data_of(LIMIT * 2, 7))
        assert two.to_bytes("k") == data and fs.to_bytes("k") == data
        assert os.stat(theirs).st_nlink == 2
        token = CancelToken()
        token.cancel()
        with pytest.raises(TransferCancelled):
            two.set("cancelled", (ProgressReader(fs.get_data("k"), cancel=token), {}))
        assert not two.exists("cancelled") and len(value_files(tmp_path / "two.db")) == 2
    finally:
        for s in (fs, one, two):
            s.disconnect()


# ---------------------------------------------------------------- damage and clean-up


def test_a_missing_or_damaged_value_file_gives_a_clear_error(db, store):
    put(store, "k", data_of(LIMIT * 2))
    path = folder(db) / file_of(db, "k")
    path.unlink()
    with pytest.raises(StoreError) as info:
        store.get("k")
    assert str(path) in str(info.value) and "missing" in str(info.value)
    assert info.value.key == "k"
    path.write_bytes(b"short")
    with pytest.raises(StoreError, match="damaged.*holds 5 bytes"):
        store.to_bytes("k")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE blobs SET file = '../../etc/passwd' WHERE file IS NOT NULL")
    with pytest.raises(StoreError, match="damaged.*never writes"):
        store.get_data("k")
    assert store.stat("k").size == LIMIT * 2  # the row itself still lists and stats


def test_leftovers_of_dead_writers_are_removed_at_connect(db, store):
    put(store, "k", data_of(LIMIT * 2))
    kept = file_of(db, "k")
    store.disconnect()
    values, tmp = folder(db), folder(db) / "tmp"
    dead, live = "a" * 32, "b" * 32
    (tmp / "value-old.tmp").write_bytes(b"a killed writer's temp file")
    os.utime(tmp / "value-old.tmp", (OLD, OLD))
    (tmp / "value-new.tmp").write_bytes(b"young: its writer may not hold its lock yet")
    (values / f"{dead}-{'1' * 32}").write_bytes(b"renamed, never committed; writer gone")
    os.utime(values / f"{dead}-{'1' * 32}", (OLD, OLD))
    (values / f"{live}-{'2' * 32}").write_bytes(b"a live writer's uncommitted file")
    os.utime(values / f"{live}-{'2' * 32}", (OLD, OLD))
    (values / "notes.txt").write_bytes(b"not ours: never touched")
    lock = os.open(tmp / f"writer-{live}.tmp", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.utime(tmp / f"writer-{live}.tmp", (OLD, OLD))
        with SqliteStore(db, external_from=LIMIT) as again:
            assert again.to_bytes("k") == data_of(LIMIT * 2)
        assert value_files(db) == sorted([kept, f"{live}-{'2' * 32}", "notes.txt"])
        assert temp_files(db) == ["value-new.tmp", f"writer-{live}.tmp"]
    finally:
        os.close(lock)  # the live writer dies
    with SqliteStore(db, external_from=LIMIT):
        pass
    assert value_files(db) == sorted([kept, "notes.txt"])
    assert temp_files(db) == ["value-new.tmp"]  # the dead writer's lock went too
    with SqliteStore(db, readonly=True) as ro:  # a read-only connect removes nothing
        assert ro.to_bytes("k") == data_of(LIMIT * 2)


def test_a_killed_transaction_leaves_nothing_after_the_next_connect(db, store):
    put(store, "keep", data_of(LIMIT * 2))
    store.disconnect()
    script = f"""
import io, os
from storegui.stores.sqlite.store import SqliteStore

store = SqliteStore({str(db)!r}, external_from={LIMIT})
with store.transaction("killed"):
    store.set("never", (io.BytesIO(b"n" * {LIMIT * 3}), {{}}))
    os._exit(3)  # killed with the file renamed in place, its row uncommitted
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", script], env=env, timeout=60).returncode == 3
    assert len(value_files(db)) == 2
    with SqliteStore(db, external_from=LIMIT) as again:
        assert list(again.keys()) == ["keep"]
        assert value_files(db) == [file_of(db, "keep")]


def test_another_connect_leaves_an_open_transactions_files_alone(db, store):
    with store.transaction("long"):
        put(store, "big", data_of(LIMIT * 2))
        new = value_files(db)
        os.utime(folder(db) / new[0], (OLD, OLD))  # however old: its writer is alive
        with SqliteStore(db, external_from=LIMIT, timeout=0.1) as second:
            assert not second.exists("big")
        assert value_files(db) == new
    assert store.to_bytes("big") == data_of(LIMIT * 2)


# ---------------------------------------------------------------- old files


def _downgrade(db: Path) -> None:
    """Turn a store file into the schema version 1 layout (before value files)."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("ALTER TABLE blobs DROP COLUMN file")
        conn.execute("PRAGMA user_version = 1")


def _version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_an_old_store_file_is_read_as_it_is_and_upgraded_when_writable(db):
    with SqliteStore(db, external_from=None) as old:
        put(old, "chunks", data_of(3 * MiB + 5, 1), {"a": 1})
        put(old, "inline", b"small", {"a": 2})
    _downgrade(db)
    with SqliteStore(db, readonly=True) as ro:
        assert ro.to_bytes("chunks") == data_of(3 * MiB + 5, 1)
        assert ro.get_data_range("chunks", MiB - 2, MiB + 2).read() == data_of(MiB + 2, 1)[-4:]
        assert sorted(ro.query_keys()) == ["chunks", "inline"]
        ro.flush_to_disk()
    assert _version(db) == 1
    ro = SqliteStore(db, readonly=True)
    ro.connect()  # still an old file as this reader opens it
    with SqliteStore(db, external_from=LIMIT) as rw:
        assert rw.to_bytes("chunks") == data_of(3 * MiB + 5, 1)
        put(rw, "file", data_of(LIMIT * 2, 2))
        assert rw.to_bytes("file") == data_of(LIMIT * 2, 2)
    assert _version(db) == SCHEMA_VERSION and file_of(db, "file") is not None
    with pytest.raises(StoreError, match="upgraded by another program.*open it again"):
        ro.get("file")
    ro.disconnect()
    with ro:
        assert ro.to_bytes("file") == data_of(LIMIT * 2, 2)


# ---------------------------------------------------------------- sync


@pytest.fixture
def fsynced(monkeypatch):
    """Inodes of the files and folders fsynced (the real fsync still runs)."""
    seen: list[int] = []
    real = os.fsync

    def fsync(fd):
        seen.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _synchronous(store) -> int:
    with store._db.use() as conn:
        return conn.execute("PRAGMA synchronous").fetchone()[0]


def test_flush_to_disk_in_normal_mode(db, store, fsynced):
    assert store.info()["sync"] == "normal" and _synchronous(store) == 1  # NORMAL
    put(store, "a", data_of(LIMIT * 2, 1))
    put(store, "b", data_of(LIMIT * 2, 2))
    put(store, "small", b"inline")
    assert fsynced == []  # nothing waits for the disk
    inode = {k: os.stat(folder(db) / file_of(db, k)).st_ino for k in ("a", "b")}
    wal = os.stat(f"{db}-wal").st_ino
    store.flush_to_disk(["a", "small", "missing"])
    # The WAL is synced by SQLite itself, never through a descriptor of ours
    # (see test_sqlite_sharing.py::test_flush_to_disk_has_sqlite_sync_the_wal).
    assert inode["a"] in fsynced and inode["b"] not in fsynced and wal not in fsynced
    assert os.stat(folder(db)).st_ino in fsynced
    fsynced.clear()
    store.flush_to_disk()  # everything written since: only "b" is left to sync
    assert inode["b"] in fsynced and inode["a"] not in fsynced and wal not in fsynced
    fsynced.clear()
    store.flush_to_disk()
    assert fsynced == []


def test_flush_after_very_many_writes_flushes_the_filesystem(db, store, monkeypatch, fsynced):
    monkeypatch.setattr(sqlite_files, "UNSYNCED_MAX", 2)
    for i in range(3):  # more than are remembered one by one
        put(store, f"k{i}", data_of(LIMIT, i))
    flushed = []
    real = sqlite_files.flush_filesystem

    def flush_filesystem(fd):  # the real flush, counted
        flushed.append(fd)
        real(fd)

    monkeypatch.setattr(sqlite_files, "flush_filesystem", flush_filesystem)
    store.flush_to_disk()
    assert len(flushed) == 1 and fsynced == []
    put(store, "again", data_of(LIMIT, 9))  # remembered one by one again
    fsynced.clear()
    store.flush_to_disk()
    assert os.stat(folder(db) / file_of(db, "again")).st_ino in fsynced and len(flushed) == 1


def test_the_settings_come_through_open_store(db):
    from storegui.stores import open_store

    store = open_store(f"sqlite://{db}", sync="full", external_from=None)
    assert store.info()["sync"] == "full" and store.info()["external_from"] is None


def test_full_sync_waits_for_the_disk_before_the_row_commits(tmp_path, fsynced):
    db = tmp_path / "full.db"
    with SqliteStore(db, external_from=LIMIT, sync="full") as full:
        assert full.info()["sync"] == "full" and _synchronous(full) == 2  # FULL
        put(full, "a", data_of(LIMIT * 2, 1))
        assert os.stat(folder(db) / file_of(db, "a")).st_ino in fsynced
        assert os.stat(folder(db)).st_ino in fsynced
        full.flush_to_disk(["a"])
        full.flush_to_disk()
        assert full.to_bytes("a") == data_of(LIMIT * 2, 1)
    with SqliteStore(":memory:", sync="full") as memory:
        put(memory, "a", b"x")
        memory.flush_to_disk()


def test_a_store_opened_through_a_symbolic_link_uses_the_folder_beside_the_real_file(tmp_path):
    real = tmp_path / "real" / "store.db"
    real.parent.mkdir()
    (tmp_path / "link").symlink_to(real.parent)
    with SqliteStore(tmp_path / "link" / "store.db", external_from=LIMIT) as linked:
        put(linked, "k", data_of(LIMIT * 2))
    assert value_files(real) == [file_of(real, "k")]
    with SqliteStore(real, external_from=LIMIT) as direct:
        assert direct.to_bytes("k") == data_of(LIMIT * 2)
