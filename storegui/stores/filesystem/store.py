"""FileSystemStore: every key is a file under a root folder.

Layout of a store folder (details in :mod:`.layout`, :mod:`.paths`,
:mod:`.records`)::

    ROOT/.storegui-store.json     marker: format, layout version, key-name layout
    ROOT/.storegui/tmp/           files being written (removed at connect if abandoned)
    ROOT/.storegui/blobs/<hex>    data of large values (never modified, only replaced)
    ROOT/.storegui/trash/<txn>/   undo copies of records while a transaction is open
    ROOT/images/cat.png@v         the *record* of key "images/cat.png"
    ROOT/images                   the folder of prefix "images/"

A record holds the key's metadata (JSON) and either its data (values up to
:data:`.records.INLINE_MAX` bytes) or the name of its blob. Key names are encoded
reversibly (:mod:`.paths`), so any key, ``..``, ``\\`` and control
characters included, lands strictly under the root; paths are resolved one
component at a time without following symlinks (:mod:`.dirs`).

Writes are atomic: the new record (and blob) are written under ``tmp/`` and
the record is renamed over the old one, so a reader sees the old or the new
data *and* metadata, never a mix. Changing only the metadata of a large value
writes a new small record naming the same blob (cost independent of the
value's size). A value read holds its file open, so it stays the version that
was current when ``get`` ran.

Durability (``sync``, see :data:`~..contract.SYNC_MODES`): every write is atomic
whatever the setting, so a killed app leaves each key with its old or its new
value. With ``sync="normal"`` (the default) nothing waits for the disk: the
operating system writes blobs and records back within seconds, as it does for
``cp`` (an fsync of 1 GiB takes twice as long as copying it on the disks this
was measured on). With ``sync="full"`` a blob is fsynced before a record names
it, a record before its rename when written on its own, and inside a
transaction (``multiset`` & co.) records are synced at commit: one fsync each
for a few, one filesystem flush (``syncfs``) for more than
:data:`FSYNC_EACH_UP_TO` (an fsync costs as much as writing a small key or
more). :meth:`FileSystemStore.flush_to_disk` makes chosen keys durable on
demand; a push calls it before deleting the local copy.

Blobs are never modified once written, so a value copied from another local
store's blob file on the same filesystem becomes a hard link to that file
(no bytes move, see :mod:`..localfiles.spool`); either store replacing or deleting
its key only removes its own link.

Abandoned temp files (a killed writer) are removed at the next connect: those
no process holds an ``flock`` on, whatever their age once named ``*.held``
(renamed so only after their writer locked them), else unchanged for a minute;
a write in progress in another process is never disturbed (:mod:`.layout`,
:func:`..localfiles.tempfiles.is_abandoned`).

Transactions roll back: the first change of a key hard-links its old record
into ``trash/``; rollback renames it back (and removes records of keys that
did not exist); blobs of replaced values are only deleted at commit. A
transaction whose process was killed is rolled back at the next connect,
from a journal of its changes (:mod:`.undo`).

Concurrent writers of one key in several *processes* are safe for readers
(last rename wins) but may leave an unreferenced blob; :meth:`collect_garbage`
removes those. POSIX only (``openat``-style calls and ``flock``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from ..contract import Store, Transaction, check_sync
from ..errors import StoreError, StoreKeyError, no_room_reason, write_error
from ..keys import check_key, check_prefix
from ..localfiles.descriptors import READ_FLAGS, flush_filesystem, open_dir, write_all
from ..localfiles.spool import Spooled, spool
from ..localfiles.streams import FdHandle
from ..localfiles.tempfiles import new_temp, remove_temp
from ..value import Entry, Value
from .dirs import MISSING, prune_dirs
from .layout import StoreDirs, open_store_dir
from .listing import list_entries, walk_keys
from .paths import folder_names, key_names
from .records import (
    INLINE_MAX,
    DamagedRecordError,
    Record,
    blob_value,
    inline_value,
    pack_record,
    read_record,
)
from .undo import ABSENT, UndoLog, blobs_in_undo_logs

#: A transaction that wrote more records than this makes them durable with one
#: filesystem flush at commit instead of one fsync each.
FSYNC_EACH_UP_TO = 32


#: Tries to place a record whose folder other writers keep pruning (about 2.5 s in all).
_INSTALL_ATTEMPTS = 100

class FileSystemStore(Store):
    """A store whose keys are files under the folder ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The store folder. Created on connect if missing (its parent must exist).
    create : bool
        Whether connect may create the folder or make an empty folder a store.
    adopt : bool
        Whether connect may make a store of a non-empty folder that is not
        one yet (its files stay, and are not keys).
    readonly : bool
        Refuse writes; the folder must already be a store.
    sync : str
        "normal" (default) or "full": whether writes wait for the disk (see
        the module docstring).

    Attributes
    ----------
    path : str
        The absolute path of the store folder.
    portable : bool
        Whether key names use the portable layout (known once connected).

    Raises
    ------
    StoreError
        On connect, if the folder cannot be used (the message says why).
    """

    local = True

    def __init__(
        self,
        path: str | os.PathLike,
        create: bool = True,
        adopt: bool = False,
        readonly: bool = False,
        sync: str = "normal",
    ) -> None:
        super().__init__()
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise StoreError(f"a store folder must be a non-empty path, not {path!r}")
        self.sync = check_sync(sync)
        self._full_sync = sync == "full"
        self.path = os.path.abspath(os.fspath(path))
        self.create = create
        self.adopt = adopt
        if readonly:
            self.readonly = True
        self.portable = False
        self._dirs = StoreDirs()
        self._locks = [threading.Lock() for _ in range(64)]
        self._undo_logs: dict[int, UndoLog] = {}

    @property
    def url(self) -> str:
        return "file://" + quote(self.path)

    def info(self) -> dict:
        """``Store.info()`` plus ``path``, ``sync``, and once connected the key-name ``layout``.

        ``layout`` is "posix", or "portable" on filesystems that fold case or
        Unicode normal forms (see :mod:`.paths`).
        """
        info = {**super().info(), "path": self.path, "sync": self.sync}
        if self.is_connected():
            info["layout"] = "portable" if self.portable else "posix"
        return info

    def _open(self, credentials: Any) -> None:
        if os.open not in os.supports_dir_fd or not hasattr(os, "O_NOFOLLOW"):
            raise StoreError("FileSystemStore needs a POSIX system (openat, O_NOFOLLOW)")
        self._dirs, self.portable = open_store_dir(
            self.path, self.create, self.adopt, self.readonly
        )

    def _close(self) -> None:
        self._dirs.close()

    # ------------------------------------------------------------------ helpers

    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[hash(key) % len(self._locks)]

    def _names(self, key: str) -> list[str]:
        return key_names(key, self.portable)

    def _fail(self, exc: OSError, key: str, action: str) -> StoreError:
        if action == "write" and no_room_reason(exc) is not None:
            return write_error(exc, key, self)
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and action != "read"):
            why = "a symbolic link or a file is in the way (links are never followed)"
        else:
            why = exc.strerror or str(exc)
        return StoreError(f"cannot {action} {key!r} in {self.path!r}: {why}", key, self)

    def _open_record(self, key: str, names: list[str]) -> tuple[int, os.stat_result]:
        """An open descriptor of ``key``'s record and its stat; StoreKeyError if missing."""
        found = self._find_record(key, names)
        if found is None:
            raise StoreKeyError(key, self)
        return found

    def _find_record(self, key: str, names: list[str]) -> tuple[int, os.stat_result] | None:
        """``_open_record``, but None if missing (no exception: new keys are the common case)."""
        try:
            dfd = open_dir(self._dirs.root, names[:-1])
            try:
                fd = os.open(names[-1], READ_FLAGS, dir_fd=dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            if exc.errno in MISSING:
                return None
            raise self._fail(exc, key, "read") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st

    def _read(self, key: str, fd: int, st: os.stat_result, inline: bool) -> tuple[Record, bytes]:
        try:
            return read_record(fd, f"the record of {key!r} in {self.path!r}", st.st_size, inline)
        except DamagedRecordError as exc:
            exc.key, exc.store = key, self
            raise

    def _load(self, key: str, inline: bool) -> tuple[Record, bytes, os.stat_result]:
        fd, st = self._open_record(key, self._names(key))
        try:
            record, data = self._read(key, fd, st, inline)
        finally:
            os.close(fd)
        return record, data, st

    # ------------------------------------------------------------------ reads

    def _get(self, key: str) -> Value:
        last = None
        for _ in range(20):
            record, inline, st = self._load(key, True)
            if record.blob is None:
                return inline_value(record, inline, st.st_mtime)
            try:
                bfd = os.open(record.blob, READ_FLAGS, dir_fd=self._dirs.blobs)
            except OSError:
                if last == (st.st_dev, st.st_ino):
                    raise DamagedRecordError(
                        f"the data of {key!r} is missing from {self.path!r} "
                        f"(.storegui/blobs/{record.blob})", key, self
                    ) from None
                last = (st.st_dev, st.st_ino)
                continue  # replaced meanwhile: read the new record
            handle = FdHandle(bfd)
            if os.fstat(bfd).st_size != record.size:
                raise DamagedRecordError(
                    f"the data of {key!r} in {self.path!r} has the wrong size", key, self
                )
            return blob_value(record, handle, st.st_mtime)
        raise StoreError(f"{key!r} kept changing while being read; try again", key, self)

    def _stat(self, key: str) -> Entry:
        record, _, st = self._load(key, False)
        return Entry(key, False, record.size, record.modified_or(st.st_mtime))

    def _get_metadata_text(self, key: str) -> str:
        return self._load(key, False)[0].metadata_text

    def _exists(self, key: str) -> bool:
        names = self._names(key)
        try:
            dfd = open_dir(self._dirs.root, names[:-1])
            try:
                st = os.stat(names[-1], dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(dfd)
        except OSError as exc:
            if exc.errno in MISSING:
                return False
            raise self._fail(exc, key, "read") from None
        return stat.S_ISREG(st.st_mode)

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """Children of ``prefix`` from one scan of the folder that holds them."""
        self._ensure()
        check_prefix(prefix)
        if delimiter != "/":
            return super().list_dir(prefix, delimiter)
        folder, partial = _split_prefix(prefix)
        try:
            fd = open_dir(self._dirs.root, folder_names(folder, self.portable))
        except OSError as exc:
            if exc.errno in MISSING:
                return iter(())
            raise self._fail(exc, prefix, "list") from None
        try:
            return iter(list_entries(fd, folder, partial, self.portable))
        finally:
            os.close(fd)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        folder, partial = _split_prefix(prefix)
        return self._keys_under(folder, partial)

    def _keys_under(self, folder: str, partial: str) -> Iterator[str]:
        try:
            fd = open_dir(self._dirs.root, folder_names(folder, self.portable))
        except OSError as exc:
            if exc.errno in MISSING:
                return
            raise self._fail(exc, folder, "list") from None
        yield from walk_keys(fd, folder, partial, self.portable)

    # ------------------------------------------------------------------ writes

    def _install(self, src_fd: int, src: str, names: list[str], key: str) -> None:
        """Rename ``src`` (in directory ``src_fd``) to ``key``'s record, making folders."""
        for attempt in range(_INSTALL_ATTEMPTS):
            try:
                dfd = open_dir(self._dirs.root, names[:-1], create=True)
                try:
                    os.replace(src, names[-1], src_dir_fd=src_fd, dst_dir_fd=dfd)
                finally:
                    os.close(dfd)
                return
            except FileNotFoundError:
                # A concurrent delete (any thread or process) pruned a folder between our
                # mkdir and rename. Back off a little, so the pruner's climb can finish
                # instead of meeting us again at once.
                if attempt == _INSTALL_ATTEMPTS - 1:
                    raise
                time.sleep(0.0005 * attempt)
            except OSError as exc:
                raise self._fail(exc, key, "write") from None

    def _put(
        self, key: str, data: BinaryIO | None, metadata_text: str | None, buffer_size: int
    ) -> None:
        names = self._names(key)
        log = self._undo_log()
        new = None
        try:
            if data is not None:
                # errors of the caller's stream pass through; our own become StoreError
                new = spool(data, buffer_size, self._dirs.tmp,
                            lambda exc: self._fail(exc, key, "write"), kind="blob",
                            inline_max=INLINE_MAX, fsync=self._full_sync, key=key)
            try:
                with self._lock_for(key):
                    self._replace_record(key, names, new, metadata_text, log)
            except OSError as exc:
                raise self._fail(exc, key, "write") from None
        finally:
            if new is not None:
                new.discard()  # the temp file is gone already unless the write failed

    def _replace_record(
        self, key: str, names: list[str], new: Spooled | None, metadata_text: str | None,
        log: UndoLog | None,
    ) -> None:
        """Write ``key``'s new record (keeping what ``new``/``metadata_text`` leave out)."""
        current = self._current(key, names, need_data=new is None)
        if current is None and new is None:
            raise StoreKeyError(key, self)
        if new is None:
            record, inline = current
            blob, size = record.blob, record.size
        else:
            inline, size = new.inline, new.size
            blob = new.token if new.name else None
        if metadata_text is None:
            metadata_text = current[0].metadata_text if current else "{}"
        # The clock, read now (after the write call began): see fs_records.
        now = time.time()
        created = current[0].created if current else now
        fd, tmp = new_temp(self._dirs.tmp, "record")
        try:
            write_all(fd, pack_record(size, created, blob, metadata_text, now) + inline)
            if log is not None:
                self._journal(log, key, names, os.fstat(fd).st_ino)
            elif self._full_sync:
                os.fsync(fd)
            if new is not None and blob:
                os.replace(new.name, blob, src_dir_fd=self._dirs.tmp, dst_dir_fd=self._dirs.blobs)
                if log is not None:
                    log.born.add(blob)
                if self._full_sync:  # the blob's name is durable before a record names it
                    os.fsync(self._dirs.blobs)
            try:
                self._install(self._dirs.tmp, tmp, names, key)
            except BaseException:
                if new is not None and blob:
                    self._drop_blob(blob, None)
                raise
        finally:
            os.close(fd)
            remove_temp(self._dirs.tmp, tmp)  # gone already unless the write failed
        old = current[0].blob if current else None
        if old and old != blob:
            self._drop_blob(old, log)
        if log is not None and self._full_sync:
            log.unsynced[tuple(names)] = None

    def _current(self, key: str, names: list[str], need_data: bool) -> tuple[Record, bytes] | None:
        """The record a write replaces (None if missing; if damaged, None unless it is needed)."""
        found = self._find_record(key, names)
        if found is None:
            return None
        fd, st = found
        try:
            return self._read(key, fd, st, need_data)
        except DamagedRecordError:
            if need_data:
                raise
            return None
        finally:
            os.close(fd)

    def _drop_blob(self, blob: str, files: UndoLog | None) -> None:
        if files is not None:
            files.doomed.add(blob)
            return
        with contextlib.suppress(OSError):
            os.unlink(blob, dir_fd=self._dirs.blobs)

    def _journal(self, log: UndoLog, key: str, names: list[str], inode: int | None) -> None:
        """Journal a change of ``key`` in the open transaction (see :mod:`.undo`)."""
        txn = self._txn
        if txn is not None and key in txn.undo:
            log.intend(names, txn.undo[key], inode)

    def _delete(self, key: str) -> None:
        names = self._names(key)
        log = self._undo_log()
        with self._lock_for(key):
            current = self._current(key, names, need_data=False)
            try:
                dfd = open_dir(self._dirs.root, names[:-1])
                try:
                    # only a regular file is a key (never unlink a planted symlink or fifo)
                    if not stat.S_ISREG(os.stat(names[-1], dir_fd=dfd,
                                                follow_symlinks=False).st_mode):
                        raise StoreKeyError(key, self)
                    if log is not None:
                        self._journal(log, key, names, None)
                    os.unlink(names[-1], dir_fd=dfd)
                finally:
                    os.close(dfd)
            except OSError as exc:
                if exc.errno in MISSING:
                    raise StoreKeyError(key, self) from None
                raise self._fail(exc, key, "delete") from None
            if current is not None and current[0].blob:
                self._drop_blob(current[0].blob, log)
        prune_dirs(self._dirs.root, names[:-1])

    def flush_to_disk(self, keys: Iterable[str] | None = None) -> None:
        """Make ``keys`` (every write so far if None) durable: see ``Store.flush_to_disk``.

        For each key: its blob, its record, and the folders naming them are
        fsynced (each folder once); missing keys are skipped. With no keys,
        or more than :data:`FSYNC_EACH_UP_TO`, one filesystem flush
        (``syncfs``) instead.
        """
        self._ensure()
        try:
            keys = None if keys is None else list(keys)
            if keys is None or len(keys) > FSYNC_EACH_UP_TO:
                for key in keys or ():
                    check_key(key)
                flush_filesystem(self._dirs.root)
                return
            folders: set[tuple[str, ...]] = set()
            blobs = False
            for key in keys:
                names = self._names(check_key(key))
                try:
                    fd, st = self._open_record(key, names)
                except StoreKeyError:
                    continue
                try:
                    record, _ = self._read(key, fd, st, inline=False)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if record.blob:
                    bfd = os.open(record.blob, READ_FLAGS, dir_fd=self._dirs.blobs)
                    try:
                        os.fsync(bfd)
                    finally:
                        os.close(bfd)
                    blobs = True
                folders.update(tuple(names[:i]) for i in range(len(names)))
            if blobs:
                os.fsync(self._dirs.blobs)
            for folder in sorted(folders, key=len):
                dfd = open_dir(self._dirs.root, folder)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path!r} to disk: {exc.strerror or exc}",
                             store=self) from None

    def collect_garbage(self, min_age: float = 3600.0) -> int:
        """Delete blob files no record names (left by crashes); return how many.

        Walks every record, so it costs a full scan of the store. Blobs
        younger than ``min_age`` seconds are kept: another process may be
        about to name them.
        """
        self._ensure()
        self._check_writable()
        used = blobs_in_undo_logs(self._dirs.trash)
        for key in self._iter_keys(""):
            with contextlib.suppress(StoreError):
                used.add(self._load(key, False)[0].blob)
        removed = 0
        now = time.time()
        with os.scandir(self._dirs.blobs) as entries:
            for entry in entries:
                if entry.name in used or not entry.is_file(follow_symlinks=False):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime > min_age:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.name, dir_fd=self._dirs.blobs)
                        removed += 1
        return removed

    # ------------------------------------------------------------------ transactions

    def _undo_log(self) -> UndoLog | None:
        txn = self._txn
        return None if txn is None else self._undo_logs.get(id(txn))

    def _begin(self, txn: Transaction) -> None:
        if not self.readonly:
            self._undo_logs[id(txn)] = UndoLog(self._dirs.trash)

    def _snapshot(self, key: str) -> Any:
        log = self._undo_log()
        if log is None:
            return None
        names = self._names(key)
        try:
            dfd = open_dir(self._dirs.root, names[:-1])
        except OSError as exc:
            if exc.errno in MISSING:
                return ABSENT
            raise self._fail(exc, key, "write") from None
        try:
            return log.save(dfd, names[-1])
        except OSError as exc:
            raise self._fail(exc, key, "write") from None
        finally:
            os.close(dfd)

    def _restore(self, key: str, snapshot: Any) -> None:
        if snapshot is None:
            return
        names = self._names(key)
        with self._lock_for(key):
            if snapshot is ABSENT:
                with contextlib.suppress(OSError):
                    dfd = open_dir(self._dirs.root, names[:-1])
                    try:
                        os.unlink(names[-1], dir_fd=dfd)
                    finally:
                        os.close(dfd)
                prune_dirs(self._dirs.root, names[:-1])
                return
            log, link = snapshot
            self._install(log.fd, link, names, key)

    def _commit(self, txn: Transaction) -> None:
        log = self._undo_logs.get(id(txn))
        if log is None:
            return
        if len(log.unsynced) > FSYNC_EACH_UP_TO:
            flush_filesystem(self._dirs.root)
        else:
            for names in log.unsynced:
                try:
                    fd, _ = self._open_record("", list(names))
                except StoreKeyError:
                    continue  # deleted later in the transaction
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        try:
            log.committed()
        except OSError as exc:
            raise StoreError(f"cannot commit the transaction in {self.path!r}: "
                             f"{exc.strerror or exc}", store=self) from None
        # Durable from here on: the undo copies and the replaced blobs can go.
        del self._undo_logs[id(txn)]
        for blob in log.doomed:
            self._drop_blob(blob, None)
        log.discard()

    def _rollback(self, txn: Transaction) -> None:
        log = self._undo_logs.pop(id(txn), None)
        try:
            super()._rollback(txn)
        except BaseException:
            if log is not None:
                log.close()  # keep the undo copies and blobs: a person may need them
            raise
        if log is not None:
            for blob in log.born:
                self._drop_blob(blob, None)
            log.discard()


def _split_prefix(prefix: str) -> tuple[str, str]:
    """``("a/b/", "c")`` for ``"a/b/c"``: the folder part and the partial last segment."""
    i = prefix.rfind("/")
    return prefix[: i + 1], prefix[i + 1 :]
