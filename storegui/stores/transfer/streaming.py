"""Streaming copies with progress, cancellation and digests.

Shared by push, pull, import and export: data moves in chunks (bounded
memory), progress goes to a callback, another thread can cancel through a
:class:`CancelToken`, and a cancelled or failing copy raises inside the
destination's atomic write, so no partial key is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import InvalidDataError, TransferCancelled
from .kernel_copy import is_regular_file, kernel_copy, link_shared_file, regular_file_fd
from .threads import HashWorker, RangeHasher, WriteBehind

DEFAULT_BUFFER_SIZE = 1 << 20
#: A digest is computed inline for the first bytes of a stream, then on a
#: helper thread (see :class:`.threads.HashWorker`), and a copy writes on
#: a helper thread after that many bytes (:class:`.threads.WriteBehind`):
#: small values start no thread.
INLINE_HASH_BYTES = 4 << 20

Progress = Callable[[int, "int | None"], None]
"""``progress(done, total)``: bytes done so far and the total (None if unknown)."""


class CancelToken:
    """A flag another thread sets to stop a transfer between chunks."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the transfer to stop at its next chunk."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._event.is_set()

    def check(self, key: str | None = None) -> None:
        """Raise :class:`TransferCancelled` if cancel() was called."""
        if self._event.is_set():
            raise TransferCancelled(
                f"transfer of {key!r} was cancelled" if key else "transfer was cancelled", key
            )


def check_readable(data: Any, key: str | None = None) -> None:
    """Raise :class:`InvalidDataError` unless ``data`` is a readable binary stream."""
    if type(data) is io.BytesIO and not data.closed:  # the common case, checked per key
        return
    read = getattr(data, "read", None)
    if not callable(read):
        hint = " (use from_bytes for bytes)" if isinstance(data, bytes | bytearray) else ""
        raise InvalidDataError(
            f"data must be a readable binary file-like object, not {type(data).__name__}{hint}",
            key,
        )
    if isinstance(data, io.TextIOBase):
        raise InvalidDataError("data must be a binary stream, not a text stream", key)
    readable = getattr(data, "readable", None)
    if callable(readable):
        try:
            ok = readable()
        except ValueError as exc:  # closed file
            raise InvalidDataError(f"data stream cannot be read: {exc}", key) from None
        if not ok:
            raise InvalidDataError("data stream is not open for reading", key)


class ProgressReader(io.RawIOBase):
    """Wraps a binary stream: counts bytes, reports progress, checks cancel, hashes.

    Reading raises :class:`TransferCancelled` once the token is cancelled, so
    a store writing from this reader aborts its atomic write.

    Parameters
    ----------
    stream : binary file-like
        The source.
    total : int, optional
        Expected size, passed to ``progress``.
    progress : callable, optional
        ``progress(done, total)`` after every chunk.
    cancel : CancelToken, optional
    digest : str, optional
        A hashlib algorithm name (e.g. "sha256") to compute while reading
        (on a helper thread once the stream is past :data:`INLINE_HASH_BYTES`).
    key : str, optional
        For error messages.
    owns_stream : bool
        Whether closing this reader closes ``stream`` (False for a stream the
        caller still owns, such as one passed to ``Store.set``).
    """

    def __init__(
        self,
        stream: BinaryIO,
        total: int | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        digest: str | None = None,
        key: str | None = None,
        owns_stream: bool = True,
    ) -> None:
        super().__init__()
        self.raw_stream = stream
        self._owns_stream = owns_stream
        self.total = total
        self.done = 0
        self._progress = progress
        self._cancel = cancel
        self._hash = hashlib.new(digest) if digest else None
        self._worker: HashWorker | RangeHasher | None = None
        self._key = key

    @contextlib.contextmanager
    def also_reporting(self, progress: Progress | None) -> Iterator[ProgressReader]:
        """Within the block, call ``progress(done, total)`` too, after this reader's own.

        A store writing from a reader it was given reports its progress events
        through it, instead of wrapping it in a second reader.
        """
        own = self._progress
        if progress is not None:
            if own is None:
                self._progress = progress
            else:
                def both(done: int, total: int | None) -> None:
                    own(done, total)
                    progress(done, total)

                self._progress = both
        try:
            yield self
        finally:
            self._progress = own

    @property
    def hexdigest(self) -> str | None:
        """The digest of everything read so far (None if no digest was asked for)."""
        if self._worker is not None:
            return self._worker.hexdigest()
        return self._hash.hexdigest() if self._hash is not None else None

    def _update_hash(self, chunk: Any) -> None:
        if self._worker is None:
            if self.done <= INLINE_HASH_BYTES:
                self._hash.update(chunk)
                return
            self._worker = HashWorker(self._hash)
        self._worker.feed(chunk)  # copied unless bytes: the caller may reuse a readinto buffer

    def readable(self) -> bool:
        return True

    def _account(self, chunk: Any) -> None:
        n = len(chunk)
        if n:
            self.done += n
            if self._hash is not None:
                self._update_hash(chunk)
        if self._progress is not None:
            self._progress(self.done, self.total)

    def readinto(self, buffer: Any) -> int:
        if self._cancel is not None:
            self._cancel.check(self._key)
        readinto = getattr(self.raw_stream, "readinto", None)
        view = memoryview(buffer).cast("B")
        if readinto is not None:
            n = readinto(view) or 0
        else:
            data = self.raw_stream.read(len(view))
            n = len(data)
            view[:n] = data
        self._account(view[:n])
        return n

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None:
            self._cancel.check(self._key)
        data = self.raw_stream.read(size if size is not None else -1)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidDataError("data stream returned text, not bytes", self._key)
        self._account(data)
        return bytes(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def copy_into_fd(self, fd: int, chunk_size: int = DEFAULT_BUFFER_SIZE) -> int:
        """Copy what is left of the stream to file descriptor ``fd`` in the kernel, if possible.

        Applies when the innermost stream is a regular file with a
        descriptor, and no digest is being computed except by the reader
        right over that file (which hashes what was copied, see
        ``_hash_range``) (Linux
        ``os.copy_file_range``, else ``os.sendfile``; a reflink on filesystems
        that share blocks). Progress and cancel work as for ``read``, once per
        ``chunk_size`` bytes. Returns the bytes copied; whatever is left (all
        of it when the fast path does not apply) the caller reads as usual.

        Raises
        ------
        TransferCancelled
            If the token was cancelled; ``fd`` then holds a partial copy.
        """
        if not self._kernel_copyable():
            return 0
        copied = 0
        while True:
            n = self._copy_chunk(fd, max(1, chunk_size))
            if n <= 0:
                return copied
            copied += n

    def link_into(self, dir_fd: int, name: str, min_size: int = 0) -> int | None:
        """Hard-link the immutable file this stream reads as ``name`` in ``dir_fd``, if possible.

        Applies before anything was read, with no digest to compute, when the
        innermost stream is a whole value file of a local store (see
        :func:`~.kernel_copy.shared_file_fd`) of at least ``min_size`` bytes
        on the same filesystem. Returns
        the bytes "read" (the stream is then at its end, and progress has
        been reported), or None: the caller copies as usual.

        Raises
        ------
        TransferCancelled
            If the token was cancelled.
        """
        if self.done or self._hashing() or not self._kernel_copyable():
            return None
        if self._cancel is not None:
            self._cancel.check(self._key)
        inner = self.raw_stream
        if isinstance(inner, ProgressReader):
            size = inner.link_into(dir_fd, name, min_size)
        else:
            size = link_shared_file(inner, dir_fd, name, min_size)
            if size is not None:
                inner.seek(0, io.SEEK_END)
        if size is None:
            return None
        self.done = size
        if self._progress is not None:
            self._progress(self.done, self.total)
        if self._cancel is not None:  # as a copy would at its next read: nothing is kept
            self._cancel.check(self._key)
        return size

    def _kernel_copyable(self) -> bool:
        inner = self.raw_stream
        if isinstance(inner, ProgressReader):
            # a digest needs the file itself to read back (see _hash_range)
            return self._hash is None and inner._kernel_copyable()
        if self._hash is not None and not hasattr(os, "preadv"):
            return False
        return is_regular_file(inner)

    def _hashing(self) -> bool:
        """Whether this reader or one it wraps computes a digest."""
        inner = self.raw_stream
        return self._hash is not None or (isinstance(inner, ProgressReader) and inner._hashing())

    def _hash_range(self, fd: int, offset: int, length: int) -> None:
        """Hash bytes the kernel just copied, read back from the source on a helper thread.

        The page cache holds them, so on two cores the copy runs at the
        speed of the slower of copying and hashing. A source file changed
        during the copy could make the digest differ from the bytes copied;
        ``import_file``, which hashes, checks the file is unchanged afterwards.
        """
        if not isinstance(self._worker, RangeHasher):
            if self._worker is not None:  # what was read before is hashed first, in order
                self._worker.drain()
                self._worker.close()
            self._worker = RangeHasher(self._hash, fd)
        self._worker.feed_range(offset, length)

    def _copy_chunk(self, fd: int, size: int) -> int:
        """Copy up to ``size`` bytes; 0 at the end, -1 if the kernel cannot copy here."""
        if self._cancel is not None:
            self._cancel.check(self._key)
        inner = self.raw_stream
        if isinstance(inner, ProgressReader):
            n = inner._copy_chunk(fd, size)
        elif self._hash is not None:
            pos = inner.tell()
            n = kernel_copy(inner, fd, size)
            if n > 0:
                self._hash_range(inner.fileno(), pos, n)
        else:
            n = kernel_copy(inner, fd, size)
        if n > 0:
            self.done += n
        if self._progress is not None and n >= 0:
            self._progress(self.done, self.total)
        return n

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        if not self.closed and self._owns_stream:
            self.raw_stream.close()
        super().close()


def _copy_in_kernel(src: Any, dst: Any, chunk: int, progress: Progress | None,
                    cancel: CancelToken | None, total: int | None, key: str | None) -> int:
    """Copy ``src`` to ``dst`` in the kernel where both are regular files; bytes copied.

    Returns 0 when the kernel cannot do it (a pipe, a socket, an in-memory
    stream, a digest to compute...); if it stops part way, what is left is
    the caller's to copy as usual. ``dst`` is flushed first: the kernel
    writes at its descriptor's position.
    """
    if isinstance(src, ProgressReader):
        if not src._kernel_copyable():
            return 0
        step = src._copy_chunk
    elif is_regular_file(src):
        def step(fd: int, size: int) -> int:
            return kernel_copy(src, fd, size)
    else:
        return 0
    fd = regular_file_fd(dst)
    if fd is None:
        return 0
    flush = getattr(dst, "flush", None)
    if callable(flush):
        flush()
    done = 0
    while True:
        if cancel is not None:
            cancel.check(key)
        n = step(fd, chunk)
        if n <= 0:
            return done
        done += n
        if progress is not None:
            progress(done, total)


def copy_stream(
    src: BinaryIO,
    dst: Any,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    total: int | None = None,
    key: str | None = None,
) -> int:
    """Copy ``src`` to ``dst`` (anything with ``write``) in chunks; return bytes copied.

    When both are regular files (an export of a FileSystemStore value to a
    file) the bytes move in the kernel (``os.copy_file_range``, else
    ``os.sendfile``), chunk by chunk with the same progress and cancel.
    Otherwise, past the first :data:`INLINE_HASH_BYTES`, ``dst`` is written
    on a helper thread (in order) while the next chunk is read, so reading an
    SqliteStore value and writing a file overlap. Raises
    :class:`TransferCancelled` between chunks once ``cancel`` is set; what
    was written to ``dst`` up to then is the caller's to discard.
    """
    chunk_size = max(1, buffer_size)
    done = _copy_in_kernel(src, dst, chunk_size, progress, cancel, total, key)
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    readinto = getattr(src, "readinto", None)
    writer: WriteBehind | None = None
    try:
        while True:
            if cancel is not None:
                cancel.check(key)
            if readinto is not None:
                target = view if writer is None else writer.buffer(chunk_size)
                n = readinto(target)
                if not n:
                    break
                if writer is None:
                    dst.write(view[:n])
                else:
                    writer.send(target, n)
            else:
                chunk = src.read(buffer_size)
                if not chunk:
                    break
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidDataError("data stream returned text, not bytes", key)
                n = len(chunk)
                if writer is None:
                    dst.write(chunk)
                else:
                    writer.send_copy(chunk)
            done += n
            if writer is None and done > INLINE_HASH_BYTES:
                writer = WriteBehind(dst)
            if progress is not None:
                progress(done, total)
        if writer is not None:
            writer.close()  # everything written; raises the writer's error, if any
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return done


@dataclass(frozen=True)
class CopyResult:
    """What a store-to-store copy moved."""

    size: int
    digest: str | None


def copy_value(
    src_store: Any,
    src_key: str,
    dst_store: Any,
    dst_key: str,
    *,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    digest: str | None = None,
    metadata: dict | None = None,
) -> CopyResult:
    """Stream ``src_store[src_key]`` (data and metadata) into ``dst_store[dst_key]``.

    The destination write is atomic: on cancel or error it raises and
    ``dst_key`` keeps whatever it held before. After the write the sizes are
    checked (source's claimed size, bytes read, destination's size); a
    mismatch raises :class:`~storegui.stores.errors.VerificationError` after
    the caller's copy has been written, so callers that must not keep a bad
    copy (push) check the result before deleting anything. With ``digest``
    (a hashlib name) the bytes are hashed on the way (read back on a helper
    thread after a kernel copy; never shared as a hard link).
    """
    return copy_from_value(src_store.get(src_key), src_store, src_key, dst_store, dst_key,
                           buffer_size=buffer_size, progress=progress, cancel=cancel,
                           digest=digest, metadata=metadata)


def copy_from_value(
    value: Any,
    src_store: Any,
    src_key: str,
    dst_store: Any,
    dst_key: str,
    *,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    digest: str | None = None,
    metadata: dict | None = None,
) -> CopyResult:
    """:func:`copy_value` of a :class:`~.value.Value` already read from ``src_store``.

    The value's data stream is consumed and closed; ``value.open()`` still
    gives a new stream of the same version (to verify the copy against).
    """
    from ..errors import VerificationError

    with value.data as stream:
        reader = ProgressReader(stream, value.size, progress, cancel, digest, src_key,
                                owns_stream=False)
        try:
            md = value.metadata if metadata is None else metadata
            dst_store.set(dst_key, (reader, md), buffer_size=buffer_size)
            hexdigest = reader.hexdigest
        finally:
            reader.close()
    if value.size is not None and reader.done != value.size:
        raise VerificationError(
            f"copy of {src_key!r} read {reader.done} bytes but the source said {value.size}",
            src_key,
            src_store,
        )
    dst_size = dst_store.stat(dst_key).size
    if dst_size is not None and dst_size != reader.done:
        raise VerificationError(
            f"copy of {src_key!r} to {dst_key!r} has {dst_size} bytes, expected {reader.done}",
            dst_key,
            dst_store,
        )
    return CopyResult(reader.done, hexdigest)
