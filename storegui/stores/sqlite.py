"""SqliteStore: every key in one SQLite file, large values in files beside it.

Design (the parts live in :mod:`.sqlite_schema`, :mod:`.sqlite_connections`,
:mod:`.sqlite_blobs`, :mod:`.sqlite_files` (with :mod:`.sqlite_file_streams`
and :mod:`.sqlite_file_sweep`), :mod:`.sqlite_index`, :mod:`.sqlite_rows`,
:mod:`.sqlite_writes` (the write path) and :mod:`.sqlite_batch`):

- *Connections.* One per thread for a file (WAL mode: readers never wait
  for the writer; writers wait up to ``timeout`` seconds); a single locked
  one in memory. All are closed by ``disconnect()``.
- *Values.* Up to 2 KiB inline in the key's row; from ``external_from``
  bytes (1 MiB by default) a file in the ``<dbfile>-values/`` folder, never
  modified once written (see :mod:`.sqlite_files`); in between, 1 MiB chunk
  rows. Values stream in and out, never whole in memory. A write streams
  its data (chunks in short transactions, or a file) under a new blob, then
  swaps the key to it in one short transaction: the write lock is never
  held for the whole stream. Inside ``transaction()`` everything is one
  SQLite transaction (BEGIN IMMEDIATE) that commits or rolls back as a
  whole, the files it made included.
- *Durability* (``sync``, see :data:`~.base.SYNC_MODES`): "normal" is WAL
  with ``synchronous = NORMAL`` and value files left to the operating
  system; "full" fsyncs every commit, and each value file and its folder
  before the row naming it commits. :meth:`SqliteStore.flush_to_disk`
  makes chosen keys durable on demand.
- *Queries* are one indexed SQL query on the metadata index; listings are
  range scans on the key index that skip over sub-folders.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from . import sqlite_schema as schema
from .base import Store, Transaction, check_sync
from .errors import StoreError, StoreKeyError
from .keys import check_prefix
from .sqlite_batch import SqliteBatchWrites
from .sqlite_blobs import LEASES, ChunkReader, open_blob
from .sqlite_connections import SqliteConnections
from .sqlite_file_streams import file_value
from .sqlite_files import DEFAULT_EXTERNAL_FROM, SUPPORTED, ValueFiles
from .sqlite_index import (
    COUNT_SQL,
    SELECTIVITY_PROBE,
    index_value,
    prefix_upper_bound,
    query_page_sql,
)
from .sqlite_writes import SqliteWrites
from .value import Entry, Value

PAGE = 1000  # rows per query page of a lazy iteration

_GET_SQL = ("SELECT k.size, k.created, k.modified, k.metadata, k.blob_id, k.data, b.chunk_size,"
            " {file} FROM keys AS k LEFT JOIN blobs AS b ON b.id = k.blob_id WHERE k.key = ?")
_GET_SQL_FILES = _GET_SQL.format(file="b.file")
_GET_SQL_V1 = _GET_SQL.format(file="NULL")  # a read-only file of schema version 1


def _inline_value(data: bytes, metadata: str, size: int, created: float,
                  modified: float) -> Value:
    return Value(lambda: io.BytesIO(data), metadata, size, created, modified)


class SqliteStore(SqliteBatchWrites, SqliteWrites, Store):
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
    external_from : int or None
        Values of at least this many bytes (and always more than 2 KiB) are
        files in the folder ``<path>-values`` beside the database; None keeps
        every value inside the database file. Ignored in memory.
    sync : str
        "normal" (default) or "full": whether each write waits for the disk
        (see the module docstring).

    Raises
    ------
    StoreError
        A bad ``sync`` or ``external_from``. Connecting raises it naming the
        file if its folder is missing, or it is not an SQLite database, is
        damaged, or belongs to another program.
    """

    local = True

    def __init__(self, path: str | os.PathLike, readonly: bool = False,
                 timeout: float = 60.0, external_from: int | None = DEFAULT_EXTERNAL_FROM,
                 sync: str = "normal") -> None:
        super().__init__()
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise StoreError(f"an SQLite store needs a file path or ':memory:', not {path!r}")
        self.sync = check_sync(sync)
        if external_from is not None and (isinstance(external_from, bool)
                                          or not isinstance(external_from, int)
                                          or external_from < 0):
            raise StoreError(f"external_from must be a number of bytes (0 or more) or None, "
                             f"not {external_from!r}")
        self.memory = path == ":memory:"
        self.path = path if self.memory else os.path.abspath(os.path.expanduser(path))
        self.readonly = bool(readonly)
        self.timeout = float(timeout)
        files = SUPPORTED and not self.memory
        #: Values from this size on are files (None: all inside the database).
        self.external_from = external_from if files else None
        self._open_readonly = bool(readonly)
        # Beside the real file: the same folder whichever symbolic link names the file.
        self._files = ValueFiles(os.path.realpath(self.path), self.sync, self) if files else None
        self._db = SqliteConnections(self.path, self.timeout, self._ensure, self, self.sync,
                                     self._files)

    @property
    def url(self) -> str:
        return "sqlite://" + self.path

    def info(self) -> dict:
        """Base information plus ``path`` (the database file or ``":memory:"``), ``sync``
        and ``external_from`` (the size from which values are files; None: never).
        """
        return {**super().info(), "path": self.path, "sync": self.sync,
                "external_from": self.external_from}

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
        sql = _GET_SQL_FILES if self._db.version >= schema.FILES_VERSION else _GET_SQL_V1
        missing = None
        for _attempt in range(50):
            with self._db.use() as conn:
                row = conn.execute(sql, (key,)).fetchone()
                if row is None:
                    raise StoreKeyError(key, self)
                size, created, modified, metadata, blob_id, inline, chunk_size, file = row
                if blob_id is None:
                    return _inline_value(bytes(inline or b""), metadata, size, created,
                                         modified)
                if file is None:
                    if not chunk_size:  # a value file, in a file upgraded since it was opened
                        raise StoreError(f"{schema.describe(self.path)} was upgraded by another "
                                         "program since it was opened: open it again", key, self)
                    # Lease first, then check the blob is still live: a writer that
                    # swaps it out afterwards sees the lease and leaves the chunks.
                    lease = LEASES.acquire(self._db.database, blob_id)
                    live = conn.execute("SELECT owner IS NULL FROM blobs WHERE id = ?",
                                        (blob_id,)).fetchone()
            if file is not None:
                # An open file keeps its version: no lease needed. Absent, it was
                # replaced since the row was read; absent twice, it is lost.
                value = self._file_value(key, file, size, metadata, created, modified)
                if value is not None:
                    return value
                if missing == (blob_id, file):
                    raise StoreError(
                        f"the data of {key!r} is missing from {schema.describe(self.path)}: "
                        f"its value file {self._files.where(file)} is gone (was the folder "
                        "beside the database moved, or cleaned by another program?)",
                        key, self)
                missing = (blob_id, file)
                continue
            if live is not None and live[0]:
                return self._blob_value(key, blob_id, chunk_size, size, lease, metadata,
                                        created, modified)
            del lease
        raise StoreError(f"{key!r} changed too often to be read; try again", key, self)

    def _file_value(self, key: str, file: str, size: int, metadata: str, created: float,
                    modified: float) -> Value | None:
        """The value held in the value file ``file``, or None if the file is not there."""
        if self._files is None:
            raise StoreError(f"the data of {key!r} is in a file beside the database, which "
                             "this system cannot read (it needs flock and openat)", key, self)
        handle = self._files.open_value(file, key)
        if handle is None:
            return None
        actual = os.fstat(handle.fd).st_size
        if actual != size:
            raise StoreError(f"the data of {key!r} in {schema.describe(self.path)} is damaged: "
                             f"its value file {self._files.where(file)} holds {actual} bytes, "
                             f"not {size}", key, self)
        return file_value(handle, size, metadata, created, modified)

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
