"""The write path of SqliteStore: values streamed into blobs, rows swapped in.

:class:`SqliteWrites` is mixed into :class:`~storegui.stores.sqlite.SqliteStore`
and relies on its ``_db`` (:class:`~.sqlite_connections.SqliteConnections`),
``_files`` (:class:`~.sqlite_files.ValueFiles` or None), ``external_from``,
``memory``, ``readonly`` and ``path``. A write streams its data into a new
*pending* blob (inline bytes, chunk rows of :mod:`.sqlite_blobs`, or a value
file of :mod:`.sqlite_files`), then swaps the key to it in one short
transaction through :func:`~.sqlite_rows.store_rows`; a failed write frees
the blobs it made (see the module docstring of :mod:`.sqlite`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from . import sqlite_schema as schema
from .errors import StoreError, StoreKeyError
from .keys import check_key
from .sqlite_blobs import CHUNK_SIZE, INLINE_MAX, end_owner, fill, free_blob, new_owner, read_head
from .sqlite_file_streams import remaining_size
from .sqlite_rows import Row, delete_row, store_rows

log = logging.getLogger(__name__)

_FILES_SQL = ("SELECT b.file FROM keys AS k JOIN blobs AS b ON b.id = k.blob_id"
              " WHERE b.file IS NOT NULL AND k.key IN ({marks})")


class SqliteWrites:
    """``_put``, ``_delete`` and ``flush_to_disk`` of SqliteStore, and their helpers."""

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
