"""Reading a local store's value file: the open file, its streams, its :class:`Value`.

A value file is never modified once written, so the open descriptor
(:class:`FdHandle`) keeps the version ``get`` found, even if the key is
replaced or deleted meanwhile, and a whole unread file can be hard-linked by
another local store instead of copied (``shared_file()``, see
:func:`~..transfer.kernel_copy.shared_file_fd`).
"""

from __future__ import annotations

import io
import os
from typing import Any

from ..value import Value

_preadv = getattr(os, "preadv", None)


class FdHandle:
    """Owns an open file descriptor; closes it when the last user lets go of it.

    A :class:`~storegui.stores.value.Value` and every stream opened from it
    keep the handle alive, so a value read stays the version that was current
    when ``get`` ran, even if the key is replaced or deleted meanwhile.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class FileRangeReader(io.RawIOBase):
    """Reads bytes ``start .. end-1`` of a file with ``pread`` (its own position, shared fd)."""

    def __init__(self, handle: FdHandle, start: int, end: int, whole: bool) -> None:
        super().__init__()
        self._handle: FdHandle | None = handle
        self._start = start
        self._pos = start
        self._end = end
        # Only a stream over the whole file exposes its descriptor: a kernel
        # copy (copy_file_range) runs to the end of the file, not of a range.
        self._whole = whole

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        if not self._whole or self._handle is None:
            raise io.UnsupportedOperation("fileno")
        return self._handle.fd

    def shared_file(self) -> int | None:
        """The file's descriptor, for a hard link; only offered over the whole file."""
        if not self._whole or self._handle is None:
            return None
        return self._handle.fd

    def readinto(self, buffer: Any) -> int:
        if self._handle is None:
            raise ValueError("read from a closed stream")
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._end - self._pos)
        if want <= 0:
            return 0
        if _preadv is not None:
            n = _preadv(self._handle.fd, [view[:want]], self._pos)
        else:
            chunk = os.pread(self._handle.fd, want, self._pos)
            n = len(chunk)
            view[:n] = chunk
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = self._start + offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._end + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < self._start:
            raise OSError(f"negative seek position {pos - self._start}")
        self._pos = pos
        return pos - self._start

    def tell(self) -> int:
        return self._pos - self._start

    def close(self) -> None:
        self._handle = None
        super().close()


class ValueFileStream(io.BufferedReader):
    """A buffered stream over (part of) a value file, as ``get`` returns it.

    It has a ``fileno()`` (so copies to files run in the kernel) and
    ``shared_file()`` only when it covers the whole file.
    """

    def shared_file(self) -> int | None:
        """The value file's descriptor, for a hard link; None unless the whole file is unread."""
        if self.closed or self.tell() != 0:
            return None
        return self.raw.shared_file()


def open_value_stream(handle: FdHandle, size: int, start: int = 0,
                      end: int | None = None) -> ValueFileStream:
    """A stream over bytes ``start .. end-1`` of the value file held by ``handle``."""
    end = size if end is None else max(start, min(end, size))
    return ValueFileStream(FileRangeReader(handle, start, end, start == 0 and end == size))


def file_value(handle: FdHandle, size: int, metadata: str, created: float,
               modified: float) -> Value:
    """The :class:`Value` of a key whose data is the value file open in ``handle``."""
    return Value(lambda: open_value_stream(handle, size), metadata, size, created, modified,
                 lambda start, end: open_value_stream(handle, size, start, end))
