"""Directory walking for :class:`FileSystemStore` that never follows a symbolic link.

Every path is resolved one component at a time with ``openat``-style calls
(``dir_fd=``) and ``O_NOFOLLOW``, starting from the store root's descriptor:
a symlink inside the root (even one a user planted) is never followed, and
paths deeper than ``PATH_MAX`` work because no full path string is built.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import sys
import time
from typing import Any

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a record name must not hang the reader.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: Errors that mean "this path does not lead to what we look for".
MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def open_dir(base_fd: int, names: list[str] | tuple[str, ...], create: bool = False) -> int:
    """A new descriptor of the directory ``names`` below ``base_fd`` (caller closes it).

    With ``create``, missing directories are made. Raises ``OSError``: ENOENT
    or ENOTDIR if missing, ELOOP (or ENOTDIR) if a component is a symlink.
    """
    if not names:
        return os.open(".", DIR_FLAGS, dir_fd=base_fd)
    fd = base_fd
    try:
        for name in names:
            try:
                nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
                nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            if fd != base_fd:
                os.close(fd)
            fd = nxt
    except BaseException:
        if fd != base_fd:
            os.close(fd)
        raise
    return fd


def prune_dirs(root_fd: int, names: list[str]) -> None:
    """Remove the directories ``names`` (a path below the root) bottom-up while empty.

    Climbs with ``..`` so only two descriptors are open however deep the path
    is; stops at the first directory that is not empty (or already gone).
    """
    if not names:
        return
    try:
        fd = open_dir(root_fd, names)
    except OSError:
        return
    try:
        for name in reversed(names):
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                return
    finally:
        os.close(fd)


def flush_filesystem(fd: int) -> None:
    """Make every file written on the filesystem holding ``fd`` durable, in one call.

    ``syncfs`` on Linux (that filesystem only), else ``sync`` (all of them).
    """
    syncfs = _syncfs()
    if syncfs is None or syncfs(fd) != 0:
        os.sync()


@functools.cache
def _syncfs() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def lock_file(fd: int) -> None:
    """Hold an exclusive ``flock`` on ``fd`` (released when it is closed)."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


#: The ending of a temp file's name given only once its writer holds its flock.
HELD = ".held"


def is_abandoned(dir_fd: int, name: str, min_age: float) -> bool:
    """Whether the temp file (or transaction folder's ``lock``) ``name`` was left by a dead writer.

    A live writer holds an exclusive ``flock`` on it for as long as it works;
    ``min_age`` seconds since the last change cover the instant between
    creating the file and locking it. A temp file named ``*.held`` got
    that name only once locked (:func:`.spool.new_temp`),
    so unlocked it is dead at any age: a killed import's whole-size temp file
    goes at the next connect, not a minute later.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # somebody holds it: in use
        if name.endswith(HELD):
            return True
        return time.time() - os.fstat(fd).st_mtime > min_age
    finally:
        os.close(fd)



def remove_flat_dir(parent_fd: int, name: str) -> None:
    """Remove the directory ``name`` and the files directly in it."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries]
        for entry in names:
            with contextlib.suppress(OSError):
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=parent_fd)
