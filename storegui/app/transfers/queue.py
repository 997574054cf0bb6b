"""TransferQueue: push, pull, import and export jobs, run a few at a time on a QThreadPool.

A job is a function ``fn(progress, cancel)`` run on a worker thread:
``progress`` is a :class:`~storegui.stores.transfer.progress.TransferProgress`
the store's transfer reports its bytes to (also callable as
``progress(done, total)``), and ``cancel`` is the
:class:`~storegui.stores.CancelToken` the store checks between chunks (a
cancelled or failed store write leaves no partial key: the stores write
atomically).

Progress never travels as one signal per chunk. The worker only stores two
numbers in its :class:`TransferJob` (plain attribute writes, safe under the
GIL); one QTimer on the GUI thread reads the running jobs every
:data:`PROGRESS_INTERVAL_MS` and emits ``progressed`` once. So the widgets
update at most ``1000 / PROGRESS_INTERVAL_MS`` times a second in all,
however small the chunks and however many jobs run, and rates and remaining
times are computed there, from samples of those counters.

A job's ``progress`` call is also where it gives way to the GUI thread. Jobs
run Python code (a small-file import is mostly Python: metadata, hashing,
the store's bookkeeping) and hold the GIL meanwhile; the GUI thread needs the
GIL for each of its timers and each call Qt makes into a model, and two busy
workers can keep it waiting for several switch intervals (stalls of 40-130 ms
measured while 10,000 small files were imported). While jobs run, a timer on the
GUI thread beats the shared heartbeat (:data:`~storegui.app.scheduling.HEARTBEAT`, which the
tree's workers watch too); a job that sees it late sleeps until the GUI
thread is back, a few milliseconds at most.

While jobs run, full garbage collections wait (:class:`~storegui.app.scheduling.FullCollections`):
an import batch keeps tens of thousands of objects alive until it commits
(the store's undo log and events), and a full collection walks them all
holding the GIL, on whichever thread allocated last (70 ms measured, on a
worker). Young collections go on; the full ones resume once the queue is
idle, when those objects are gone.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from ...stores.errors import TransferCancelled
from ...stores.transfer.progress import TransferProgress
from ..scheduling import FULL_COLLECTIONS, HEARTBEAT, HeartbeatTimer, give_way
from ..workers import Worker
from .jobs import JobFunction, JobState, Overall, TransferJob

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "JobState", "Overall",
           "PROGRESS_INTERVAL_MS", "TransferJob", "TransferQueue"]

#: How often the GUI reads the running jobs' counters (milliseconds): 20 updates a second.
PROGRESS_INTERVAL_MS = 50
DEFAULT_CONCURRENCY = 2
MAX_CONCURRENCY = 8
#: Finished jobs listed at most (the oldest successful ones go first).
KEEP_FINISHED = 200
#: How long (seconds) a queued job is held back while a job started before it has not
#: moved bytes yet (see :meth:`TransferQueue._holding_back`).
START_HOLD_LIMIT = 2.0


class JobProgress(TransferProgress):
    """The progress object a job's function reports to, on the worker thread.

    Every change is stored in the job's counters (read by the GUI timer, at
    its own pace) and gives way to the GUI thread if it is waiting.
    """

    def __init__(self, job: TransferJob) -> None:
        super().__init__()
        self._job = job

    def call(self) -> None:
        self._job.progress(self.value, self.size)
        give_way()


def _run_job(job: TransferJob, worker: Worker) -> Any:
    return job.fn(JobProgress(job), worker.cancel_token)


class TransferQueue(QObject):
    """Runs transfer jobs on a thread pool, at most ``concurrency`` at once, in order.

    In order also means they start moving bytes in order, as far as the queue
    can tell: a job waits to start while one started before it has not moved
    a byte yet (for at most :data:`START_HOLD_LIMIT` seconds). Two imports
    into one SQLite store take turns on its write lock, and a job that just
    started would otherwise take the lock before the one waiting for it
    since long (which sleeps between tries): the third large file of a drop
    would be stored before the second.

    Signals (all on the GUI thread)
    -------------------------------
    jobAdded(TransferJob)
    jobChanged(TransferJob)
        Its state changed (started, ended, retried).
    jobsRemoved(list)
        Finished jobs taken off the list.
    progressed()
        The running jobs' counters were read (at most every PROGRESS_INTERVAL_MS).
    statusMessage(str)
        "Done: …", "Cancelled: …", "Failed: …" for the status bar.
    transferFinished(str, object), transferFailed(str, object)
        A job's title and result, or its exception (TransferCancelled if cancelled).
    idle()
        The last active job ended.
    """

    jobAdded = Signal(object)
    jobChanged = Signal(object)
    jobsRemoved = Signal(list)
    progressed = Signal()
    statusMessage = Signal(str)
    transferFinished = Signal(str, object)
    transferFailed = Signal(str, object)
    idle = Signal()

    def __init__(self, parent: QObject | None = None, *,
                 concurrency: int = DEFAULT_CONCURRENCY,
                 pool: QThreadPool | None = None,
                 interval_ms: int = PROGRESS_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._jobs: list[TransferJob] = []
        self._waiting: deque[TransferJob] = deque()
        self._running: list[TransferJob] = []
        self._session: list[TransferJob] = []  # jobs since the queue was last idle
        self._concurrency = 1
        self._held_since: float | None = None
        self.set_concurrency(concurrency)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._heartbeat = HeartbeatTimer(self)

    # ------------------------------------------------------------------ reading

    @property
    def jobs(self) -> list[TransferJob]:
        """Every listed job, oldest first."""
        return list(self._jobs)

    @property
    def concurrency(self) -> int:
        """How many jobs run at once."""
        return self._concurrency

    def set_concurrency(self, n: int) -> None:
        """Run up to ``n`` jobs at once (clamped to 1..MAX_CONCURRENCY); starts waiting ones."""
        self._concurrency = max(1, min(MAX_CONCURRENCY, int(n)))
        # Listings and metadata reads share the pool: leave them threads.
        need = self._concurrency + 2
        if self._pool.maxThreadCount() < need:
            self._pool.setMaxThreadCount(need)
        if hasattr(self, "_timer"):
            self._start_ready()

    def is_busy(self) -> bool:
        """Whether a job is running or waiting."""
        return bool(self._running or self._waiting)

    def running_jobs(self) -> list[TransferJob]:
        """The jobs running now."""
        return list(self._running)

    def queued_jobs(self) -> list[TransferJob]:
        """The jobs waiting for a free slot, in the order they will start."""
        return list(self._waiting)

    @property
    def current_title(self) -> str | None:
        """The oldest running job's title (None when idle)."""
        return self._running[0].title if self._running else None

    def overall(self) -> Overall:
        """The jobs since the queue was last idle, summed."""
        done = total = 0
        known = True
        rate = 0.0
        failed = 0
        for job in self._session:
            if job.state is JobState.CANCELLED:
                continue
            if job.state is JobState.FAILED:
                failed += 1
                continue
            if job.total is None:
                known = False
                done += job.done
            else:
                done += job.total if job.state is JobState.DONE else min(job.done, job.total)
                total += job.total
            if job.state is JobState.RUNNING and job.rate:
                rate += job.rate
        return Overall(done, total if known else None, len(self._running), len(self._waiting),
                       failed, rate if self._running else None)

    # ------------------------------------------------------------------ changing

    def submit(self, title: str, fn: JobFunction, *, kind: str = "transfer",
               total: int | None = None, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> TransferJob:
        """Queue ``fn(progress, cancel)`` as a job; it starts as soon as a slot is free.

        ``on_done(result)`` or ``on_error(exception)`` runs on the GUI thread
        when it ends (``on_error`` gets TransferCancelled if it was cancelled,
        also while still queued). ``total`` is the expected size in bytes, if
        known before the job starts.
        """
        job = TransferJob(title, fn, kind, total, on_done, on_error)
        self._jobs.append(job)
        self._waiting.append(job)
        self._session.append(job)
        self.jobAdded.emit(job)
        self._start_ready()
        return job

    def cancel(self, job: TransferJob) -> None:
        """Cancel ``job``: a waiting one at once, a running one at its next chunk."""
        if job.state is JobState.QUEUED and job in self._waiting:
            self._waiting.remove(job)
            self._end(job, JobState.CANCELLED, error=TransferCancelled(
                f"{job.title} was cancelled before it started"))
        elif job.state is JobState.RUNNING and job.worker is not None:
            job.worker.quit()
            self.jobChanged.emit(job)

    def cancel_all(self) -> None:
        """Cancel every waiting and running job."""
        waiting = list(self._waiting)
        self._waiting.clear()  # first: none of them may start while the others end
        for job in list(self._running):
            self.cancel(job)
        for job in waiting:
            self._end(job, JobState.CANCELLED, error=TransferCancelled(
                f"{job.title} was cancelled before it started"))
        if waiting:
            self.statusMessage.emit(f"Cancelled {len(waiting)} queued transfer(s)")

    def is_cancelling(self, job: TransferJob) -> bool:
        """Whether ``job`` runs still but was asked to stop."""
        return (job.state is JobState.RUNNING and job.worker is not None
                and job.worker.abort_requested)

    def retry(self, job: TransferJob) -> bool:
        """Run a failed or cancelled job again (its callbacks run again at its end)."""
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            return False
        job._reset()
        if job not in self._jobs:
            self._jobs.append(job)
            self.jobAdded.emit(job)
        self._waiting.append(job)
        if job not in self._session:
            self._session.append(job)
        self.jobChanged.emit(job)
        self._start_ready()
        return True

    def clear_finished(self) -> None:
        """Take every finished job off the list."""
        self._remove([job for job in self._jobs if job.state.finished])

    def wait_for_running(self, timeout: float) -> bool:
        """Block until the running jobs' functions returned (after a cancel); False on timeout.

        The jobs' ends are still delivered later, through the event loop.
        """
        deadline = time.monotonic() + timeout
        HEARTBEAT.stop()  # the GUI thread waits for the jobs: they must not wait for it
        for job in list(self._running):
            worker = job.worker
            if worker is not None and not worker.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    # ------------------------------------------------------------------ running

    def _holding_back(self) -> bool:
        """Whether the next waiting job should not start yet (see the class docstring)."""
        if not any(not job.moving and not job.worker.abort_requested
                   for job in self._running if job.worker is not None):
            self._held_since = None
            return False
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        return now - self._held_since < START_HOLD_LIMIT

    def _start_ready(self) -> None:
        while self._waiting and len(self._running) < self._concurrency:
            if self._holding_back():
                break  # the timer's next tick tries again
            self._held_since = None
            job = self._waiting.popleft()
            job.state = JobState.RUNNING
            job.started = time.monotonic()
            job.runs += 1
            worker = Worker(_run_job, job)
            worker.context = job
            job.worker = worker
            worker.returned.connect(self._on_returned)
            worker.errored.connect(self._on_errored)
            worker.aborted.connect(self._on_aborted)
            self._running.append(job)
            self.jobChanged.emit(job)
            worker.start(self._pool)
        if self._running and not self._timer.isActive():
            self._timer.start()
        if self._running and self._heartbeat.set_running(True):
            FULL_COLLECTIONS.defer()

    def _tick(self) -> None:
        if not self._running:
            self._timer.stop()
            self._stop_beating()
            return
        now = time.monotonic()
        for job in self._running:
            job._sample(now)
        if self._waiting:
            self._start_ready()
        self.progressed.emit()

    def _job_of(self, sender: Any) -> TransferJob | None:
        job = getattr(sender, "context", None)
        if isinstance(job, TransferJob) and job.worker is sender and job in self._running:
            return job
        return None

    def _on_returned(self, result: Any) -> None:
        job = self._job_of(self.sender())
        if job is not None:
            self._end(job, JobState.DONE, result=result)

    def _on_errored(self, exc: BaseException) -> None:
        job = self._job_of(self.sender())
        if job is not None:
            state = JobState.CANCELLED if isinstance(exc, TransferCancelled) else JobState.FAILED
            self._end(job, state, error=exc)

    def _on_aborted(self) -> None:
        job = self._job_of(self.sender())
        if job is not None:
            self._end(job, JobState.CANCELLED,
                      error=TransferCancelled(f"{job.title} was cancelled"))

    def _end(self, job: TransferJob, state: JobState, result: Any = None,
             error: BaseException | None = None) -> None:
        if job in self._running:
            self._running.remove(job)
        job.state, job.result, job.error = state, result, error
        job.ended = time.monotonic()
        job.rate = job.remaining = None
        if state is JobState.DONE and job.total is not None:
            job.done = job.total
        if state is JobState.DONE:
            self.statusMessage.emit(f"Done: {job.title}")
        elif state is JobState.CANCELLED:
            self.statusMessage.emit(f"Cancelled: {job.title}")
        else:
            self.statusMessage.emit(f"Failed: {job.title}: {job.error_text}")
        self.jobChanged.emit(job)
        try:
            if state is JobState.DONE:
                if job.on_done is not None:
                    job.on_done(result)
                self.transferFinished.emit(job.title, result)
            else:
                if job.on_error is not None:
                    job.on_error(error)
                self.transferFailed.emit(job.title, error)
        finally:
            self._start_ready()
            self._trim()
            if not self._running:
                self._stop_beating()
            if not self.is_busy() and self._session:
                self._session = []
                self._timer.stop()
                self.progressed.emit()  # the last figures
                self.idle.emit()

    def _stop_beating(self) -> None:
        """No job runs: stop the heartbeat and let full collections run again."""
        if self._heartbeat.set_running(False):
            FULL_COLLECTIONS.resume()

    def _trim(self) -> None:
        finished = [j for j in self._jobs if j.state.finished]
        extra = len(finished) - KEEP_FINISHED
        if extra > 0:
            # The oldest successful ones first; failures stay while there are others.
            order = sorted(finished, key=lambda j: (j.state is not JobState.DONE, j.id))
            self._remove(order[:extra])

    def _remove(self, jobs: list[TransferJob]) -> None:
        if not jobs:
            return
        gone = set(map(id, jobs))
        self._jobs = [j for j in self._jobs if id(j) not in gone]
        self._session = [j for j in self._session if id(j) not in gone]
        self.jobsRemoved.emit(jobs)
