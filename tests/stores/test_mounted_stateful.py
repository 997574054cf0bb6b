"""MountedStore against a plain-dict model, driven by random operations (hypothesis).

The model is two dicts, ``local`` (mount copies, by full key) and ``remote``
(backing keys). After every step, for every key of a fixed key universe
(inside and outside the mount point), the store's exists / data / metadata /
origin agree with the model, as do its listings, queries and the inner stores
themselves. A write that must fail raises ReadOnlyError or KeyError and
changes nothing (no key and no set / update / delete event).
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from store_helpers import FailingReader

from storegui.stores import (
    CancelToken,
    MemoryStore,
    ReadOnlyError,
    StoreDeleteEvent,
    StoreSetEvent,
    StoreUpdateEvent,
    TransferCancelled,
)
from storegui.stores.keys import split_child
from storegui.stores.mounted.rules import is_prefix
from storegui.stores.mounted.store import MountedStore

KEY_EVENTS = (StoreSetEvent, StoreUpdateEvent, StoreDeleteEvent)


# One key universe for every mount point: keys inside and outside "a/b/" and
# "", a key named like the mount point, and prefixes that hit, miss or contain it.
KEYS = ["a/b/x", "a/b/y", "a/b/c/d", "a/b/c/e", "a/bc", "a/x", "q", "c/d", "a/b/"]
PREFIXES = ["", "a/", "a/b/", "a/b/c/", "c/", "zz/"]
TARGETS = sorted(set(KEYS + PREFIXES))

datas = st.binary(max_size=24)
metadatas = st.fixed_dictionaries(
    {}, optional={"tag": st.sampled_from(["x", "y"]), "n": st.integers(0, 3)})


class MountedMachine(RuleBasedStateMachine):
    """Random operations on a MountedStore and on a model of it; subclasses pick the set-up."""

    mount_point = "a/b/"

    def make_stores(self):
        return MemoryStore(), MemoryStore()

    def __init__(self) -> None:
        super().__init__()
        self.mount, self.backing = self.make_stores()
        self.store = MountedStore(self.mount_point, self.mount, self.backing)
        self.local: dict[str, tuple[bytes, dict]] = {}
        self.remote: dict[str, tuple[bytes, dict]] = {}
        self.events: list = []
        self.store.event_dispatcher.connect(self.events.append)

    def teardown(self) -> None:
        self.store.disconnect()

    # ---------------------------------------------------------------- model helpers

    def inside(self, key: str) -> bool:
        return len(key) > len(self.mount_point) and key.startswith(self.mount_point)

    def visible(self) -> dict[str, tuple[bytes, dict]]:
        return {**self.remote, **self.local}

    def expect(self, error, call):
        """Run ``call``; with ``error`` set it must raise that and change nothing."""
        self.events.clear()
        if error is None:
            return call()
        before = (dict(self.local), dict(self.remote))
        with pytest.raises(error):
            call()
        assert (self.local, self.remote) == before
        assert [e for e in self.events if isinstance(e, KEY_EVENTS)] == []
        return None

    def set_keys(self) -> set[str]:
        return {e.key for e in self.events if isinstance(e, StoreSetEvent)}

    # ---------------------------------------------------------------- rules

    @rule(key=st.sampled_from(KEYS), data=datas, metadata=metadatas)
    def remote_set(self, key, data, metadata):
        self.backing.set(key, (io.BytesIO(data), metadata))
        self.remote[key] = (data, metadata)

    @rule(key=st.sampled_from(KEYS), data=datas, metadata=metadatas)
    def set(self, key, data, metadata):
        error = None if self.inside(key) else ReadOnlyError
        self.expect(error, lambda: self.store.set(key, (io.BytesIO(data), metadata)))
        if error is None:
            self.local[key] = (data, metadata)

    @rule(key=st.sampled_from(KEYS))
    def set_failing_stream(self, key):
        error = OSError if self.inside(key) else ReadOnlyError
        self.expect(error, lambda: self.store.set(key, (FailingReader(7), {"f": 1}), buffer_size=4))

    @rule(key=st.sampled_from(KEYS), data=datas)
    def set_data(self, key, data):
        error = None if self.inside(key) else ReadOnlyError
        self.expect(error, lambda: self.store.set_data(key, io.BytesIO(data)))
        if error is None:
            self.local[key] = (data, self.visible().get(key, (b"", {}))[1])

    @rule(key=st.sampled_from(KEYS), metadata=metadatas)
    def set_metadata(self, key, metadata):
        current = self.visible().get(key)
        error = ReadOnlyError if not self.inside(key) else KeyError if current is None else None
        self.expect(error, lambda: self.store.set_metadata(key, metadata))
        if error is None:
            self.local[key] = (current[0], metadata)

    @rule(key=st.sampled_from(KEYS), metadata=metadatas)
    def update_metadata(self, key, metadata):
        current = self.visible().get(key)
        error = ReadOnlyError if not self.inside(key) else KeyError if current is None else None
        self.expect(error, lambda: self.store.update_metadata(key, metadata))
        if error is None:
            self.local[key] = (current[0], {**current[1], **metadata})

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key):
        if not self.inside(key) or (key not in self.local and key in self.remote):
            error = ReadOnlyError
        else:
            error = None if key in self.local else KeyError
        self.expect(error, lambda: self.store.delete(key))
        if error is None:
            del self.local[key]

    @rule(target_=st.sampled_from(TARGETS))
    def push(self, target_):
        if is_prefix(target_):
            expected, error = sorted(k for k in self.local if k.startswith(target_)), None
        else:
            expected = [target_]
            error = None if target_ in self.local else KeyError
        pushed = self.expect(error, lambda: self.store.push(target_, buffer_size=4))
        if error is None:
            assert pushed == expected
            assert self.set_keys() == set(expected)
            for key in expected:
                self.remote[key] = self.local.pop(key)

    @precondition(lambda self: self.local)
    @rule(target_=st.sampled_from(TARGETS))
    def push_cancelled(self, target_):
        token = CancelToken()
        token.cancel()
        if is_prefix(target_):
            has_any = any(k.startswith(target_) for k in self.local)
            error = TransferCancelled if has_any else None
        else:
            error = TransferCancelled if target_ in self.local else KeyError
        result = self.expect(error, lambda: self.store.push(target_, cancel=token))
        if error is None:
            assert result == []

    @rule(target_=st.sampled_from(TARGETS), overwrite=st.booleans())
    def pull(self, target_, overwrite):
        wanted = [k for k in sorted(self.remote) if self.inside(k)
                  and (overwrite or k not in self.local)]
        if is_prefix(target_):
            expected, error = [k for k in wanted if k.startswith(target_)], None
        elif not self.inside(target_):
            expected, error = [], ReadOnlyError
        elif target_ in self.local and not overwrite:
            expected, error = [], None
        else:
            expected, error = [target_], None if target_ in self.remote else KeyError
        pulled = self.expect(error, lambda: self.store.pull(target_, overwrite=overwrite))
        if error is None:
            assert pulled == expected
            assert self.set_keys() == set(expected)
            for key in expected:
                self.local[key] = self.remote[key]

    @rule(target_=st.sampled_from(TARGETS))
    def revert(self, target_):
        if is_prefix(target_):
            expected = sorted(k for k in self.local if k.startswith(target_) and k in self.remote)
            error = None
        else:
            expected = [target_]
            both = target_ in self.local and target_ in self.remote
            error = None if both else KeyError
        reverted = self.expect(error, lambda: self.store.revert(target_))
        if error is None:
            assert reverted == expected
            assert self.set_keys() == set(expected)
            for key in expected:
                del self.local[key]

    @rule()
    def reconnect(self):
        self.store.disconnect()
        assert not self.mount.is_connected() and not self.backing.is_connected()
        self.store.connect()

    # ---------------------------------------------------------------- invariants

    @invariant()
    def keys_agree(self):
        visible = self.visible()
        for key in KEYS:
            assert self.store.exists(key) == (key in visible), key
            if key in visible:
                data, metadata = visible[key]
                assert self.store.to_bytes(key) == data, key
                assert self.store.get_metadata(key) == metadata, key
                assert self.store.stat(key).size == len(data), key
                local, remote = key in self.local, key in self.remote
                expected = "shadowing" if local and remote else "local" if local else "remote"
                assert self.store.origin(key) == expected, key
            else:
                with pytest.raises(KeyError):
                    self.store.get(key)
                with pytest.raises(KeyError):
                    self.store.origin(key)
        listed = list(self.store.keys())
        assert sorted(listed) == sorted(visible)

    @invariant()
    def inner_stores_agree(self):
        mp = self.mount_point
        inner = {k: (self.mount.to_bytes(k), self.mount.get_metadata(k)) for k in self.mount.keys()}
        assert inner == {k[len(mp):]: v for k, v in self.local.items()}
        backing = {k: (self.backing.to_bytes(k), self.backing.get_metadata(k))
                   for k in self.backing.keys()}
        assert backing == self.remote
        assert sorted(self.store.local_keys()) == sorted(self.local)

    @invariant()
    def queries_agree(self):
        visible = self.visible()
        assert dict(self.store.query()) == {k: md for k, (_, md) in visible.items()}
        for tag in ("x", "y"):
            expected = sorted(k for k, (_, md) in visible.items() if md.get("tag") == tag)
            assert sorted(self.store.query_keys(tag=tag)) == expected
            assert sorted(k for k, _ in self.store.query(tag=tag)) == expected

    @invariant()
    def listings_agree(self):
        for prefix in PREFIXES:
            assert [(e.key, e.is_dir, e.origin) for e in self.store.list_dir(prefix)] == \
                self.model_listing(prefix)

    def model_listing(self, prefix):
        where: dict[tuple[str, bool], set[str]] = {}
        for side, keys in (("local", self.local), ("remote", self.remote)):
            for key in keys:
                if key.startswith(prefix):
                    where.setdefault(split_child(key, prefix, "/"), set()).add(side)
        rows = []
        for (key, is_dir), sides in where.items():
            origin = "shadowing" if len(sides) == 2 else next(iter(sides))
            rows.append((key, is_dir, origin))
        return sorted(rows, key=lambda r: (r[0], r[1]))


class MountedAtRootMachine(MountedMachine):
    mount_point = ""


SETTINGS = settings(max_examples=75, stateful_step_count=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

TestMountedAtAB = MountedMachine.TestCase
TestMountedAtAB.settings = SETTINGS
TestMountedAtRoot = MountedAtRootMachine.TestCase
TestMountedAtRoot.settings = SETTINGS


# ---------------------------------------------------------------- real inner stores, if written

def _real_store_classes():
    """(SqliteStore, FileSystemStore), or None while they are still being written."""
    try:
        from storegui.stores.filesystem.store import FileSystemStore
        from storegui.stores.sqlite.store import SqliteStore
    except ImportError:
        return None
    return SqliteStore, FileSystemStore


class RealStoresMachine(MountedMachine):
    """A SqliteStore mounted over a FileSystemStore, in a temporary folder per run."""

    def make_stores(self):
        sqlite_store, filesystem_store = _real_store_classes()
        self.tmp = Path(tempfile.mkdtemp(prefix="storegui-mounted-"))
        return sqlite_store(str(self.tmp / "mount.db")), filesystem_store(self.tmp / "backing")

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)


TestMountedRealStores = pytest.mark.skipif(
    _real_store_classes() is None, reason="FileSystemStore / SqliteStore not importable yet")(
    RealStoresMachine.TestCase)
TestMountedRealStores.settings = settings(SETTINGS, max_examples=10)
