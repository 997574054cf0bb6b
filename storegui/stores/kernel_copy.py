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
