"""Store-to-store copies for push and pull: verified, with progress over many keys.

``copy_value(..., digest="sha256")`` streams while hashing and checks sizes;
:func:`verify_copy` then, where the destination is local (``info()["local"]``),
reads the new copy back and compares digests. :func:`restate` re-raises an
error naming the full key; :class:`TransferMeter` reports bytes over many keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import events as ev
from .errors import StoreError, StoreKeyError, VerificationError
from .streaming import (
    DEFAULT_BUFFER_SIZE,
    CancelToken,
    CopyResult,
    Progress,
    copy_stream,
)


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


def verify_copy(dst: Any, dst_key: str, result: CopyResult,
                buffer_size: int = DEFAULT_BUFFER_SIZE, cancel: CancelToken | None = None) -> None:
    """Compare ``dst[dst_key]``'s sha256 with ``result.digest``, if ``dst`` is local.

    A non-local store is not read back (too costly); ``copy_value`` has
    checked its size already.

    Raises
    ------
    VerificationError
        The digests differ.
    TransferCancelled
        ``cancel`` was set while reading the copy back.
    """
    if result.digest is None or not is_local(dst):
        return
    digest = sha256_of(dst, dst_key, buffer_size, cancel)
    if digest != result.digest:
        raise VerificationError(
            f"the copy's sha256 is {digest[:16]}… but the data sent had {result.digest[:16]}…",
            dst_key, dst)


def restate(exc: BaseException, message: str, key: str, store: Any) -> StoreError:
    """An error of ``exc``'s class (a plain StoreError for other errors) with a new message."""
    if isinstance(exc, StoreKeyError):
        return StoreKeyError(key, store, message)
    cls = type(exc) if isinstance(exc, StoreError) else StoreError
    try:
        return cls(message, key, store)
    except TypeError:  # a subclass with another signature
        return StoreError(message, key, store)


class TransferMeter:
    """Byte progress of a transfer of several keys, plus progress events per key.

    ``progress(done, total)`` counts bytes over all the keys; ``store``'s
    dispatcher gets start / step / end events for each key.
    """

    def __init__(self, store: Any, sizes: dict[str, int | None], progress: Progress | None) -> None:
        self._store = store
        self._sizes = sizes
        self._progress = progress
        known = list(sizes.values())
        self.total = None if None in known else sum(known)  # type: ignore[arg-type]
        self._base = 0
        self._key = ""
        self._done = 0

    def start(self, key: str) -> None:
        """The copy of ``key`` starts."""
        self._key, self._done = key, 0
        self._store.event_dispatcher.emit(
            ev.StoreProgressStartEvent(self._store, key, self._sizes.get(key)))

    def step(self, done: int, size: int | None) -> None:
        """``done`` bytes of the current key (of ``size``) are copied: a ``Progress`` callback."""
        self._done = done
        dispatcher = self._store.event_dispatcher
        if dispatcher.has_listeners():
            dispatcher.emit(ev.StoreProgressStepEvent(self._store, self._key, done, size))
        if self._progress is not None:
            self._progress(self._base + done, self.total)

    def end(self, ok: bool) -> None:
        """The current key's copy ended (``ok`` False: failed or cancelled)."""
        self._store.event_dispatcher.emit(
            ev.StoreProgressEndEvent(self._store, self._key, self._done, ok))
        self._base += self._done

    def skip(self, key: str) -> None:
        """``key`` will not be copied after all: drop its size from the total."""
        size = self._sizes.get(key)
        if self.total is not None and size is not None:
            self.total -= size
