"""Background work for the app: small worker objects with signals, run on a QThreadPool.

Every store call the app makes runs here, never on the GUI thread, and this
is the app's one worker API. A :class:`Worker` has the shape of superqt's
generator workers (``superqt.utils.thread_worker``): the function it runs may
be a plain function (its return value arrives through ``returned``) or a
generator (each ``yield`` arrives through ``yielded``; ``quit()`` stops it at
the next ``yield``). We keep this small class rather than superqt's because
``quit()`` must also reach into a running store call: it sets a
:class:`~storegui.stores.CancelToken` that the store checks between chunks;
and closing the window must find every running worker
(:func:`active_workers`) and wait for a cancelled transfer (:meth:`Worker.wait`).
Transfer progress does not travel through workers: jobs record it and the
transfer queue reads it on a timer.

Signals are emitted on the pool thread and delivered, queued, on the GUI
thread (the worker object lives there).

How workers share the interpreter with the GUI thread (pauses, the garbage
collector) is :mod:`storegui.app.scheduling`'s business.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..stores.transfer.streaming import CancelToken

log = logging.getLogger(__name__)

# Workers must outlive their run: Qt holds only the C++ runnable, so the Python
# objects stay here until ``finished`` has been delivered on the GUI thread.
_ACTIVE: set[Worker] = set()


class _Aborted(Exception):
    """A generator function stopped at a ``yield`` by :meth:`Worker.quit`."""

class _Runnable(QRunnable):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        self._worker._run()


class Worker(QObject):
    """Runs ``fn(*args, **kwargs)`` on a thread pool and reports through signals.

    If ``fn`` has a parameter named ``worker``, the worker passes itself, so
    the function can read :attr:`cancel_token` or check :attr:`abort_requested`.

    Signals (all delivered on the GUI thread):

    - ``started()``
    - ``yielded(object)``: each value a generator function yields
    - ``returned(object)``: the function's result (not sent after an error or abort)
    - ``errored(object)``: the exception the function raised
    - ``aborted()``: the function stopped because :meth:`quit` was called
    - ``finished()``: always last
    """

    started = Signal()
    yielded = Signal(object)
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

    # ------------------------------------------------------------------ internals

    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the app is tearing down and the worker object is gone
            log.debug("worker %r outlived its signals", self._fn)

    def _run(self) -> None:
        self._emit(self.started)
        # The outcome is emitted only once is_done() is true: a slot that reacts to it
        # (say, by disconnecting the store the function used) finds the function over.
        outcome: tuple[Any, ...] = (self.aborted,)
        try:
            if not self.abort_requested:
                outcome = (self.returned, self._call())
        except _Aborted:
            outcome = (self.aborted,)
        except Exception as exc:  # delivered to the GUI, which shows it to the user
            log.debug("worker %r failed", self._fn, exc_info=True)
            outcome = (self.errored, exc)
        finally:
            self._done.set()
            self._emit(*outcome)
            self._emit(self.finished)

    def _call(self) -> Any:
        """Run the function (a generator's values go out through ``yielded``); its result."""
        result = self._fn(*self._args, **self._kwargs)
        if not inspect.isgenerator(result):
            return result
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
            raise _Aborted
        return None

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
    if on_finished is not None:
        worker.finished.connect(on_finished)
    return worker.start()
