"""Fast multi-key writes of SqliteStore: one SQL transaction, no Python step per field.

:class:`SqliteBatchWrites` is mixed into :class:`~storegui.stores.sqlite.SqliteStore`
and relies on its ``_db`` (:class:`~.sqlite_connections.SqliteConnections`),
``_read_data`` and ``_store``. Every key and value is checked before anything
is written; set / update events are emitted after the commit, as for ``set``.

The bulk case, a ``multiset`` of many new keys with small values in memory
and flat metadata, runs without a Python step per key: keys are checked,
metadata encoded and indexed (:func:`~.sqlite_index.encode_batch`) and rows
written (a hundred keys or 250 index rows per INSERT statement) by C-level
calls over whole lists. Keys that exist already, large values, repeated keys
and writes someone listens to (progress events) take the general path
through :func:`~.sqlite_rows.store_rows`, in the same transaction.
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from itertools import chain, islice, repeat
from operator import attrgetter, itemgetter
from typing import Any

from . import events as ev
from .base import Store, _unpack_value
from .errors import StoreKeyError
from .keys import MAX_KEY_LENGTH
from .metadata import copy_metadata, decode_metadata, encode_metadata
from .sqlite_blobs import INLINE_MAX, end_owner, new_owner
from .sqlite_index import BatchIndex, encode_batch
from .sqlite_rows import Row, lookup
from .streaming import DEFAULT_BUFFER_SIZE, ProgressReader, check_readable
from .value import Value

#: New keys per INSERT statement (5 parameters each: under SQLite's old limit of 999).
KEY_ROWS_PER_STATEMENT = 100
#: Metadata index rows per INSERT statement (2 parameters each).
INDEX_ROWS_PER_STATEMENT = 250

# The parameter ?1 (the time, or the field name) is bound once per statement.
_KEYS_INSERT = ("INSERT INTO keys (created, modified, id, key, size, metadata, blob_id, data)"
                " VALUES ")
_KEY_ROW = "(?1, ?1, ?, ?, ?, ?, NULL, ?)"
_INDEX_INSERT = "INSERT INTO meta_index (name, value, key_id) VALUES "
_INDEX_ROW = "(?1, ?, ?)"

_STR = frozenset({str})
_TUPLE = frozenset({tuple})
_TWO = frozenset({2})
_BYTES_IO = frozenset({io.BytesIO})
_CLOSED = attrgetter("closed")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


class SqliteBatchWrites:
    """``multiset``, ``multiset_metadata``, ``update_metadata`` and ``multiupdate_metadata``."""

    def _checked_keys(self, keys: Iterable[str], items: list[Any]) -> list[str]:
        """``keys`` as a list, each checked as ``_check_key`` does; also the write checks.

        Raises
        ------
        ValueError
            If there are not as many keys as ``items``.
        InvalidKeyError, ReadOnlyError
            For the first invalid key, or a read-only store.
        """
        keys = list(keys)
        if len(keys) != len(items):
            raise ValueError(f"{len(keys)} keys but {len(items)} values")
        if type(self)._check_key is not Store._check_key or not _plain_keys(keys):
            keys = [self._check_key(key) for key in keys]
        self._check_writable()
        return keys

    def multiset(self, keys: Iterable[str], values: Iterable[Any],
                 buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """``set`` each key to its value, in one transaction (values checked first).

        Raises
        ------
        ValueError
            If there are not as many keys as values.
        InvalidKeyError, InvalidDataError, InvalidMetadataError
            For the first bad key or value; nothing is written.
        """
        values = list(values)
        keys = self._checked_keys(keys, values)
        try:
            datas, metadatas, totals = _unpack_values(keys, values)
            batch = encode_batch(metadatas, keys)
            in_memory = _BYTES_IO.issuperset(map(type, datas)) and not any(map(_CLOSED, datas))
            if not in_memory:
                for key, data in zip(keys, datas, strict=True):
                    check_readable(data, key)
            if (in_memory and not self.event_dispatcher.has_listeners()
                    and len(set(keys)) == len(keys)):
                self._write_new_in_bulk(keys, datas, batch, buffer_size)
            else:
                self._write_rows(keys, datas, batch, totals, buffer_size, "multiset")
        finally:
            if any(map(isinstance, values, repeat(Value))):
                for value in values:
                    if isinstance(value, Value):
                        value.close()

    def multiset_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``set_metadata`` of each key, in one transaction (every key must exist).

        Raises
        ------
        KeyError
            If a key does not exist (nothing is written).
        """
        metadatas = list(metadatas)
        keys = self._checked_keys(keys, metadatas)
        self._write_rows(keys, None, encode_batch(metadatas, keys), None, DEFAULT_BUFFER_SIZE,
                         "multiset_metadata")

    def _write_new_in_bulk(self, keys: list[str], datas: list[io.BytesIO], batch: BatchIndex,
                           buffer_size: int) -> None:
        """``multiset`` of distinct keys from open BytesIO streams, nobody listening."""
        self._ensure()
        write = self._write_in_transaction()
        with self.transaction("multiset"):
            heads = list(map(io.BytesIO.read, datas, repeat(INLINE_MAX + 1)))
            sizes = list(map(len, heads))
            owner = new_owner()
            try:
                # position: (size, None, blob_id) of each value too large to be inline
                large: dict[int, tuple[int, bytes | None, int | None]] = {}
                if max(sizes, default=0) > INLINE_MAX:
                    for position, size in enumerate(sizes):
                        if size > INLINE_MAX:
                            datas[position].seek(-size, io.SEEK_CUR)
                            large[position] = self._read_data(
                                datas[position], buffer_size, owner, [], keys[position])
                with write() as conn:
                    self._store_bulk(conn, keys, sizes, heads, batch, large)
            finally:
                end_owner(owner)

    def _store_bulk(self, conn: sqlite3.Connection, keys: list[str], sizes: list[int],
                    heads: list[bytes], batch: BatchIndex,
                    large: dict[int, tuple[int, bytes | None, int | None]]) -> None:
        """Write the rows: new keys with inline values in bulk, the others through ``_store``.

        The keys are taken to be new (the usual case) until an insert says
        otherwise: looking them up first would cost as much again as
        SQLite's own check that a key is unique.
        """
        small: Sequence[int] = range(len(keys))
        if large:
            small = [p for p in small if p not in large]
        rest: list[int] = sorted(large)
        now = time.time()
        if small and not insert_new_keys(conn, *_pick(small, keys, sizes, heads, batch), now):
            old = {key for key, _ in lookup(conn, [keys[p] for p in small], "id")}
            fresh = [p for p in small if keys[p] not in old]
            rest += [p for p in small if keys[p] in old]
            if fresh:
                insert_new_keys(conn, *_pick(fresh, keys, sizes, heads, batch), now)
        if rest:
            pairs = batch.pairs(rest)
            rows = []
            for p in rest:
                size, inline, blob_id = large.get(p, (sizes[p], heads[p], None))
                rows.append(Row(keys[p], batch.texts[p], size, inline, blob_id, pairs[p]))
            self._store(conn, rows)

    def _write_rows(self, keys: list[str], datas: list[Any] | None, batch: BatchIndex,
                    totals: list[int | None] | None, buffer_size: int, notes: str) -> None:
        """Write keys one :class:`Row` each (``datas`` None: metadata only), in one transaction.

        The general path: any stream, repeated keys (the last write wins, as
        in order), progress events for each streamed value when listened to.
        """
        emit = self.event_dispatcher.emit
        listening = self.event_dispatcher.has_listeners()
        pairs = batch.pairs(range(len(keys)))
        self._ensure()
        write = self._write_in_transaction()
        with self.transaction(notes):
            rows = []
            owner = new_owner()
            try:
                for position, key in enumerate(keys):
                    text, indexed = batch.texts[position], pairs[position]
                    if datas is None:
                        rows.append(Row(key, text, indexed=indexed))
                        continue
                    data = datas[position]
                    if not listening and type(data) is io.BytesIO:
                        # small values in memory (the common bulk case): no chunk machinery
                        head = data.read(INLINE_MAX + 1)
                        if len(head) <= INLINE_MAX:
                            rows.append(Row(key, text, len(head), head, None, indexed))
                            continue
                        data.seek(-len(head), io.SEEK_CUR)
                    reader = data
                    if listening:
                        total = None if totals is None else totals[position]
                        emit(ev.StoreProgressStartEvent(self, key, total))
                        reader = ProgressReader(data, total, self._stepper(key), key=key)
                    try:
                        size, inline, blob_id = self._read_data(reader, buffer_size, owner, [],
                                                                key)
                    except BaseException:
                        if listening:
                            emit(ev.StoreProgressEndEvent(self, key, reader.done, False))
                        raise
                    if listening:
                        emit(ev.StoreProgressEndEvent(self, key, reader.done, True))
                    rows.append(Row(key, text, size, inline, blob_id, indexed))
                with write() as conn:
                    self._store(conn, rows)
                    if listening:
                        texts = dict(lookup(conn, [r.key for r in rows], "metadata"))
            finally:
                end_owner(owner)
            if listening:
                for row in rows:
                    self._emit(ev.StoreSetEvent(self, row.key, decode_metadata(texts[row.key])))

    def _write_in_transaction(self) -> Callable[[], AbstractContextManager[sqlite3.Connection]]:
        """How a write about to open ``transaction()`` gets its connection inside it.

        In a transaction of its own, the plain connection: should the write
        fail, the whole transaction rolls back. Inside a caller's
        transaction, a savepoint (``_db.writing``), so that a failed write
        leaves nothing behind in it. Only then: under a savepoint SQLite
        journals the pages each statement changes, which made a multiset of
        100,000 new keys into a store of 300,000 twice as slow.
        """
        return self._db.use if self._txn is None else self._db.writing

    def _stepper(self, key: str) -> Callable[[int, int | None], None]:
        def step(done: int, total: int | None) -> None:
            self.event_dispatcher.emit(ev.StoreProgressStepEvent(self, key, done, total))

        return step

    def update_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Change only the given fields of ``key``'s metadata (one SQLite transaction).

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        self._update_many(list(zip(self._checked_keys([key], [metadata]), [metadata],
                                   strict=True)), self._db.writing)

    def multiupdate_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``update_metadata`` of each key, in one transaction (every key must exist)."""
        metadatas = list(metadatas)
        pairs = list(zip(self._checked_keys(keys, metadatas), metadatas, strict=True))
        self._ensure()
        write = self._write_in_transaction()
        with self.transaction("multiupdate_metadata"):
            self._update_many(pairs, write)

    def _update_many(self, pairs: list[tuple[str, Mapping]],
                     write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
        updates = [(key, copy_metadata(md, key)) for key, md in pairs]
        with write() as conn:
            # Read and write in one write transaction: no update can be lost.
            current = dict(lookup(conn, [key for key, _ in updates], "metadata"))
            merged: dict[str, dict] = {}
            for key, fields in updates:
                if key not in current:
                    raise StoreKeyError(key, self)
                merged.setdefault(key, decode_metadata(current[key], key, self)).update(fields)
            self._store(conn, [Row(k, encode_metadata(md, k)) for k, md in merged.items()])
        for key, fields in updates:
            self._emit(ev.StoreUpdateEvent(self, key, fields))


def insert_new_keys(conn: sqlite3.Connection, keys: list[str], sizes: list[int],
                    inline: list[bytes], batch: BatchIndex, now: float) -> bool:
    """Insert rows for new ``keys`` with inline data, and their index rows.

    Runs inside the open write transaction of ``conn``. Returns False,
    having inserted nothing, if one of ``keys`` exists already. The index
    rows of each field go in sorted by value: the index B-tree then grows at
    the ends of its runs instead of splitting pages all over.
    """
    # The write lock is held, so nobody else can take these ids.
    first = (conn.execute("SELECT max(id) FROM keys").fetchone()[0] or 0) + 1
    ids = range(first, first + len(keys))
    try:
        _insert(conn, _KEYS_INSERT, _KEY_ROW, KEY_ROWS_PER_STATEMENT, now,
                chain.from_iterable(zip(ids, keys, sizes, batch.texts, inline, strict=True)),
                len(keys), 5)
    except sqlite3.IntegrityError:  # a key exists: the failed statement left no row
        conn.execute("DELETE FROM keys WHERE id >= ?", (first,))
        return False
    for name in sorted(batch.fields):
        positions, values = batch.fields[name]
        order = sorted(range(len(values)), key=values.__getitem__)
        key_ids = map(first.__add__, map(positions.__getitem__, order))
        _insert(conn, _INDEX_INSERT, _INDEX_ROW, INDEX_ROWS_PER_STATEMENT, name,
                chain.from_iterable(zip(map(values.__getitem__, order), key_ids, strict=True)),
                len(values), 2)
    return True


def _pick(positions: Sequence[int], keys: list[str], sizes: list[int], heads: list[bytes],
          batch: BatchIndex) -> tuple[list[str], list[int], list[bytes], BatchIndex]:
    """The keys, sizes, inline values and batch index of the keys at ``positions``."""
    if len(positions) == len(keys):
        return keys, sizes, heads, batch
    return ([keys[p] for p in positions], [sizes[p] for p in positions],
            [heads[p] for p in positions], batch.subset(positions))


def _insert(conn: sqlite3.Connection, insert: str, row: str, per_statement: int,
            first_parameter: Any, parameters: Iterator[Any], rows: int, width: int) -> None:
    """Run ``insert`` with ``rows`` rows of ``width`` ``parameters``, many per statement."""
    full, rest = divmod(rows, per_statement)
    if full:
        sql = insert + ",".join([row] * per_statement)
        take = per_statement * width
        for _ in range(full):
            conn.execute(sql, [first_parameter, *islice(parameters, take)])
    if rest:
        conn.execute(insert + ",".join([row] * rest), [first_parameter, *parameters])


def _plain_keys(keys: list[Any]) -> bool:
    """Whether every one of ``keys`` is a valid key (False: check them one by one)."""
    if not keys:
        return True
    if not _STR.issuperset(map(type, keys)):
        return False
    if min(map(len, keys)) == 0 or max(map(len, keys)) > MAX_KEY_LENGTH:
        return False
    joined = "".join(keys)
    if "\x00" in joined:
        return False
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unpack_values(keys: list[str], values: list[Any]
                   ) -> tuple[list[Any], list[Any], list[int | None] | None]:
    """Streams, metadata and sizes (if known) of ``values``.

    Raises
    ------
    InvalidDataError
        For the first value that is neither a Value nor a (stream, metadata) pair.
    """
    if _TUPLE.issuperset(map(type, values)) and _TWO.issuperset(map(len, values)):
        return list(map(_FIRST, values)), list(map(_SECOND, values)), None
    datas: list[Any] = []
    metadatas: list[Any] = []
    totals: list[int | None] = []
    for key, value in zip(keys, values, strict=True):
        data, metadata, total = _unpack_value(value, key)
        datas.append(data)
        metadatas.append(metadata)
        totals.append(total)
    return datas, metadatas, totals

