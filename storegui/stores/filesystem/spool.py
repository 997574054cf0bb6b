"""Temp files and spooling of incoming data for :class:`FileSystemStore` writes.

Incoming data is read into memory up to :data:`INLINE_MAX` bytes; a value
that fits is stored inside its record. A larger one goes on into a temp file
under ``.storegui/tmp`` and is later renamed into ``blobs/``. When the source
is a whole value file of a local store on the same filesystem, the temp file
is a hard link to it (``ProgressReader.link_into``: no bytes move); else when
it is a plain file, the bytes move in the kernel (``ProgressReader.copy_into_fd``).
The temp file is fsynced only when asked (the store's ``sync="full"``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import no_room_reason
from ..transfer.kernel_copy import shared_file_fd
from ..transfer.streaming import ProgressReader
from .dirs import HELD, lock_file, write_all

#: Values up to this size live inside their record; larger ones in a blob file.
INLINE_MAX = 64 * 1024
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def new_temp(tmp_fd: int, kind: str) -> tuple[int, str]:
    """A new temp file ``<kind>-<32 hex>.held`` in ``tmp_fd``, ``flock``-ed: (descriptor, name).

    The file is created as ``<kind>-<32 hex>.tmp`` and gets its ``.held`` name
    only once locked, so a ``.held`` file nobody holds a lock on was left by a
    dead writer whatever its age (:func:`.dirs.is_abandoned` removes it at
    the next connect); a ``.tmp`` one is empty, or has no lock at all (no
    ``flock`` here), and is covered by the age rule.
    """
    token = secrets.token_hex(16)
    fresh = f"{kind}-{token}.tmp"
    fd = os.open(fresh, NEW_FILE, 0o666, dir_fd=tmp_fd)
    return fd, _lock_and_name(tmp_fd, fd, fresh, f"{kind}-{token}{HELD}")


def _lock_and_name(tmp_fd: int, fd: int, fresh: str, name: str) -> str:
    """Lock the new temp file ``fresh`` (open at ``fd``), then rename it ``name``; its name."""
    try:
        lock_file(fd)
    except OSError:
        return fresh  # no flock (some network filesystems): the age rule protects it
    try:
        os.rename(fresh, name, src_dir_fd=tmp_fd, dst_dir_fd=tmp_fd)
    except BaseException:
        os.close(fd)
        remove_temp(tmp_fd, fresh)
        raise
    return name


def remove_temp(tmp_fd: int, name: str) -> None:
    """Remove the temp file ``name`` if it is still there."""
    if name:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=tmp_fd)


@dataclass
class Spooled:
    """Data read from a stream: ``inline`` bytes, or a blob temp file (open, locked, synced)."""

    size: int
    inline: bytes = b""
    fd: int = -1
    name: str = ""

    @property
    def blob(self) -> str:
        """The blob name the temp file gets (its random token)."""
        return self.name[len("blob-"):len("blob-") + 32]


def spool(
    data: BinaryIO, buffer_size: int, tmp_fd: int, fail: Callable[[OSError], Exception],
    fsync: bool = True,
) -> Spooled:
    """Read all of ``data`` (see the module docstring); the caller closes ``fd``.

    Errors raised by ``data`` (TransferCancelled, a failing source...) pass
    through; a failure to write the temp file raises ``fail(error)``. Either
    way the temp file is removed first.
    """
    if isinstance(data, ProgressReader) and shared_file_fd(data) is not None:
        linked = _link(data, tmp_fd, fail, fsync)
        if linked is not None:
            return linked
    head = bytearray()
    while len(head) <= INLINE_MAX:
        chunk = data.read(min(max(buffer_size, 1), INLINE_MAX + 1 - len(head)))
        if not chunk:
            return Spooled(len(head), bytes(head))
        head += chunk
    try:
        fd, name = new_temp(tmp_fd, "blob")
    except OSError as exc:
        raise fail(exc) from None
    try:
        _write(fd, head, fail)
        if isinstance(data, ProgressReader):
            try:
                data.copy_into_fd(fd, buffer_size)
            except OSError as exc:
                # The kernel copy mixes the source's errors with ours; only a lack of
                # room is certainly the store's.
                if no_room_reason(exc) is None:
                    raise
                raise fail(exc) from None
        while chunk := data.read(buffer_size):
            _write(fd, chunk, fail)
        if fsync:
            try:
                os.fsync(fd)
            except OSError as exc:
                raise fail(exc) from None
        return Spooled(os.fstat(fd).st_size, b"", fd, name)
    except BaseException:
        os.close(fd)
        remove_temp(tmp_fd, name)
        raise


def _link(data: ProgressReader, tmp_fd: int, fail: Callable[[OSError], Exception],
          fsync: bool) -> Spooled | None:
    """A temp file hard-linked to the value file ``data`` reads, or None if that cannot be."""
    token = secrets.token_hex(16)
    name = fresh = f"blob-{token}.tmp"
    try:
        # small values live inside their record: those are read as usual
        size = data.link_into(tmp_fd, fresh, min_size=INLINE_MAX + 1)
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
    try:
        # As for any temp file, the lock (and a fresh mtime until it is held)
        # keeps another process's clean-up of abandoned temp files away.
        os.utime(fd)
        name = _lock_and_name(tmp_fd, fd, fresh, f"blob-{token}{HELD}")
        if fsync:  # the source store may not have made it durable ("normal" sync)
            os.fsync(fd)
        return Spooled(os.fstat(fd).st_size, b"", fd, name)
    except OSError as exc:
        os.close(fd)
        remove_temp(tmp_fd, name)
        raise fail(exc) from None


def _write(fd: int, chunk: bytes | bytearray, fail: Callable[[OSError], Exception]) -> None:
    try:
        write_all(fd, chunk)
    except OSError as exc:
        raise fail(exc) from None
