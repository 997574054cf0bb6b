"""The store contract: :class:`Store`, with every convenience method built on a few primitives.

A concrete store implements the primitives:

- ``_get(key) -> Value`` and ``_stat(key) -> Entry`` (raise :class:`StoreKeyError`)
- ``_put(key, data, metadata_text, buffer_size)``: write atomically; ``data``
  None keeps the existing data, ``metadata_text`` None keeps the existing
  metadata (``"{}"`` for a new key)
- ``_delete(key)``
- ``_iter_keys(prefix)``: every key starting with ``prefix``

and overrides the defaults it can do faster (``get_metadata``, ``exists``,
``list_dir``, ``_query``, ``multiset``...). Transactions: by default an undo
log of per-key snapshots (``_snapshot`` / ``_restore``); a store with native
transactions overrides ``_begin`` / ``_commit`` / ``_rollback``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from . import events as ev
from .errors import InvalidDataError, ReadOnlyError, StoreError, StoreKeyError
from .importing import restate_derived
from .keylocks import KeyLocks
from .keys import check_key, check_prefix, glob_literal_prefix, glob_matcher, split_child
from .metadata import (
    copy_metadata,
    decode_metadata,
    encode_metadata,
    matches,
    merge_metadata,
    select_fields,
)
from .sqlite.schema import refuse_in_use
from .transfer.streaming import DEFAULT_BUFFER_SIZE, ProgressReader, check_readable, copy_stream
from .value import Entry, Value, unpack_value

_MISSING = object()

#: The ``sync`` settings of stores that write to a local disk (FileSystemStore,
#: SqliteStore). Both make every write atomic, so a killed app never leaves a
#: torn or half-written key. ``"normal"`` (the default) returns once the data
#: is handed to the operating system, which writes it to disk within seconds,
#: as ``cp`` and ``mv`` do; a power loss in those seconds can undo the latest
#: writes (the key then holds its previous value, or is reported damaged if
#: only part of a large value reached the disk). ``"full"`` waits for the disk
#: on every write. Either way, a push or move waits for the disk
#: (:meth:`Store.flush_to_disk`) before it deletes the source.
SYNC_MODES = ("normal", "full")


def check_sync(sync: str) -> str:
    """``sync`` if it is one of :data:`SYNC_MODES`, else a StoreError naming them."""
    if sync not in SYNC_MODES:
        raise StoreError(f"unknown sync setting {sync!r}: use one of {', '.join(SYNC_MODES)}")
    return sync


class Transaction:
    """State of one open transaction: undo log and the events to emit on commit."""

    def __init__(self, notes: str) -> None:
        self.notes = notes
        self.undo: dict[str, Any] = {}
        self.events: list[ev.StoreEvent] = []
        self.depth = 1


class Store:
    """Base class of every store; see the module docstring for what subclasses provide.

    A store connects on first use; ``connect()`` does so eagerly (and checks
    that the store can be reached), ``disconnect()`` releases its resources
    and a later call connects again.
    """

    #: Whether writes are refused. Subclasses or instances may set it.
    readonly: bool = False
    #: Whether the data lives on this machine, so reading a key back (to
    #: verify a copy by its digest) is cheap. Reported as ``info()["local"]``.
    local: bool = False

    def __init__(self) -> None:
        self.event_dispatcher = ev.EventDispatcher()
        self._connected = False
        self._connect_lock = threading.RLock()
        # Serialises read-modify-write sequences (update_metadata) per key; a
        # store-wide lock could wait on a database lock held by another thread.
        self._key_locks = KeyLocks()
        self._txn_local = threading.local()

    # ------------------------------------------------------------------ lifecycle

    def connect(self, credentials: Any = None) -> None:
        """Open the store's resources (idempotent).

        Raises
        ------
        StoreError
            If the store cannot be reached or opened; the message says why.
        """
        with self._connect_lock:
            if not self._connected:
                self._open(credentials)
                self._connected = True

    def disconnect(self) -> None:
        """Release the store's resources; a later call or ``connect()`` reopens them."""
        with self._connect_lock:
            if self._connected:
                self._connected = False
                self._close()

    def is_connected(self) -> bool:
        """Whether the store is connected now."""
        return self._connected

    def info(self) -> dict:
        """Information about the store: at least ``readonly``, ``kind`` and ``local``.

        ``local`` says whether the data is on this machine, so re-reading a
        key to verify a copy is cheap (MountedStore's push relies on it).
        """
        return {
            "readonly": self.readonly,
            "kind": type(self).__name__,
            "url": self.url,
            "local": self.local,
        }

    @property
    def url(self) -> str:
        """A URL that ``open_store`` accepts to open this store again."""
        return ""

    def _open(self, credentials: Any) -> None:
        """Subclass hook: open resources."""

    def _close(self) -> None:
        """Subclass hook: release resources."""

    def _ensure(self) -> None:
        if not self._connected:
            self.connect()

    def __enter__(self) -> Store:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # ------------------------------------------------------------------ primitives

    def _get(self, key: str) -> Value:
        raise NotImplementedError

    def _stat(self, key: str) -> Entry:
        value = self._get(key)
        value.close()
        return Entry(key, False, value.size, value.modified)

    def _put(
        self, key: str, data: BinaryIO | None, metadata_text: str | None, buffer_size: int
    ) -> None:
        raise NotImplementedError

    def _delete(self, key: str) -> None:
        raise NotImplementedError

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        raise NotImplementedError

    def _exists(self, key: str) -> bool:
        try:
            self._stat(key)
        except KeyError:
            return False
        return True

    def _get_metadata_text(self, key: str) -> str:
        value = self._get(key)
        value.close()
        return value.metadata_text

    def _query(self, criteria: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """(key, metadata_text) of keys whose metadata matches ``criteria``."""
        for key in self._iter_keys(""):
            try:
                text = self._get_metadata_text(key)
            except KeyError:
                continue
            if not criteria or matches(decode_metadata(text, key, self), criteria):
                yield key, text

    # ------------------------------------------------------------------ checks

    def _check_key(self, key: Any) -> str:
        return check_key(key, self)

    def _check_writable(self, key: str | None = None) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self!r} is read-only", key, self)

    # ------------------------------------------------------------------ events and transactions

    @property
    def _txn(self) -> Transaction | None:
        return getattr(self._txn_local, "txn", None)

    def _emit(self, event: ev.StoreEvent) -> None:
        txn = self._txn
        if txn is not None and isinstance(event, ev.StoreKeyEvent):
            txn.events.append(event)
        else:
            self.event_dispatcher.emit(event)

    def _remember(self, key: str) -> None:
        """Record ``key``'s state before the first change in the open transaction."""
        txn = self._txn
        if txn is not None and key not in txn.undo:
            txn.undo[key] = self._snapshot(key)

    def _snapshot(self, key: str) -> Any:
        """Subclass hook: an object ``_restore`` can put back (None if unsupported)."""
        return None

    def _restore(self, key: str, snapshot: Any) -> None:
        """Subclass hook: put back a snapshot taken by ``_snapshot``."""

    def _begin(self, txn: Transaction) -> None:
        """Subclass hook: a transaction starts."""

    def _commit(self, txn: Transaction) -> None:
        """Subclass hook: a transaction commits."""

    def _rollback(self, txn: Transaction) -> None:
        """Undo the transaction's changes (default: restore the snapshots, newest first)."""
        for key, snap in reversed(list(txn.undo.items())):
            self._restore(key, snap)

    @contextlib.contextmanager
    def transaction(self, notes: str = "") -> Iterator[Transaction]:
        """A context manager: everything written in the block commits, or on error rolls back.

        Transactions belong to the thread that opens them; a nested
        ``transaction()`` joins the outer one. Set / update / delete events
        are emitted after the commit, and dropped on rollback.
        """
        txn = self._txn
        if txn is not None:
            txn.depth += 1
            try:
                yield txn
            finally:
                txn.depth -= 1
            return
        self._ensure()
        txn = Transaction(notes)
        self._begin(txn)
        self._txn_local.txn = txn
        self.event_dispatcher.emit(ev.StoreTransactionStartEvent(self, notes))
        try:
            yield txn
        except BaseException:
            self._txn_local.txn = None
            self._rollback(txn)
            self.event_dispatcher.emit(ev.StoreTransactionEndEvent(self, notes, False))
            raise
        self._txn_local.txn = None
        try:
            self._commit(txn)
        except BaseException:
            self._rollback(txn)
            self.event_dispatcher.emit(ev.StoreTransactionEndEvent(self, notes, False))
            raise
        self.event_dispatcher.emit(ev.StoreTransactionEndEvent(self, notes, True))
        for event in txn.events:
            self.event_dispatcher.emit(event)

    # ------------------------------------------------------------------ read

    def get(self, key: str) -> Value:
        """The data stream and metadata of ``key``.

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        key = self._check_key(key)
        self._ensure()
        return self._get(key).locate(key, self)

    def stat(self, key: str) -> Entry:
        """Size and modification time of ``key`` without opening its data."""
        key = self._check_key(key)
        self._ensure()
        return self._stat(key)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        key = self._check_key(key)
        self._ensure()
        return self._exists(key)

    def get_data(self, key: str) -> BinaryIO:
        """A readable binary stream of ``key``'s data (close it when done)."""
        return self.get(key).data

    def get_data_range(self, key: str, start: int, end: int | None = None) -> BinaryIO:
        """A stream of bytes ``start`` .. ``end - 1`` of ``key``'s data (half-open)."""
        return self.get(key).range(start, end)

    def get_metadata(self, key: str, select: Iterable[str] | None = None) -> dict:
        """A fresh copy of ``key``'s metadata (only the ``select`` fields, if given)."""
        key = self._check_key(key)
        self._ensure()
        return select_fields(decode_metadata(self._get_metadata_text(key), key, self), select)

    def multiget(self, keys: Iterable[str]) -> Iterator[Value]:
        """``get`` of each key, in order."""
        return (self.get(key) for key in list(keys))

    def multiget_data(self, keys: Iterable[str]) -> Iterator[BinaryIO]:
        """``get_data`` of each key, in order."""
        return (self.get_data(key) for key in list(keys))

    def multiget_metadata(
        self, keys: Iterable[str], select: Iterable[str] | None = None
    ) -> Iterator[dict]:
        """``get_metadata`` of each key, in order."""
        select = list(select) if select is not None else None
        return (self.get_metadata(key, select) for key in list(keys))

    def query(
        self, select: Iterable[str] | None = None, **kwargs: Any
    ) -> Iterator[tuple[str, dict]]:
        """``(key, metadata)`` for every key whose metadata has all ``kwargs`` as values.

        With no ``kwargs``, every key. ``select`` limits the returned fields.
        """
        self._ensure()
        select = list(select) if select is not None else None
        for key, text in self._query(kwargs):
            yield key, select_fields(decode_metadata(text, key, self), select)

    def query_keys(self, **kwargs: Any) -> Iterator[str]:
        """Keys whose metadata has all ``kwargs`` as values (every key with none)."""
        self._ensure()
        if not kwargs:
            return self._iter_keys("")
        return (key for key, _ in self._query(kwargs))

    def glob(self, pattern: str) -> Iterator[str]:
        """Keys matching a shell-style ``pattern`` (``*`` also matches ``/``)."""
        self._ensure()
        pattern = check_prefix(pattern)
        match = glob_matcher(pattern)
        return (k for k in self._iter_keys(glob_literal_prefix(pattern)) if match(k))

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix``."""
        self._ensure()
        return self._iter_keys(check_prefix(prefix))

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """The immediate children of ``prefix``: keys, and sub-prefixes as folders.

        Like S3's delimiter listing: ``prefix`` normally ends with the
        delimiter (or is ''). Entries come in key order; a folder's ``key``
        ends with the delimiter.
        """
        self._ensure()
        check_prefix(prefix)
        seen: dict[str, Entry] = {}
        for key in self._iter_keys(prefix):
            child, is_dir = split_child(key, prefix, delimiter)
            if is_dir:
                if child not in seen:
                    seen[child] = Entry(child, True)
            else:
                try:
                    seen[child] = self._stat(key)
                except KeyError:
                    continue
        return iter(sorted(seen.values(), key=lambda e: e.key))

    def to_file(
        self, key: str, path: str | os.PathLike, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        """Write ``key``'s data to the file ``path`` (atomically: temp file + rename)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        with self.get(key).data as src:
            fd, tmp = tempfile.mkstemp(prefix=".storegui-", suffix=".part", dir=directory)
            try:
                with os.fdopen(fd, "wb") as dst:
                    copy_stream(src, dst, buffer_size)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def to_bytes(self, key: str) -> bytes:
        """``key``'s data as bytes."""
        with self.get(key).data as stream:
            return stream.read()

    # ------------------------------------------------------------------ write

    def _write(
        self,
        key: str,
        data: BinaryIO | None,
        metadata_text: str | None,
        buffer_size: int,
        total: int | None = None,
    ) -> None:
        """Run ``_put`` with progress events, undo logging and the set event."""
        self._ensure()
        self._check_writable(key)
        if data is None:
            self._remember(key)
            self._put(key, None, metadata_text, buffer_size)
        else:
            emit = self.event_dispatcher.emit
            if total is None:
                total = getattr(data, "total", None)
            emit(ev.StoreProgressStartEvent(self, key, total))

            def step(done: int, size: int | None) -> None:
                emit(ev.StoreProgressStepEvent(self, key, done, size))

            listening = self.event_dispatcher.has_listeners()
            if isinstance(data, ProgressReader):  # a copy's reader: report through it
                reporting = data.also_reporting(step if listening else None)
            else:
                reporting = contextlib.nullcontext(ProgressReader(
                    data, total, step if listening else None, key=key, owns_stream=False))
            try:
                with reporting as reader:
                    self._remember(key)
                    self._put(key, reader, metadata_text, buffer_size)
            except BaseException:
                emit(ev.StoreProgressEndEvent(self, key, reader.done, False))
                raise
            emit(ev.StoreProgressEndEvent(self, key, reader.done, True))
        if self.event_dispatcher.has_listeners() or self._txn is not None:
            if metadata_text is not None:
                md = decode_metadata(metadata_text)
            else:
                md = self.get_metadata(key)
            self._emit(ev.StoreSetEvent(self, key, md))

    def set(self, key: str, value: Value | tuple, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """Store data and metadata under ``key`` (all or nothing).

        ``value`` is a :class:`Value` or a ``(readable binary stream, metadata dict)`` pair.

        Raises
        ------
        InvalidKeyError, InvalidMetadataError, InvalidDataError
            Bad input; the store is unchanged.
        ReadOnlyError
            The store cannot be written.
        """
        key = self._check_key(key)
        self._check_writable(key)
        data, metadata, total = unpack_value(value, key)
        text = encode_metadata(metadata, key)
        check_readable(data, key)
        try:
            self._write(key, data, text, buffer_size, total)
        finally:
            if isinstance(value, Value):
                value.close()

    def set_data(self, key: str, data: BinaryIO, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """Replace ``key``'s data, keeping its metadata (a new key gets ``{}``).

        Metadata describing the old bytes is not kept as it was: a ``size``
        becomes the new size, ``sha256`` and ``mtime`` are dropped (see
        :mod:`.importing`, "Derived metadata never goes stale").
        """
        key = self._check_key(key)
        self._check_writable(key)
        check_readable(data, key)
        self._ensure()
        with self._key_locks.hold(key):
            try:
                current = decode_metadata(self._get_metadata_text(key), key, self)
            except StoreError:  # a new key, or damaged metadata the write replaces
                current = {}
            stripped = restate_derived(current, None)
            if stripped is current:  # nothing describes the old bytes: keep it as it is
                self._write(key, data, None, buffer_size)
                return
            # One write swaps the bytes and drops the stale figures together;
            # the new size, known once the data is in, follows.
            self._write(key, data, encode_metadata(stripped, key), buffer_size)
            if "size" in current:
                size = self._stat(key).size
                if size is not None:
                    stripped["size"] = size
                    self._write(key, None, encode_metadata(stripped, key), buffer_size)

    def set_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Replace ``key``'s metadata.

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        key = self._check_key(key)
        self._check_writable(key)
        text = encode_metadata(metadata, key)
        self._ensure()
        if not self._exists(key):
            raise StoreKeyError(key, self)
        self._write(key, None, text, DEFAULT_BUFFER_SIZE)

    def update_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Change only the given fields of ``key``'s metadata.

        Raises
        ------
        KeyError
            If the key does not exist.
        InvalidMetadataError
            ``metadata`` is not a JSON-compatible dict (nothing is written).
        """
        key = self._check_key(key)
        self._check_writable(key)
        fields = copy_metadata(metadata, key)  # validate before touching anything
        self._ensure()
        with self._key_locks.hold(key):
            self._update_fields(key, fields)
        self._emit(ev.StoreUpdateEvent(self, key, fields))

    def _update_fields(self, key: str, fields: dict) -> None:
        """Set the validated ``fields`` over ``key``'s stored metadata (the lock is held).

        Subclass hook: a store that can read and write in one step overrides
        it (SqliteStore: one write transaction); the merge itself is always
        :func:`~.metadata.merge_metadata`.

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        text = merge_metadata(self._get_metadata_text(key), fields, key, self)
        self._remember(key)
        self._put(key, None, text, DEFAULT_BUFFER_SIZE)

    def delete(self, key: str) -> None:
        """Delete ``key``.

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        key = self._check_key(key)
        self._check_writable(key)
        self._ensure()
        self._remember(key)
        self._delete(key)
        self._emit(ev.StoreDeleteEvent(self, key))

    def flush_to_disk(self, keys: Iterable[str] | None = None) -> None:
        """Make the current values of ``keys`` (all writes so far if None) survive a power loss.

        Writes are always atomic and survive the app being killed. Whether
        they also survive a power loss or an OS crash the moment they return
        depends on the store's ``sync`` setting (see :data:`SYNC_MODES`): with
        ``"normal"`` the operating system writes them to disk within seconds,
        as it does for ``cp``; a caller about to delete the only other copy of
        some data (a push, a move) calls this first. A no-op for stores whose
        writes are durable when they return (S3) or never (memory).

        Raises
        ------
        StoreError
            If the data cannot be flushed (a disk error).
        """
        self._ensure()

    def _multi(self, notes: str, fn: Any, keys: Iterable[str], items: Iterable[Any]) -> None:
        keys = list(keys)
        items = list(items)
        if len(keys) != len(items):
            raise ValueError(f"{len(keys)} keys but {len(items)} values")
        with self.transaction(notes):
            for key, item in zip(keys, items, strict=True):
                fn(key, item)

    def multiset(
        self, keys: Iterable[str], values: Iterable[Any], buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        """``set`` each key to its value, in one transaction."""
        self._multi("multiset", lambda k, v: self.set(k, v, buffer_size), keys, values)

    def multiset_data(
        self, keys: Iterable[str], datas: Iterable[BinaryIO], buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        """``set_data`` of each key, in one transaction."""
        self._multi("multiset_data", lambda k, d: self.set_data(k, d, buffer_size), keys, datas)

    def multiset_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``set_metadata`` of each key, in one transaction."""
        self._multi("multiset_metadata", self.set_metadata, keys, metadatas)

    def multiupdate_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``update_metadata`` of each key, in one transaction."""
        self._multi("multiupdate_metadata", self.update_metadata, keys, metadatas)

    def from_file(
        self,
        key: str,
        path: str | os.PathLike,
        metadata: Mapping[str, Any] | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        """Store the file at ``path`` as ``key``'s data (with ``metadata`` if given).

        Raises
        ------
        StoreError
            ``path`` is the database file of an SQLite store open in this process.
        """
        refuse_in_use(path)
        with open(path, "rb") as f:
            if metadata is None:
                self.set_data(key, f, buffer_size)
            else:
                total = os.fstat(f.fileno()).st_size
                self.set(key, Value(lambda: f, metadata, total), buffer_size)

    def from_bytes(self, key: str, data: bytes, metadata: Mapping[str, Any] | None = None) -> None:
        """Store ``data`` as ``key``'s data (with ``metadata`` if given)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidDataError(f"data must be bytes, not {type(data).__name__}", key)
        import io

        if metadata is None:
            self.set_data(key, io.BytesIO(data))
        else:
            self.set(key, Value.from_bytes(bytes(data), dict(metadata)))


__all__ = ["Store", "Transaction", "StoreError"]
