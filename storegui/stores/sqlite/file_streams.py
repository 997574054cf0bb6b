"""The streams around SqliteStore's value files (see :mod:`.files`).

Reading: :func:`file_value` is the :class:`Value` ``get`` returns for a key
whose data is a value file, and :class:`ValueFileStream` the stream it
opens. A value file is never modified once written, so the open descriptor
keeps the version it opened, and a whole unread file can be hard-linked by
another local store instead of copied. Writing: :func:`remaining_size`
tells, when that is cheap, whether a source stream is large enough to
become a value file.
"""

from __future__ import annotations

import io
import os
from typing import Any

from ..localfiles.streams import FdHandle
from ..localfiles.streams import FileRangeReader as BlobReader
from ..transfer.kernel_copy import is_regular_file
from ..transfer.streaming import ProgressReader
from ..value import Value


def remaining_size(stream: Any) -> int | None:
    """How many bytes ``stream`` has left, if cheaply known (a hint, not a promise).

    Known from a ProgressReader's ``total``, or for an in-memory stream or a
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


class ValueFileStream(io.BufferedReader):
    """A buffered stream over (part of) a value file, as ``get`` returns it.

    It has a ``fileno()`` (so copies to files run in the kernel) and
    ``shared_file()`` only when it covers the whole file.
    """

    def shared_file(self) -> int | None:
        """The value file's descriptor, for a hard link; None unless the whole file is unread.

        The file is never modified, so another local store may link it
        instead of copying its bytes.
        """
        if self.closed or self.tell() != 0:
            return None
        return self.raw.shared_file()


def open_value_stream(handle: FdHandle, size: int, start: int = 0,
                      end: int | None = None) -> ValueFileStream:
    """A stream over bytes ``start .. end-1`` of the value file held by ``handle``."""
    end = size if end is None else max(start, min(end, size))
    return ValueFileStream(BlobReader(handle, start, end, start == 0 and end == size))


def file_value(handle: FdHandle, size: int, metadata: str, created: float,
               modified: float) -> Value:
    """The :class:`Value` of a key whose data is the value file open in ``handle``."""
    return Value(lambda: open_value_stream(handle, size), metadata, size, created, modified,
                 lambda start, end: open_value_stream(handle, size, start, end))
