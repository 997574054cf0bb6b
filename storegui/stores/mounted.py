"""MountedStore: a small writable store mounted at a key prefix over a large backing store.

A key that starts with the mount point (a pure string prefix, as in the
seed; ``""`` mounts over every key) and is longer than it lives in the mount
store under the rest of the key: ``mounted["a/b/x"]`` is ``mount_store["x"]``
when the mount point is ``"a/b/"``. Every other key is read from the backing
store and is read-only here. A key both stores hold is *shadowing*: reads see
the mount copy. Push, pull and revert move keys between the two stores (see
:mod:`.mounted_transfer`, :mod:`.mounted_pull`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from . import events as ev
from .base import Store, Transaction
from .errors import ReadOnlyError, StoreError, StoreKeyError
from .keylocks import KeyLocks
from .keys import check_key, check_prefix
from .metadata import copy_metadata, decode_metadata, encode_metadata
from .mounted_merge import merge_listings, merge_query, mount_children
from .mounted_pull import PullRevertMixin
from .mounted_transfer import PushMixin, is_readonly
from .streaming import DEFAULT_BUFFER_SIZE
from .value import Entry, Value


class MountedStore(PushMixin, PullRevertMixin, Store):
    """A writable ``mount_store`` mounted at ``mount_point`` over a read-only ``backing_store``.

    Reads see the mount copy of a key if there is one, else the backing one.
    Writes (set, set_data, set_metadata, update_metadata, delete) go to the
    mount store and only for keys inside the mount point; set_data,
    set_metadata and update_metadata of a key that only the backing store
    holds first copy it into the mount store (streamed, all or nothing; a
    failed copy leaves no mount copy). ``set`` is one atomic write of data
    and metadata.

    Errors of writes: :class:`ReadOnlyError`, with a sentence saying why, for
    a key outside the mount point (or the mount point itself), for deleting
    a key only the backing store holds, and for any write while the mount
    store is read-only; ``KeyError`` for set_metadata / update_metadata /
    delete of a key neither store holds. ``write_denied_reason`` and
    ``delete_denied_reason`` give the same sentences without writing.

    Writes made directly to the inner stores, not through this object, are
    not reported by its events and are not covered by its per-key locking.

    Parameters
    ----------
    mount_point : str
        Key prefix of the mounted store (``""``: every key).
    mount_store : Store
        The small writable store.
    backing_store : Store
        The large store it is mounted over; never written except by ``push``.

    Raises
    ------
    InvalidKeyError
        If ``mount_point`` is not a string.
    StoreError
        If either store is not a :class:`Store`, or both are the same object.
    """

    def __init__(self, mount_point: str, mount_store: Store, backing_store: Store) -> None:
        mount_point = check_prefix(mount_point)
        for name, store in (("mount_store", mount_store), ("backing_store", backing_store)):
            if not isinstance(store, Store):
                raise StoreError(f"{name} must be a Store, not {type(store).__name__}")
        if mount_store is backing_store:
            # A push would copy each key onto itself and then delete it.
            raise StoreError("the mount store and the backing store must be two different stores")
        super().__init__()
        self.mount_point = mount_point
        self.mount_store = mount_store
        self.backing_store = backing_store
        self._forced_readonly = False
        self._key_locks = KeyLocks()

    def __repr__(self) -> str:
        return (f"MountedStore({self.mount_point!r}, mount={self.mount_store!r}, "
                f"backing={self.backing_store!r})")

    # ------------------------------------------------------------------ key space

    def _short(self, key: str) -> str | None:
        """The mount store's key for ``key``, or None if ``key`` is outside the mount point."""
        mp = self.mount_point
        if len(key) > len(mp) and key.startswith(mp):
            return key[len(mp):]
        return None

    def _outside(self, key: str) -> str:
        if key == self.mount_point:
            return f"{key!r} is the mount point itself, not a key under it"
        return f"{key!r} is outside the mount point {self.mount_point!r}"

    def _wants_events(self) -> bool:
        return self.event_dispatcher.has_listeners() or self._txn is not None

    def local_keys(self, prefix: str = "") -> Iterator[str]:
        """Full keys under ``prefix`` that have a mount copy (origin local or shadowing)."""
        prefix = check_prefix(prefix)
        self._ensure()
        mp = self.mount_point
        if prefix.startswith(mp):
            short_prefix = prefix[len(mp):]
        elif mp.startswith(prefix):
            short_prefix = ""
        else:
            return iter(())
        return (mp + k for k in self.mount_store.keys(short_prefix))

    def origin(self, key: str) -> str:
        """Where ``key`` lives: ``"local"``, ``"shadowing"`` or ``"remote"``.

        Raises
        ------
        KeyError
            If neither store holds the key.
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        key = self._check_key(key)
        self._ensure()
        short = self._short(key)
        local = short is not None and self.mount_store.exists(short)
        remote = self.backing_store.exists(key)
        if local:
            return "shadowing" if remote else "local"
        if remote:
            return "remote"
        raise StoreKeyError(key, self)

    # ------------------------------------------------------------------ lifecycle

    @property
    def readonly(self) -> bool:  # type: ignore[override]
        """Whether writes are refused: set by hand, or because the mount store is read-only."""
        return self._forced_readonly or is_readonly(self.mount_store)

    @readonly.setter
    def readonly(self, value: bool) -> None:
        """Refuse writes (True) whatever the mount store allows, or stop refusing (False)."""
        self._forced_readonly = bool(value)

    def _open(self, credentials: Any) -> None:
        was_connected = self.mount_store.is_connected()
        self.mount_store.connect(credentials)
        try:
            self.backing_store.connect(credentials)
        except BaseException:
            if not was_connected:
                self.mount_store.disconnect()
            raise

    def _close(self) -> None:
        try:
            self.mount_store.disconnect()
        finally:
            self.backing_store.disconnect()

    def info(self) -> dict:
        """Information about the mounted store and both inner stores.

        ``readonly`` is True only if this store was made read-only or its
        mount store is read-only (the backing store is read-only here anyway);
        ``local`` is True if both inner stores are local; ``mount_point``;
        ``mount`` and ``backing`` are the inner stores' own ``info()``.
        """
        mount, backing = self.mount_store.info(), self.backing_store.info()
        return {
            "readonly": self.readonly,
            "kind": type(self).__name__,
            "url": self.url,
            "local": bool(mount.get("local", False) and backing.get("local", False)),
            "mount_point": self.mount_point,
            "mount": mount,
            "backing": backing,
        }

    # ------------------------------------------------------------------ why a write is refused

    def _readonly_reason(self) -> str | None:
        if self._forced_readonly:
            return f"{self!r} is read-only"
        if is_readonly(self.mount_store):
            return f"the mount store {self.mount_store!r} is read-only"
        return None

    def _check_writable(self, key: str | None = None) -> None:
        reason = self._readonly_reason() if key is None else self.write_denied_reason(key)
        if reason is not None:
            raise ReadOnlyError(reason, key, self)

    def write_denied_reason(self, key: str) -> str | None:
        """None if ``key`` may be written (set, set_data, set_metadata, update_metadata),
        else a sentence saying why not. Does no I/O.

        Raises
        ------
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        key = self._check_key(key)
        if self._short(key) is None:
            return self._outside(key) + "; the backing store is read-only here"
        return self._readonly_reason()

    def delete_denied_reason(self, key: str) -> str | None:
        """None if ``delete(key)`` would succeed, else a sentence saying why not.

        Asks the inner stores whether the key exists.

        Raises
        ------
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        reason = self.write_denied_reason(key)
        if reason is not None:
            return reason
        self._ensure()
        if self.mount_store.exists(self._short(key)):
            return None
        if self.backing_store.exists(key):
            return self._backing_only(key)
        return f"{key!r} does not exist"

    def _backing_only(self, key: str) -> str:
        return (f"{key!r} exists only in the backing store, which is read-only here; "
                f"it cannot be deleted")

    # ------------------------------------------------------------------ read primitives

    def _lookup(self, key: str, read: Any) -> Any:
        short = self._short(key)
        if short is not None:
            try:
                return read(self.mount_store, short)
            except KeyError:
                pass
        try:
            return read(self.backing_store, key)
        except KeyError:
            raise StoreKeyError(key, self) from None

    def _get(self, key: str) -> Value:
        return self._lookup(key, lambda store, k: store.get(k))

    def _stat(self, key: str) -> Entry:
        return dataclasses.replace(self._lookup(key, lambda store, k: store.stat(k)), key=key)

    def _exists(self, key: str) -> bool:
        short = self._short(key)
        if short is not None and self.mount_store.exists(short):
            return True
        return self.backing_store.exists(key)

    def _get_metadata_text(self, key: str) -> str:
        return encode_metadata(self._lookup(key, lambda store, k: store.get_metadata(k)))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        local = set(self.local_keys(prefix))
        yield from sorted(local)
        for key in self.backing_store.keys(prefix):
            if key not in local:
                yield key

    def get_metadata(self, key: str, select: Iterable[str] | None = None) -> dict:
        """A fresh copy of ``key``'s visible metadata (only the ``select`` fields, if given).

        Raises
        ------
        KeyError
            If neither store holds the key.
        """
        key = self._check_key(key)
        self._ensure()
        fields = list(select) if select is not None else None
        return self._lookup(key, lambda store, k: store.get_metadata(k, fields))

    # ------------------------------------------------------------------ listing and queries

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """The immediate children of ``prefix`` in the merged key space, with ``origin`` set.

        One ``list_dir`` on each inner store (none on the mount store when the
        prefix and the mount point do not overlap), so the cost follows the
        number of children. A key's origin is "local" (mount copy only),
        "shadowing" (both) or "remote" (backing only); a folder's says which
        stores hold keys under it. If the mount point lies deeper than
        ``prefix``, its next segment shows as a folder while the mount store
        holds keys. Both listings stream: entries come out, in key order, as
        the inner stores send them (a folder of 100,000 keys shows its first
        rows without waiting for the rest).
        """
        prefix = check_prefix(prefix)
        self._ensure()
        local = mount_children(self.mount_store, self.mount_point, prefix, delimiter)
        return merge_listings(local, self.backing_store.list_dir(prefix, delimiter))

    def query(
        self, select: Iterable[str] | None = None, **kwargs: Any
    ) -> Iterator[tuple[str, dict]]:
        """``(key, metadata)`` for every key whose *visible* metadata has all ``kwargs``.

        A shadowing key is judged by its mount copy only, so every result
        describes what ``get`` returns. ``select`` limits the returned fields.
        """
        fields = list(select) if select is not None else None
        self._ensure()
        return merge_query(self.mount_point, self.local_keys(),
                           self.mount_store.query(fields, **kwargs),
                           self.backing_store.query(fields, **kwargs))

    def query_keys(self, **kwargs: Any) -> Iterator[str]:
        """Keys whose visible metadata has all ``kwargs`` as values (every key with none)."""
        self._ensure()
        pairs = merge_query(self.mount_point, self.local_keys(),
                            ((k, None) for k in self.mount_store.query_keys(**kwargs)),
                            ((k, None) for k in self.backing_store.query_keys(**kwargs)))
        return (key for key, _ in pairs)

    # ------------------------------------------------------------------ writes

    def _put(
        self, key: str, data: BinaryIO | None, metadata_text: str | None, buffer_size: int
    ) -> None:
        short = self._short(key)
        if short is None:  # _check_writable has refused it already; never write outside
            raise ReadOnlyError(self.write_denied_reason(key) or "", key, self)
        mount = self.mount_store
        with self._key_locks.hold(key):
            if data is not None and metadata_text is not None:
                # One call: the inner store's set is atomic (fault 2 of the seed).
                mount.set(short, (data, decode_metadata(metadata_text)), buffer_size)
            elif data is not None:
                if mount.exists(short):
                    mount.set_data(short, data, buffer_size)
                else:
                    # New data for a backing-only key: no need to copy the old data.
                    try:
                        metadata = self.backing_store.get_metadata(key)
                    except KeyError:
                        metadata = {}
                    mount.set(short, (data, metadata), buffer_size)
            elif metadata_text is not None:
                metadata = decode_metadata(metadata_text)
                if mount.exists(short):
                    mount.set_metadata(short, metadata)
                else:
                    self._copy_in(key, short, metadata, buffer_size)

    def flush_to_disk(self, keys: Iterable[str] | None = None) -> None:
        """``Store.flush_to_disk`` of both stores (a key is looked for in each)."""
        self._ensure()
        if keys is None:
            self.mount_store.flush_to_disk()
            self.backing_store.flush_to_disk()
            return
        keys = [check_key(k, self) for k in keys]
        self.mount_store.flush_to_disk([s for s in map(self._short, keys) if s is not None])
        self.backing_store.flush_to_disk(keys)

    def update_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Change only the given fields of ``key``'s metadata (copying a backing-only key in).

        Raises
        ------
        KeyError
            If neither store holds the key.
        ReadOnlyError
            ``key`` is outside the mount point, or the mount store is read-only.
        InvalidMetadataError
            ``metadata`` is not a JSON-compatible dict.
        """
        key = self._check_key(key)
        self._check_writable(key)
        given = copy_metadata(metadata, key)
        self._ensure()
        short = self._short(key)
        with self._key_locks.hold(key):
            try:
                self.mount_store.update_metadata(short, given)
            except KeyError:
                try:
                    current = self.backing_store.get_metadata(key)
                except KeyError:
                    raise StoreKeyError(key, self) from None
                current.update(given)
                self._copy_in(key, short, current, DEFAULT_BUFFER_SIZE)
        self._emit(ev.StoreUpdateEvent(self, key, given))

    def delete(self, key: str) -> None:
        """Delete ``key``'s mount copy.

        A shadowing key's backing version shows again afterwards (like
        ``revert``); a StoreSetEvent with its metadata is emitted instead of a
        StoreDeleteEvent, since the key still exists.

        Raises
        ------
        KeyError
            If neither store holds the key.
        ReadOnlyError
            ``key`` is outside the mount point or only in the backing store,
            or the mount store is read-only.
        """
        key = self._check_key(key)
        self._check_writable(key)
        self._ensure()
        with self._key_locks.hold(key):
            try:
                self.mount_store.delete(self._short(key))
            except KeyError:
                if self.backing_store.exists(key):
                    raise ReadOnlyError(self._backing_only(key), key, self) from None
                raise StoreKeyError(key, self) from None
        if self._wants_events():
            try:
                remote = self.backing_store.get_metadata(key)
            except KeyError:
                self._emit(ev.StoreDeleteEvent(self, key))
            else:
                self._emit(ev.StoreSetEvent(self, key, remote))

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self, notes: str = "") -> Iterator[Transaction]:
        """Everything written through this store in the block commits, or on error rolls back.

        Writes only ever reach the mount store, so this runs the mount store's
        transaction; this store's own events wait for its commit and vanish
        on rollback. A nested call joins the outer transaction. Push writes
        to the backing store, which no transaction here can undo.
        """
        if self._txn is not None:
            with super().transaction(notes) as txn:
                yield txn
            return
        self._ensure()
        # The mount transaction is the inner one: it commits (or fails) before
        # this store's events are released.
        with super().transaction(notes) as txn, self.mount_store.transaction(notes):
            yield txn

    def _rollback(self, txn: Transaction) -> None:
        """Nothing to undo here: the mount store's own transaction rolls back the writes."""
