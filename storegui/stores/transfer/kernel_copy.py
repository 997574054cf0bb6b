"""Copies in the kernel between file descriptors (Linux ``copy_file_range``, else ``sendfile``).

Used by :class:`~.streaming.ProgressReader` and :func:`~.streaming.copy_stream`
when both ends are regular files: the bytes never enter Python (and on
filesystems that share blocks, ``copy_file_range`` makes a reflink).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from typing import Any


def is_regular_file(stream: Any) -> bool:
    """Whether ``stream`` is a seekable regular file with a descriptor (a kernel copy source)."""
    try:
        if not stream.seekable():
            return False
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return False


def regular_file_fd(stream: Any) -> int | None:
    """The descriptor of ``stream`` if it writes to a regular file, else None."""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def kernel_copy(src: Any, fd: int, size: int) -> int:
    """Copy up to ``size`` bytes from ``src``'s position to ``fd``; -1 if unsupported."""
    pos = src.tell()
    src_fd = src.fileno()
    n = -1
    if hasattr(os, "copy_file_range"):
        try:
            n = os.copy_file_range(src_fd, fd, size, pos)
        except OSError as exc:
            if exc.errno not in NO_KERNEL_COPY:
                raise
    if n < 0 and sys.platform.startswith("linux"):
        try:
            n = os.sendfile(fd, src_fd, pos, size)
        except OSError as exc:
            if exc.errno not in NO_KERNEL_COPY:
                raise
    if n > 0:
        src.seek(pos + n)  # the copy used an explicit offset: move the stream past it
    return n


NO_KERNEL_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


def shared_file_fd(stream: Any) -> int | None:
    """The descriptor of the immutable file that ``stream`` reads whole from its start, if any.

    A store whose large values are files that are never modified after they
    are written (FileSystemStore's blobs) gives its value streams a
    ``shared_file()`` method returning that file's descriptor; another local
    store may then hard-link the file instead of copying it. Wrappers are
    looked through (``raw_stream`` of a ProgressReader, ``raw`` of a buffered
    reader), but only while nothing has been read from them yet.
    """
    inner = stream
    for _ in range(8):  # a few wrappers at most; a cycle must not hang
        if getattr(inner, "done", 0):  # a ProgressReader that has read some bytes already
            return None
        try:
            if inner.tell() != 0:
                return None
        except (AttributeError, OSError, ValueError):
            pass  # a wrapper without a position: its inner stream's is checked next
        shared = getattr(inner, "shared_file", None)
        if callable(shared):
            return shared()
        inner = getattr(inner, "raw_stream", None) or getattr(inner, "raw", None)
        if inner is None:
            return None
    return None


def link_shared_file(stream: Any, dir_fd: int, name: str, min_size: int = 0) -> int | None:
    """Hard-link the file ``stream`` reads (see :func:`shared_file_fd`) as ``name`` in ``dir_fd``.

    Returns the file's size, or None when there is no such file, it is
    smaller than ``min_size`` bytes, or the
    system cannot link it here (another filesystem, no ``/proc``, a
    filesystem without hard links...): the caller then copies the bytes.
    ``name`` must not exist yet.
    """
    fd = shared_file_fd(stream)
    if fd is None or not sys.platform.startswith("linux"):
        return None
    try:
        size = os.fstat(fd).st_size
        if size < min_size:
            return None
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N links the open file itself,
        # without needing its path (which another process may rename meanwhile).
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
    except OSError:
        return None
    return size
