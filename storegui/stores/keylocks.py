"""Per-key locks: writers of one key wait for each other, writers of other keys do not."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class KeyLocks:
    """One re-entrant lock per key, made on demand and dropped when nobody holds it.

    MountedStore holds a key's lock for each write, push, pull or revert of
    that key, so a push never deletes a mount copy that a concurrent write
    through the same MountedStore has just replaced. Only that key waits:
    nothing store-wide is held while data streams.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._slots: dict[str, list[Any]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock for the ``with`` block."""
        with self._guard:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = [threading.RLock(), 0]
            slot[1] += 1
        slot[0].acquire()
        try:
            yield
        finally:
            slot[0].release()
            with self._guard:
                slot[1] -= 1
                if not slot[1]:
                    del self._slots[key]

    def __len__(self) -> int:
        """How many keys are locked or waited for now."""
        with self._guard:
            return len(self._slots)
