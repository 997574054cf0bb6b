"""A small progress bar for the command line (on stderr, only on a terminal).

Transfers report ``progress(done, total)`` in bytes; :class:`ProgressBar`
turns that into one self-overwriting line::

    data/big.bin  [########........]  52%  52.0 MiB / 100.0 MiB  31.2 MiB/s  ETA 0:02

It redraws at most ``max_rate`` times a second, so a transfer of many small
chunks does not spend its time writing to the terminal, and it writes
nothing at all when its stream is not a terminal (scripts, pipes, logs).
A push or pull of several keys reports to a :class:`TransferBars`, which
draws a bar per key.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..stores.transfer.progress import TransferProgress
from ..units import format_size


def format_bytes(n: float) -> str:
    """``n`` bytes for people, as the app shows them: ``"512 bytes"``, ``"3.0 GiB"``."""
    return format_size(n)


def format_duration(seconds: float) -> str:
    """``seconds`` as ``M:SS`` or ``H:MM:SS``."""
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        return False


class ProgressBar:
    """One line of transfer progress: bytes done / total, rate and time left.

    Use it as the ``progress(done, total)`` callback of a transfer, then
    call :meth:`close` (or use it as a context manager).

    Parameters
    ----------
    label : str
        What is being transferred (usually the key); shortened to fit.
    stream : text stream, optional
        Where to draw (default ``sys.stderr``).
    enabled : bool, optional
        Force drawing on or off; by default only when ``stream`` is a terminal.
    max_rate : float
        Most redraws per second.
    clock : callable
        Monotonic seconds (tests pass a fake clock).
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        max_rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self._interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None
        self._drawn = False
        self.done = 0
        self.total: int | None = None
        self.redraws = 0

    def __call__(self, done: int, total: int | None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        """Record progress; redraw if the last redraw is old enough."""
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = self._clock()
        if self._last_draw is not None and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line (nothing if never drawn or disabled)."""
        if not self.enabled:
            return
        if self._drawn or self.done:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self, now: float, width: int) -> str:
        """The text of the bar at time ``now`` for a terminal ``width`` columns wide."""
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        total = self.total
        if total:
            fraction = min(1.0, self.done / total)
            amounts = f"{format_bytes(self.done)} / {format_bytes(total)}"
            left = (total - self.done) / rate if rate > 0 else None
            eta = f"ETA {format_duration(left)}" if left is not None else "ETA --:--"
            if self.done >= total:
                eta = f"in {format_duration(elapsed)}"
            tail = f" {fraction:4.0%}  {amounts}  {format_bytes(rate)}/s  {eta}"
        else:
            fraction = None
            tail = f"  {format_bytes(self.done)}  {format_bytes(rate)}/s"
        room = width - len(tail) - 1
        # The label (usually a key) comes first; the bar takes what is left, if enough.
        label_width = max(12, min(len(self.label), room - 14))
        label = self.label
        if len(label) > label_width:
            label = "…" + label[-(label_width - 1):]
        bar_width = room - label_width - 4
        if fraction is not None and bar_width >= 8:
            filled = int(fraction * bar_width)
            bar = f"  [{'#' * filled}{'.' * (bar_width - filled)}]"
        else:
            bar = ""
        return f"{label:<{label_width}}{bar}{tail}"[: width - 1]

    def _draw(self, now: float) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        # \r returns to the line start; \x1b[K clears what a longer line left.
        self.stream.write("\r" + self.line(now, width) + "\x1b[K")
        self.stream.flush()
        self._drawn = True
        self.redraws += 1


class TransferBars(TransferProgress):
    """The progress of a push or pull of several keys: a :class:`ProgressBar` per key.

    Pass it as the transfer's ``progress``: each key's child (``branch``)
    draws its own bar, closed when the key's copy ends.
    """

    def branch(self, key: str, size: int | None = None) -> TransferProgress:
        """A child drawing ``key``'s bar."""
        return _KeyBar(key, size, self)


class _KeyBar(TransferProgress):
    """One key of a :class:`TransferBars`: its bar shows from the start of its copy."""

    def __init__(self, key: str, size: int | None, parent: TransferProgress) -> None:
        super().__init__(size, key, parent)
        self.bar = ProgressBar(key)
        self.bar.update(0, size)

    def call(self) -> None:
        self.bar.update(self.value, self.size)

    def close(self, ok: bool = True) -> None:
        super().close(ok)
        self.bar.close()
