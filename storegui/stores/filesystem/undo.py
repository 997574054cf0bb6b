"""Undo log of one open :class:`FileSystemStore` transaction.

The first change of a key in a transaction hard-links its record (a small
file) into ``.storegui/trash/<txn>/`` (a copy where hard links are not
supported); rollback renames it back. Blobs of replaced values are kept until
commit (``doomed``), and blobs written in the transaction are removed on
rollback (``born``). The folder's ``lock`` file is ``flock``-ed while the
transaction lives, so a connect in another process never cleans it up.

A process killed inside a transaction cannot roll it back itself, so before
each change the folder's ``journal`` gets a line naming the record, its undo
copy and the inode of the record about to replace it (none for a delete).
The next connect finds the journal of a dead transaction (its ``lock`` is
free) and rolls it back with :func:`recover_abandoned`: a record is put back
only if the record there now is one the transaction wrote, so a later write
by another process is never undone. Commit removes the journal first: that
is the moment the transaction counts as done. (The journal is not fsynced:
it protects against a killed process, not a power cut, after which each key
holds its old or its new record, as outside transactions.) Blobs written by
a transaction rolled back this way stay behind for ``collect_garbage``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat

from ..errors import StoreError
from ..localfiles.descriptors import READ_FLAGS, open_dir, write_all
from ..localfiles.tempfiles import lock_file
from .dirs import prune_dirs, remove_flat_dir
from .records import read_record

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: Snapshot of a key that did not exist: rollback deletes it.
ABSENT = object()
JOURNAL = "journal"


class UndoLog:
    """What one transaction changed on disk; see the module docstring."""

    def __init__(self, trash_root: int) -> None:
        self._trash_root = trash_root
        self.name = ""
        self.fd = -1
        self._lock = -1
        self._journal = -1
        self._count = 0
        self.unsynced: dict[tuple[str, ...], None] = {}  # records written without fsync
        self.doomed: set[str] = set()
        self.born: set[str] = set()

    def _folder(self) -> int:
        if self.fd < 0:
            name = secrets.token_hex(8)
            os.mkdir(name, dir_fd=self._trash_root)
            self.name = name
            self.fd = open_dir(self._trash_root, [name])
            self._lock = os.open("lock", NEW_FILE, 0o666, dir_fd=self.fd)
            with contextlib.suppress(OSError):
                lock_file(self._lock)
            # made after the lock is held: a folder with a journal is locked while alive
            self._journal = os.open(JOURNAL, NEW_FILE | os.O_APPEND, 0o666, dir_fd=self.fd)
        return self.fd

    def intend(self, names: list[str], snapshot: object, inode: int | None) -> None:
        """Journal that the record ``names`` is about to become the file ``inode`` (None: deleted).

        ``snapshot`` is what :meth:`save` returned for that key (``ABSENT`` or
        ``(log, link)``); for anything else nothing is journaled, and
        recovery leaves the key alone.
        """
        if snapshot is ABSENT:
            link = None
        elif isinstance(snapshot, tuple) and snapshot[0] is self:
            link = snapshot[1]
        else:
            return
        self._folder()
        entry = {"path": list(names), "link": link, "inode": inode}
        write_all(self._journal, (json.dumps(entry) + "\n").encode("utf-8"))

    def committed(self) -> None:
        """The transaction is durable: remove its journal (no recovery may roll it back now).

        Raises
        ------
        OSError
            The journal could not be removed (the transaction is not committed).
        """
        if self._journal >= 0:
            os.unlink(JOURNAL, dir_fd=self.fd)
            os.close(self._journal)
            self._journal = -1

    def save(self, dir_fd: int, name: str) -> object:
        """Keep the record ``name`` (in ``dir_fd``) for rollback; return the snapshot."""
        folder = self._folder()
        self._count += 1
        link = str(self._count)
        try:
            os.link(name, link, src_dir_fd=dir_fd, dst_dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return ABSENT
        except OSError:  # no hard links here (FAT, some network filesystems): copy
            if not _copy_file(dir_fd, name, folder, link):
                return ABSENT
        return (self, link)

    def discard(self) -> None:
        """Remove the undo copies and release the lock (commit or finished rollback)."""
        if self.name:
            with contextlib.suppress(OSError):
                os.unlink(JOURNAL, dir_fd=self.fd)
            remove_flat_dir(self._trash_root, self.name)
            self.name = ""
        self.close()

    def close(self) -> None:
        """Release descriptors, keeping the undo copies on disk."""
        for fd in (self.fd, self._lock, self._journal):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self._lock = self._journal = -1


def _copy_file(src_dir: int, src: str, dst_dir: int, dst: str) -> bool:
    try:
        fd = os.open(src, READ_FLAGS, dir_fd=src_dir)
    except FileNotFoundError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        out = os.open(dst, NEW_FILE, 0o666, dir_fd=dst_dir)
        try:
            while chunk := os.read(fd, 1 << 20):
                write_all(out, chunk)
        finally:
            os.close(out)
        return True
    finally:
        os.close(fd)


def blobs_in_undo_logs(trash_root: int) -> set[str]:
    """Blobs named by the undo copies of every open transaction (needed by their rollback)."""
    used: set[str] = set()
    with os.scandir(trash_root) as txns:
        folders = [t.name for t in txns if t.is_dir(follow_symlinks=False)]
    for folder in folders:
        try:
            fd = open_dir(trash_root, [folder])
        except OSError:
            continue
        try:
            with os.scandir(fd) as entries:
                names = [e.name for e in entries if e.name not in ("lock", JOURNAL)]
            for name in names:
                with contextlib.suppress(OSError, StoreError):
                    rfd = os.open(name, READ_FLAGS, dir_fd=fd)
                    try:
                        blob = read_record(rfd, name, inline=False)[0].blob
                    finally:
                        os.close(rfd)
                    if blob:
                        used.add(blob)
        finally:
            os.close(fd)
    return used


def recover_abandoned(root_fd: int, trash_root: int, name: str) -> bool | None:
    """Roll back the transaction of the undo folder ``name`` if its process died; remove it.

    Returns None if the folder has no journal (nothing to roll back: the
    caller decides by age), False if its transaction is still alive (or
    another process is recovering it), True once it was rolled back and
    its folder removed.
    """
    try:
        fd = open_dir(trash_root, [name])
    except OSError:
        return False
    try:
        try:
            journal = os.open(JOURNAL, READ_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError:
            return False
        try:
            lock = os.open("lock", READ_FLAGS, dir_fd=fd)
        except OSError:
            os.close(journal)
            return False
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # alive, or being recovered by another connect
            with os.fdopen(journal, "rb", closefd=False) as f:
                entries = _read_journal(f.read())
            for path, (link, inodes) in reversed(entries.items()):
                _undo(root_fd, fd, list(path), link, inodes)
            with contextlib.suppress(OSError):
                os.unlink(JOURNAL, dir_fd=fd)
            remove_flat_dir(trash_root, name)  # still holding the lock
            return True
        finally:
            os.close(lock)
            os.close(journal)
    finally:
        os.close(fd)


def _read_journal(text: bytes) -> dict[tuple[str, ...], tuple[str | None, set[int | None]]]:
    """Per record path, in order of first change: its undo copy and the inodes written there."""
    entries: dict[tuple[str, ...], tuple[str | None, set[int | None]]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            path = tuple(entry["path"])
            link, inode = entry["link"], entry["inode"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by the kill: that change never started
        if path not in entries:
            entries[path] = (link, set())
        entries[path][1].add(inode)
    return entries


def _undo(root_fd: int, txn_fd: int, path: list[str], link: str | None,
          inodes: set[int | None]) -> None:
    """Put back the record ``path`` as before the transaction, if the transaction wrote it."""
    try:
        dfd = open_dir(root_fd, path[:-1])
    except OSError:
        current = None
    else:
        try:
            current = os.stat(path[-1], dir_fd=dfd, follow_symlinks=False).st_ino
        except OSError:
            current = None
        finally:
            os.close(dfd)
    if current not in inodes:
        return  # unchanged by the transaction, or changed by someone since
    with contextlib.suppress(OSError):
        if link is None:
            if current is not None:
                dfd = open_dir(root_fd, path[:-1])
                try:
                    os.unlink(path[-1], dir_fd=dfd)
                finally:
                    os.close(dfd)
                prune_dirs(root_fd, path[:-1])
            return
        dfd = open_dir(root_fd, path[:-1], create=True)
        try:
            os.replace(link, path[-1], src_dir_fd=txn_fd, dst_dir_fd=dfd)
        finally:
            os.close(dfd)
