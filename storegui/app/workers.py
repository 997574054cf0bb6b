"""Background work for the app: small worker objects with signals, run on a QThreadPool.

Every store call the app makes runs here, never on the GUI thread. A
:class:`Worker` has the shape of superqt's generator workers: the function it
runs may be a plain function (its return value arrives through ``returned``)
or a generator (each ``yield`` arrives through ``yielded``; ``quit()`` stops
it at the next ``yield``). We keep our own small class instead of
``superqt.utils.thread_worker`` because transfers report progress from inside
a store call (a ``progress(done, total)`` callback, not a ``yield``) and stop
through a :class:`~storegui.stores.CancelToken` the store checks between
chunks; both need a handle on the worker while the call runs.

Signals are emitted on the pool thread and delivered, queued, on the GUI
thread (the worker object lives there).

How workers share the interpreter with the GUI thread (pauses, the garbage
collector) is :mod:`storegui.app.scheduling`'s business.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..stores.streaming import CancelToken

log = logging.getLogger(__name__)

#: Progress reaches the GUI at most this often (seconds between updates).
PROGRESS_INTERVAL = 0.05

# Workers must outlive their run: Qt holds only the C++ runnable, so the Python
# objects stay here until ``finished`` has been delivered on the GUI thread.
_ACTIVE: set[Worker] = set()


class _Runnable(QRunnable):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        self._worker._run()


class Worker(QObject):
    """Runs ``fn(*args, **kwargs)`` on a thread pool and reports through signals.

    If ``fn`` has a parameter named ``worker``, the worker passes itself, so
    the function can call :meth:`report_progress`, read :attr:`cancel_token`
    or check :attr:`abort_requested`.

    Signals (all delivered on the GUI thread):

    - ``started()``
    - ``yielded(object)``: each value a generator function yields
    - ``progress(object, object)``: ``(done, total)``, throttled
    - ``returned(object)``: the function's result (not sent after an error or abort)
    - ``errored(object)``: the exception the function raised
    - ``aborted()``: the function stopped because :meth:`quit` was called
    - ``finished()``: always last
    """

    started = Signal()
    yielded = Signal(object)
    progress = Signal(object, object)
    returned = Signal(object)
    errored = Signal(object)
    aborted = Signal()
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = dict(kwargs)
        self.cancel_token = CancelToken()
        self._last_progress = 0.0
        self._pending_progress: tuple[Any, Any] | None = None
        self._progress_lock = threading.Lock()
        self._done = threading.Event()
        #: Free for the caller: what this worker is about (a tree node, a key...).
        self.context: Any = None
        try:
            if "worker" in inspect.signature(fn).parameters:
                self._kwargs["worker"] = self
        except (TypeError, ValueError):  # builtins without a signature
            pass

    # ------------------------------------------------------------------ control

    def start(self, pool: QThreadPool | None = None) -> Worker:
        """Queue the worker on ``pool`` (default: the global pool); returns self."""
        _ACTIVE.add(self)
        self.finished.connect(self._forget)
        (pool or QThreadPool.globalInstance()).start(_Runnable(self))
        return self

    def quit(self) -> None:
        """Ask the worker to stop: at its next ``yield``, or at the next chunk of a transfer."""
        self.cancel_token.cancel()

    @property
    def abort_requested(self) -> bool:
        """Whether :meth:`quit` was called."""
        return self.cancel_token.cancelled

    def is_done(self) -> bool:
        """Whether the function has returned, raised or been aborted."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the function ended (for shutdown paths); False on timeout."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ for the function

    def report_progress(self, done: Any, total: Any = None) -> None:
        """Send ``(done, total)`` to the GUI, at most every PROGRESS_INTERVAL seconds.

        Safe to pass as a store's ``progress`` callback. The last value before
        the function ends is always delivered.
        """
        now = time.monotonic()
        with self._progress_lock:
            if now - self._last_progress < PROGRESS_INTERVAL:
                self._pending_progress = (done, total)
                return
            self._last_progress = now
            self._pending_progress = None
        self._emit(self.progress, done, total)

    # ------------------------------------------------------------------ internals

    def _flush_progress(self) -> None:
        with self._progress_lock:
            pending, self._pending_progress = self._pending_progress, None
        if pending is not None:
            self._emit(self.progress, *pending)

    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the app is tearing down and the worker object is gone
            log.debug("worker %r outlived its signals", self._fn)

    def _run(self) -> None:
        self._emit(self.started)
        try:
            if self.abort_requested:
                self._emit(self.aborted)
                return
            result = self._fn(*self._args, **self._kwargs)
            if inspect.isgenerator(result):
                try:
                    for value in result:
                        if self.abort_requested:
                            break
                        self._emit(self.yielded, value)
                        if self.abort_requested:
                            break
                finally:
                    result.close()
                if self.abort_requested:
                    self._emit(self.aborted)
                    return
                result = None
            self._flush_progress()
            self._emit(self.returned, result)
        except Exception as exc:  # delivered to the GUI, which shows it to the user
            log.debug("worker %r failed", self._fn, exc_info=True)
            self._flush_progress()
            self._emit(self.errored, exc)
        finally:
            self._done.set()
            self._emit(self.finished)

    def _forget(self) -> None:
        _ACTIVE.discard(self)


def active_workers() -> list[Worker]:
    """Workers started and not yet finished (as seen from the GUI thread)."""
    return list(_ACTIVE)


def run_in_thread(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_yield: Callable[[Any], None] | None = None,
    on_progress: Callable[[Any, Any], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    context: Any = None,
    **kwargs: Any,
) -> Worker:
    """Build a :class:`Worker` for ``fn``, connect the given callbacks and start it.

    The callbacks run on the GUI thread. A receiver that is a QObject's bound
    method is disconnected automatically when that object is destroyed.
    """
    worker = Worker(fn, *args, **kwargs)
    worker.context = context
    if on_result is not None:
        worker.returned.connect(on_result)
    if on_error is not None:
        worker.errored.connect(on_error)
    if on_yield is not None:
        worker.yielded.connect(on_yield)
    if on_progress is not None:
        worker.progress.connect(on_progress)
    if on_finished is not None:
        worker.finished.connect(on_finished)
    return worker.start()
