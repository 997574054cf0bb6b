"""Helper threads that let a copy overlap its work: hashing and writing behind the reads.

hashlib releases the GIL while it hashes a large chunk, and file writes
release it while the kernel copies, so on two cores a copy that must read,
hash and write runs about as fast as its slowest part instead of the sum of
all three. Each helper handles chunks in the order they came, on one thread.

Chunks travel in a few reusable buffers (:meth:`ChunkWorker.buffer`): the
reader fills one while the helper works on another. Fresh 1 MiB objects per
chunk would cost more than they save: every new page is a page fault (on
the VMs measured, writing a new 1 MiB object took longer than hashing it).
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable
from typing import Any


class ChunkWorker:
    """Calls ``handle(chunk)`` on a helper thread for each chunk sent, in order.

    At most ``depth`` chunks wait at a time (bounded memory). An error raised
    by ``handle`` stops the handling of later chunks and is raised by the
    next :meth:`send` or by :meth:`drain`.
    """

    def __init__(self, handle: Callable[[Any], Any], name: str, depth: int = 3) -> None:
        self._handle = handle
        self._error: BaseException | None = None
        self._todo: queue.Queue = queue.Queue(maxsize=depth)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._spare = depth + 1  # buffers not allocated yet (allocated on first use)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        take, done = self._todo.get, self._todo.task_done
        while True:
            item = take()
            try:
                if item is None:
                    return
                chunk, buffer = item
                item = None
                try:
                    if self._error is None:
                        self._handle(chunk)
                finally:
                    chunk = None  # drop the view before the buffer goes back to the pool
                    if buffer is not None:
                        self._free.put(buffer)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
            finally:
                done()

    def buffer(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes to fill and :meth:`send` (waits for a free one)."""
        if self._spare:
            self._spare -= 1
            return bytearray(size)
        buffer = self._free.get()
        return buffer if len(buffer) >= size else bytearray(size)

    def send(self, buffer: bytearray, n: int) -> None:
        """Queue the first ``n`` bytes of ``buffer`` (from :meth:`buffer`); it comes back after."""
        self._raise()
        self._todo.put((memoryview(buffer)[:n], buffer))

    def send_copy(self, data: Any) -> None:
        """Queue ``data``: immutable ``bytes`` as it is, anything else copied into a buffer."""
        self._raise()
        if type(data) is bytes:
            self._todo.put((data, None))
            return
        n = len(data)
        buffer = self.buffer(n)
        buffer[:n] = data
        self._todo.put((memoryview(buffer)[:n], buffer))

    def drain(self) -> None:
        """Wait until every chunk sent is handled; raise the handler's error, if any."""
        self._todo.join()
        self._raise()

    def stop(self) -> None:
        """End the thread after the chunks already sent (errors are not raised)."""
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class HashWorker(ChunkWorker):
    """Updates ``hash_object`` on a helper thread with the chunks sent, in order."""

    def __init__(self, hash_object: Any, depth: int = 3,
                 handle: Callable[[Any], Any] | None = None) -> None:
        self.hash = hash_object
        super().__init__(handle or hash_object.update, "storegui-hash", depth)

    def feed(self, chunk: Any) -> None:
        """Hash ``chunk`` next (copied first unless it is ``bytes``, so the caller may reuse it)."""
        self.send_copy(chunk)

    def hexdigest(self) -> str:
        """The digest of everything fed so far (waits for the hashing to catch up)."""
        self.drain()
        return self.hash.hexdigest()

    def close(self) -> None:
        """Stop the thread."""
        self.stop()


class RangeHasher(HashWorker):
    """Hashes byte ranges of the file ``fd`` on a helper thread, reading them itself.

    For a copy made in the kernel (``copy_file_range``): the bytes never
    enter Python on the copying thread, and this thread reads each range
    copied back from the page cache (``pread``) and hashes it, in order.
    Chunks :meth:`feed`-ed as bytes are hashed too (a copy that went on in
    Python after the kernel could not go on).
    """

    def __init__(self, hash_object: Any, fd: int, depth: int = 3) -> None:
        self._fd = fd
        self._scratch = bytearray()
        super().__init__(hash_object, depth, self._hash_item)

    def _hash_item(self, item: Any) -> None:
        if not isinstance(item, tuple):
            self.hash.update(item)
            return
        offset, length = item
        if len(self._scratch) < length:
            self._scratch = bytearray(length)
        view = memoryview(self._scratch)[:length]
        got = 0
        while got < length:
            n = os.preadv(self._fd, [view[got:]], offset + got)
            if n <= 0:
                raise OSError(errno.EIO, "the file got shorter while it was being copied")
            got += n
        self.hash.update(view)

    def feed_range(self, offset: int, length: int) -> None:
        """Hash ``length`` bytes of the file at ``offset`` next."""
        self._raise()
        self._todo.put(((offset, length), None))


class WriteBehind(ChunkWorker):
    """Writes the chunks sent to ``dst`` on a helper thread, in order.

    The caller reads the next chunk while the previous one is written.
    """

    def __init__(self, dst: Any, depth: int = 3) -> None:
        super().__init__(dst.write, "storegui-write", depth)

    def close(self) -> None:
        """Wait until everything sent is written; raise the writer's error, if any."""
        try:
            self.drain()
        finally:
            self.stop()

    def abort(self) -> None:
        """Stop after what is queued, ignoring errors (the caller is raising one already)."""
        self.stop()
