"""Folders and files by descriptor, for the local stores' value files.

Every path is resolved one component at a time with ``openat``-style calls
(``dir_fd=``) and ``O_NOFOLLOW``, starting from an open folder: a symlink
(even one a user planted) is never followed, and paths deeper than
``PATH_MAX`` work because no full path string is built.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from typing import Any

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a file's name must not hang the reader.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: Flags of a file that must be new (never one already there, nor a symlink).
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


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
