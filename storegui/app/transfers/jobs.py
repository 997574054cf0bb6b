"""Transfer jobs: what one runs, its state and its progress counters (no Qt).

A :class:`TransferJob` is written by two threads in a fixed way: the worker
running it only calls :meth:`TransferJob.progress` (two attribute writes,
safe under the GIL, cheap enough to call per chunk); everything else is read
and written on the GUI thread by the :class:`~storegui.app.transfers.queue.TransferQueue`.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Rates are averaged over this many seconds of samples.
RATE_WINDOW = 3.0

#: ``fn(progress, cancel)``: progress a TransferProgress, cancel a CancelToken.
JobFunction = Callable[[Any, Any], Any]


class JobState(enum.Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The state as the panel shows it ("Queued", "Running", ...)."""
        return self.value.capitalize()

    @property
    def finished(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


_ids = itertools.count(1)


class TransferJob:
    """One transfer: what it runs, its state, and its progress counters.

    ``done`` and ``total`` (bytes; total None if unknown) are written by the
    worker through :meth:`progress`; everything else is read and written on
    the GUI thread only. ``rate`` (bytes a second) and ``remaining``
    (seconds) are None until there is enough to estimate them.
    """

    def __init__(self, title: str, fn: JobFunction, kind: str = "transfer",
                 total: int | None = None,
                 on_done: Callable[[Any], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.id = next(_ids)
        self.title = title
        self.fn = fn
        self.kind = kind
        self.total = total
        self.done = 0
        self.state = JobState.QUEUED
        self.error: BaseException | None = None
        self.result: Any = None
        self.on_done = on_done
        self.on_error = on_error
        self.started: float | None = None
        self.ended: float | None = None
        self.rate: float | None = None
        self.remaining: float | None = None
        self.runs = 0
        self.worker: Any = None  # the Worker running it (set by the queue)
        self._samples: deque[tuple[float, int]] = deque()

    def __repr__(self) -> str:
        return f"<TransferJob {self.id} {self.title!r} {self.state.value}>"

    def progress(self, done: int, total: int | None = None) -> None:
        """Record ``done`` bytes of ``total`` (called on the worker thread, per chunk)."""
        self.done = done
        if total is not None:
            self.total = total

    @property
    def moving(self) -> bool:
        """Whether the job has moved bytes (a running job may wait first: for a store's lock)."""
        return self.done > 0 or self.state is JobState.DONE

    @property
    def fraction(self) -> float | None:
        """Done over total, between 0 and 1 (None if the total is unknown)."""
        if self.state is JobState.DONE:
            return 1.0
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    @property
    def error_text(self) -> str:
        """The error as a user reads it ("" if none)."""
        if self.error is None:
            return ""
        return str(self.error) or type(self.error).__name__

    def _reset(self) -> None:
        self.done = 0
        self.state = JobState.QUEUED
        self.error = self.result = None
        self.started = self.ended = self.rate = self.remaining = None
        self._samples.clear()

    def _sample(self, now: float) -> None:
        """Update ``rate`` and ``remaining`` from the counters (GUI thread, once per tick)."""
        samples = self._samples
        samples.append((now, self.done))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        first_time, first_done = samples[0]
        if self.started is not None and now - first_time < 0.5:
            first_time, first_done = self.started, 0  # early on: the average since the start
        span = now - first_time
        if span < 0.2:
            return
        self.rate = max(0.0, (self.done - first_done) / span)
        if self.total is not None and self.rate > 0:
            self.remaining = max(0.0, (self.total - self.done) / self.rate)
        else:
            self.remaining = None


@dataclass(frozen=True)
class Overall:
    """The jobs since the queue was last idle, summed (for the status bar)."""

    done: int
    total: int | None
    running: int
    queued: int
    failed: int
    rate: float | None

    @property
    def fraction(self) -> float | None:
        """Done over total (None if unknown)."""
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))
