"""Store events: plain callbacks, no Qt.

Every store owns an :class:`EventDispatcher`. Writers emit events after a
write succeeds (inside a transaction: when it commits); streamed writes emit
progress start / step / end events. The app bridges these to Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreEvent:
    """Base of every event: the store that emitted it."""

    store: Any


@dataclass(frozen=True)
class StoreKeyEvent(StoreEvent):
    """An event about one key."""

    key: str


@dataclass(frozen=True)
class StoreSetEvent(StoreKeyEvent):
    """A key's data and/or metadata was written (created or replaced)."""

    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoreUpdateEvent(StoreKeyEvent):
    """A key's metadata was updated (only the given fields changed)."""

    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoreDeleteEvent(StoreKeyEvent):
    """A key was deleted."""


@dataclass(frozen=True)
class StoreProgressStartEvent(StoreKeyEvent):
    """A streamed write of ``total`` bytes (``None`` if unknown) started."""

    total: int | None = None


@dataclass(frozen=True)
class StoreProgressStepEvent(StoreKeyEvent):
    """``done`` bytes of a streamed write have been written."""

    done: int = 0
    total: int | None = None


@dataclass(frozen=True)
class StoreProgressEndEvent(StoreKeyEvent):
    """A streamed write ended; ``ok`` is False if it failed or was cancelled."""

    done: int = 0
    ok: bool = True


@dataclass(frozen=True)
class StoreTransactionStartEvent(StoreEvent):
    """A transaction started."""

    notes: str = ""


@dataclass(frozen=True)
class StoreTransactionEndEvent(StoreEvent):
    """A transaction ended; ``committed`` is False when it rolled back."""

    notes: str = ""
    committed: bool = True


Listener = Callable[[StoreEvent], None]


class EventDispatcher:
    """Calls listeners for events, optionally filtered by event class.

    Listeners run on the thread that emits the event; a listener that raises
    is logged and does not stop the others or the write that emitted it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[Listener, type[StoreEvent]]] = []

    def connect(self, listener: Listener, kind: type[StoreEvent] = StoreEvent) -> None:
        """Call ``listener(event)`` for every event that is an instance of ``kind``."""
        with self._lock:
            self._listeners.append((listener, kind))

    def disconnect(self, listener: Listener, kind: type[StoreEvent] | None = None) -> None:
        """Stop calling ``listener`` (for ``kind`` only, if given)."""
        with self._lock:
            self._listeners = [
                (fn, k)
                for fn, k in self._listeners
                if not (fn == listener and (kind is None or k is kind))
            ]

    def has_listeners(self) -> bool:
        """Whether anyone listens (lets writers skip building events)."""
        return bool(self._listeners)

    def emit(self, event: StoreEvent) -> None:
        """Deliver ``event`` to every matching listener."""
        for listener, kind in list(self._listeners):
            if isinstance(event, kind):
                try:
                    listener(event)
                except Exception:  # a broken listener must not break a write
                    log.exception("event listener %r failed on %r", listener, event)
