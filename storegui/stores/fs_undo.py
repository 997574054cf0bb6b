"""Undo log of one open :class:`FileSystemStore` transaction.

The first change of a key in a transaction hard-links its record (a small
file) into ``.storegui/trash/<txn>/`` (a copy where hard links are not
supported); rollback renames it back. Blobs of replaced values are kept until
commit (``doomed``), and blobs written in the transaction are removed on
rollback (``born``). The folder's ``lock`` file is ``flock``-ed while the
transaction lives, so a connect in another process never cleans it up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from .errors import StoreError
from .fs_dirs import READ_FLAGS, lock_file, open_dir, remove_flat_dir, write_all
from .fs_records import read_record

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: Snapshot of a key that did not exist: rollback deletes it.
ABSENT = object()


class UndoLog:
    """What one transaction changed on disk; see the module docstring."""

    def __init__(self, trash_root: int) -> None:
        self._trash_root = trash_root
        self.name = ""
        self.fd = -1
        self._lock = -1
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
        return self.fd

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
            remove_flat_dir(self._trash_root, self.name)
            self.name = ""
        self.close()

    def close(self) -> None:
        """Release descriptors, keeping the undo copies on disk."""
        for fd in (self.fd, self._lock):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self._lock = -1


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
                names = [e.name for e in entries if e.name != "lock"]
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
