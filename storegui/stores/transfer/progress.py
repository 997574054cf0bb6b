"""One progress object per transfer, shaped like fsspec's ``Callback``.

A transfer reports its bytes to a :class:`TransferProgress`: ``set_size``
once the size is known, ``absolute_update`` / ``relative_update`` as the
bytes move. A transfer of several keys (a push of a folder) takes a child
per key with ``branch(key, size)``, reports that key's bytes to the child
and closes it at the key's end; the parent's ``value`` is then the bytes of
every key so far. Whoever shows the progress subclasses it: the command
line draws a bar per key (``branch``), the app's transfer jobs record the
figures their GUI timer reads (``call``). Nothing here limits how often
``call`` runs: each reader keeps its own pace.

A progress object is also a ``progress(done, total)`` callable, so it can be
passed as is to the streaming functions (:func:`~.streaming.copy_stream`,
:class:`~.streaming.ProgressReader`), which report in those terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TransferProgress:
    """Bytes done (``value``) of ``size`` (None: unknown) in a transfer, with a child per key.

    Parameters
    ----------
    size : int, optional
        The bytes the transfer will move, if known.
    key : str, optional
        The key a child reports on (None for the whole transfer).
    parent : TransferProgress, optional
        The progress a child adds its bytes to (set by :meth:`branch`).

    Subclasses override :meth:`call` (the figures changed), :meth:`close`
    (the transfer, or this child's key, ended) and :meth:`branch` (a child of
    their own kind).
    """

    def __init__(self, size: int | None = None, key: str | None = None,
                 parent: TransferProgress | None = None) -> None:
        self.size = size
        self.value = 0
        self.key = key
        self.parent = parent
        self.ok: bool | None = None  # set by close()
        self._closed_bytes = 0  # the bytes of children already closed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} {self.value}/{self.size}>"

    def set_size(self, size: int | None) -> None:
        """The transfer moves ``size`` bytes (None: unknown)."""
        self.size = size
        self.call()

    def absolute_update(self, value: int) -> None:
        """``value`` bytes are done."""
        self.value = value
        self.call()
        if self.parent is not None:
            self.parent.absolute_update(self.parent._closed_bytes + value)

    def relative_update(self, inc: int = 1) -> None:
        """``inc`` more bytes are done."""
        self.absolute_update(self.value + inc)

    def __call__(self, done: int, total: int | None = None) -> None:
        """``progress(done, total)`` of the streaming functions: ``done`` bytes of ``total``."""
        if total is not None:
            self.size = total
        self.absolute_update(done)

    def branch(self, key: str, size: int | None = None) -> TransferProgress:
        """A child reporting the bytes of ``key`` (``size`` of them) into this progress.

        Close it when the key's transfer ends; its bytes then stay counted here.
        """
        return TransferProgress(size, key, self)

    def close(self, ok: bool = True) -> None:
        """The transfer (or this child's key) ended; ``ok`` False: it failed or was cancelled."""
        self.ok = ok
        if self.parent is not None:
            self.parent._closed_bytes += self.value

    def call(self) -> None:
        """Called after every change of the figures; does nothing here."""


class _Hooked(TransferProgress):
    """A TransferProgress that calls ``hook(value, size)`` on every change."""

    def __init__(self, hook: Callable[[int, int | None], Any]) -> None:
        super().__init__()
        self._hook = hook

    def set_size(self, size: int | None) -> None:
        # A progress(done, total) callable hears of bytes moved only: callers
        # rely on its first call coming from the copy itself (e.g. to cancel it).
        self.size = size

    def call(self) -> None:
        self._hook(self.value, self.size)


def as_progress(progress: TransferProgress | Callable[[int, int | None], Any] | None
                ) -> TransferProgress:
    """``progress`` as a TransferProgress: itself, a ``progress(done, total)`` callable
    called on every change, or (None) one nobody reads.
    """
    if isinstance(progress, TransferProgress):
        return progress
    if progress is None:
        return TransferProgress()
    return _Hooked(progress)
