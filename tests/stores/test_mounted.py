"""MountedStore: behaviour, push / pull / revert, and one regression test per seed fault.

Inner stores are MemoryStores (and small MemoryStore subclasses that fail,
corrupt, block or count calls, standing in for a flaky or slow backing
store). Where FileSystemStore / SqliteStore exist, a few tests also run over
them.
"""

from __future__ import annotations

import collections
import importlib
import io
import threading

import pytest
from store_helpers import FailingReader
from store_helpers import store_content as content

from storegui.stores import (
    CancelToken,
    InvalidKeyError,
    MemoryStore,
    ReadOnlyError,
    StoreDeleteEvent,
    StoreError,
    StoreProgressEndEvent,
    StoreSetEvent,
    StoreUpdateEvent,
    TransferCancelled,
    VerificationError,
)
from storegui.stores.keylocks import KeyLocks
from storegui.stores.mounted.store import MountedStore
from storegui.stores.transfer.progress import TransferProgress

MP = "a/b/"


def put(store, key, data=b"", metadata=None):
    store.set(key, (io.BytesIO(data), metadata or {}))


class CountingStore(MemoryStore):
    """A MemoryStore that counts the calls a merged operation makes on it."""

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def list_dir(self, prefix="", delimiter="/"):
        self.calls["list_dir"] += 1
        return super().list_dir(prefix, delimiter)

    def _get(self, key):
        self.calls["get"] += 1
        return super()._get(key)

    def _stat(self, key):
        self.calls["stat"] += 1
        return super()._stat(key)

    def _exists(self, key):
        self.calls["exists"] += 1
        return super()._exists(key)

    def _get_metadata_text(self, key):
        self.calls["metadata"] += 1
        return super()._get_metadata_text(key)

    def _iter_keys(self, prefix):
        self.calls["keys"] += 1
        return super()._iter_keys(prefix)

    def _query(self, criteria):
        self.calls["query"] += 1
        return super()._query(criteria)

    def _put(self, key, data, metadata_text, buffer_size):
        self.calls["put"] += 1
        return super()._put(key, data, metadata_text, buffer_size)


class CorruptingStore(MemoryStore):
    """Stores every written value with its last byte flipped (same size)."""

    def _put(self, key, data, metadata_text, buffer_size):
        if data is not None:
            payload = data.read()
            if payload:
                payload = payload[:-1] + bytes([payload[-1] ^ 1])
            data = io.BytesIO(payload)
        super()._put(key, data, metadata_text, buffer_size)


class TruncatingStore(MemoryStore):
    """Stores every written value one byte short."""

    def _put(self, key, data, metadata_text, buffer_size):
        if data is not None:
            data = io.BytesIO(data.read()[:-1])
        super()._put(key, data, metadata_text, buffer_size)


class FailingWriteStore(MemoryStore):
    """Reads some of each written stream, then fails before storing anything."""

    def _put(self, key, data, metadata_text, buffer_size):
        if data is not None:
            data.read(10)
            raise OSError("simulated disk full")
        super()._put(key, data, metadata_text, buffer_size)


class FailingReadStore(MemoryStore):
    """Its values' data streams fail after 5 bytes (a dropped connection)."""

    def _get(self, key):
        value = super()._get(key)
        value._opener = lambda: FailingReader(5)
        return value


class GatedReader(io.RawIOBase):
    """Gives ``first`` bytes, announces ``entered``, then waits at ``gate`` for the rest."""

    def __init__(self, data, first, entered, gate):
        self.stream = io.BytesIO(data)
        self.first, self.entered, self.gate = first, entered, gate

    def readable(self):
        return True

    def readinto(self, b):
        if self.stream.tell() >= self.first and not self.gate.is_set():
            self.entered.set()
            assert self.gate.wait(10), "test never opened the gate"
        n = self.stream.readinto(memoryview(b)[: max(1, self.first)])
        return n


class SlowReadStore(MemoryStore):
    """Its values' streams stall after the first chunk until the test opens ``gate``."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _get(self, key):
        value = super()._get(key)
        data = self._items[key].data
        value._opener = lambda: GatedReader(data, 1024, self.entered, self.gate)
        return value


class BlockingStore(MemoryStore):
    """Writes wait at ``gate`` (after announcing ``entered``) until the test opens it."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _put(self, key, data, metadata_text, buffer_size):
        if data is not None:
            self.entered.set()
            assert self.gate.wait(10), "test never opened the gate"
        super()._put(key, data, metadata_text, buffer_size)


@pytest.fixture
def mount():
    return MemoryStore()


@pytest.fixture
def backing():
    return MemoryStore()


@pytest.fixture
def store(mount, backing):
    return MountedStore(MP, mount, backing)


@pytest.fixture
def events(store):
    got = []
    store.event_dispatcher.connect(got.append)
    return got


def key_events(events, *kinds):
    kinds = kinds or (StoreSetEvent, StoreUpdateEvent, StoreDeleteEvent)
    return [(type(e).__name__, e.key) for e in events if isinstance(e, kinds)]


# ---------------------------------------------------------------- reads and the key mapping


def test_get_prefers_the_mount_copy_and_falls_back_to_backing(store, mount, backing):
    put(backing, "a/b/k", b"remote", {"v": "remote"})
    put(backing, "a/b/only-remote", b"r2")
    put(mount, "k", b"local", {"v": "local"})
    assert store.to_bytes("a/b/k") == b"local"
    assert store.get_metadata("a/b/k") == {"v": "local"}
    assert store.get_metadata("a/b/k", select=["v", "zz"]) == {"v": "local"}
    assert store.to_bytes("a/b/only-remote") == b"r2"
    assert store.stat("a/b/k").key == "a/b/k"
    assert store.stat("a/b/k").size == 5
    with pytest.raises(KeyError):
        store.get("a/b/nothing")
    with pytest.raises(KeyError):
        store.stat("a/b/nothing")


def test_keys_outside_the_mount_point_come_from_the_backing_store(store, mount, backing):
    put(backing, "x/y", b"outside")
    put(mount, "../x/y", b"never seen")  # a mount key maps to a/b/../x/y, not x/y
    assert store.to_bytes("x/y") == b"outside"
    assert store.exists("a/b/../x/y")


def test_origin(store, mount, backing):
    put(mount, "local", b"")
    put(mount, "both", b"")
    put(backing, "a/b/both", b"")
    put(backing, "a/b/remote", b"")
    put(backing, "outside", b"")
    assert store.origin("a/b/local") == "local"
    assert store.origin("a/b/both") == "shadowing"
    assert store.origin("a/b/remote") == "remote"
    assert store.origin("outside") == "remote"
    with pytest.raises(KeyError):
        store.origin("a/b/missing")
    with pytest.raises(InvalidKeyError):
        store.origin("")


def test_mount_point_is_a_pure_string_prefix():
    mount, backing = MemoryStore(), MemoryStore()
    store = MountedStore("a/b", mount, backing)
    store.from_bytes("a/bc", b"inside", {})
    store.from_bytes("a/b/x", b"also inside", {})
    assert mount.to_bytes("c") == b"inside"
    assert mount.to_bytes("/x") == b"also inside"
    assert [(e.key, e.is_dir, e.origin) for e in store.list_dir("a/")] == [
        ("a/b/", True, "local"), ("a/bc", False, "local")]


def test_the_mount_point_itself_is_not_writable(store, backing):
    put(backing, "a/b/", b"a key named like the mount point")
    with pytest.raises(ReadOnlyError, match="mount point itself"):
        store.from_bytes("a/b/", b"x")
    assert store.origin("a/b/") == "remote"
    assert "mount point itself" in store.write_denied_reason("a/b/")


def test_keys_and_glob_merge_without_duplicates(store, mount, backing):
    for k in ("a/b/1", "a/b/2", "z"):
        put(backing, k)
    for k in ("2", "3"):
        put(mount, k)
    assert sorted(store.keys()) == ["a/b/1", "a/b/2", "a/b/3", "z"]
    assert sorted(store.keys("a/b/")) == ["a/b/1", "a/b/2", "a/b/3"]
    assert sorted(store.glob("a/*")) == ["a/b/1", "a/b/2", "a/b/3"]
    assert sorted(store.local_keys()) == ["a/b/2", "a/b/3"]
    assert sorted(store.local_keys("a/")) == ["a/b/2", "a/b/3"]
    assert list(store.local_keys("z")) == []


def test_constructor_refuses_bad_arguments(mount):
    with pytest.raises(StoreError, match="two different stores"):
        MountedStore("", mount, mount)
    with pytest.raises(StoreError, match="must be a Store"):
        MountedStore("", mount, {})
    with pytest.raises(InvalidKeyError):
        MountedStore(None, mount, MemoryStore())


# ---------------------------------------------------------------- writes


def test_set_writes_only_the_mount_store(store, mount, backing):
    put(backing, "a/b/k", b"remote", {"v": 1})
    before = content(backing)
    store.set("a/b/k", (io.BytesIO(b"new"), {"v": 2}))
    store.set("a/b/n", (io.BytesIO(b"fresh"), {}))
    assert content(mount) == {"k": (b"new", {"v": 2}), "n": (b"fresh", {})}
    assert content(backing) == before
    assert store.origin("a/b/k") == "shadowing"


def test_set_data_of_a_backing_only_key_keeps_backing_metadata(store, mount, backing):
    put(backing, "a/b/k", b"remote", {"v": 1})
    store.set_data("a/b/k", io.BytesIO(b"changed"))
    assert mount.to_bytes("k") == b"changed"
    assert mount.get_metadata("k") == {"v": 1}
    assert backing.to_bytes("a/b/k") == b"remote"


def test_set_metadata_of_a_backing_only_key_copies_it_in(store, mount, backing, events):
    data = bytes(range(256)) * 100
    put(backing, "a/b/k", data, {"v": 1})
    store.set_metadata("a/b/k", {"v": 2})
    assert mount.to_bytes("k") == data
    assert mount.get_metadata("k") == {"v": 2}
    assert backing.get_metadata("a/b/k") == {"v": 1}
    store.update_metadata("a/b/k", {"w": 3})
    assert mount.get_metadata("k") == {"v": 2, "w": 3}
    assert key_events(events) == [("StoreSetEvent", "a/b/k"), ("StoreUpdateEvent", "a/b/k")]


def test_update_metadata_of_a_backing_only_key_merges_backing_metadata(store, mount, backing):
    put(backing, "a/b/k", b"data", {"keep": 1, "change": 1})
    store.update_metadata("a/b/k", {"change": 2})
    assert store.get_metadata("a/b/k") == {"keep": 1, "change": 2}
    assert mount.to_bytes("k") == b"data"
    assert backing.get_metadata("a/b/k") == {"keep": 1, "change": 1}


def test_a_failed_copy_in_leaves_no_mount_copy():
    mount, backing = MemoryStore(), FailingReadStore()
    store = MountedStore(MP, mount, backing)
    put(backing, "a/b/k", b"remote data that fails", {"v": 1})
    with pytest.raises(StoreError, match="a/b/k") as info:
        store.set_metadata("a/b/k", {"v": 2})
    assert "unchanged" in str(info.value)
    with pytest.raises(StoreError):
        store.update_metadata("a/b/k", {"v": 2})
    assert content(mount) == {}
    assert store.origin("a/b/k") == "remote"


def test_delete_of_a_shadowing_key_shows_the_backing_version(store, mount, backing, events):
    put(backing, "a/b/k", b"remote", {"v": "remote"})
    put(mount, "k", b"local")
    put(mount, "only", b"local")
    store.delete("a/b/k")
    store.delete("a/b/only")
    assert store.to_bytes("a/b/k") == b"remote"
    assert not store.exists("a/b/only")
    assert key_events(events) == [("StoreSetEvent", "a/b/k"), ("StoreDeleteEvent", "a/b/only")]
    assert events[0].metadata == {"v": "remote"}


def test_read_only_mount_store_makes_everything_read_only(store, mount, backing):
    put(mount, "k", b"x")
    put(backing, "a/b/r", b"x")
    mount.readonly = True
    assert store.readonly
    assert store.info()["readonly"] is True
    for call in (lambda: store.from_bytes("a/b/n", b""), lambda: store.delete("a/b/k"),
                 lambda: store.set_metadata("a/b/k", {}), lambda: store.push("a/b/k"),
                 lambda: store.pull("a/b/r"), lambda: store.revert("a/b/k")):
        with pytest.raises(ReadOnlyError, match="read-only"):
            call()
    assert "read-only" in store.write_denied_reason("a/b/k")
    assert "read-only" in store.push_denied_reason("a/b/k")


# ---------------------------------------------------------------- listing


def test_list_dir_merges_and_sets_origins(store, mount, backing):
    for k in ("a/b/shared", "a/b/remote", "a/b/rdir/x", "a/b/both/x", "a/z"):
        put(backing, k, b"r")
    for k in ("shared", "local", "ldir/x", "both/y"):
        put(mount, k, b"local!")
    rows = [(e.key, e.is_dir, e.origin) for e in store.list_dir("a/b/")]
    assert rows == [
        ("a/b/both/", True, "shadowing"), ("a/b/ldir/", True, "local"),
        ("a/b/local", False, "local"), ("a/b/rdir/", True, "remote"),
        ("a/b/remote", False, "remote"), ("a/b/shared", False, "shadowing"),
    ]
    sizes = {e.key: e.size for e in store.list_dir("a/b/") if not e.is_dir}
    assert sizes["a/b/shared"] == 6  # what get returns: the mount copy
    assert [(e.key, e.origin) for e in store.list_dir("a/")] == [("a/b/", "shadowing"),
                                                                 ("a/z", "remote")]
    assert [(e.key, e.origin) for e in store.list_dir("")] == [("a/", "shadowing")]


def test_a_deeper_mount_point_shows_as_a_folder_only_with_local_keys(store, mount, backing):
    put(backing, "x", b"")
    assert [e.key for e in store.list_dir("")] == ["x"]
    put(mount, "k", b"")
    assert [(e.key, e.is_dir, e.origin) for e in store.list_dir("")] == [
        ("a/", True, "local"), ("x", False, "remote")]
    assert [(e.key, e.origin) for e in store.list_dir("a/")] == [("a/b/", "local")]


def test_list_dir_cost_does_not_depend_on_store_size():
    mount, backing = CountingStore(), CountingStore()
    store = MountedStore(MP, mount, backing)
    for i in range(300):
        put(backing, f"a/b/dir{i % 7}/k{i}")
        put(backing, f"other/k{i}")
    for i in range(30):
        put(mount, f"dir{i % 3}/m{i}")
    mount.calls.clear()
    backing.calls.clear()
    rows = list(store.list_dir("a/b/"))
    assert len(rows) == 7
    assert mount.calls == {"list_dir": 1}
    assert backing.calls == {"list_dir": 1}
    backing.calls.clear()
    mount.calls.clear()
    list(store.list_dir("other/"))
    assert mount.calls == {}
    assert backing.calls == {"list_dir": 1}


# ---------------------------------------------------------------- transactions


def test_transaction_rolls_back_the_mount_store_and_drops_events(store, mount, backing, events):
    put(mount, "keep", b"kept", {"v": 1})
    put(backing, "a/b/remote", b"r", {"r": 1})
    before = content(mount)
    with pytest.raises(RuntimeError), store.transaction("fails"):
        store.from_bytes("a/b/new", b"n", {})
        store.update_metadata("a/b/remote", {"r": 2})
        store.delete("a/b/keep")
        raise RuntimeError("boom")
    assert content(mount) == before
    assert key_events(events) == []
    with store.transaction("works"):
        store.from_bytes("a/b/new", b"n", {})
        assert key_events(events) == []
    assert key_events(events) == [("StoreSetEvent", "a/b/new")]


def test_multiset_with_a_key_outside_the_mount_point_changes_nothing(store, mount, backing):
    with pytest.raises(ReadOnlyError):
        store.multiset(["a/b/ok", "outside"], [(io.BytesIO(b"1"), {}), (io.BytesIO(b"2"), {})])
    assert content(mount) == {}
    assert content(backing) == {}


# ---------------------------------------------------------------- push


def test_push_moves_the_key_and_reports_progress(store, mount, backing, events):
    data = bytes(range(256)) * 1000
    put(mount, "k", data, {"v": 1})
    seen = []
    assert store.push("a/b/k", progress=lambda d, t: seen.append((d, t)), buffer_size=4096) == [
        "a/b/k"]
    assert backing.to_bytes("a/b/k") == data
    assert backing.get_metadata("a/b/k") == {"v": 1}
    assert not mount.exists("k")
    assert store.origin("a/b/k") == "remote"
    assert seen[-1] == (len(data), len(data))
    assert len(seen) > 10
    kinds = [type(e) for e in events if e.key == "a/b/k"]
    assert kinds[-1] is StoreSetEvent


class RecordedProgress(TransferProgress):
    """A progress object that keeps its children (one per key)."""

    def __init__(self):
        super().__init__()
        self.children = []
        self.calls = 0

    def call(self):
        self.calls += 1

    def branch(self, key, size=None):
        child = super().branch(key, size)
        self.children.append(child)
        return child


def test_push_reports_to_one_progress_object_with_a_child_per_key(store, mount):
    for k, data in (("d/1", b"x" * 10_000), ("d/2", b"y" * 5), ("d/3", b"")):
        put(mount, k, data)
    progress = RecordedProgress()
    store.push("a/b/d/", progress=progress, buffer_size=1024)
    assert [(c.key, c.size, c.value, c.ok) for c in progress.children] == [
        ("a/b/d/1", 10_000, 10_000, True), ("a/b/d/2", 5, 5, True), ("a/b/d/3", 0, 0, True)]
    assert (progress.value, progress.size) == (10_005, 10_005)
    assert progress.calls > 10


def test_a_failed_key_closes_its_child_not_ok():
    mount, backing = MemoryStore(), FailingWriteStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"precious" * 1000)
    progress = RecordedProgress()
    with pytest.raises(StoreError):
        store.push_many(["a/b/k"], progress=progress)
    assert [(c.key, c.ok) for c in progress.children] == [("a/b/k", False)]


def test_push_of_a_prefix(store, mount, backing):
    for k in ("d/1", "d/2", "d/sub/3", "e/4"):
        put(mount, k, k.encode())
    seen = []
    assert store.push("a/b/d/", progress=lambda d, t: seen.append((d, t))) == [
        "a/b/d/1", "a/b/d/2", "a/b/d/sub/3"]
    assert seen[-1] == (3 + 3 + 7, 13)
    assert sorted(mount.keys()) == ["e/4"]
    assert sorted(backing.keys()) == ["a/b/d/1", "a/b/d/2", "a/b/d/sub/3"]
    assert store.push("") == ["a/b/e/4"]
    assert store.push("a/b/d/") == []


def test_push_refusals(store, mount, backing):
    put(backing, "a/b/remote", b"")
    with pytest.raises(KeyError, match="no local copy"):
        store.push("a/b/remote")
    with pytest.raises(KeyError, match="outside the mount point"):
        store.push("elsewhere")
    assert "no local copy" in store.push_denied_reason("a/b/remote")
    assert "outside the mount point" in store.push_denied_reason("elsewhere")
    assert "nothing under" in store.push_denied_reason("a/b/")
    put(mount, "k", b"")
    assert store.push_denied_reason("a/b/k") is None
    assert store.push_denied_reason("") is None


def test_push_to_a_read_only_backing_store_fails_before_any_io():
    mount, backing = CountingStore(), CountingStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"data")
    backing.readonly = True
    mount.calls.clear()
    with pytest.raises(ReadOnlyError, match="backing store .* read-only"):
        store.push("a/b/k")
    with pytest.raises(ReadOnlyError):
        store.push("a/b/")
    assert mount.calls == {} and backing.calls == {}
    assert "read-only" in store.push_denied_reason("a/b/k")


def test_push_many_tries_every_target_and_lists_the_failures(store, mount, backing):
    from storegui.stores.mounted.store import TargetsFailed

    put(mount, "k1", b"1")
    put(mount, "d/k2", b"2")
    seen = []
    pushed = store.push_many(["a/b/k1"], report=lambda t, keys, exc: seen.append((t, keys, exc)))
    assert pushed == ["a/b/k1"] and seen == [("a/b/k1", ["a/b/k1"], None)]
    put(mount, "k1", b"1")
    # one failure: its own error
    with pytest.raises(KeyError, match="no such key .a/b/missing.") as info:
        store.push_many(["a/b/missing", "a/b/k1"])
    assert "k1" not in list(mount.keys())
    put(mount, "k1", b"1")
    with pytest.raises(TargetsFailed) as info:
        store.push_many(["a/b/missing", "a/b/d/", "elsewhere", "a/b/k1"])
    assert [t for t, _ in info.value.failures] == ["a/b/missing", "elsewhere"]
    assert info.value.done == ["a/b/d/k2", "a/b/k1"]
    assert "'a/b/missing'" in str(info.value) and "'elsewhere'" in str(info.value)
    assert list(mount.keys()) == []


def test_push_many_stops_at_a_cancel(store, mount, backing):
    put(mount, "k1", b"1")
    put(mount, "k2", b"2")
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(TransferCancelled):
        store.push_many(["a/b/k1", "a/b/k2"], cancel=cancel)
    assert sorted(mount.keys()) == ["k1", "k2"]


def test_push_mid_stream_cancel_keeps_both_sides(store, mount, backing):
    put(backing, "a/b/k", b"old remote", {"v": "old"})
    put(mount, "k", b"z" * 100_000, {"v": "new"})
    token = CancelToken()

    def progress(done, total):
        if done >= 20_000:
            token.cancel()

    with pytest.raises(TransferCancelled, match="'a/b/k' was cancelled") as info:
        store.push("a/b/k", progress=progress, cancel=token, buffer_size=4096)
    assert info.value.key == "a/b/k"
    assert mount.to_bytes("k") == b"z" * 100_000
    assert content(backing) == {"a/b/k": (b"old remote", {"v": "old"})}


def test_push_verification_reads_back_a_local_backing_copy():
    mount, backing = MemoryStore(), CountingStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"data")
    store.push("a/b/k")
    assert backing.calls["get"] == 1  # the read-back
    put(mount, "k", b"data")
    backing.local = False  # a remote store: size check only, no read-back
    backing.calls.clear()
    store.push("a/b/k")
    assert backing.calls["get"] == 0


class FlushLog(MemoryStore):
    """A MemoryStore that records flush_to_disk and delete calls in a shared log."""

    def __init__(self, log, fail=False):
        super().__init__()
        self.log, self.fail, self.refuse = log, fail, None

    def _put(self, key, data, metadata_text, buffer_size):
        if key == self.refuse:
            raise StoreError("no room for this one", key, self)
        super()._put(key, data, metadata_text, buffer_size)

    def flush_to_disk(self, keys=None):
        self.log.append(("flush", self, None if keys is None else list(keys)))
        if self.fail:
            raise StoreError("the disk said no")

    def _delete(self, key):
        self.log.append(("delete", self, key))
        super()._delete(key)


def test_push_flushes_the_backing_copy_before_deleting_the_local_one():
    log = []
    mount, backing = FlushLog(log), FlushLog(log)
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"data")
    store.push("a/b/k")
    assert log == [("flush", backing, ["a/b/k"]), ("delete", mount, "k")]
    log.clear()
    store.flush_to_disk(["a/b/k", "outside"])
    assert log == [("flush", mount, ["k"]), ("flush", backing, ["a/b/k", "outside"])]
    log.clear()
    store.flush_to_disk()
    assert log == [("flush", mount, None), ("flush", backing, None)]


def test_push_of_many_keys_flushes_in_batches_and_keeps_what_was_pushed(monkeypatch):
    import storegui.stores.mounted.store as mounted_transfer

    monkeypatch.setattr(mounted_transfer, "PUSH_BATCH_KEYS", 4)
    log = []
    mount, backing = FlushLog(log), FlushLog(log)
    store = MountedStore(MP, mount, backing)
    for i in range(10):
        put(mount, f"k{i}", b"data")
    backing.refuse = "a/b/k8"  # its copy fails
    with pytest.raises(StoreError, match="k8"):
        store.push("a/b/")
    flushes = [keys for what, _, keys in log if what == "flush"]
    assert flushes == [[f"a/b/k{i}" for i in range(4)], [f"a/b/k{i}" for i in range(4, 8)]]
    # every key copied before the failure was flushed, then its local copy deleted
    assert sorted(mount.keys()) == ["k8", "k9"]
    assert sorted(backing.keys()) == [f"a/b/k{i}" for i in range(8)]


def test_push_whose_backing_copy_cannot_reach_the_disk_keeps_the_local_copy():
    log = []
    mount, backing = FlushLog(log), FlushLog(log, fail=True)
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"data")
    with pytest.raises(StoreError, match="could not be written to disk.*the disk said no.*kept"):
        store.push("a/b/k")
    assert mount.to_bytes("k") == b"data"


def test_push_between_stores_on_one_filesystem_links_instead_of_copying(tmp_path, monkeypatch):
    import os

    import storegui.stores.transfer.verify as verified_copy
    from storegui.stores import FileSystemStore

    mount, backing = FileSystemStore(tmp_path / "mount"), FileSystemStore(tmp_path / "backing")
    store = MountedStore(MP, mount, backing)
    data = os.urandom(1 << 20)
    store.from_bytes("a/b/big", data, {"m": 1})
    (blob,) = os.listdir(tmp_path / "mount" / ".storegui" / "blobs")
    inode = os.stat(tmp_path / "mount" / ".storegui" / "blobs" / blob).st_ino

    def no_hashing(*args, **kwargs):
        raise AssertionError("a hard-linked copy needs no read-back")

    monkeypatch.setattr(verified_copy, "sha256_side_by_side", no_hashing)
    store.push("a/b/big")
    (pushed,) = os.listdir(tmp_path / "backing" / ".storegui" / "blobs")
    st = os.stat(tmp_path / "backing" / ".storegui" / "blobs" / pushed)
    assert (st.st_ino, st.st_nlink) == (inode, 1)
    assert store.origin("a/b/big") == "remote" and store.to_bytes("a/b/big") == data
    assert os.listdir(tmp_path / "mount" / ".storegui" / "blobs") == []
    assert store.pull("a/b/big") == ["a/b/big"]
    assert os.stat(tmp_path / "backing" / ".storegui" / "blobs" / pushed).st_nlink == 2
    mount.disconnect()
    backing.disconnect()


# ---------------------------------------------------------------- pull and revert


def test_pull_key_and_prefix(store, mount, backing, events):
    for k in ("a/b/1", "a/b/d/2", "a/b/d/3", "outside"):
        put(backing, k, k.encode(), {"k": k})
    put(mount, "d/3", b"mine")
    assert store.pull("a/b/1") == ["a/b/1"]
    assert mount.to_bytes("1") == b"a/b/1"
    assert store.pull("") == ["a/b/d/2"]  # d/3 already has a local copy
    assert mount.to_bytes("d/3") == b"mine"
    assert store.pull("a/b/d/", overwrite=True) == ["a/b/d/2", "a/b/d/3"]
    assert mount.to_bytes("d/3") == b"a/b/d/3"
    assert store.pull("a/b/1") == []
    assert store.origin("a/b/1") == "shadowing"
    assert ("StoreSetEvent", "a/b/d/2") in key_events(events)


def test_pull_refusals(store, mount, backing):
    put(backing, "outside", b"")
    with pytest.raises(ReadOnlyError, match="outside the mount point"):
        store.pull("outside")
    with pytest.raises(KeyError, match="not in the backing store"):
        store.pull("a/b/missing")
    assert "not in the backing store" in store.pull_denied_reason("a/b/missing")
    assert "outside the mount point" in store.pull_denied_reason("outside")
    assert "lies inside the mount point" in store.pull_denied_reason("x/")
    assert store.pull("x/") == []
    put(backing, "a/b/k", b"")
    put(mount, "k", b"")
    assert "already has a local copy" in store.pull_denied_reason("a/b/k")
    assert store.pull_denied_reason("a/b/k", overwrite=True) is None


def test_a_failed_pull_keeps_the_old_local_copy():
    mount, backing = MemoryStore(), FailingReadStore()
    store = MountedStore(MP, mount, backing)
    put(backing, "a/b/k", b"remote", {"v": "remote"})
    put(mount, "k", b"local", {"v": "local"})
    with pytest.raises(StoreError, match="pull of 'a/b/k' failed"):
        store.pull("a/b/k", overwrite=True)
    assert content(mount) == {"k": (b"local", {"v": "local"})}


def test_a_cancelled_pull_leaves_no_local_copy(store, mount, backing):
    put(backing, "a/b/k", b"r" * 50_000)
    token = CancelToken()
    token.cancel()
    with pytest.raises(TransferCancelled, match="pull of 'a/b/k' was cancelled"):
        store.pull("a/b/k", cancel=token)
    assert content(mount) == {}


def test_a_pulled_copy_that_fails_verification_is_removed():
    mount, backing = CorruptingStore(), MemoryStore()
    store = MountedStore(MP, mount, backing)
    put(backing, "a/b/k", b"remote data", {"v": "remote"})
    with pytest.raises(VerificationError, match="mount store is unchanged"):
        store.pull("a/b/k")
    assert content(mount) == {}
    put(backing, "a/b/m", b"remote data")
    with pytest.raises(VerificationError, match="copy of 'a/b/m' into the mount store"):
        store.set_metadata("a/b/m", {"new": 1})
    assert content(mount) == {}
    MemoryStore._put(mount, "k", io.BytesIO(b"local edit"), "{}", 4096)
    with pytest.raises(VerificationError, match="replaced is lost, so the backing version shows"):
        store.pull("a/b/k", overwrite=True)
    assert store.to_bytes("a/b/k") == b"remote data"
    assert content(mount) == {}


@pytest.mark.parametrize("mount_kind", ["memory", "sqlite"])
def test_other_keys_stay_writable_while_a_pull_streams(tmp_path, mount_kind):
    mount, backing = INNER[mount_kind](tmp_path), SlowReadStore()
    store = MountedStore(MP, mount, backing)
    put(backing, "a/b/big", b"B" * 200_000)
    errors = []

    def pull():
        try:
            store.pull("a/b/big", buffer_size=1024)
        except Exception as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=pull)
    worker.start()
    try:
        assert backing.entered.wait(10)
        store.from_bytes("a/b/other", b"written meanwhile", {"x": 1})
        assert [e.key for e in store.list_dir("a/b/")] == ["a/b/big", "a/b/other"]
    finally:
        backing.gate.set()
        worker.join(10)
    assert not worker.is_alive() and errors == []
    assert store.origin("a/b/big") == "shadowing"
    assert store.to_bytes("a/b/other") == b"written meanwhile"
    store.disconnect()


def test_revert(store, mount, backing, events):
    for k in ("a/b/s1", "a/b/d/s2"):
        put(backing, k, b"remote", {"r": 1})
    for k in ("s1", "d/s2", "d/local"):
        put(mount, k, b"local")
    assert store.revert("a/b/s1") == ["a/b/s1"]
    assert store.to_bytes("a/b/s1") == b"remote"
    assert key_events(events) == [("StoreSetEvent", "a/b/s1")]
    assert events[-1].metadata == {"r": 1}
    assert store.revert("a/b/") == ["a/b/d/s2"]  # the local-only key stays
    assert sorted(mount.keys()) == ["d/local"]
    with pytest.raises(KeyError, match="no backing version"):
        store.revert("a/b/d/local")
    with pytest.raises(KeyError, match="no local copy"):
        store.revert("a/b/s1")
    with pytest.raises(KeyError, match="no local copy"):
        store.revert("outside")
    assert "no backing version" in store.revert_denied_reason("a/b/d/local")
    assert "no local copy" in store.revert_denied_reason("a/b/s1")
    assert "nothing under" in store.revert_denied_reason("a/b/x/")
    assert sorted(mount.keys()) == ["d/local"]


def test_delete_denied_reason(store, mount, backing):
    put(mount, "local", b"")
    put(backing, "a/b/remote", b"")
    put(backing, "outside", b"")
    assert store.delete_denied_reason("a/b/local") is None
    assert "only in the backing store" in store.delete_denied_reason("a/b/remote")
    assert "outside the mount point" in store.delete_denied_reason("outside")
    assert "does not exist" in store.delete_denied_reason("a/b/missing")
    assert store.write_denied_reason("a/b/anything") is None


@pytest.mark.parametrize("readonly", [None, "mount", "backing"])
def test_the_app_and_the_store_ask_the_same_rules(store, mount, backing, readonly):
    # The app asks the rules with the origins its tree shows (list_dir entries)
    # and facts gathered once; the store asks them with what it finds now.
    from storegui.stores.mounted import rules

    put(mount, "local")
    put(mount, "shadow")
    put(mount, "d/local")
    put(backing, "a/b/shadow")
    put(backing, "a/b/remote")
    put(backing, "a/b/e/remote")
    put(backing, "a/b/d/remote")
    put(backing, "outside")
    put(backing, "x/remote")
    if readonly == "mount":
        store.readonly = True
    elif readonly == "backing":
        backing.readonly = True
    facts = rules.MountFacts.probe(store)
    checks = [(rules.push_reason, store.push_denied_reason),
              (rules.pull_reason, store.pull_denied_reason),
              (rules.revert_reason, store.revert_denied_reason)]
    seen = 0
    for prefix in ("", "a/", "a/b/", "a/b/d/", "a/b/e/", "x/"):
        for entry in store.list_dir(prefix):
            for app_rule, store_rule in checks:
                assert app_rule(entry, facts) == store_rule(entry.key), (entry, app_rule)
            if not entry.is_dir:
                assert rules.delete_reason(entry, facts) == store.delete_denied_reason(entry.key)
            seen += 1
    assert seen > 10


# ---------------------------------------------------------------- threads


def test_listing_runs_while_a_push_streams():
    mount, backing = MemoryStore(), BlockingStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "big", b"B" * 100_000)
    put(mount, "other", b"o")
    errors = []

    def push():
        try:
            store.push("a/b/big")
        except Exception as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=push)
    worker.start()
    try:
        assert backing.entered.wait(10)
        # The push is inside the backing write now; everything else must still run.
        assert [e.key for e in store.list_dir("a/b/")] == ["a/b/big", "a/b/other"]
        store.from_bytes("a/b/new", b"n")
        store.update_metadata("a/b/other", {"x": 1})
        assert store.origin("a/b/big") == "local"
    finally:
        backing.gate.set()
        worker.join(10)
    assert not worker.is_alive() and errors == []
    assert store.origin("a/b/big") == "remote"


def test_a_write_during_a_push_of_the_same_key_is_not_lost():
    mount, backing = MemoryStore(), BlockingStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"first")
    results = []
    pusher = threading.Thread(target=lambda: results.append(store.push("a/b/k")))
    writer = threading.Thread(target=lambda: store.from_bytes("a/b/k", b"second", {}))
    pusher.start()
    try:
        assert backing.entered.wait(10)
        writer.start()
    finally:
        backing.gate.set()
        pusher.join(10)
        writer.join(10)
    assert results == [["a/b/k"]]
    assert backing.to_bytes("a/b/k") == b"first"
    assert store.to_bytes("a/b/k") == b"second"  # the later write survives as a local copy


def test_a_mount_copy_changed_directly_during_its_push_is_kept():
    mount, backing = MemoryStore(), BlockingStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"first")
    errors = []

    def push():
        try:
            store.push("a/b/k")
        except StoreError as exc:
            errors.append(exc)

    worker = threading.Thread(target=push)
    worker.start()
    try:
        assert backing.entered.wait(10)
        put(mount, "k", b"changed behind the mounted store's back")
    finally:
        backing.gate.set()
        worker.join(10)
    assert len(errors) == 1 and "changed during its push" in str(errors[0])
    assert mount.to_bytes("k") == b"changed behind the mounted store's back"


def test_key_locks_are_dropped_when_released():
    locks = KeyLocks()
    with locks.hold("a"), locks.hold("a"), locks.hold("b"):
        assert len(locks) == 2
    assert len(locks) == 0


# ---------------------------------------------------------------- seed faults (DESIGN.md)


def test_fault1_disconnect_then_connect_reconnects_both_inner_stores(store, mount, backing):
    put(mount, "k", b"local")
    store.connect()
    assert store.is_connected() and mount.is_connected() and backing.is_connected()
    store.disconnect()
    assert not store.is_connected()
    assert not mount.is_connected() and not backing.is_connected()
    store.connect()
    assert mount.is_connected() and backing.is_connected()
    assert store.to_bytes("a/b/k") == b"local"
    for _ in range(3):
        store.disconnect()
        store.connect()
    assert store.is_connected() and mount.is_connected() and backing.is_connected()


def test_fault2_set_of_a_new_key_is_all_or_nothing(store, mount, events):
    with pytest.raises(OSError):
        store.set("a/b/new", (FailingReader(50_000), {"meta": "data"}), buffer_size=4096)
    assert not store.exists("a/b/new")
    assert content(mount) == {}
    assert key_events(events) == []
    ends = [e for e in events if isinstance(e, StoreProgressEndEvent)]
    assert len(ends) == 1 and not ends[0].ok


def test_fault3_a_failed_push_never_costs_the_mount_copy():
    mount, backing = MemoryStore(), FailingWriteStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"precious" * 1000, {"v": 1})
    with pytest.raises(StoreError, match="push of 'a/b/k' failed: simulated disk full") as info:
        store.push("a/b/k")
    assert info.value.key == "a/b/k"
    assert content(mount) == {"k": (b"precious" * 1000, {"v": 1})}
    assert content(backing) == {}


def test_fault3_a_corrupted_backing_copy_is_caught_by_its_digest():
    mount, backing = MemoryStore(), CorruptingStore()
    store = MountedStore(MP, mount, backing)
    put(backing, "a/b/k", b"older version")
    put(mount, "k", b"precious data", {"v": 1})
    with pytest.raises(VerificationError, match="sha256") as info:
        store.push("a/b/k")
    assert "removed from the backing store" in str(info.value)
    assert content(mount) == {"k": (b"precious data", {"v": 1})}
    assert not backing.exists("a/b/k")
    assert store.origin("a/b/k") == "local"


def test_fault3_a_short_backing_copy_is_caught_by_its_size():
    mount, backing = MemoryStore(), TruncatingStore()
    backing.local = False  # no read-back: the size check alone must catch it
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"precious data")
    with pytest.raises(VerificationError, match="bytes"):
        store.push("a/b/k")
    assert mount.to_bytes("k") == b"precious data"
    assert not backing.exists("a/b/k")


def test_fault3_a_cancel_while_verifying_keeps_the_mount_copy():
    mount, backing = MemoryStore(), MemoryStore()
    store = MountedStore(MP, mount, backing)
    put(mount, "k", b"")  # empty: the write finishes before any cancel check
    token = CancelToken()
    with pytest.raises(TransferCancelled, match="unverified"):
        store.push("a/b/k", cancel=token, progress=lambda done, total: token.cancel())
    assert mount.exists("k")
    assert store.origin("a/b/k") == "shadowing"


def test_fault4_writes_outside_the_mount_point_say_read_only(store, mount, backing):
    put(backing, "outside/k", b"remote", {"v": 1})
    put(backing, "a/b/remote", b"remote", {"v": 1})
    before = content(backing)
    calls = [
        lambda k: store.set(k, (io.BytesIO(b"x"), {})),
        lambda k: store.set_data(k, io.BytesIO(b"x")),
        lambda k: store.set_metadata(k, {"v": 2}),
        lambda k: store.update_metadata(k, {"v": 2}),
        lambda k: store.delete(k),
        lambda k: store.from_bytes(k, b"x"),
    ]
    for key in ("outside/k", "outside/missing"):
        for call in calls:
            with pytest.raises(ReadOnlyError, match="outside the mount point .* read-only") as info:
                call(key)
            assert not isinstance(info.value, KeyError)
            assert info.value.key == key
    with pytest.raises(ReadOnlyError, match="only in the backing store") as info:
        store.delete("a/b/remote")
    assert not isinstance(info.value, KeyError)
    assert content(backing) == before
    assert content(mount) == {}


def test_fault5_query_describes_what_get_returns(store, mount, backing):
    put(backing, "a/b/shadowed", b"", {"tag": "old"})
    put(mount, "shadowed", b"", {"tag": "new"})
    put(backing, "a/b/remote", b"", {"tag": "old"})
    put(backing, "outside", b"", {"tag": "old"})
    put(mount, "local", b"", {"tag": "new"})
    assert sorted(store.query_keys(tag="old")) == ["a/b/remote", "outside"]
    assert sorted(store.query_keys(tag="new")) == ["a/b/local", "a/b/shadowed"]
    assert dict(store.query(tag="old")) == {"a/b/remote": {"tag": "old"},
                                            "outside": {"tag": "old"}}
    assert dict(store.query(select=[], tag="new")) == {"a/b/local": {}, "a/b/shadowed": {}}
    everything = dict(store.query())
    assert everything["a/b/shadowed"] == {"tag": "new"}
    assert sorted(store.query_keys()) == ["a/b/local", "a/b/remote", "a/b/shadowed", "outside"]
    for key, metadata in everything.items():
        assert store.get_metadata(key) == metadata


def test_fault5_query_asks_the_backing_store_once():
    mount, backing = CountingStore(), CountingStore()
    store = MountedStore(MP, mount, backing)
    for i in range(200):
        put(backing, f"a/b/k{i}", b"", {"tag": i % 2})
    for i in range(0, 200, 10):
        put(mount, f"k{i}", b"", {"tag": 5})
    backing.calls.clear()
    assert len(list(store.query_keys(tag=1))) == 100
    assert len(list(store.query(tag=0))) == 80
    assert backing.calls == {"query": 2}


def test_fault6_info_reports_the_stores(store, mount, backing):
    info = store.info()
    assert info["readonly"] is False
    assert info["mount_point"] == MP
    assert info["mount"] == mount.info()
    assert info["backing"] == backing.info()
    assert info["kind"] == "MountedStore"
    assert info["local"] is True
    mount.readonly = True
    assert store.info()["readonly"] is True
    mount.readonly = False
    backing.readonly = True  # the backing store is read-only here anyway
    assert store.info()["readonly"] is False
    store.readonly = True
    assert store.info()["readonly"] is True


# ---------------------------------------------------------------- other inner stores


def _optional(module: str, name: str):
    try:
        return getattr(importlib.import_module(f"storegui.stores.{module}"), name)
    except ImportError as exc:
        pytest.skip(f"storegui.stores.{module} is not available yet: {exc}")


INNER = {
    "memory": lambda tmp: MemoryStore(),
    "filesystem": lambda tmp: _optional("filesystem", "FileSystemStore")(tmp / "fs"),
    "sqlite": lambda tmp: _optional("sqlite", "SqliteStore")(str(tmp / "store.db")),
}


@pytest.mark.parametrize("backing_kind", sorted(INNER))
@pytest.mark.parametrize("mount_kind", sorted(INNER))
def test_round_trip_over_real_stores(tmp_path, mount_kind, backing_kind):
    (tmp_path / "m").mkdir()
    (tmp_path / "b").mkdir()
    mount, backing = INNER[mount_kind](tmp_path / "m"), INNER[backing_kind](tmp_path / "b")
    with MountedStore(MP, mount, backing) as store:
        data = bytes(range(256)) * 4096  # 1 MiB
        put(backing, "a/b/remote", data, {"v": "remote"})
        put(backing, "outside", b"o")
        store.update_metadata("a/b/remote", {"w": 1})
        assert store.origin("a/b/remote") == "shadowing"
        assert store.get_metadata("a/b/remote") == {"v": "remote", "w": 1}
        assert store.push("a/b/remote", buffer_size=65536) == ["a/b/remote"]
        assert backing.get_metadata("a/b/remote") == {"v": "remote", "w": 1}
        assert backing.to_bytes("a/b/remote") == data
        assert store.pull("a/b/") == ["a/b/remote"]
        assert store.to_bytes("a/b/remote") == data
        assert store.revert("a/b/") == ["a/b/remote"]
        with pytest.raises(ReadOnlyError):
            store.delete("outside")
        assert [(e.key, e.origin) for e in store.list_dir("")] == [("a/", "remote"),
                                                                   ("outside", "remote")]
    assert not mount.is_connected() and not backing.is_connected()
