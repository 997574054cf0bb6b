"""Hostile keys and metadata against every store: refused cleanly, or read back equal.

Keys: any unicode (lone surrogates and NUL included), ``..`` and ``/`` runs,
control characters, names the stores use themselves, very long keys.
Metadata: deep nesting, huge strings, values JSON cannot hold. Every write
either raises a StoreError and changes nothing, or reads back equal (data,
metadata, listing). A FileSystemStore never reads or writes outside its
root: files next to it are checked after every example.
"""

from __future__ import annotations

import io
import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storegui.stores import MemoryStore, StoreError
from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite.store import SqliteStore

MOUNT_POINT = "a/b/"
SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# ---------------------------------------------------------------------- strategies

PIECES = ["..", ".", "/", "//", "///", "\\", "\x00", "\n", "\r", "\t", "\x7f", "\x1b", "~",
          "$HOME", "%2e%2e", "%2F", "@v", "@", ".storegui", ".storegui-store.json", "tmp",
          "blobs", "\u202e", "\ufeff", "\u0301", "\u00e9", "e\u0301", "A", "a", "\ud800",
          "\udfff", " ", "CON", "nul", ":", "*", "?", "[", "\U0001f600", "\u0130", "\u212a",
          "x" * 300, "\u00e9" * 200]

hostile_keys = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=40),  # any code point at all
    st.lists(st.sampled_from(PIECES) | st.text(max_size=4), min_size=1, max_size=12)
    .map("".join),
    st.lists(st.sampled_from(["..", ".", "", "x", "..."]), min_size=1, max_size=30)
    .map("/".join),
    st.integers(100, 300).map(lambda n: ("ab/" * n)[:n]),  # 100 folders deep
    st.integers(4090, 5000).map(lambda n: "k" * n),  # around MAX_KEY_LENGTH
    st.integers(250, 1500).map(lambda n: "\U0001f600" * n),
)

json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(10 ** 400), 10 ** 400)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(st.characters(blacklist_categories=()), max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)
not_json = st.sampled_from([math.nan, math.inf, -math.inf, b"bytes", {1, 2}, object(),
                            1 + 2j, bytearray(b"x"), range(3), io.BytesIO()])


def deep(depth: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(depth):
        value = {"d": value} if i % 2 else [value]
    return value


hostile_metadata = st.one_of(
    st.dictionaries(st.text(st.characters(blacklist_categories=()), max_size=10), json_values,
                    max_size=6),
    st.dictionaries(st.text(max_size=5), not_json, min_size=1, max_size=2),
    st.dictionaries(st.integers() | st.none() | st.tuples(st.integers()), st.integers(),
                    min_size=1, max_size=2),
    st.integers(1, 3000).map(lambda d: {"deep": deep(d)}),
    st.integers(0, 2_000_000).map(lambda n: {"huge": "\u00e9x" * (n // 2)}),
    st.lists(st.tuples(st.text(max_size=3), st.integers())),  # not a dictionary
    st.just({"t": (1, 2, (3,))}),
)

# ---------------------------------------------------------------------- stores


def _mounted(tmp) -> MountedStore:
    return MountedStore(MOUNT_POINT, SqliteStore(str(tmp / "mount.db")),
                        FileSystemStore(tmp / "backing"))


STORES = {
    "memory": lambda tmp: MemoryStore(),
    "filesystem": lambda tmp: FileSystemStore(tmp / "root"),
    "sqlite-file": lambda tmp: SqliteStore(str(tmp / "store.db")),
    "sqlite-memory": lambda tmp: SqliteStore(":memory:"),
    "mounted-sqlite-over-filesystem": _mounted,
}


@pytest.fixture(scope="module", params=sorted(STORES))
def store(request, tmp_path_factory):
    made = STORES[request.param](tmp_path_factory.mktemp(request.param))
    made.connect()
    yield made
    made.disconnect()


def _snapshot(store) -> dict:
    return {k: (store.to_bytes(k), store.get_metadata(k)) for k in store.keys()}


def _as_json(metadata) -> str:
    """Canonical JSON text: equal texts mean equal metadata (1 and 1.0 and True all differ)."""
    return json.dumps(metadata, allow_nan=False, sort_keys=True)


def _write_then_read_back(store, key, data, metadata) -> None:
    before = _snapshot(store)
    try:
        store.set(key, (io.BytesIO(data), metadata))
    except StoreError:
        assert _snapshot(store) == before, "a refused write changed the store"
        return
    try:
        value = store.get(key)
        with value.data as stream:
            assert stream.read() == data
        assert value.size == len(data)
        assert _as_json(value.metadata) == _as_json(metadata)
        assert store.exists(key) and key in set(store.keys())
        parent = key[: key.rfind("/") + 1]
        assert key in {e.key for e in store.list_dir(parent) if not e.is_dir}
        assert _as_json(store.get_metadata(key)) == _as_json(value.metadata)
        others = {k: v for k, v in _snapshot(store).items() if k != key}
        assert others == {k: v for k, v in before.items() if k != key}
    finally:
        if key not in before:
            store.delete(key)
        else:
            store.set(key, (io.BytesIO(before[key][0]), before[key][1]))


@SETTINGS
@given(key=hostile_keys, data=st.binary(max_size=3000), to_mount=st.booleans())
def test_hostile_keys_round_trip_or_are_refused(store, key, data, to_mount):
    if isinstance(store, MountedStore) and to_mount:
        key = MOUNT_POINT + key
    _write_then_read_back(store, key, data, {"k": key[:50].encode("utf-8", "replace").hex()})


@SETTINGS
@given(metadata=hostile_metadata)
def test_hostile_metadata_round_trips_or_is_refused(store, metadata):
    key = MOUNT_POINT + "m" if isinstance(store, MountedStore) else "m"
    _write_then_read_back(store, key, b"data", metadata)


@pytest.mark.parametrize("depth", [100, 199, 250, 1000, 5000, 50_000])
def test_deeply_nested_metadata(store, depth):
    key = MOUNT_POINT + "deep" if isinstance(store, MountedStore) else "deep"
    _write_then_read_back(store, key, b"", {"deep": deep(depth)})


def test_existing_keys_survive_every_refused_update(store):
    key = MOUNT_POINT + "kept" if isinstance(store, MountedStore) else "kept"
    store.from_bytes(key, b"kept", {"v": 1})
    for bad in ({"nan": math.nan}, {1: "x"}, {"s": "\ud800"}, {"o": object()}, [("a", 1)],
                {"deep": deep(5000)}):
        with pytest.raises(StoreError):
            store.set_metadata(key, bad)
        with pytest.raises(StoreError):
            store.update_metadata(key, bad)
        with pytest.raises(StoreError):
            store.set(key, (io.BytesIO(b"new"), bad))
    assert store.to_bytes(key) == b"kept" and store.get_metadata(key) == {"v": 1}
    store.delete(key)


# ---------------------------------------------------------------------- FileSystemStore's root


@pytest.fixture(scope="module")
def fenced(tmp_path_factory):
    """A FileSystemStore with sentinel files (and a sentinel folder) next to and above it."""
    base = tmp_path_factory.mktemp("fenced")
    (base / "sentinel.txt").write_bytes(b"outside")
    (base / "outside").mkdir()
    (base / "outside" / "sentinel.txt").write_bytes(b"outside too")
    (base / "inside").mkdir()
    store = FileSystemStore(base / "inside" / "root")
    store.connect()
    yield base, store
    store.disconnect()


def _outside(base) -> dict:
    """Every file and folder under ``base`` except the store root, with its contents."""
    found = {}
    for folder, dirs, files in os.walk(base):
        if os.path.abspath(folder).startswith(os.path.join(str(base), "inside", "root")):
            dirs[:] = []
            continue
        for name in dirs:
            found[os.path.join(folder, name)] = None
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[path] = f.read()
    return found


@SETTINGS
@given(key=hostile_keys | st.sampled_from([
    "../sentinel.txt", "../../sentinel.txt", "../../outside/sentinel.txt", "/etc/passwd",
    "..", "../..", "./../x", "..\\..\\sentinel.txt", "a/../../../sentinel.txt",
    "%2e%2e/sentinel.txt", ".storegui/../../sentinel.txt", "....//....//sentinel.txt"]))
def test_no_key_reads_or_writes_outside_the_root(fenced, key):
    base, store = fenced
    before = _outside(base)
    try:
        assert not store.exists(key), "an empty store says a hostile key exists"
        with pytest.raises(KeyError):
            store.get(key)
        with pytest.raises(KeyError):
            store.delete(key)
    except StoreError as exc:  # only an invalid key may be refused here
        assert not isinstance(exc, KeyError)
        assert _outside(base) == before
        return
    _write_then_read_back(store, key, b"inside", {"key": "hostile"})
    assert _outside(base) == before, f"key {key!r} changed something outside the root"
    assert list(store.keys()) == []
