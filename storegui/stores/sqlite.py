"""SqliteStore: every key in one SQLite file, large values streamed in chunks.

Design (the parts live in :mod:`.sqlite_schema`, :mod:`.sqlite_connections`,
:mod:`.sqlite_blobs`, :mod:`.sqlite_index`, :mod:`.sqlite_rows` and
:mod:`.sqlite_batch`):

- *Connections.* One per thread for a file (WAL mode: readers never wait
  for the writer; writers wait up to ``timeout`` seconds); a single locked
  one in memory. All are closed by ``disconnect()``.
- *Values.* Up to 2 KiB inline in the key's row; larger ones in 1 MiB chunk
  rows, streamed in and out so a value never sits in memory whole. A write
  streams its chunks in short transactions under a new blob, then swaps the
  key to it in one short transaction: the write lock is never held for the
  whole stream. Inside ``transaction()`` everything is one SQLite
  transaction (BEGIN IMMEDIATE) that commits or rolls back as a whole.
- *Queries* are one indexed SQL query on the metadata index; listings are
  range scans on the key index that skip over sub-folders.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from . import sqlite_schema as schema
from .base import Store, Transaction
from .errors import StoreError, StoreKeyError
from .keys import check_prefix
from .sqlite_batch import SqliteBatchWrites
from .sqlite_blobs import (
    CHUNK_SIZE,
    INLINE_MAX,
    LEASES,
    ChunkReader,
    end_owner,
    fill,
    free_blob,
    new_owner,
    open_blob,
    read_head,
)
from .sqlite_connections import SqliteConnections
from .sqlite_index import (
    COUNT_SQL,
    SELECTIVITY_PROBE,
    index_value,
    prefix_upper_bound,
    query_page_sql,
)
from .sqlite_rows import Row, delete_row, store_rows
from .value import Entry, Value

log = logging.getLogger(__name__)

PAGE = 1000  # rows per query page of a lazy iteration

_GET_SQL = ("SELECT k.size, k.created, k.modified, k.metadata, k.blob_id, k.data, b.chunk_size"
            " FROM keys AS k LEFT JOIN blobs AS b ON b.id = k.blob_id WHERE k.key = ?")


def _inline_value(data: bytes, metadata: str, size: int, created: float,
                  modified: float) -> Value:
    return Value(lambda: io.BytesIO(data), metadata, size, created, modified)


class SqliteStore(SqliteBatchWrites, Store):
    """A store in one SQLite file (or in memory).

    Parameters
    ----------
    path : str or path-like
        The database file (created with its schema if missing or empty), or
        ``":memory:"``.
    readonly : bool
        Open the file read-only; writes raise ReadOnlyError. A file this
        process may not write is opened read-only anyway.
    timeout : float
        Seconds a write waits for another writer before failing.

    Connecting raises :class:`StoreError` naming the file if its folder is
    missing, or it is not an SQLite database, is damaged, or belongs to
    another program.
    """

    local = True

    def __init__(self, path: str | os.PathLike, readonly: bool = False,
                 timeout: float = 60.0) -> None:
        super().__init__()
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise StoreError(f"an SQLite store needs a file path or ':memory:', not {path!r}")
        self.memory = path == ":memory:"
        self.path = path if self.memory else os.path.abspath(os.path.expanduser(path))
        self.readonly = bool(readonly)
        self.timeout = float(timeout)
        self._open_readonly = bool(readonly)
        self._db = SqliteConnections(self.path, self.timeout, self._ensure, self)

    @property
    def url(self) -> str:
        return "sqlite://" + self.path

    def info(self) -> dict:
        """Base information plus ``path`` (the database file or ``":memory:"``)."""
        return {**super().info(), "path": self.path}

    def _open(self, credentials: Any) -> None:
        if not self.memory:
            schema.check_path(self.path)
            exists = os.path.isfile(self.path)
            if self._open_readonly and not exists:
                raise StoreError(f"{schema.describe(self.path)} does not exist "
                                 "(it was to be opened read-only)")
            if not self._open_readonly and exists and not os.access(self.path, os.W_OK):
                self._open_readonly = self.readonly = True
        self._db.open(self._open_readonly)

    def _close(self) -> None:
        self._db.close()

    def _begin(self, txn: Transaction) -> None:
        self._db.begin()

    def _commit(self, txn: Transaction) -> None:
        self._db.commit()

    def _rollback(self, txn: Transaction) -> None:
        self._db.rollback(self._connected)

    # ------------------------------------------------------------------ reading

    def _get(self, key: str) -> Value:
        for _attempt in range(50):
            with self._db.use() as conn:
                row = conn.execute(_GET_SQL, (key,)).fetchone()
                if row is None:
                    raise StoreKeyError(key, self)
                size, created, modified, metadata, blob_id, inline, chunk_size = row
                if blob_id is None:
                    return _inline_value(bytes(inline or b""), metadata, size, created,
                                         modified)
                # Lease first, then check the blob is still live: a writer that
                # swaps it out afterwards sees the lease and leaves the chunks.
                lease = LEASES.acquire(self._db.database, blob_id)
                live = conn.execute("SELECT owner IS NULL FROM blobs WHERE id = ?",
                                    (blob_id,)).fetchone()
            if live is not None and live[0]:
                return self._blob_value(key, blob_id, chunk_size, size, lease, metadata,
                                        created, modified)
            del lease
        raise StoreError(f"{key!r} changed too often to be read; try again", key, self)

    def _blob_value(self, key: str, blob_id: int, chunk_size: int, size: int, lease: Any,
                    metadata: str, created: float, modified: float) -> Value:
        what = f"{key!r} in {schema.describe(self.path)}"

        def fetch(seq: int) -> bytes | None:
            with self._db.use() as conn:
                row = conn.execute("SELECT data FROM chunks WHERE blob_id = ? AND seq = ?",
                                   (blob_id, seq)).fetchone()
            return None if row is None else row[0]

        def opener(start: int = 0, end: int | None = None) -> BinaryIO:
            end = size if end is None else end
            return open_blob(ChunkReader(fetch, lease, chunk_size, size, start, end, what))

        return Value(opener, metadata, size, created, modified, range_opener=opener)

    def _row(self, key: str, sql: str) -> tuple:
        with self._db.use() as conn:
            row = conn.execute(sql, (key,)).fetchone()
        if row is None:
            raise StoreKeyError(key, self)
        return row

    def _stat(self, key: str) -> Entry:
        size, modified = self._row(key, "SELECT size, modified FROM keys WHERE key = ?")
        return Entry(key, False, size, modified)

    def _exists(self, key: str) -> bool:
        with self._db.use() as conn:
            return conn.execute("SELECT 1 FROM keys WHERE key = ?", (key,)).fetchone() is not None

    def _get_metadata_text(self, key: str) -> str:
        return self._row(key, "SELECT metadata FROM keys WHERE key = ?")[0]

    def _pages(self, sql: str, params: Callable[[Any], list], cursor: Callable[[tuple], Any],
               start: Any) -> Iterator[tuple]:
        """Rows of ``sql`` a page at a time (no statement stays open between pages).

        ``sql`` holds ``{op}``: ``>=`` for the first page (from ``start``),
        ``>`` for the next ones (after ``cursor(last row)``).
        """
        position, op = start, ">="
        while True:
            with self._db.use() as conn:
                rows = conn.execute(sql.format(op=op), [*params(position), PAGE]).fetchall()
            yield from rows
            if len(rows) < PAGE:
                return
            position, op = cursor(rows[-1]), ">"

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        upper = prefix_upper_bound(prefix)
        bound = " AND key < ?" if upper is not None else ""
        tail = [upper] if upper is not None else []
        rows = self._pages(f"SELECT key FROM keys WHERE key {{op}} ?{bound} ORDER BY key LIMIT ?",
                           lambda p: [p, *tail], lambda r: r[0], prefix)
        return (key for (key,) in rows)

    def _query(self, criteria: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        try:
            pairs = [(name, index_value(value)) for name, value in criteria.items()]
        except (TypeError, ValueError):  # not a JSON value: no stored metadata equals it
            return iter(())
        if not pairs:
            return self._pages("SELECT key, metadata FROM keys WHERE key {op} ? ORDER BY key"
                               " LIMIT ?", lambda p: [p], lambda r: r[0], "")
        return self._query_rows(pairs)

    def query_keys(self, **kwargs: Any) -> Iterator[str]:
        """Keys whose metadata has all ``kwargs`` as values (every key with none).

        One indexed query, as for ``query``, that does not read the metadata.
        """
        self._ensure()
        if not kwargs:
            return self._iter_keys("")
        try:
            pairs = [(name, index_value(value)) for name, value in kwargs.items()]
        except (TypeError, ValueError):
            return iter(())
        return (row[1] for row in self._matching_rows(pairs, with_metadata=False))

    def _query_rows(self, pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        for _, key, metadata in self._matching_rows(pairs, with_metadata=True):
            yield key, metadata

    def _matching_rows(self, pairs: list[tuple[str, str]], with_metadata: bool) -> Iterator[tuple]:
        """Rows ``(key_id, key[, metadata])`` of the keys matching every ``(name, index text)``."""
        if len(pairs) > 1:
            # Drive the scan with the most selective field: count matches with a
            # growing bound until one field stays under it (cost ~ the smallest count).
            limit = SELECTIVITY_PROBE
            while True:
                with self._db.use() as conn:
                    counts = [conn.execute(COUNT_SQL, (*pair, limit)).fetchone()[0]
                              for pair in pairs]
                if min(counts) < limit or limit >= 1 << 24:
                    break
                limit *= 8
            if min(counts) == 0:
                return
            pairs = [pair for _, pair in sorted(zip(counts, pairs, strict=True),
                                                key=lambda t: t[0])]
        others = [part for pair in pairs[1:] for part in pair]
        yield from self._pages(query_page_sql(len(pairs), with_metadata),
                               lambda after: [*pairs[0], after, *others], lambda r: r[0],
                               -(1 << 63))

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """Children of ``prefix``, in key order, yielded as the scan finds them.

        One indexed query per sub-folder: after each sub-folder the scan jumps
        past every key under it, so the cost grows with the number of
        children, not with the keys below them. Keys come in pages of at most
        ``PAGE`` rows and no statement stays open between pages, so the first
        entries of a folder of 100,000 keys arrive at once and a slow
        consumer holds no lock.
        """
        self._ensure()
        check_prefix(prefix)
        return self._list_dir_pages(prefix, delimiter)

    def _list_dir_pages(self, prefix: str, delimiter: str) -> Iterator[Entry]:
        upper = prefix_upper_bound(prefix)
        bound = " AND key < ?" if upper is not None else ""
        tail = [upper] if upper is not None else []
        start = len(prefix)
        lower, op, batch = prefix, ">=", 32
        while True:
            sql = (f"SELECT key, size, modified FROM keys WHERE key {op} ?{bound}"
                   " ORDER BY key LIMIT ?")
            with self._db.use() as conn:
                rows = conn.execute(sql, [lower, *tail, batch]).fetchall()
            folder = None
            for key, size, modified in rows:
                # split_child, inlined: this loop runs once per listed key
                cut = key.find(delimiter, start) if delimiter else -1
                if cut >= 0:
                    folder = key[:cut + len(delimiter)]
                    yield Entry(folder, True)
                    break
                yield Entry(key, False, size, modified)
            if folder is not None:
                lower, op, batch = prefix_upper_bound(folder), ">=", 32
                if lower is None:
                    return
            elif len(rows) < batch:
                return
            else:
                lower, op, batch = rows[-1][0], ">", min(batch * 2, PAGE)

    # ------------------------------------------------------------------ writing

    def _put(self, key: str, data: BinaryIO | None, metadata_text: str | None,
             buffer_size: int) -> None:
        if data is None:
            with self._db.writing() as conn:
                self._store(conn, [Row(key, metadata_text)])
            return
        if self._txn is None:
            self._put_stream(key, data, metadata_text, buffer_size)
            return
        with self._db.writing():  # one savepoint: a failure leaves nothing of this write behind
            self._put_stream(key, data, metadata_text, buffer_size)

    def _put_stream(self, key: str, data: BinaryIO, metadata_text: str | None,
                    buffer_size: int) -> None:
        owner = new_owner()
        created: list[int] = []
        try:
            size, inline, blob_id = self._read_data(data, buffer_size, owner, created, key)
            with self._db.writing() as conn:
                self._store(conn, [Row(key, metadata_text, size, inline, blob_id)])
        except BaseException:
            if self._txn is None:
                self._discard(created, owner)
            raise
        finally:
            end_owner(owner)

    def _read_data(self, stream: Any, buffer_size: int, owner: str, created: list[int],
                   key: str) -> tuple[int, bytes | None, int | None]:
        """Read ``stream`` into inline bytes, or into a new pending blob chunk by chunk.

        Returns ``(size, inline, blob_id)``. Outside a transaction each chunk
        is its own short transaction, and the stream is read between them.
        """
        head = read_head(stream, INLINE_MAX + 1, key)
        n = len(head)
        if n <= INLINE_MAX:
            return n, head, None
        step = max(1, int(buffer_size))
        with self._db.writing() as conn:
            blob_id = conn.execute(
                "INSERT INTO blobs (chunk_size, owner, started) VALUES (?, ?, ?)",
                (CHUNK_SIZE, owner, time.time())).lastrowid
        created.append(blob_id)
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        view[:n] = head[:n]
        size = seq = 0
        # Inside a transaction a chunk needs no savepoint of its own: the
        # caller's covers the whole value (and SQLite undoes a failed
        # statement). A savepoint per chunk made SQLite keep copies of reused
        # pages in memory: a quarter of the value's size when it filled freed
        # space (256 MB for a 1 GiB import).
        chunk_write = self._db.writing if self._txn is None else self._db.use
        while True:
            n += fill(stream, view[n:], step, key)
            if n == 0:
                break
            with chunk_write() as conn:
                conn.execute("INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                             (blob_id, seq, view[:n]))
            size += n
            seq += 1
            if n < CHUNK_SIZE:
                break
            n = 0
        return size, None, blob_id

    def _discard(self, blob_ids: list[int], owner: str) -> None:
        """Free the pending blobs of a failed write (those still pending under ``owner``)."""
        for blob_id in blob_ids:
            try:
                with self._db.use() as conn:
                    row = conn.execute("SELECT owner FROM blobs WHERE id = ?",
                                       (blob_id,)).fetchone()
                    if row is not None and row[0] == owner:
                        free_blob(conn, blob_id)
            except StoreError as exc:  # left for the orphan sweep at the next connect
                log.warning("could not remove the partial data of a failed write: %s", exc)

    def _store(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        garbage = store_rows(conn, rows, time.time(), lambda k: StoreKeyError(k, self))
        self._db.add_garbage(garbage)

    def _delete(self, key: str) -> None:
        with self._db.writing() as conn:
            blob_id = delete_row(conn, key, lambda k: StoreKeyError(k, self))
            if blob_id is not None:
                self._db.add_garbage([blob_id])
