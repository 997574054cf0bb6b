"""Spooling incoming data for a local store's write: in memory, a temp file, or a hard link.

:func:`spool` reads a value being written. Up to ``inline_max`` bytes stay
in memory (a value that small lives inside its record or row). A larger one
goes on into a temp file (:func:`~.tempfiles.new_temp`), which the store
later renames to its value file name. When the source is a whole value file
of a local store on the same filesystem, the temp file is a hard link to it
(:func:`link_temp`: no bytes move, which is safe because value files are
never modified); else when the source is a plain file, the bytes move in the
kernel (``copy_file_range``). The temp file is fsynced only when asked.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import no_room_reason
from ..transfer.kernel_copy import link_shared_file, shared_file_fd
from ..transfer.streaming import ProgressReader, copy_stream
from .descriptors import write_all
from .tempfiles import hold, new_temp, remove_temp

#: ``fail(error)``: the exception to raise for a failure to write the temp file.
Fail = Callable[[OSError], Exception]


@dataclass
class Spooled:
    """Data read from a stream: ``inline`` bytes, or a temp file (open at ``fd``, locked).

    ``name`` is the temp file's name in the folder ``dir_fd`` ("" when the
    data is inline).
    """

    size: int
    inline: bytes = b""
    fd: int = -1
    name: str = ""
    dir_fd: int = -1

    @property
    def token(self) -> str:
        """The random 32 hex digits of the temp file's name (``<kind>-<token>.held``)."""
        return self.name.partition("-")[2][:32]

    def discard(self) -> None:
        """Close the temp file, and remove it unless it was renamed meanwhile."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            remove_temp(self.dir_fd, self.name)


class FdSink:
    """``copy_stream``'s destination: a file descriptor; write errors become ``fail(error)``."""

    def __init__(self, fd: int, fail: Fail) -> None:
        self._fd = fd
        self._fail = fail

    def write(self, data: Any) -> int:
        try:
            write_all(self._fd, data)
        except OSError as exc:
            raise self._fail(exc) from None
        return len(data)

    def fileno(self) -> int:
        return self._fd

    def flush(self) -> None:
        """Nothing is buffered."""


def spool(
    data: BinaryIO, buffer_size: int, tmp_fd: int, fail: Fail, *, kind: str,
    inline_max: int | None, head: bytes = b"", fsync: bool = False, key: str | None = None,
) -> Spooled:
    """Read ``head`` and all of ``data`` (see the module docstring); the caller discards it.

    ``inline_max``: the most bytes kept in memory (None: always a temp file);
    a hard link is tried only for a larger source of which nothing was read
    yet. The temp file is named ``<kind>-<token>.held``. ``key`` names the
    value in errors of the source.

    Errors raised by ``data`` (TransferCancelled, a failing source...) pass
    through; a failure to write the temp file raises ``fail(error)``. Either
    way the temp file is removed first.
    """
    if not head and inline_max is not None:
        linked = link_temp(data, tmp_fd, kind, inline_max + 1, fail, fsync)
        if linked is not None:
            return linked
    if inline_max is not None:
        buffer = bytearray(head)
        while len(buffer) <= inline_max:
            chunk = data.read(min(max(buffer_size, 1), inline_max + 1 - len(buffer)))
            if not chunk:
                return Spooled(len(buffer), bytes(buffer))
            buffer += chunk
        head = bytes(buffer)
    try:
        fd, name = new_temp(tmp_fd, kind)
    except OSError as exc:
        raise fail(exc) from None
    spooled = Spooled(0, b"", fd, name, tmp_fd)
    try:
        sink = FdSink(fd, fail)
        sink.write(head)
        try:
            copy_stream(data, sink, max(1, buffer_size), key=key)
        except OSError as exc:
            # The kernel copy mixes the source's errors with ours (the sink's own
            # are already fail()'s); only a lack of room is certainly the store's.
            if no_room_reason(exc) is None:
                raise
            raise fail(exc) from None
        try:
            if fsync:
                os.fsync(fd)
            spooled.size = os.fstat(fd).st_size
        except OSError as exc:
            raise fail(exc) from None
        return spooled
    except BaseException:
        spooled.discard()
        raise


def link_temp(data: Any, tmp_fd: int, kind: str, min_size: int, fail: Fail,
              fsync: bool = False) -> Spooled | None:
    """A temp file hard-linked to the value file ``data`` reads whole; None if that cannot be.

    Applies when nothing was read from ``data`` yet, no digest is computed
    over it, and it is a value file of a local store of at least
    ``min_size`` bytes on this filesystem (see
    :func:`~..transfer.kernel_copy.link_shared_file`); ``data`` is then at its
    end, and its progress reported once. Raises TransferCancelled if its
    cancel token is set (nothing is kept), ``fail(error)`` on a disk error.
    """
    if shared_file_fd(data) is None:  # the cheap check first
        return None
    fresh = f"{kind}-{secrets.token_hex(16)}.tmp"
    try:
        if isinstance(data, ProgressReader):
            size = data.link_into(tmp_fd, fresh, min_size)
        else:
            size = link_shared_file(data, tmp_fd, fresh, min_size)
            if size is not None:
                data.seek(0, io.SEEK_END)
    except BaseException:
        remove_temp(tmp_fd, fresh)
        raise
    if size is None:
        return None
    try:
        fd = os.open(fresh, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tmp_fd)
    except OSError as exc:
        remove_temp(tmp_fd, fresh)
        raise fail(exc) from None
    spooled = Spooled(size, b"", fd, fresh, tmp_fd)
    try:
        # As for any temp file, the lock (and a fresh mtime until it is held)
        # keeps another process's clean-up of abandoned temp files away.
        os.utime(fd)
        spooled.name = hold(tmp_fd, fd, fresh)
        if fsync:  # the source store may not have made it durable ("normal" sync)
            os.fsync(fd)
        spooled.size = os.fstat(fd).st_size
    except OSError as exc:
        spooled.discard()
        raise fail(exc) from None
    return spooled
