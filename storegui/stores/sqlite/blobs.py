"""Chunked values of SqliteStore: streaming them in and out, and freeing them safely.

A value larger than :data:`INLINE_MAX` is a *blob*: rows of :data:`CHUNK_SIZE`
bytes in the ``chunks`` table, or a file named by the blob's row (large
values, see :mod:`.files`; the life cycle below is the same). A
writer streams the chunks in under a new, *pending* blob in short
transactions, then points the key at it in one short transaction; the blob
the key held before becomes *garbage* and is freed in short transactions too.
A pending blob whose writer died (killed process, failed cleanup) is an
orphan, removed at the next connect.

Readers in this process take a :class:`Lease` on the blob they read, so a
concurrent overwrite does not free the chunks under them: garbage is freed
only once no lease remains. (A reader in another process gets a clear
error instead if the value is replaced under it.)
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import queue
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from ..errors import InvalidDataError, StoreError
from .schema import immediate

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
#: Values up to this size live inline in the ``keys`` row (no chunk row).
INLINE_MAX = 2048
#: Chunks freed per transaction, so freeing a huge value never holds the write lock long.
FREE_BATCH = 16
#: A pending blob of another machine counts as orphaned after this many seconds.
STALE_PENDING = 24 * 3600

GARBAGE = "garbage"
_HOST = socket.gethostname().replace(" ", "_") or "localhost"
_tokens = itertools.count(1)
_active_lock = threading.Lock()
_active_writers: set[str] = set()


# ---------------------------------------------------------------- reading a source stream


def fill(stream: Any, view: memoryview, step: int, key: str | None = None) -> int:
    """Read from ``stream`` into ``view`` until it is full or the stream ends; bytes read."""
    readinto = getattr(stream, "readinto", None)
    done = 0
    total = len(view)
    while done < total:
        want = min(step, total - done)
        if readinto is not None:
            got = readinto(view[done:done + want]) or 0
        else:
            data = stream.read(want)
            if not isinstance(data, bytes | bytearray | memoryview):
                raise InvalidDataError("data stream returned text, not bytes", key)
            got = len(data)
            view[done:done + got] = data
        if not got:
            break
        done += got
    return done


def read_head(stream: Any, limit: int, key: str | None = None) -> bytes:
    """Up to ``limit`` bytes from the start of ``stream`` (fewer only at its end)."""
    if type(stream) is io.BytesIO:  # a short read is its end: one call (multiset of small keys)
        return stream.read(limit)
    parts = []
    done = 0
    while done < limit:
        data = stream.read(limit - done)
        if not isinstance(data, bytes | bytearray | memoryview):
            if data is None:  # a non-blocking stream with nothing yet: treat as the end
                break
            raise InvalidDataError("data stream returned text, not bytes", key)
        if not data:
            break
        parts.append(data)
        done += len(data)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


# ---------------------------------------------------------------- pending blobs and their owners


def new_owner() -> str:
    """A pending-owner tag for one write; live until :func:`end_owner`."""
    owner = f"pending {_HOST} {os.getpid()} {next(_tokens)}"
    with _active_lock:
        _active_writers.add(owner)
    return owner


def end_owner(owner: str) -> None:
    """The write tagged ``owner`` is over (committed or cleaned up)."""
    with _active_lock:
        _active_writers.discard(owner)


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def is_orphan(owner: str, started: float, now: float) -> bool:
    """Whether a blob with this ``owner`` tag can be freed (its writer is gone)."""
    if owner == GARBAGE:
        return True
    parts = owner.split(" ")
    if len(parts) != 4 or parts[0] != "pending" or not parts[2].isdigit():
        return True
    _, host, pid, _token = parts
    if host == _HOST and int(pid) == os.getpid():
        with _active_lock:
            return owner not in _active_writers
    if now - started > STALE_PENDING:  # no write streams for a day; the pid may be reused
        return True
    return host == _HOST and not _process_alive(int(pid))


# ---------------------------------------------------------------- leases


class Lease:
    """Keeps one blob from being freed while it is alive (dropped: released)."""

    __slots__ = ("_released", "blob")

    def __init__(self, released: queue.SimpleQueue, blob: tuple[str, int]) -> None:
        self._released = released
        self.blob = blob

    def __del__(self) -> None:
        # SimpleQueue.put is safe in __del__ (even mid-way through another lease call).
        self._released.put(self.blob)


class LeaseRegistry:
    """Counts live leases per ``(database, blob id)`` in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}
        self._released: queue.SimpleQueue = queue.SimpleQueue()

    def _drain(self) -> None:
        while True:
            try:
                blob = self._released.get_nowait()
            except queue.Empty:
                return
            left = self._counts[blob] - 1
            if left:
                self._counts[blob] = left
            else:
                del self._counts[blob]

    def acquire(self, database: str, blob_id: int) -> Lease:
        """A lease on ``blob_id`` of ``database``."""
        blob = (database, blob_id)
        with self._lock:
            self._drain()
            self._counts[blob] = self._counts.get(blob, 0) + 1
        return Lease(self._released, blob)

    def leased(self, database: str, blob_ids: Iterable[int]) -> set[int]:
        """Those of ``blob_ids`` that someone in this process still reads."""
        with self._lock:
            self._drain()
            return {b for b in blob_ids if (database, b) in self._counts}


LEASES = LeaseRegistry()


# ---------------------------------------------------------------- freeing


def free_blob(conn: sqlite3.Connection, blob_id: int,
              unlink: Callable[[str], None] | None = None) -> None:
    """Delete a blob's chunks, a few per transaction, then the blob row.

    A blob held in a file has its file removed by ``unlink(name)`` first
    (given by stores whose schema has value files), so that every value
    file stays named by a row until it is gone. ``conn`` must not be inside a
    transaction.
    """
    if unlink is not None:
        row = conn.execute("SELECT file FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        if row is not None and row[0] is not None:
            unlink(row[0])
            conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
            return
    while True:
        with immediate(conn):
            cur = conn.execute(
                "DELETE FROM chunks WHERE blob_id = ? AND seq IN "
                "(SELECT seq FROM chunks WHERE blob_id = ? ORDER BY seq LIMIT ?)",
                (blob_id, blob_id, FREE_BATCH),
            )
            done = cur.rowcount == 0
            if done:
                conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
        if done:
            return


def sweep_orphans(conn: sqlite3.Connection, database: str,
                  unlink: Callable[[str], None] | None = None) -> list[int]:
    """Free garbage and orphaned pending blobs (not leased in this process); their ids.

    ``unlink`` removes the file of a blob held in one (see :func:`free_blob`).
    """
    now = time.time()
    rows = conn.execute("SELECT id, owner, started FROM blobs WHERE owner IS NOT NULL").fetchall()
    dead = [blob_id for blob_id, owner, started in rows if is_orphan(owner, started, now)]
    dead = [b for b in dead if b not in LEASES.leased(database, dead)]
    for blob_id in dead:
        free_blob(conn, blob_id, unlink)
    if dead:
        log.info("freed %d unused value(s) in %s", len(dead), database)
    return dead


# ---------------------------------------------------------------- reading a blob


class ChunkReader(io.RawIOBase):
    """A seekable stream over bytes ``start`` .. ``end - 1`` of a blob, fetching chunks lazily.

    Parameters
    ----------
    fetch : callable
        ``fetch(seq)`` returns chunk ``seq`` (bytes) or None if it is gone.
    lease : Lease
        Held while the stream is open.
    chunk_size, size : int
        The blob's chunk size and total size.
    start, end : int
        The byte range this stream covers (``end`` at most ``size``).
    what : str
        Names the value in error messages.
    """

    def __init__(self, fetch: Callable[[int], bytes | None], lease: Lease, chunk_size: int,
                 size: int, start: int, end: int, what: str) -> None:
        super().__init__()
        self._fetch = fetch
        self._lease: Lease | None = lease
        self._chunk_size = chunk_size
        self._size = size
        self._start = start
        self._end = max(start, min(end, size))
        self._pos = start
        self._seq = -1
        self._chunk = memoryview(b"")
        self._what = what

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: self._start, io.SEEK_CUR: self._pos, io.SEEK_END: self._end}[whence]
        self._pos = max(self._start, base + offset)
        return self._pos - self._start

    def _load(self, seq: int) -> None:
        data = self._fetch(seq)
        expected = min(self._chunk_size, self._size - seq * self._chunk_size)
        if data is None or len(data) != expected:
            raise StoreError(f"{self._what} was replaced or deleted by another program while "
                             "it was being read; read it again")
        self._seq = seq
        self._chunk = memoryview(data)

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if self._pos >= self._end:
            return 0
        seq, offset = divmod(self._pos, self._chunk_size)
        if seq != self._seq:
            self._load(seq)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._chunk) - offset, self._end - self._pos)
        view[:n] = self._chunk[offset:offset + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._chunk = memoryview(b"")
        self._lease = None
        super().close()


def open_blob(reader: ChunkReader) -> BinaryIO:
    """The buffered stream handed to callers (reads of any size return full results)."""
    return io.BufferedReader(reader, buffer_size=64 * 1024)
