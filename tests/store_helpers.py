"""Helpers shared by the store tests (tests/ is on sys.path, as for s3fixtures)."""

from __future__ import annotations

import io
import threading
import time

from storegui.stores import MemoryStore


class FailingReader(io.RawIOBase):
    """Gives ``good`` bytes, then fails like a broken disk or connection.

    ``max_chunk`` caps each read, so a failure can come after several chunks.
    """

    def __init__(self, good: int, max_chunk: int | None = None) -> None:
        self.left = good
        self.max_chunk = max_chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.left <= 0:
            raise OSError("simulated read failure")
        n = min(len(b), self.left, self.max_chunk or len(b))
        b[:n] = b"x" * n
        self.left -= n
        return n


def store_content(store) -> dict:
    """Everything a store holds (data and metadata by key), for "unchanged" checks."""
    return {k: (store.to_bytes(k), store.get_metadata(k)) for k in store.keys()}


class FullDisk(MemoryStore):
    """A real MemoryStore whose writes fail with ENOSPC while ``full`` is set."""

    full = False

    def _put(self, key, data, metadata_text, buffer_size):
        if self.full:
            raise OSError(28, "No space left on device")
        return super()._put(key, data, metadata_text, buffer_size)


class GatedBacking(MemoryStore):
    """A real MemoryStore whose streamed writes, once ``armed``, pause after the first chunk.

    ``started`` is set when a write pauses; it goes on when ``proceed`` is set
    (or after 10 s). With ``cancellable`` it polls the incoming stream with
    0-byte reads while paused, so a cancel of the transfer ends the pause (the
    stream raises TransferCancelled); without, only ``proceed`` does.
    """

    def __init__(self, cancellable: bool = True) -> None:
        super().__init__()
        self.started, self.proceed = threading.Event(), threading.Event()
        self.armed = False
        self.cancellable = cancellable

    def _put(self, key, data, metadata_text, buffer_size):
        if data is not None and self.armed:
            source, started, proceed = data, self.started, self.proceed
            poll = self.cancellable

            class Gate:
                def read(self, n=-1):
                    chunk = source.read(n)
                    if not started.is_set():
                        started.set()
                        deadline = time.monotonic() + 10
                        while not proceed.wait(0.01 if poll else 10) \
                                and time.monotonic() < deadline:
                            if poll:
                                source.read(0)
                    return chunk
            data = Gate()
        return super()._put(key, data, metadata_text, buffer_size)
