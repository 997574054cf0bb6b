"""Large values of SqliteStore as files in a folder beside the database file.

SQLite's write-ahead log writes every page twice, and a value in chunk rows
costs a statement per chunk; SQLite's own study
(https://www.sqlite.org/intern-v-extern-blob.html) finds blobs larger than
about 100 KB faster to read and write as separate files. So a value of at
least ``external_from`` bytes lives in ``<dbfile>-values/`` (named like the
``-wal`` and ``-shm`` files)::

    <db>-values/<writer>-<token>           one value; never modified once written
    <db>-values/tmp/value-<hex>.tmp         a value being written (flock-ed by its writer)
    <db>-values/tmp/writer-<writer>.tmp     a connected writer's lock (flock-ed while connected)

``<writer>`` and ``<token>`` are 32 random hex digits each. The value's
``blobs`` row names its file (column ``file``; no chunk rows), so the blob
life cycle of :mod:`.blobs` applies unchanged: a new file's blob is
*pending* until the key's row commits, and the file of a replaced or deleted
value is unlinked when its *garbage* blob is freed, after the commit. A file
is never modified after it is written, only replaced by a new file under a
new name, like FileSystemStore's blobs: that is what lets another local store
hard-link it, and what lets a reader keep the version it opened (it holds
the file open).

Writing: the data streams into a temp file in ``tmp/`` (in the kernel when
the source is a plain file), which is renamed to its final name; then the
pending blob row naming it is written. When the source is a whole value file
of a local store on the same filesystem, the temp file is a hard link to it
and no bytes move (:mod:`..localfiles.spool`, as for FileSystemStore). With
``sync="full"`` the file and the folder are fsynced before the row that
names the file commits.

Reading: the streams over value files are :mod:`..localfiles.streams`'.
Clean-up at each writable connect (:meth:`ValueFiles.sweep`) removes what
dead writers left: see :mod:`.file_sweep`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from ..errors import StoreError, no_room_reason, write_error
from ..localfiles.streams import FdHandle
from ..transfer.kernel_copy import is_regular_file, shared_file_fd
from ..transfer.streaming import ProgressReader
from .file_sweep import VALUE_NAME, remove_leftovers

try:
    import fcntl

    from ..localfiles.descriptors import DIR_FLAGS, READ_FLAGS, flush_filesystem, open_dir
    from ..localfiles.spool import Spooled, link_temp
    from ..localfiles.spool import spool as spool_data
    from ..localfiles.tempfiles import new_temp, remove_temp
except ImportError:  # pragma: no cover - no flock (Windows): every value stays in the database
    SUPPORTED = False
else:
    #: Whether this system can keep values in files (``openat``-style calls and ``flock``).
    SUPPORTED = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")

log = logging.getLogger(__name__)

#: Values from this many bytes on are files, by default (``external_from``).
DEFAULT_EXTERNAL_FROM = 1 << 20
#: Names written in "normal" sync mode remembered for ``flush_to_disk()``;
#: past that, a flush syncs the whole filesystem instead.
UNSYNCED_MAX = 4096


def remaining_size(stream: Any) -> int | None:
    """How many bytes ``stream`` has left, if cheaply known (a hint, not a promise).

    Tells whether a source may be large enough to become a value file. Known
    from a ProgressReader's ``total``, or for an in-memory stream or a
    regular file; not asked of other streams (seeking to the end of a
    compressed stream, for one, reads all of it).
    """
    inner = stream
    for _ in range(8):  # a few wrappers at most
        if not isinstance(inner, ProgressReader):
            break
        if inner.total is not None:
            return max(0, inner.total - inner.done)
        inner = inner.raw_stream
    try:
        if type(inner) is io.BytesIO:
            return len(inner.getbuffer()) - inner.tell()
        if is_regular_file(inner):
            return max(0, os.fstat(inner.fileno()).st_size - inner.tell())
    except (OSError, ValueError):
        pass
    return None


class ValueFiles:
    """The value-file folder of one SQLite store file (see the module docstring).

    Parameters
    ----------
    db_path : str
        The database file; the folder is ``db_path + "-values"``.
    sync : str
        "normal" or "full" (see :data:`~..contract.SYNC_MODES`).
    store : object
        The owning store, named in errors.
    """

    def __init__(self, db_path: str, sync: str, store: Any) -> None:
        self.folder = db_path + "-values"
        self.full_sync = sync == "full"
        self._store = store
        self._lock = threading.Lock()
        self._dir = -1
        self._tmp = -1
        self._writer_fd = -1
        self._writer_name = ""
        self._writer = ""
        self._unsynced: set[str] | None = set()

    # ------------------------------------------------------------------ folder and lock

    def _fail(self, exc: OSError, what: str, key: str | None = None) -> StoreError:
        if key is not None and no_room_reason(exc) is not None:
            return write_error(exc, key, self._store)
        return StoreError(f"cannot {what} in {self.folder}: {exc.strerror or exc}", key,
                          self._store)

    def open(self) -> None:
        """Open the folder if it exists (at connect; it is made on the first large write)."""
        with self._lock:
            self._open_folder()

    def _open_folder(self) -> bool:
        if self._dir < 0:
            try:
                self._dir = os.open(self.folder, DIR_FLAGS)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise self._fail(exc, "open the folder of large values") from None
        return True

    def close(self) -> None:
        """Release the writer lock and close the folder."""
        with self._lock:
            if self._writer_fd >= 0:
                remove_temp(self._tmp, self._writer_name)
                os.close(self._writer_fd)
                self._writer_fd, self._writer_name, self._writer = -1, "", ""
            for name in ("_tmp", "_dir"):
                fd = getattr(self, name)
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                    setattr(self, name, -1)

    def _prepare_writing(self) -> None:
        """Make the folders and take this connection's writer lock (once per connect)."""
        with self._lock:
            if self._writer_fd >= 0:
                return
            try:
                if not self._open_folder():
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(self.folder)
                    self._open_folder()
                if self._tmp < 0:
                    self._tmp = open_dir(self._dir, ["tmp"], create=True)
                fd, temp = new_temp(self._tmp, "lock")
            except OSError as exc:
                raise self._fail(exc, "prepare the folder of large values") from None
            writer = secrets.token_hex(16)
            name = f"writer-{writer}.tmp"
            try:
                with contextlib.suppress(OSError):
                    # Blocking: a clean-up's probe holds the lock only for an instant.
                    # (Without flock, on some network filesystems, the lock can never
                    # be tested, so the writer is never taken for dead.)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(temp, name, src_dir_fd=self._tmp, dst_dir_fd=self._tmp)
            except OSError as exc:
                os.close(fd)
                remove_temp(self._tmp, temp)
                raise self._fail(exc, "prepare the folder of large values") from None
            self._writer_fd, self._writer_name, self._writer = fd, name, writer

    def new_name(self) -> str:
        """A fresh value file name of this connection's writer."""
        return f"{self._writer}-{secrets.token_hex(16)}"

    # ------------------------------------------------------------------ writing

    def link(self, stream: Any, min_size: int) -> tuple[str, int] | None:
        """Hard-link the whole value file ``stream`` reads, if it is one: ``(name, size)``.

        Only before anything was read from ``stream``, with no digest to
        compute, for a file of at least ``min_size`` bytes on this
        filesystem; else None (the caller copies). Progress is reported once.
        The link is made as a temp file, then installed like a written one
        (:func:`~..localfiles.spool.link_temp`).

        Raises
        ------
        TransferCancelled
            If the stream's cancel token is set (nothing is kept).
        """
        if isinstance(stream, ProgressReader):
            if stream.done or not stream._kernel_copyable():
                return None
        try:  # cheap checks first: no folder made for nothing
            shared = shared_file_fd(stream)
            if shared is None or os.fstat(shared).st_size < min_size:
                return None
        except OSError:
            return None
        self._prepare_writing()

        def fail(exc: OSError) -> StoreError:
            return self._fail(exc, "link a large value")

        # Its fsync, if any, is install()'s: the source store may not have made it durable.
        spooled = link_temp(stream, self._tmp, "value", min_size, fail)
        if spooled is None:
            return None
        try:
            return self._install(spooled, fail), spooled.size
        finally:
            spooled.discard()

    def spool(self, stream: BinaryIO, head: bytes, buffer_size: int, key: str) -> Spooled:
        """Write ``head`` and the rest of ``stream`` into a new temp file.

        Errors of the caller's stream (TransferCancelled, a failing source)
        pass through; a failure to write the file raises StoreError. Either
        way the temp file is removed first.
        """
        self._prepare_writing()
        return spool_data(stream, buffer_size, self._tmp,
                          lambda exc: self._fail(exc, f"write {key!r}", key), kind="value",
                          inline_max=None, head=head, key=key)

    def install(self, spooled: Spooled, key: str) -> str:
        """Rename a spooled temp file to a new value file name; that name.

        Raises
        ------
        StoreError
            The file cannot be written to disk or renamed.
        """
        return self._install(spooled, lambda exc: self._fail(exc, f"write {key!r}", key))

    def _install(self, spooled: Spooled, fail: Callable[[OSError], StoreError]) -> str:
        name = self.new_name()
        try:
            if self.full_sync:
                os.fsync(spooled.fd)
            os.replace(spooled.name, name, src_dir_fd=spooled.dir_fd, dst_dir_fd=self._dir)
        except OSError as exc:
            raise fail(exc) from None
        try:
            self._named(name)
        except OSError as exc:
            self.unlink(name)
            raise fail(exc) from None
        return name

    def _named(self, name: str) -> None:
        """A new value file has its name: make that durable, or remember it for a flush."""
        if self.full_sync:
            os.fsync(self._dir)  # the name is durable before a row names it
            return
        with self._lock:
            if self._unsynced is not None:
                self._unsynced.add(name)
                if len(self._unsynced) > UNSYNCED_MAX:
                    self._unsynced = None

    def read_back(self, spooled: Spooled) -> BinaryIO:
        """A new stream over a spooled temp file, from its start."""
        try:
            fd = os.open(spooled.name, READ_FLAGS, dir_fd=spooled.dir_fd)
        except OSError as exc:
            raise self._fail(exc, "read back a value") from None
        return open(fd, "rb")

    def discard(self, spooled: Spooled) -> None:
        """Close a spooled temp file and remove it if it was not installed."""
        spooled.discard()

    def unlink(self, name: str) -> None:
        """Remove the value file ``name`` if it is there (errors are logged, not raised)."""
        if not VALUE_NAME.fullmatch(name):
            return
        with self._lock:
            if self._unsynced:
                self._unsynced.discard(name)
            dir_fd = self._dir
        if dir_fd < 0:  # disconnected: left for the clean-up at the next connect
            return
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:  # left for the clean-up at a later connect
            log.warning("could not remove the unused value file %s/%s: %s", self.folder, name,
                        exc.strerror or exc)

    # ------------------------------------------------------------------ clean-up

    def sweep(self, conn: sqlite3.Connection) -> int:
        """Remove what dead writers left (see :mod:`.file_sweep`); how many files.

        ``conn`` reads which files the ``blobs`` table names. Disk errors are
        logged: the store works without the clean-up.
        """
        try:
            with self._lock:
                if not self._open_folder():
                    return 0
                dir_fd = self._dir
            removed = remove_leftovers(dir_fd, conn)
        except (OSError, sqlite3.OperationalError) as exc:
            log.warning("%s: leftover files not removed: %s", self.folder,
                        getattr(exc, "strerror", None) or exc)
            return 0
        if removed:
            log.info("removed %d leftover file(s) of interrupted writes in %s", removed,
                     self.folder)
        return removed

    # ------------------------------------------------------------------ reading

    def open_value(self, name: str, key: str) -> FdHandle | None:
        """The open value file ``name`` (None if it is not there).

        Raises
        ------
        StoreError
            The name is not one this store writes (a damaged row), or the file
            cannot be opened for another reason than being absent.
        """
        if not VALUE_NAME.fullmatch(name):
            raise StoreError(f"the data of {key!r} is damaged: it names the value file "
                             f"{name!r}, which this store never writes", key, self._store)
        with self._lock:
            if not self._open_folder():  # another process may have made it since
                return None
            dir_fd = self._dir
        try:
            return FdHandle(os.open(name, READ_FLAGS, dir_fd=dir_fd))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(exc, f"read {key!r} ({name})", key) from None

    def where(self, name: str) -> str:
        """The path of a value file, for messages."""
        return os.path.join(self.folder, name)

    # ------------------------------------------------------------------ durability

    def flush(self, names: Iterable[str] | None) -> None:
        """fsync the value files ``names`` (those written since the last flush if None).

        Raises ``OSError`` on a disk error.
        """
        with self._lock:
            if not self._open_folder():
                return  # no value file was ever written
        if names is None:
            with self._lock:
                names, self._unsynced = self._unsynced, set()
            if names is None:  # too many to name: one flush of the filesystem
                if self._dir >= 0:
                    flush_filesystem(self._dir)
                return
        else:
            names = list(names)
            with self._lock:
                if self._unsynced:
                    self._unsynced.difference_update(names)
        synced = False
        for name in names:
            try:
                fd = os.open(name, READ_FLAGS, dir_fd=self._dir)
            except FileNotFoundError:  # replaced or deleted since: nothing to keep
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            synced = True
        if synced:
            os.fsync(self._dir)
