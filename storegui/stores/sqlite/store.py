"""SqliteStore: every key in one SQLite file, large values in files beside it.

Design (the parts live in :mod:`.schema`, :mod:`.connections`,
:mod:`.blobs`, :mod:`.files` (with :mod:`.file_sweep`
and :mod:`..localfiles`), :mod:`.index`, :mod:`.rows`,
and :mod:`.batch`; the write path is in this module):

- *Connections.* One per thread for a file (WAL mode: readers never wait
  for the writer; writers wait up to ``timeout`` seconds); a single locked
  one in memory. All are closed by ``disconnect()``.
- *Values.* Up to 2 KiB inline in the key's row; from ``external_from``
  bytes (1 MiB by default) a file in the ``<dbfile>-values/`` folder, never
  modified once written (see :mod:`.files`); in between, 1 MiB chunk
  rows. Values stream in and out, never whole in memory. A write streams
  its data (chunks in short transactions, or a file) under a new blob, then
  swaps the key to it in one short transaction: the write lock is never
  held for the whole stream. Inside ``transaction()`` everything is one
  SQLite transaction (BEGIN IMMEDIATE) that commits or rolls back as a
  whole, the files it made included.
- *Durability* (``sync``, see :data:`~..contract.SYNC_MODES`): "normal" is WAL
  with ``synchronous = NORMAL`` and value files left to the operating
  system; "full" fsyncs every commit, and each value file and its folder
  before the row naming it commits. :meth:`SqliteStore.flush_to_disk`
  makes chosen keys durable on demand.
- *Queries* are one indexed SQL query on the metadata index; listings are
  range scans on the key index that skip over sub-folders.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from itertools import repeat
from typing import Any, BinaryIO

from .. import events as ev
from ..contract import Store, Transaction, check_sync
from ..errors import StoreError, StoreKeyError
from ..keys import check_key, check_prefix
from ..localfiles.streams import file_value
from ..metadata import copy_metadata, decode_metadata, merge_metadata
from ..transfer.streaming import DEFAULT_BUFFER_SIZE, ProgressReader, check_readable
from ..value import Entry, Value, unpack_values
from . import schema
from .batch import in_memory, insert_new_keys, pick_rows, plain_keys
from .blobs import (
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
from .connections import SqliteConnections
from .files import DEFAULT_EXTERNAL_FROM, SUPPORTED, ValueFiles, remaining_size
from .index import (
    COUNT_SQL,
    SELECTIVITY_PROBE,
    BatchIndex,
    encode_batch,
    index_value,
    prefix_upper_bound,
    query_page_sql,
)
from .rows import Row, delete_row, lookup, store_rows

PAGE = 1000  # rows per query page of a lazy iteration

_GET_SQL = ("SELECT k.size, k.created, k.modified, k.metadata, k.blob_id, k.data, b.chunk_size,"
            " {file} FROM keys AS k LEFT JOIN blobs AS b ON b.id = k.blob_id WHERE k.key = ?")
_GET_SQL_FILES = _GET_SQL.format(file="b.file")
_GET_SQL_V1 = _GET_SQL.format(file="NULL")  # a read-only file of schema version 1


def _inline_value(data: bytes, metadata: str, size: int, created: float,
                  modified: float) -> Value:
    return Value(lambda: io.BytesIO(data), metadata, size, created, modified)


log = logging.getLogger(__name__)

_FILES_SQL = ("SELECT b.file FROM keys AS k JOIN blobs AS b ON b.id = k.blob_id"
              " WHERE b.file IS NOT NULL AND k.key IN ({marks})")


class SqliteStore(Store):
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

    # ------------------------------------------------------------------ writes

    # The write path of SqliteStore: values streamed into blobs, rows swapped in.
    #
    # :class:`SqliteWrites` is mixed into :class:`~storegui.stores.sqlite.store.SqliteStore`
    # and relies on its ``_db`` (:class:`~.connections.SqliteConnections`),
    # ``_files`` (:class:`~.files.ValueFiles` or None), ``external_from``,
    # ``memory``, ``readonly`` and ``path``. A write streams its data into a new
    # *pending* blob (inline bytes, chunk rows of :mod:`.blobs`, or a value
    # file of :mod:`.files`), then swaps the key to it in one short
    # transaction through :func:`~.rows.store_rows`; a failed write frees
    # the blobs it made (see the module docstring of :mod:`.store`).

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
        mark = self._db.new_files_mark()
        try:
            size, inline, blob_id = self._read_data(data, buffer_size, owner, created, key)
            with self._db.writing() as conn:
                self._store(conn, [Row(key, metadata_text, size, inline, blob_id)])
        except BaseException:
            if self._txn is None:
                self._discard(created, owner)
            else:  # the caller's savepoint drops the rows naming them
                self._db.drop_new_files(mark)
            raise
        finally:
            end_owner(owner)

    def _read_data(self, stream: Any, buffer_size: int, owner: str, created: list[int],
                   key: str) -> tuple[int, bytes | None, int | None]:
        """Read ``stream`` into inline bytes, or into a new pending blob (a file or chunks).

        Returns ``(size, inline, blob_id)``. Outside a transaction each chunk
        is its own short transaction, and the stream is read between them.
        """
        files = self._files if self.external_from is not None else None
        least = max(self.external_from or 0, INLINE_MAX + 1)
        if files is not None:
            linked = files.link(stream, least)
            if linked is not None:
                return linked[1], None, self._file_blob(linked[0], owner, created)
        head = read_head(stream, INLINE_MAX + 1, key)
        n = len(head)
        if n <= INLINE_MAX:
            return n, head, None
        if files is not None:
            hint = remaining_size(stream)
            if hint is None or n + hint >= least:
                spooled = files.spool(stream, head, buffer_size, key)
                try:
                    if spooled.size >= least:
                        name = files.install(spooled, key)
                        return spooled.size, None, self._file_blob(name, owner, created)
                    # shorter than its size hint said: into chunks after all
                    with files.read_back(spooled) as back:
                        return self._read_chunks(back, b"", buffer_size, owner, created, key)
                finally:
                    files.discard(spooled)
        return self._read_chunks(stream, head, buffer_size, owner, created, key)

    def _file_blob(self, name: str, owner: str, created: list[int]) -> int:
        """A pending blob for the new value file ``name`` (removed if that fails)."""
        try:
            with self._db.writing() as conn:
                blob_id = conn.execute(
                    "INSERT INTO blobs (chunk_size, owner, started, file) VALUES (0, ?, ?, ?)",
                    (owner, time.time(), name)).lastrowid
        except BaseException:
            self._files.unlink(name)
            raise
        created.append(blob_id)
        if self._txn is not None:
            self._db.track_new_file(name)
        return blob_id

    def _read_chunks(self, stream: Any, head: bytes, buffer_size: int, owner: str,
                     created: list[int], key: str) -> tuple[int, None, int]:
        """Read ``head`` and the rest of ``stream`` into a new pending blob of chunk rows."""
        n = len(head)
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
                        free_blob(conn, blob_id, self._db.unlink)
            except StoreError as exc:  # left for the orphan sweep at the next connect
                log.warning("could not remove the partial data of a failed write: %s", exc)

    def _store(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        garbage = store_rows(conn, rows, time.time(), lambda k: StoreKeyError(k, self))
        self._db.add_garbage(garbage)

    def flush_to_disk(self, keys: Iterable[str] | None = None) -> None:
        """Make ``keys`` (every write so far if None) survive a power loss.

        See ``Store.flush_to_disk``. The value files of ``keys`` (with None:
        every value file this store wrote since the last flush) and their
        folder are fsynced, then SQLite syncs the ``-wal`` file, which holds
        every committed transaction (one commit with ``synchronous = FULL``:
        never through a descriptor of ours, whose close would drop SQLite's
        locks). Missing keys are skipped.

        Raises
        ------
        StoreError
            If the data cannot be written to disk.
        """
        self._ensure()
        if self.memory or self.readonly:
            return
        names = None
        if keys is not None and self._files is not None:
            keys = [check_key(key, self) for key in keys]
            names = []
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                with self._db.use() as conn:
                    names += [f for (f,) in conn.execute(
                        _FILES_SQL.format(marks=",".join("?" * len(part))), part)]
        try:
            if self._files is not None:
                self._files.flush(names)
            self._db.sync_to_disk()
        except OSError as exc:
            raise StoreError(f"cannot write {schema.describe(self.path)} to disk: "
                             f"{exc.strerror or exc}", store=self) from None

    def _delete(self, key: str) -> None:
        with self._db.writing() as conn:
            blob_id = delete_row(conn, key, lambda k: StoreKeyError(k, self))
            if blob_id is not None:
                self._db.add_garbage([blob_id])

    # ------------------------------------------------------------------ multi-key writes

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
        if type(self)._check_key is not Store._check_key or not plain_keys(keys):
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
            datas, metadatas, totals = unpack_values(keys, values)
            batch = encode_batch(metadatas, keys)
            bulk = in_memory(datas)
            if not bulk:
                for key, data in zip(keys, datas, strict=True):
                    check_readable(data, key)
            if (bulk and not self.event_dispatcher.has_listeners()
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
        if small and not insert_new_keys(conn, *pick_rows(small, keys, sizes, heads, batch), now):
            old = {key for key, _ in lookup(conn, [keys[p] for p in small], "id")}
            fresh = [p for p in small if keys[p] not in old]
            rest += [p for p in small if keys[p] in old]
            if fresh:
                insert_new_keys(conn, *pick_rows(fresh, keys, sizes, heads, batch), now)
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

    def _update_fields(self, key: str, fields: dict) -> None:
        """Read and write ``key``'s metadata in one write transaction (no update lost)."""
        self._merge_rows([(key, fields)], self._db.writing)

    def multiupdate_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``update_metadata`` of each key, in one transaction (every key must exist).

        Raises
        ------
        KeyError
            If a key does not exist (nothing is written).
        InvalidMetadataError
            For the first bad metadata (nothing is written).
        """
        metadatas = list(metadatas)
        keys = self._checked_keys(keys, metadatas)
        updates = [(key, copy_metadata(md, key)) for key, md in zip(keys, metadatas, strict=True)]
        self._ensure()
        write = self._write_in_transaction()
        with self.transaction("multiupdate_metadata"):
            self._merge_rows(updates, write)
            for key, fields in updates:
                self._emit(ev.StoreUpdateEvent(self, key, fields))

    def _merge_rows(self, updates: list[tuple[str, dict]],
                    write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
        """Merge each key's validated fields into its row (in order), in one write.

        Raises
        ------
        KeyError
            If a key does not exist (nothing is written).
        """
        with write() as conn:
            # Read and write in one write transaction: no update can be lost.
            current = dict(lookup(conn, [key for key, _ in updates], "metadata"))
            merged: dict[str, str] = {}
            for key, fields in updates:
                if key not in current:
                    raise StoreKeyError(key, self)
                merged[key] = merge_metadata(merged.get(key, current[key]), fields, key, self)
            self._store(conn, [Row(k, text) for k, text in merged.items()])
