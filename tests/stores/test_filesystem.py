"""FileSystemStore behaviour beyond the generic contract: layout, safety, atomicity, cost."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import threading
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storegui.stores import (
    CancelToken,
    FileSystemStore,
    InvalidKeyError,
    ReadOnlyError,
    StoreError,
    TransferCancelled,
    copy_value,
    open_store,
)
from storegui.stores import events as ev
from storegui.stores.filesystem.paths import key_names, parse_chain
from storegui.stores.filesystem.records import INLINE_MAX
from storegui.stores.keys import check_key

ODD_PIECES = ["", ".", "..", "/", "//", "\\", ":", "@v", "@+", "%00", "%", "%41", ".storegui",
              ".storegui-store.json", "A", "a", "\u00e9", "e\u0301", "\x01", "\x7f", " ", "~",
              "x" * 250, "\U0001f600" * 70]
keys_strategy = st.lists(
    st.sampled_from(ODD_PIECES)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
              max_size=40),
    min_size=1, max_size=8,
).map("".join).filter(lambda k: bool(k) and len(k) <= 4096)


def make(tmp_path, name="store", **kw) -> FileSystemStore:
    store = FileSystemStore(tmp_path / name, **kw)
    store.connect()
    return store


def blobs(store: FileSystemStore) -> set[str]:
    return set(os.listdir(os.path.join(store.path, ".storegui", "blobs")))


def tree(path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``path``, symlinks not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for d in dirnames:
            out[os.path.join(dirpath, d)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[p] = os.readlink(p).encode() if os.path.islink(p) else open(p, "rb").read()
    return out


# ---------------------------------------------------------------- key encoding


def _name_rules(names: list[str], portable: bool) -> None:
    for name in names:
        assert name not in ("", ".", "..") and not name.startswith(".")
        assert "/" not in name and "\x00" not in name
        assert len(name.encode("utf-8")) <= 255
        if portable:
            assert name.isascii()
            assert name == name.lower() or "%" in name  # upper case only in %XX escapes


@settings(max_examples=150, deadline=None)
@given(key=keys_strategy, portable=st.booleans())
def test_key_names_round_trip_and_stay_plain_names(key, portable):
    check_key(key)
    names = key_names(key, portable)
    _name_rules(names, portable)
    # decode the path back: split into chains at non-continuation names
    segments, chain = [], []
    for name in names:
        chain.append(name)
        if not name.endswith("@+"):
            parsed = parse_chain(chain, portable)
            assert parsed is not None
            segments.append(parsed)
            chain = []
    assert chain == []
    assert "/".join(seg for seg, _ in segments) == key
    assert [is_key for _, is_key in segments] == [False] * (len(segments) - 1) + [True]


@settings(max_examples=100, deadline=None)
@given(key=keys_strategy)
def test_portable_names_never_fold_together(key):
    variants = {key, key.swapcase(), key.upper(), key.lower(),
                unicodedata.normalize("NFC", key), unicodedata.normalize("NFD", key)}
    folded = {}
    for variant in variants:
        path = "/".join(key_names(variant, portable=True)).casefold()
        assert folded.setdefault(path, variant) == variant


def test_names_are_readable_for_plain_keys():
    assert key_names("images/cat.png") == ["images", "cat.png@v"]
    assert key_names("a/") == ["a", "%00@v"]
    assert key_names("../x") == ["%2E%2E", "x@v"]
    assert key_names("a\\b:c") == ["a%5Cb%3Ac@v"]
    assert key_names("Cat", portable=True) == ["%43at@v"]


def test_foreign_names_are_not_keys():
    for names in ([".hidden@v"], ["notes@txt"], ["%zz@v"], ["a@x"], ["A%41@v"], ["%2E@+", "x@v"]):
        assert parse_chain(names) is None


# ---------------------------------------------------------------- keys through the store


def test_any_key_round_trips_through_the_store(tmp_path):
    store = make(tmp_path)
    stored: set[str] = set()

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=keys_strategy)
    def check(key):
        store.from_bytes(key, key.encode("utf-8"), {"key": key})
        stored.add(key)
        assert store.exists(key)
        assert store.to_bytes(key) == key.encode("utf-8")
        assert store.get_metadata(key) == {"key": key}
        assert key in set(store.keys(key))
        assert key in set(store.glob(key.replace("[", "[[]").replace("*", "[*]")
                                     .replace("?", "[?]")))
        parent = key[: key.rfind("/") + 1]
        assert key in [e.key for e in store.list_dir(parent) if not e.is_dir]

    check()
    assert set(store.keys()) == stored
    assert set(store.query_keys()) == stored
    assert list(store.keys()) == sorted(stored)
    for key in stored:
        store.delete(key)
    assert list(store.keys()) == []
    # every folder made for those keys was pruned again
    assert sorted(os.listdir(store.path)) == [".storegui", ".storegui-store.json"]
    store.disconnect()


@pytest.mark.parametrize("key", [
    "x" * 4096, "\U0001f600" * 4096, "\x01" * 4096,
    # deeper than Python's recursion limit and the usual 1024 open files
    # (kept at that: every folder pruned costs an rmdir, ~3 ms on a VM disk)
    "/" * 1100 + "k", "a/" * 300 + "z" * 3495,
])
def test_very_long_keys(tmp_path, key):
    store = make(tmp_path)
    store.from_bytes(key, b"long", {"n": len(key)})
    store.from_bytes(key[:-1], b"sibling")
    assert store.to_bytes(key) == b"long"
    assert set(store.keys()) == {key, key[:-1]}
    assert store.get_metadata(key) == {"n": len(key)}
    store.delete(key)
    store.delete(key[:-1])
    assert list(store.keys()) == []
    store.disconnect()


def test_keys_differing_in_case_or_normal_form_coexist_in_the_portable_layout(tmp_path):
    root = tmp_path / "portable"
    root.mkdir()
    (root / ".storegui-store.json").write_text(json.dumps(
        {"format": "storegui-filesystem-store", "version": 1, "layout": "portable"}))
    store = make(tmp_path, "portable")
    keys = ["Readme", "README", "readme", "caf\u00e9", "cafe\u0301", "DIR/x", "dir/x"]
    for i, key in enumerate(keys):
        store.from_bytes(key, str(i).encode())
    assert [store.to_bytes(k) for k in keys] == [str(i).encode() for i in range(len(keys))]
    assert set(store.keys()) == set(keys)
    for dirpath, dirnames, filenames in os.walk(store.path):
        if ".storegui" in dirpath:
            continue
        for name in dirnames + filenames:
            if not name.startswith(".storegui"):
                assert name.isascii() and (name == name.lower() or "%" in name)
    assert store.info()["layout"] == "portable"
    store.disconnect()


# ---------------------------------------------------------------- safety


HOSTILE = ["..", "../outside/sentinel.txt", "../../etc/passwd", "/etc/passwd", "a/../../x",
           "./.", "link", "evil/sentinel.txt", "evil/new", ".storegui/blobs/x",
           ".storegui-store.json", "..\\..\\x", "%2E%2E/x", "x/../..", "link/x"]


def test_no_key_reaches_outside_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_bytes(b"keep me")
    root = tmp_path / "root"
    store = make(tmp_path, "root")
    # planted symlinks inside the root, named like a folder and like a record
    os.symlink(outside, root / "evil")
    os.symlink(outside / "sentinel.txt", root / "link@v")
    before = tree(outside)

    def attack(key):
        for action in (lambda: store.from_bytes(key, b"pwned", {"x": 1}),
                       lambda: store.to_bytes(key),
                       lambda: store.set_metadata(key, {"y": 2}),
                       lambda: list(store.list_dir(key + "/")),
                       lambda: store.delete(key)):
            try:
                action()
            except (KeyError, StoreError):
                pass

    for key in HOSTILE:
        attack(key)

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=keys_strategy)
    def fuzz(key):
        attack(key)

    fuzz()
    assert tree(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["outside", "root"]
    assert os.readlink(root / "evil") == str(outside)
    store.disconnect()


def test_symlinks_inside_the_root_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_bytes(b"keep me")
    store = make(tmp_path, "root")
    os.symlink(outside, os.path.join(store.path, "evil"))
    os.symlink(outside / "sentinel.txt", os.path.join(store.path, "link@v"))
    with pytest.raises(StoreError, match="symbolic link"):
        store.from_bytes("evil/x", b"data")
    with pytest.raises(KeyError):
        store.get("link")
    with pytest.raises(KeyError):
        store.delete("link")
    assert not store.exists("link")
    assert list(store.keys()) == []
    assert list(store.list_dir("")) == []
    assert os.listdir(outside) == ["sentinel.txt"]
    # writing the key replaces the planted link itself, not what it points at
    store.from_bytes("link", b"mine")
    assert store.to_bytes("link") == b"mine"
    assert (outside / "sentinel.txt").read_bytes() == b"keep me"
    store.disconnect()


def test_foreign_files_in_the_tree_are_not_keys(tmp_path):
    store = make(tmp_path)
    store.from_bytes("d/k", b"x")
    for name in ("notes.txt", ".DS_Store", "Thumbs.db", "weird%zz@v"):
        (tmp_path / "store" / "d" / name).write_bytes(b"foreign")
    os.mkfifo(tmp_path / "store" / "d" / "fifo@v")
    assert list(store.keys()) == ["d/k"]
    assert [e.key for e in store.list_dir("d/")] == ["d/k"]
    with pytest.raises(KeyError):
        store.get("d/fifo")  # and does not hang on the fifo
    store.disconnect()


def test_a_damaged_record_is_reported_listed_and_deletable(tmp_path):
    store = make(tmp_path)
    store.from_bytes("ok", b"fine")
    (tmp_path / "store" / "bad@v").write_bytes(b"garbage, not a record")
    with pytest.raises(StoreError, match="bad") as info:
        store.get("bad")
    assert not isinstance(info.value, KeyError)
    assert [(e.key, e.size) for e in store.list_dir("")] == [("bad", None), ("ok", 4)]
    store.delete("bad")
    assert list(store.keys()) == ["ok"]
    store.disconnect()


# ---------------------------------------------------------------- the store folder


def test_creates_a_missing_folder_and_marks_it(tmp_path):
    store = make(tmp_path, "new")
    marker = json.loads((tmp_path / "new" / ".storegui-store.json").read_text())
    assert marker["format"] == "storegui-filesystem-store" and marker["version"] == 1
    assert store.info()["path"] == str(tmp_path / "new")
    assert store.info()["readonly"] is False and store.info()["local"] is True
    store.disconnect()


def test_parent_must_exist(tmp_path):
    store = FileSystemStore(tmp_path / "no" / "such" / "dir")
    with pytest.raises(StoreError, match="parent folder") as info:
        store.connect()
    assert str(tmp_path / "no" / "such" / "dir") in str(info.value)
    assert not (tmp_path / "no").exists()


def test_a_foreign_folder_is_refused_unless_adopted(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(StoreError, match="is not a storegui store") as info:
        FileSystemStore(folder).connect()
    assert str(folder) in str(info.value) and "holiday.jpg" in str(info.value)
    assert os.listdir(folder) == ["holiday.jpg"]  # untouched
    store = make(tmp_path, "photos", adopt=True)
    store.from_bytes("k", b"v")
    assert list(store.keys()) == ["k"]
    assert (folder / "holiday.jpg").read_bytes() == b"jpeg"
    store.disconnect()
    FileSystemStore(folder).connect()  # a store now


@pytest.mark.parametrize("kw", [{"create": False}, {"readonly": True}])
def test_no_creation_when_told_not_to(tmp_path, kw):
    with pytest.raises(StoreError, match="does not exist"):
        FileSystemStore(tmp_path / "missing", **kw).connect()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="not a storegui store"):
        FileSystemStore(tmp_path / "empty", **kw).connect()
    assert os.listdir(tmp_path / "empty") == []


def test_a_file_or_a_newer_layout_is_refused(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(StoreError, match="not a folder"):
        FileSystemStore(tmp_path / "file").connect()
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / ".storegui-store.json").write_text(json.dumps(
        {"format": "storegui-filesystem-store", "version": 9, "layout": "posix"}))
    with pytest.raises(StoreError, match="newer"):
        FileSystemStore(tmp_path / "newer").connect()


def test_open_store_builds_it_from_a_path_or_file_url(tmp_path):
    path = tmp_path / "a dir"
    store = open_store(str(path))
    assert isinstance(store, FileSystemStore)
    store.from_bytes("k", b"v")
    again = open_store(store.url)
    assert again.path == str(path) and again.to_bytes("k") == b"v"
    assert open_store(f"file://{path}").to_bytes("k") == b"v"


def test_a_second_store_on_the_same_folder_sees_everything(tmp_path):
    first = make(tmp_path)
    big = os.urandom(INLINE_MAX * 3)
    first.from_bytes("small", b"s", {"m": 1})
    first.from_bytes("dir/big", big, {"m": 2})
    second = make(tmp_path)
    assert set(second.keys()) == {"small", "dir/big"}
    assert second.to_bytes("dir/big") == big and second.get_metadata("small") == {"m": 1}
    second.delete("small")
    assert not first.exists("small")
    first.disconnect()
    second.disconnect()


def test_read_only_store_reads_but_refuses_writes(tmp_path):
    writer = make(tmp_path)
    writer.from_bytes("k", os.urandom(INLINE_MAX + 1), {"a": 1})
    writer.disconnect()
    store = make(tmp_path, readonly=True)
    assert store.get_metadata("k") == {"a": 1} and store.info()["readonly"] is True
    with pytest.raises(ReadOnlyError):
        store.from_bytes("k", b"x")
    with pytest.raises(ReadOnlyError):
        store.delete("k")
    store.disconnect()


# ---------------------------------------------------------------- temp files


def test_abandoned_temp_files_are_removed_at_connect_live_ones_kept(tmp_path):
    store = make(tmp_path)
    store.from_bytes("k", b"v")
    store.disconnect()
    tmp = tmp_path / "store" / ".storegui" / "tmp"
    trash = tmp_path / "store" / ".storegui" / "trash"
    old = time.time() - 3600
    for name in ("blob-dead.tmp", "record-dead.tmp", "blob-fresh.tmp", "blob-live.tmp"):
        (tmp / name).write_bytes(b"partial")
    for name in ("blob-dead.tmp", "record-dead.tmp", "blob-live.tmp"):
        os.utime(tmp / name, (old, old))
    (trash / "deadtxn").mkdir()
    (trash / "deadtxn" / "1").write_bytes(b"undo copy")
    os.utime(trash / "deadtxn", (old, old))
    # another process still writing holds its flock
    with open(tmp / "blob-live.tmp", "rb") as live:
        fcntl.flock(live.fileno(), fcntl.LOCK_EX)
        store.connect()
        assert sorted(os.listdir(tmp)) == ["blob-fresh.tmp", "blob-live.tmp"]
        assert os.listdir(trash) == []
    assert store.to_bytes("k") == b"v"
    store.disconnect()


def test_failed_and_cancelled_writes_leave_no_temp_files(tmp_path):
    store = make(tmp_path)
    token = CancelToken()
    src = make(tmp_path, "src")
    src.from_bytes("big", os.urandom(5 * INLINE_MAX))
    with pytest.raises(TransferCancelled):
        copy_value(src, "big", store, "copy", cancel=token,
                   progress=lambda done, total: token.cancel(), buffer_size=INLINE_MAX)
    assert not store.exists("copy")
    assert os.listdir(tmp_path / "store" / ".storegui" / "tmp") == []
    assert blobs(store) == set()
    store.disconnect()
    src.disconnect()


# ---------------------------------------------------------------- atomicity


@pytest.mark.parametrize("size", [4 * 1024 * 1024, 1000])
def test_readers_see_one_whole_version_while_a_writer_replaces_it(tmp_path, size):
    store = make(tmp_path)
    versions = {"A": b"A" * size, "B": b"B" * (size + 7)}
    store.from_bytes("k", versions["A"], {"v": "A"})
    seen, errors, done = [], [], threading.Event()

    def reader():
        for _ in range(400):
            if done.is_set() and len(seen) > 5:
                return
            value = store.get("k")
            with value.data as stream:
                data = stream.read()
            tag = value.metadata["v"]
            if data != versions[tag] or value.size != len(data):
                errors.append((tag, len(data)))
            seen.append(tag)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            tag = "AB"[i % 2]
            store.from_bytes("k", versions[tag], {"v": tag})
    finally:
        done.set()
        thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    assert seen
    assert os.listdir(tmp_path / "store" / ".storegui" / "tmp") == []
    assert len(blobs(store)) == (1 if size > INLINE_MAX else 0)
    store.disconnect()


def test_a_value_read_keeps_its_version_after_replace_and_delete(tmp_path):
    store = make(tmp_path)
    old = os.urandom(3 * INLINE_MAX)
    store.from_bytes("k", old, {"v": 1})
    value = store.get("k")
    store.from_bytes("k", b"new", {"v": 2})
    assert value.read() == old and value.metadata == {"v": 1}
    assert value.range(10, 20).read() == old[10:20]
    store.delete("k")
    with value.data as stream:
        assert stream.read() == old
    assert blobs(store) == set()  # the old blob is gone from the folder all the same
    store.disconnect()


def test_set_metadata_of_a_large_value_does_not_copy_its_data(tmp_path):
    store = make(tmp_path)
    data = os.urandom(4 * 1024 * 1024)
    store.from_bytes("big", data, {"v": 1})
    (blob,) = blobs(store)
    inode = os.stat(os.path.join(store.path, ".storegui", "blobs", blob)).st_ino
    record = os.path.join(store.path, "big@v")
    store.set_metadata("big", {"v": 2, "note": "x" * 100})
    store.update_metadata("big", {"v": 3})
    assert blobs(store) == {blob}
    assert os.stat(os.path.join(store.path, ".storegui", "blobs", blob)).st_ino == inode
    assert os.path.getsize(record) < 1000
    assert store.to_bytes("big") == data and store.get_metadata("big")["v"] == 3
    store.disconnect()


# ---------------------------------------------------------------- transactions


def test_rollback_restores_every_kind_of_change(tmp_path):
    store = make(tmp_path)
    big_old, big_new = os.urandom(3 * INLINE_MAX), os.urandom(4 * INLINE_MAX)
    store.from_bytes("small", b"old", {"v": 1})
    store.from_bytes("big", big_old, {"v": 1})
    store.from_bytes("meta", big_old, {"v": 1})
    store.from_bytes("gone/deep", b"deleted", {"v": 1})
    blobs_before = blobs(store)
    events = []
    store.event_dispatcher.connect(events.append, ev.StoreKeyEvent)
    with pytest.raises(RuntimeError), store.transaction("all of it"):
        store.from_bytes("small", b"new", {"v": 2})
        store.from_bytes("big", big_new, {"v": 2})
        store.from_bytes("big", big_new[::-1], {"v": 3})
        store.set_metadata("meta", {"v": 2})
        store.delete("gone/deep")
        store.from_bytes("fresh/key", big_new, {"v": 2})
        raise RuntimeError("abort")
    assert store.to_bytes("small") == b"old" and store.get_metadata("small") == {"v": 1}
    assert store.to_bytes("big") == big_old and store.get_metadata("big") == {"v": 1}
    assert store.get_metadata("meta") == {"v": 1}
    assert store.to_bytes("gone/deep") == b"deleted"
    assert not store.exists("fresh/key")
    assert sorted(store.keys()) == ["big", "gone/deep", "meta", "small"]
    assert [e.key for e in store.list_dir("")] == ["big", "gone/", "meta", "small"]
    assert blobs(store) == blobs_before
    assert os.listdir(tmp_path / "store" / ".storegui" / "trash") == []
    changes = (ev.StoreSetEvent, ev.StoreUpdateEvent, ev.StoreDeleteEvent)
    assert not [e for e in events if isinstance(e, changes)]
    store.disconnect()


def test_commit_drops_replaced_blobs_and_undo_copies(tmp_path, monkeypatch):
    store = make(tmp_path, sync="full")
    store.from_bytes("big", os.urandom(3 * INLINE_MAX))
    store.from_bytes("other", os.urandom(3 * INLINE_MAX))
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with store.transaction("replace"):
        store.from_bytes("big", b"small now")
        store.delete("other")
        store.multiset([f"k{i}" for i in range(20)], [(io.BytesIO(b"v"), {}) for _ in range(20)])
        in_txn = len(fsyncs)
    # small records are fsynced together at commit, not one by one while writing
    assert in_txn == 0
    assert len(fsyncs) == 21
    assert blobs(store) == set()
    assert os.listdir(tmp_path / "store" / ".storegui" / "trash") == []
    assert store.to_bytes("big") == b"small now" and not store.exists("other")
    store.disconnect()


def test_a_large_transaction_is_flushed_once_at_commit(tmp_path, monkeypatch):
    import storegui.stores.filesystem.store as filesystem

    store = make(tmp_path, sync="full")
    flushes, fsyncs = [], []
    real_flush, real_fsync = filesystem.flush_filesystem, os.fsync
    monkeypatch.setattr(filesystem, "flush_filesystem",
                        lambda fd: (flushes.append(fd), real_flush(fd))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    n = filesystem.FSYNC_EACH_UP_TO + 1
    store.multiset([f"k{i}" for i in range(n)], [(io.BytesIO(b"v"), {}) for _ in range(n)])
    assert (len(flushes), len(fsyncs)) == (1, 0)
    store.from_bytes("single", b"v")
    assert (len(flushes), len(fsyncs)) == (1, 1)
    store.disconnect()


def test_normal_sync_writes_without_waiting_for_the_disk(tmp_path, monkeypatch):
    import storegui.stores.filesystem.store as filesystem

    store = make(tmp_path)
    assert store.info()["sync"] == "normal"
    calls = []
    real_flush, real_fsync = filesystem.flush_filesystem, os.fsync
    monkeypatch.setattr(filesystem, "flush_filesystem",
                        lambda fd: (calls.append("flush"), real_flush(fd))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    n = filesystem.FSYNC_EACH_UP_TO + 1
    store.multiset([f"k{i}" for i in range(n)], [(io.BytesIO(b"v"), {}) for _ in range(n)])
    store.from_bytes("big", os.urandom(3 * INLINE_MAX))
    store.from_bytes("small", b"v")
    store.set_metadata("big", {"v": 2})
    assert calls == []
    store.flush_to_disk(["big", "small", "missing", "k1"])
    # each key's record, the blob, the blobs folder and the root folder, once each
    assert len(calls) == 3 + 1 + 1 + 1
    calls.clear()
    store.flush_to_disk()
    assert calls == ["flush"]
    store.disconnect()


def test_flush_to_disk_syncs_nested_folders_once(tmp_path, monkeypatch):
    store = make(tmp_path)
    store.from_bytes("a/b/c", b"1")
    store.from_bytes("a/b/d", b"2")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                 real_fsync(fd))[1])
    store.flush_to_disk(["a/b/c", "a/b/d"])
    root = str(tmp_path / "store")
    folders = [p for p in synced if not p.endswith("@v")]
    assert sorted(folders) == [root, os.path.join(root, "a"), os.path.join(root, "a", "b")]
    with pytest.raises(InvalidKeyError):
        store.flush_to_disk([""])
    store.disconnect()


def test_sync_setting_is_checked(tmp_path):
    with pytest.raises(StoreError, match="unknown sync setting 'always'.*normal, full"):
        FileSystemStore(tmp_path / "s", sync="always")


def test_large_values_are_hard_linked_between_local_stores(tmp_path):
    src, dst = make(tmp_path, "src"), make(tmp_path, "dst")
    data = os.urandom(3 * INLINE_MAX)
    src.from_bytes("big", data, {"v": 1})
    src.from_bytes("small", b"tiny", {"v": 1})
    seen = []
    copy_value(src, "big", dst, "copy", progress=lambda done, total: seen.append((done, total)))
    copy_value(src, "small", dst, "small")
    (blob,) = blobs(dst)
    (src_blob,) = blobs(src)
    a = os.stat(tmp_path / "dst" / ".storegui" / "blobs" / blob)
    b = os.stat(tmp_path / "src" / ".storegui" / "blobs" / src_blob)
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    assert seen == [(len(data), len(data))]
    assert dst.to_bytes("copy") == data and dst.get_metadata("copy") == {"v": 1}
    assert dst.to_bytes("small") == b"tiny"
    # replacing or deleting either side leaves the other's value alone
    src.from_bytes("big", b"new")
    assert dst.to_bytes("copy") == data
    dst.delete("copy")
    assert blobs(dst) == set() and os.listdir(tmp_path / "dst" / ".storegui" / "tmp") == []
    src.disconnect()
    dst.disconnect()


def test_a_digest_or_a_partial_read_means_a_real_copy(tmp_path):
    src, dst = make(tmp_path, "src"), make(tmp_path, "dst")
    data = os.urandom(3 * INLINE_MAX)
    src.from_bytes("big", data)
    result = copy_value(src, "big", dst, "hashed", digest="sha256")
    assert result.digest == hashlib.sha256(data).hexdigest()
    with src.get_data("big") as stream:
        assert stream.read(10) == data[:10]
        dst.set_data("rest", stream)
    assert dst.to_bytes("rest") == data[10:]
    with src.get_data_range("big", 5) as stream:
        dst.set_data("range", stream)
    assert dst.to_bytes("range") == data[5:]
    assert len({os.stat(tmp_path / "dst" / ".storegui" / "blobs" / b).st_ino
                for b in blobs(dst)} | {os.stat(tmp_path / "src" / ".storegui" / "blobs" / b).st_ino
                                        for b in blobs(src)}) == 4
    src.disconnect()
    dst.disconnect()


def test_orphan_blobs_are_collected(tmp_path):
    store = make(tmp_path)
    store.from_bytes("kept", os.urandom(2 * INLINE_MAX))
    (kept,) = blobs(store)
    orphan = tmp_path / "store" / ".storegui" / "blobs" / ("0" * 32)
    orphan.write_bytes(b"left by a crash")
    young = tmp_path / "store" / ".storegui" / "blobs" / ("1" * 32)
    young.write_bytes(b"being written by another process")
    os.utime(orphan, (time.time() - 7200,) * 2)
    os.utime(os.path.join(store.path, ".storegui", "blobs", kept), (time.time() - 7200,) * 2)
    assert store.collect_garbage() == 1
    assert blobs(store) == {kept, "1" * 32}
    assert len(store.to_bytes("kept")) == 2 * INLINE_MAX
    store.disconnect()


# ---------------------------------------------------------------- cost


def test_list_dir_scans_only_the_folder_asked_for(tmp_path, monkeypatch):
    store = make(tmp_path)
    names = [f"big/{i:05d}" for i in range(1000)]
    store.multiset(names, [(io.BytesIO(b"x"), {}) for _ in names])
    store.multiset(["small/a", "small/b", "small/sub/c"], [(io.BytesIO(b"y"), {}) for _ in "abc"])
    scans, opens = [], []
    real_scandir, real_open = os.scandir, os.open
    monkeypatch.setattr(os, "scandir", lambda *a: (scans.append(a), real_scandir(*a))[1])
    monkeypatch.setattr(os, "open", lambda *a, **k: (opens.append(a), real_open(*a, **k))[1])
    entries = list(store.list_dir("small/"))
    assert [(e.key, e.is_dir, e.size) for e in entries] == [
        ("small/a", False, 1), ("small/b", False, 1), ("small/sub/", True, None)]
    assert len(scans) == 1
    assert len(opens) <= 4  # root, "small", one per key record
    scans.clear()
    assert list(store.keys("small/")) == ["small/a", "small/b", "small/sub/c"]
    assert len(scans) == 2  # "small" and "small/sub", never "big"
    monkeypatch.undo()
    assert len(list(store.list_dir("big/"))) == 1000
    store.disconnect()


def test_large_file_import_uses_a_kernel_copy_with_progress(tmp_path, monkeypatch):
    if not hasattr(os, "copy_file_range"):
        pytest.skip("no copy_file_range on this system")
    source = tmp_path / "source.bin"
    data = os.urandom(5 * 1024 * 1024 + 3)
    source.write_bytes(data)
    store = make(tmp_path)
    calls = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: (calls.append(a), real(*a))[1])
    steps = []
    store.event_dispatcher.connect(lambda e: steps.append(e.done), ev.StoreProgressStepEvent)
    store.from_file("imported", source, buffer_size=1024 * 1024)
    assert calls, "the kernel copy path was not used"
    assert store.to_bytes("imported") == data
    assert steps[-1] == len(data) and steps == sorted(steps)
    store.disconnect()


def test_store_to_store_copy_runs_in_the_kernel_hashing_or_not(tmp_path, monkeypatch):
    if not hasattr(os, "copy_file_range"):
        pytest.skip("no copy_file_range on this system")
    import hashlib

    src, dst = make(tmp_path, "src"), make(tmp_path, "dst")
    data = os.urandom(3 * 1024 * 1024 + 5)
    src.from_bytes("big", data, {"m": 1})
    calls = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: (calls.append(a), real(*a))[1])

    def no_link(*args, **kwargs):  # as if the two stores were on different filesystems
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    progress = []
    result = copy_value(src, "big", dst, "copy", buffer_size=1024 * 1024,
                        progress=lambda done, total: progress.append((done, total)))
    assert calls and result.size == len(data)
    assert dst.to_bytes("copy") == data and dst.get_metadata("copy") == {"m": 1}
    assert progress[-1] == (len(data), len(data))
    calls.clear()
    result = copy_value(src, "big", dst, "hashed", digest="sha256")
    assert calls  # copied in the kernel, hashed from the page cache on a helper thread
    assert result.digest == hashlib.sha256(data).hexdigest()
    assert dst.to_bytes("hashed") == data
    src.disconnect()
    dst.disconnect()


def test_writers_and_deleters_in_one_folder_do_not_trip_over_pruning(tmp_path):
    store = make(tmp_path)
    errors = []

    def churn(name):
        try:
            for i in range(60):
                store.from_bytes(f"d/e/{name}", str(i).encode())
                assert store.to_bytes(f"d/e/{name}") == str(i).encode()
                store.delete(f"d/e/{name}")
        except Exception as exc:  # reported below, with the thread's name
            errors.append((name, exc))

    threads = [threading.Thread(target=churn, args=(n,)) for n in "xyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert list(store.keys()) == []
    assert list(store.list_dir("")) == []
    store.disconnect()
