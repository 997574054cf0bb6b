"""Fast multi-key writes of SqliteStore: one SQL transaction, no Python step per field.

:class:`~storegui.stores.sqlite.store.SqliteStore`'s ``multiset`` uses these
helpers. Every key and value is checked before anything is written (values
unpacked by :func:`~storegui.stores.value.unpack_values`, as every store's
writes do); set / update events are emitted after the commit, as for ``set``.

The bulk case, a ``multiset`` of many new keys with small values in memory
and flat metadata, runs without a Python step per key: keys are checked,
metadata encoded and indexed (:func:`~.index.encode_batch`) and rows
written (a hundred keys or 250 index rows per INSERT statement) by C-level
calls over whole lists. Keys that exist already, large values, repeated keys
and writes someone listens to (progress events) take the general path
through :func:`~.rows.store_rows`, in the same transaction.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from operator import attrgetter
from typing import Any

from ..keys import MAX_KEY_LENGTH
from .index import BatchIndex

#: New keys per INSERT statement (7 parameters each: under SQLite's old limit of 999).
KEY_ROWS_PER_STATEMENT = 100
#: Metadata index rows per INSERT statement (3 parameters each).
INDEX_ROWS_PER_STATEMENT = 250

# Plain ``?`` placeholders only: Python 3.12 warns about numbered ones (``?1``) bound
# from a sequence, and later versions were to refuse them.
_KEYS_INSERT = ("INSERT INTO keys (created, modified, id, key, size, metadata, blob_id, data)"
                " VALUES ")
_KEY_ROW = "(?, ?, ?, ?, ?, ?, NULL, ?)"
_INDEX_INSERT = "INSERT INTO meta_index (name, value, key_id) VALUES "
_INDEX_ROW = "(?, ?, ?)"

_STR = frozenset({str})
_BYTES_IO = frozenset({io.BytesIO})
_CLOSED = attrgetter("closed")


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
        _insert(conn, _KEYS_INSERT, _KEY_ROW, KEY_ROWS_PER_STATEMENT,
                chain.from_iterable((now, now, *row) for row in zip(
                    ids, keys, sizes, batch.texts, inline, strict=True)),
                len(keys), 7)
    except sqlite3.IntegrityError:  # a key exists: the failed statement left no row
        conn.execute("DELETE FROM keys WHERE id >= ?", (first,))
        return False
    for name in sorted(batch.fields):
        positions, values = batch.fields[name]
        order = sorted(range(len(values)), key=values.__getitem__)
        key_ids = map(first.__add__, map(positions.__getitem__, order))
        _insert(conn, _INDEX_INSERT, _INDEX_ROW, INDEX_ROWS_PER_STATEMENT,
                chain.from_iterable((name, *row) for row in zip(
                    map(values.__getitem__, order), key_ids, strict=True)),
                len(values), 3)
    return True


def in_memory(datas: list[Any]) -> bool:
    """Whether every one of ``datas`` is an open ``io.BytesIO`` (the bulk path's streams)."""
    return _BYTES_IO.issuperset(map(type, datas)) and not any(map(_CLOSED, datas))


def pick_rows(positions: Sequence[int], keys: list[str], sizes: list[int], heads: list[bytes],
          batch: BatchIndex) -> tuple[list[str], list[int], list[bytes], BatchIndex]:
    """The keys, sizes, inline values and batch index of the keys at ``positions``."""
    if len(positions) == len(keys):
        return keys, sizes, heads, batch
    return ([keys[p] for p in positions], [sizes[p] for p in positions],
            [heads[p] for p in positions], batch.subset(positions))


def _insert(conn: sqlite3.Connection, insert: str, row: str, per_statement: int,
            parameters: Iterator[Any], rows: int, width: int) -> None:
    """Run ``insert`` with ``rows`` rows of ``width`` ``parameters``, many per statement."""
    full, rest = divmod(rows, per_statement)
    if full:
        sql = insert + ",".join([row] * per_statement)
        take = per_statement * width
        for _ in range(full):
            conn.execute(sql, list(islice(parameters, take)))
    if rest:
        conn.execute(insert + ",".join([row] * rest), list(parameters))


def plain_keys(keys: list[Any]) -> bool:
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
