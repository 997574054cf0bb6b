"""Store-to-store copies for push and pull: verified, with progress over many keys.

:func:`copy_checked` streams a value into the other store and checks sizes;
:func:`verify_copy` then compares sha256 digests where that is cheap enough:

- both stores local (``info()["local"]``, e.g. two FileSystemStores or an
  SqliteStore and a FileSystemStore): the copy runs without hashing (between
  two files, in the kernel), then the source version that was copied and the
  new copy are read and hashed side by side: one reading thread, a hashing
  thread each, so on two cores the check costs about one hash pass. A copy
  that is a hard link of the source's file (same filesystem) is the same
  bytes by construction and is not read;
- a remote source: hashed while it streams (the network is slower than the
  hash), then the local copy is read back and compared;
- a remote destination: hashed while streaming but not read back (too
  costly); the sizes are checked.

:func:`restate` re-raises an error naming the full key. Progress over many
keys is a :class:`~.progress.TransferProgress` with a child per key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import StoreError, StoreKeyError, VerificationError
from ..importing import DIGEST
from ..value import Value
from .kernel_copy import shared_file_fd
from .streaming import (
    DEFAULT_BUFFER_SIZE,
    INLINE_HASH_BYTES,
    CancelToken,
    Progress,
    copy_from_value,
    copy_stream,
)
from .threads import HashWorker


def is_local(store: Any) -> bool:
    """Whether ``store`` says its data is on this machine (``info()["local"]``)."""
    return bool(store.info().get("local", False))


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, chunk: Any) -> int:
        self.hash.update(chunk)
        return len(chunk)


def sha256_of(store: Any, key: str, buffer_size: int = DEFAULT_BUFFER_SIZE,
              cancel: CancelToken | None = None) -> str:
    """The sha256 hex digest of ``store[key]``'s data, streamed."""
    sink = _HashSink()
    with store.get_data(key) as stream:
        copy_stream(stream, sink, buffer_size, cancel=cancel, key=key)
    return sink.hash.hexdigest()


def sha256_side_by_side(streams: list[BinaryIO], buffer_size: int = DEFAULT_BUFFER_SIZE,
                        cancel: CancelToken | None = None, key: str | None = None,
                        size: int | None = None) -> list[str]:
    """The sha256 hex digests of several streams, read in turn on this thread.

    Each stream is hashed on its own helper thread (hashlib releases the
    GIL), unless ``size`` says the streams are small. Reading stays on the
    calling thread, so an SqliteStore stream uses the connection this thread
    already has.

    Raises
    ------
    TransferCancelled
        ``cancel`` was set (checked before every round of reads).
    """
    threaded = size is None or size > INLINE_HASH_BYTES
    hashes = [hashlib.sha256() for _ in streams]
    workers = [HashWorker(h) for h in hashes] if threaded else []
    buffer_size = max(1, buffer_size)
    try:
        live = list(range(len(streams)))
        while True:
            if cancel is not None:
                cancel.check(key)
            if not live:
                break
            for i in list(live):
                if workers and hasattr(streams[i], "readinto"):
                    buffer = workers[i].buffer(buffer_size)
                    n = streams[i].readinto(buffer)
                    if n:
                        workers[i].send(buffer, n)
                else:
                    chunk = streams[i].read(buffer_size)
                    n = len(chunk)
                    if n:
                        (workers[i].feed if workers else hashes[i].update)(chunk)
                if not n:
                    live.remove(i)
        return [w.hexdigest() for w in workers] if workers else [h.hexdigest() for h in hashes]
    finally:
        for worker in workers:
            worker.close()


@dataclass
class CheckedCopy:
    """What :func:`copy_checked` moved, and what :func:`verify_copy` needs to check it.

    ``digest`` is the sha256 of the bytes sent when they were hashed on the
    way; ``source`` is the source version copied, kept to be hashed next to
    the copy when both stores are local.
    """

    size: int
    digest: str | None
    source: Value | None = None
    #: The sha256 the copy's metadata claims (None if it has none), to correct if untrue.
    claimed: Any = None


def copy_checked(src: Any, src_key: str, dst: Any, dst_key: str, *,
                 buffer_size: int = DEFAULT_BUFFER_SIZE, progress: Progress | None = None,
                 cancel: CancelToken | None = None,
                 metadata: dict | None = None) -> CheckedCopy:
    """Stream ``src[src_key]`` into ``dst[dst_key]`` (atomic write, sizes checked).

    See the module docstring for when the data is hashed on the way.

    Raises
    ------
    KeyError
        ``src`` has no ``src_key``.
    VerificationError
        The sizes disagree (the copy has been written).
    TransferCancelled, StoreError
        The write failed or was cancelled; ``dst`` is unchanged.
    """
    both_local = is_local(src) and is_local(dst)
    value = src.get(src_key)
    md = value.metadata if metadata is None else metadata
    # The copy writes the size it copies, never one recorded earlier; a
    # recorded sha256 is checked against the copy's digest (verify_copy).
    if "size" in md and value.size is not None and md["size"] != value.size:
        md = {**md, "size": value.size}
    claimed = md.get(DIGEST)
    result = copy_from_value(value, src, src_key, dst, dst_key, buffer_size=buffer_size,
                             progress=progress, cancel=cancel,
                             digest=None if both_local else "sha256", metadata=md)
    return CheckedCopy(result.size, result.digest, value if both_local else None, claimed)


def verify_copy(dst: Any, dst_key: str, result: CheckedCopy,
                buffer_size: int = DEFAULT_BUFFER_SIZE, cancel: CancelToken | None = None) -> None:
    """Compare the sha256 of ``dst[dst_key]`` with the source's, where that is cheap.

    With a kept source version, both are hashed side by side, and the
    source version is then let go (``result.source`` becomes None: an
    SqliteStore may free its data as soon as the caller deletes it); else
    the digest computed while streaming is compared with a read-back of a
    local ``dst``. A non-local ``dst`` is not read back (too costly);
    :func:`copy_checked` has checked its size already.

    Raises
    ------
    VerificationError
        The digests differ.
    TransferCancelled
        ``cancel`` was set while reading.
    """
    if result.source is not None:
        try:
            with result.source.open() as source, dst.get_data(dst_key) as copy:
                if same_file(source, copy):  # a hard link (see fs_spool): the very same bytes
                    if result.claimed is None:
                        return
                    # ... whose recorded sha256 is still checked, hashing them once
                    [expected] = sha256_side_by_side([copy], buffer_size, cancel, dst_key,
                                                     result.size)
                    digest = expected
                else:
                    expected, digest = sha256_side_by_side([source, copy], buffer_size, cancel,
                                                           dst_key, result.size)
        finally:
            result.source = None
        what = "the source's is"
    elif result.digest is None or not is_local(dst):
        _correct_claim(dst, dst_key, result, result.digest)
        return
    else:
        expected, digest = result.digest, sha256_of(dst, dst_key, buffer_size, cancel)
        what = "the data sent had"
    if digest != expected:
        raise VerificationError(
            f"the copy's sha256 is {digest[:16]}… but {what} {expected[:16]}…", dst_key, dst)
    _correct_claim(dst, dst_key, result, digest)


def _correct_claim(dst: Any, dst_key: str, result: CheckedCopy, digest: str | None) -> None:
    """Replace a recorded sha256 the copied bytes do not have by theirs (see importing)."""
    if digest is not None and result.claimed is not None and result.claimed != digest:
        dst.update_metadata(dst_key, {DIGEST: digest})
        result.claimed = digest


def same_file(a: Any, b: Any) -> bool:
    """Whether two streams read the same file (one inode: a hard-linked copy)."""
    fds = [shared_file_fd(a), shared_file_fd(b)]
    if None in fds:
        return False
    first, second = (os.fstat(fd) for fd in fds)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def restate(exc: BaseException, message: str, key: str, store: Any) -> StoreError:
    """An error of ``exc``'s class (a plain StoreError for other errors) with a new message."""
    if isinstance(exc, StoreKeyError):
        return StoreKeyError(key, store, message)
    cls = type(exc) if isinstance(exc, StoreError) else StoreError
    try:
        return cls(message, key, store)
    except TypeError:  # a subclass with another signature
        return StoreError(message, key, store)
