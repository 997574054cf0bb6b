"""The SQLite connections of one SqliteStore, and its write transactions.

A file store gives each thread its own connection, opened lazily and kept in
a registry so that :meth:`SqliteConnections.close` closes them all (a
thread's connection is also closed when the thread ends). The file is in WAL
mode: readers never wait for the writer, and writers wait for each other up
to the busy timeout.

An in-memory store has a single connection guarded by a re-entrant lock:
SQLite's shared-cache in-memory databases answer "table is locked" at once
instead of waiting, so several connections would fail under load. The
thread of an open transaction holds the lock until it ends, so other
threads wait rather than join it. The data survives ``close()`` as a
serialized image.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import NotConnectedError, StoreError
from . import schema
from .blobs import LEASES, free_blob, sweep_orphans
from .files import ValueFiles

log = logging.getLogger(__name__)


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.generation = -1
        self.garbage: list[int] = []  # blobs to free once the open write commits
        self.new_files: list[str] = []  # value files the open transaction made
        self.holds_lock = False  # in memory: this thread's transaction holds the lock
        self.sync_at_commit = False  # flush_to_disk was asked inside the open transaction


class SqliteConnections:
    """Connections to one database file (or one in-memory database).

    Parameters
    ----------
    path : str
        Absolute file path, or ``":memory:"``.
    timeout : float
        Busy timeout in seconds.
    ensure : callable
        Connects the owning store if needed (called before each use).
    store : object
        The owning store, named in errors.
    sync : str
        "normal" or "full" (see :data:`~..contract.SYNC_MODES`).
    files : ValueFiles, optional
        The folder of the store's value files (file stores only).
    """

    def __init__(self, path: str, timeout: float, ensure: Callable[[], None],
                 store: Any, sync: str = "normal", files: ValueFiles | None = None) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self.timeout = timeout
        self.sync = sync
        self.files = files
        #: Removes a value file (what ``free_blob`` needs), None without value files.
        self.unlink = files.unlink if files is not None else None
        self.readonly = False
        #: The file's schema version (older ones are read as they are when read-only).
        self.version = schema.SCHEMA_VERSION
        #: Names this database in the process-wide registry of blob leases.
        self.database = f"memory:{uuid.uuid4().hex}" if self.memory else os.path.realpath(path)
        self._ensure = ensure
        self._store = store
        self._state = _ThreadState()
        self._generation = 0
        self._registry_lock = threading.Lock()
        self._open_conns: weakref.WeakSet = weakref.WeakSet()
        self._open = False
        self._memory_lock = threading.RLock() if self.memory else None
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_image: bytes | None = None
        self._deferred: set[int] = set()  # garbage still being read through a lease

    # ------------------------------------------------------------------ open and close

    def open(self, readonly: bool) -> None:
        """Open the first connection, check (or create) the schema, free orphaned data.

        Raises
        ------
        StoreError
            The file cannot be used; the message names it and says why.
        """
        self.readonly = readonly
        try:
            conn = self._connect(readonly)
        except sqlite3.Error as exc:
            raise self.translate(exc) from None
        try:
            if self._memory_image is not None:
                conn.deserialize(self._memory_image)
            self.version = schema.prepare(conn, self.path, readonly)
            if self.files is not None:
                self.files.open()
            if not readonly:
                self._sweep(conn)
        except BaseException as exc:
            conn.close()
            if self.files is not None:
                self.files.close()
            if isinstance(exc, sqlite3.Error):
                raise self.translate(exc) from exc
            raise
        if self.memory:
            self._memory_image, self._memory_conn = None, conn
            return
        with self._registry_lock:
            if not self._open:
                schema.hold_in_use(self.path)
            self._generation += 1
            self._open = True
            self._open_conns.add(conn)
        self._state.conn, self._state.generation = conn, self._generation

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        conn = schema.connect(self.path, readonly, self.timeout)
        if self.sync == "full":
            try:
                schema.full_sync(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _sweep(self, conn: sqlite3.Connection) -> None:
        try:
            sweep_orphans(conn, self.database, self.unlink)
        except sqlite3.OperationalError as exc:  # busy: the store works, the next connect retries
            log.warning("%s: unused data not freed yet: %s", schema.describe(self.path), exc)
        if self.files is not None:
            self.files.sweep(conn)  # reads only: never busy

    def close(self) -> None:
        """Close every connection (in memory: keep the data as an image)."""
        if self.memory:
            with self._memory_lock:
                conn, self._memory_conn = self._memory_conn, None
                if conn is not None:
                    self._memory_image = conn.serialize()
                    conn.close()
            return
        with self._registry_lock:
            was_open, self._open = self._open, False
            self._generation += 1
            conns = list(self._open_conns)
            self._open_conns.clear()
        if was_open:
            schema.release_in_use(self.path)
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self.files is not None:
            self.files.close()

    def _thread_connection(self) -> sqlite3.Connection:
        state = self._state
        if state.conn is not None and state.generation == self._generation:
            return state.conn
        conn = self._connect(self.readonly)
        with self._registry_lock:
            if not self._open:
                conn.close()
                raise NotConnectedError(f"{schema.describe(self.path)} is disconnected",
                                        store=self._store)
            self._open_conns.add(conn)
            state.conn, state.generation = conn, self._generation
        return conn

    def translate(self, exc: Exception) -> StoreError:
        """A StoreError for an ``sqlite3`` error."""
        return schema.translate(exc, self.path, self.timeout, self._store)

    # ------------------------------------------------------------------ use

    @contextlib.contextmanager
    def use(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (in memory: the shared one, locked); errors translated."""
        self._ensure()
        lock = self._memory_lock
        if lock is not None:
            lock.acquire()
        try:
            conn = self._memory_conn if lock is not None else self._thread_connection()
            if conn is None:
                raise NotConnectedError(f"{schema.describe(self.path)} is disconnected",
                                        store=self._store)
            yield conn
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc
        finally:
            if lock is not None:
                lock.release()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: a savepoint inside the thread's open transaction, else its own.

        Blobs given to :meth:`add_garbage` inside it are freed after the
        outermost commit (and forgotten if it rolls back).
        """
        state = self._state
        with self.use() as conn:
            if conn.in_transaction:
                mark = len(state.garbage)
                conn.execute("SAVEPOINT store_write")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:  # some errors already rolled everything back
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK TO store_write")
                            conn.execute("RELEASE store_write")
                    del state.garbage[mark:]
                    raise
                conn.execute("RELEASE store_write")
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                state.garbage.clear()
                raise
        self.free_garbage()

    def add_garbage(self, blob_ids: list[int]) -> None:
        """Blobs the open write has marked garbage, to free after it commits."""
        self._state.garbage.extend(blob_ids)

    def free_garbage(self) -> None:
        """Free blobs no key points at any more, except those still being read."""
        state = self._state
        candidates = set(state.garbage)
        state.garbage.clear()
        with self._registry_lock:
            candidates |= self._deferred
            self._deferred.clear()
        if not candidates:
            return
        later = LEASES.leased(self.database, candidates)
        for blob_id in sorted(candidates - later):
            try:
                with self.use() as conn:
                    free_blob(conn, blob_id, self.unlink)
            except StoreError as exc:  # the write itself succeeded; a later one retries
                log.warning("could not free unused data in %s yet: %s", self.path, exc)
                later.add(blob_id)
        with self._registry_lock:
            self._deferred |= later

    # ------------------------------------------------------------------ explicit transactions

    def begin(self) -> None:
        """Start this thread's transaction (BEGIN IMMEDIATE: it takes the write lock now)."""
        self._hold_memory_lock(True)
        try:
            with self.use() as conn:
                conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._hold_memory_lock(False)
            raise
        self._state.garbage.clear()
        self._state.new_files.clear()

    def commit(self) -> None:
        """Commit this thread's transaction, then free the data it replaced."""
        with self.use() as conn:
            conn.execute("COMMIT")
        self._state.new_files.clear()
        self._hold_memory_lock(False)
        self.free_garbage()
        if self._state.sync_at_commit:
            self._state.sync_at_commit = False
            self.sync_to_disk()

    def rollback(self, connected: bool) -> None:
        """Roll back this thread's transaction (if still ``connected``: closing rolled it back)."""
        try:
            if connected:
                with self.use() as conn:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
        finally:
            self._state.garbage.clear()
            self._state.sync_at_commit = False
            self.drop_new_files(0)
            self._hold_memory_lock(False)

    # ------------------------------------------------------------------ value files

    def track_new_file(self, name: str) -> None:
        """A value file written inside this thread's open transaction (removed if it rolls back)."""
        self._state.new_files.append(name)

    def new_files_mark(self) -> int:
        """Where the open transaction's list of new files ends now (see :meth:`drop_new_files`)."""
        return len(self._state.new_files)

    def drop_new_files(self, mark: int) -> None:
        """Remove the value files made since ``mark``: the rows naming them were rolled back."""
        made = self._state.new_files
        for name in made[mark:]:
            if self.unlink is not None:
                self.unlink(name)
        del made[mark:]

    def sync_to_disk(self) -> None:
        """Make every committed transaction survive a power loss.

        Through SQLite, never through a descriptor of our own: on POSIX,
        closing any descriptor of the database file drops every ``fcntl``
        lock this process holds on it, SQLite's included, and another
        process could then reset the write-ahead log still in use (see
        ``docs/reliability.md``). So this commits one transaction with
        ``synchronous = FULL``, which fsyncs the ``-wal`` file: it holds every
        transaction committed since the last checkpoint, and a checkpoint
        fsyncs the database file. An empty transaction writes (and syncs)
        nothing, so it rewrites ``user_version`` with the value it holds.
        Without a WAL, such a commit syncs the database file.

        Inside this thread's open transaction nothing can be committed yet:
        the sync then runs right after that transaction commits.

        Raises
        ------
        StoreError
            The write lock was not free within the busy timeout, or a disk error.
        """
        if self.memory:
            return
        with self.use() as conn:
            if conn.in_transaction:
                self._state.sync_at_commit = True
                return
            if self.sync != "full":
                conn.execute("PRAGMA synchronous = FULL")
            try:
                with schema.immediate(conn):
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    conn.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                if self.sync != "full":
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA synchronous = NORMAL")

    def _hold_memory_lock(self, hold: bool) -> None:
        state = self._state
        if self._memory_lock is None or state.holds_lock == hold:
            return
        if hold:
            self._memory_lock.acquire()
        else:
            self._memory_lock.release()
        state.holds_lock = hold
