"""Corrupt or foreign data: a clear StoreError naming the path, never a crash, nothing touched.

Truncated or scribbled-over SQLite files, store files with invalid JSON
(the FileSystemStore marker, a record's metadata, SQLite metadata rows),
damaged records and blobs, and folders or files that are not stores at all.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from storegui.stores import StoreError, open_store
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite.store import SqliteStore

KiB = 1 << 10


def _tree(path) -> dict:
    """Every file under (or at) ``path`` with its bytes, to show nothing was changed."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {str(path): f.read()}
    found = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                found[full] = f.read()
    return found


def _every_operation(store) -> list[StoreError]:
    """Run every read and a few writes; StoreErrors are collected, anything else fails."""
    errors: list[StoreError] = []

    def attempt(fn):
        try:
            return fn()
        except StoreError as exc:
            errors.append(exc)
            return None

    try:
        attempt(store.connect)
        keys = attempt(lambda: list(store.keys())) or []
        attempt(lambda: list(store.list_dir("")))
        attempt(lambda: list(store.query()))
        attempt(lambda: list(store.query(kind="x")))
        for key in keys:
            attempt(lambda k=key: store.get(k).metadata)
            attempt(lambda k=key: store.get_metadata(k))
            attempt(lambda k=key: store.to_bytes(k))
        attempt(lambda: store.from_bytes("new", b"new", {"kind": "x"}))
        for key in keys[:3]:
            attempt(lambda k=key: store.delete(k))
    finally:
        store.disconnect()
    return errors


# ---------------------------------------------------------------------- SQLite files


def _filled_db(tmp_path, name="store.db") -> str:
    db = str(tmp_path / name)
    with SqliteStore(db) as store:
        for i in range(40):
            size = 300 * KiB if i % 10 == 0 else 700
            store.from_bytes(f"k{i:02d}", os.urandom(size), {"i": i, "kind": "x" * (i % 3)})
    conn = sqlite3.connect(db)  # fold the WAL in, as a copied file would be
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


@pytest.mark.parametrize("keep", [0.5, 0.9, 4096 + 10, 99, 16], ids=lambda k: f"keep-{k}")
def test_a_truncated_sqlite_file(tmp_path, keep):
    db = _filled_db(tmp_path)
    content = open(db, "rb").read()
    cut = int(len(content) * keep) if isinstance(keep, float) else keep
    with open(db, "wb") as f:
        f.write(content[:cut])
    before = _tree(db)
    with pytest.raises(StoreError) as info:
        SqliteStore(db).connect()
    assert db in str(info.value)
    assert "damaged" in str(info.value) or "not a usable SQLite database" in str(info.value)
    assert _tree(db) == before, "opening a damaged store must not change it"


def test_an_emptied_sqlite_file_opens_as_a_new_store(tmp_path):
    """Zero bytes is what a new file holds; SQLite (and so the store) cannot tell the two apart."""
    db = tmp_path / "store.db"
    db.write_bytes(b"")
    with SqliteStore(str(db)) as store:
        assert list(store.keys()) == []


BTREE_PAGE_TYPES = {2, 5, 10, 13}  # the first byte of a b-tree page's header


@pytest.mark.parametrize("which", ["schema", "second", "middle", "last"])
def test_an_sqlite_file_with_a_scribbled_btree_page(tmp_path, which):
    """Scribbled table or index pages are caught. (Bytes inside a value are not: see the docs.)"""
    db = _filled_db(tmp_path)
    content = bytearray(open(db, "rb").read())
    size = int.from_bytes(content[16:18], "big")
    btree = [p for p in range(len(content) // size)
             if content[p * size + (100 if p == 0 else 0)] in BTREE_PAGE_TYPES]
    page = {"schema": btree[0], "second": btree[1], "middle": btree[len(btree) // 2],
            "last": btree[-1]}[which]
    start = page * size + (100 if page == 0 else 0)  # keep the 100-byte file header
    content[start:(page + 1) * size] = b"\xff" + os.urandom((page + 1) * size - start - 1)
    with open(db, "wb") as f:
        f.write(content)
    errors = _every_operation(SqliteStore(db))
    assert errors, "a scribbled-over page went unnoticed"
    assert all(db in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize("bad", ["{not json", "", "[1, 2]", "null", '"text"', "{\"a\": 1"])
def test_sqlite_metadata_that_is_not_a_json_object(tmp_path, bad):
    db = _filled_db(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE keys SET metadata = ? WHERE key = 'k05'", (bad,))
    conn.commit()
    conn.close()
    store = SqliteStore(db)
    for read in (lambda: store.get_metadata("k05"), lambda: store.get("k05").metadata,
                 lambda: list(store.query()), lambda: store.update_metadata("k05", {"a": 1})):
        with pytest.raises(StoreError) as info:
            read()
        assert "'k05'" in str(info.value) and db in str(info.value)
        assert "damaged" in str(info.value)
    assert len(store.to_bytes("k05")) == 700  # the data is still there
    store.set_metadata("k05", {"repaired": True})  # ... and the metadata can be replaced
    assert store.get_metadata("k05") == {"repaired": True}
    assert list(store.query_keys(repaired=True)) == ["k05"]
    store.delete("k05")
    assert not store.exists("k05") and len(list(store.keys())) == 39
    store.disconnect()


# ---------------------------------------------------------------------- FileSystemStore folders


def _filled_fs(tmp_path) -> FileSystemStore:
    store = FileSystemStore(tmp_path / "fs")
    store.from_bytes("small", b"small value", {"kind": "s"})
    store.from_bytes("dir/big", os.urandom(200 * KiB), {"kind": "b"})
    store.disconnect()
    return store


@pytest.mark.parametrize("marker", [b"{not json", b"", b"[]", b'{"format": "other"}',
                                    b'{"format": "storegui-filesystem-store", "version": 1,'
                                    b' "layout": "sideways"}'])
def test_a_damaged_store_marker(tmp_path, marker):
    store = _filled_fs(tmp_path)
    (tmp_path / "fs" / ".storegui-store.json").write_bytes(marker)
    before = _tree(tmp_path / "fs")
    with pytest.raises(StoreError) as info:
        store.connect()
    assert str(tmp_path / "fs") in str(info.value)
    assert _tree(tmp_path / "fs") == before


def _damage_record(path, old: bytes, new: bytes) -> None:
    content = path.read_bytes()
    assert old in content
    path.write_bytes(content.replace(old, new))


def test_a_record_whose_metadata_is_not_json(tmp_path):
    store = _filled_fs(tmp_path)
    _damage_record(tmp_path / "fs" / "small@v", b'{"kind":"s"}', b'{"kind"!"s"}')
    for read in (lambda: store.get_metadata("small"), lambda: store.get("small").metadata,
                 lambda: list(store.query(kind="s")),
                 lambda: store.update_metadata("small", {"a": 1})):
        with pytest.raises(StoreError) as info:
            read()
        assert "'small'" in str(info.value) and str(tmp_path / "fs") in str(info.value)
    assert store.to_bytes("small") == b"small value"
    store.set_metadata("small", {"kind": "repaired"})
    assert store.get_metadata("small") == {"kind": "repaired"}
    store.disconnect()


@pytest.mark.parametrize("damage", ["truncated-header", "truncated-data", "bad-signature",
                                    "bad-info", "missing-blob", "short-blob", "a-folder"])
def test_damaged_records_and_blobs(tmp_path, damage):
    store = _filled_fs(tmp_path)
    inline = damage in ("truncated-data", "bad-signature")  # small values live in the record
    record = tmp_path / "fs" / ("small@v" if inline else "dir/big@v")
    blobs = tmp_path / "fs" / ".storegui" / "blobs"
    if damage == "truncated-header":
        record.write_bytes(record.read_bytes()[:20])
    elif damage == "truncated-data":
        record.write_bytes(record.read_bytes()[:-3])
    elif damage == "bad-signature":
        record.write_bytes(b"XXXX" + record.read_bytes()[4:])
    elif damage == "bad-info":
        _damage_record(record, b'"size"', b'"sise"')
    elif damage == "missing-blob":
        for blob in blobs.iterdir():
            blob.unlink()
    elif damage == "short-blob":
        for blob in blobs.iterdir():
            blob.write_bytes(blob.read_bytes()[:1000])
    else:
        record.unlink()
        record.mkdir()  # a folder where a record should be: not a key at all
    key = "small" if record.name == "small@v" else "dir/big"
    if damage == "a-folder":
        with store:
            assert list(store.keys()) == ["small"] and list(store.list_dir("dir/")) == []
        assert not _every_operation(store)
        return
    errors = _every_operation(store)
    # only the damaged key fails (the others read fine), and it can be deleted
    assert errors and all(f"{key!r}" in str(e) for e in errors), [str(e) for e in errors]
    assert all(str(tmp_path / "fs") in str(e) for e in errors), [str(e) for e in errors]
    with store:
        assert key not in set(store.keys())


# ---------------------------------------------------------------------- not a store at all


def test_a_folder_that_is_not_a_store(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8 not really")
    before = _tree(folder)
    for store in (FileSystemStore(folder), open_store(str(folder)),
                  FileSystemStore(folder, readonly=True)):
        with pytest.raises(StoreError) as info:
            store.connect()
        assert str(folder) in str(info.value) and "not a storegui store" in str(info.value)
    with pytest.raises(StoreError) as info:
        SqliteStore(str(folder)).connect()
    assert str(folder) in str(info.value) and "folder" in str(info.value)
    assert _tree(folder) == before


@pytest.mark.parametrize("content", [b"just some text\n", b"SQLite format 3\x00" + b"\x00" * 20,
                                     os.urandom(8192)], ids=["text", "header-only", "random"])
def test_a_file_that_is_not_a_store(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    for store in (SqliteStore(str(path)), FileSystemStore(path), open_store(f"sqlite://{path}")):
        with pytest.raises(StoreError) as info:
            store.connect()
        assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_another_programs_sqlite_database(tmp_path):
    db = str(tmp_path / "app.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('ann')")
    conn.commit()
    conn.close()
    before = _tree(db)
    with pytest.raises(StoreError) as info:
        SqliteStore(db).connect()
    assert db in str(info.value) and "another program" in str(info.value)
    assert _tree(db) == before


def test_a_mounted_store_over_a_damaged_backing_store_names_it(tmp_path):
    db = _filled_db(tmp_path, "backing.db")
    with open(db, "r+b") as f:
        f.truncate(os.path.getsize(db) // 2)
    mounted = MountedStore("m/", FileSystemStore(tmp_path / "mount"), SqliteStore(db))
    with pytest.raises(StoreError) as info:
        mounted.connect()
    assert db in str(info.value)
    mounted.disconnect()
