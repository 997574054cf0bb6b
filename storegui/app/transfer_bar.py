"""TransferBar: the status-bar widget that runs push, pull, import and export one at a time.

It shows the running transfer's name, a progress bar of bytes done out of
the total, how many more are waiting, and a Cancel button. Each transfer is
a function ``fn(progress, cancel)`` run on a worker: ``progress(done, total)``
reaches the bar throttled, and ``cancel`` is the
:class:`~storegui.stores.CancelToken` the store checks between chunks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QToolButton, QWidget

from ..stores.errors import TransferCancelled
from . import icons
from .formatting import format_progress
from .workers import Worker

_STEPS = 1000


@dataclass
class Transfer:
    """One queued transfer: what to call, and whom to tell when it ends."""

    title: str
    fn: Callable[[Callable[[Any, Any], None], Any], Any]
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    worker: Worker | None = field(default=None, repr=False)


def _run_transfer(fn: Callable[..., Any], worker: Worker) -> Any:
    return fn(worker.report_progress, worker.cancel_token)


class TransferBar(QWidget):
    """Runs transfers one after another and shows the current one (objectName ``transferPanel``).

    Signals
    -------
    statusMessage(str)
        "Pushed …", "Cancelled …", "Failed …" for the status bar.
    transferFinished(str, object)
        A transfer's title and result.
    transferFailed(str, object)
        A transfer's title and exception (TransferCancelled when cancelled).
    idle()
        The queue ran empty.
    """

    statusMessage = Signal(str)
    transferFinished = Signal(str, object)
    transferFailed = Signal(str, object)
    idle = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transferPanel")
        self._queue: deque[Transfer] = deque()
        self._current: Transfer | None = None

        self._label = QLabel(self)
        self._label.setObjectName("transferLabel")
        self._label.setTextFormat(Qt.TextFormat.PlainText)
        self._label.setMinimumWidth(120)
        self._label.setMaximumWidth(360)
        self._label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._bar = QProgressBar(self)
        self._bar.setObjectName("transferProgress")
        self._bar.setRange(0, _STEPS)
        self._bar.setMinimumWidth(180)
        self._bar.setTextVisible(True)
        self._cancel = QToolButton(self)
        self._cancel.setObjectName("transferCancel")
        self._cancel.setIcon(icons.icon("cancel"))
        self._cancel.setText("Cancel")
        self._cancel.setToolTip("Cancel the running transfer and the queued ones")
        self._cancel.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._cancel.clicked.connect(self.cancel_all)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        layout.addWidget(self._label)
        layout.addWidget(self._bar)
        layout.addWidget(self._cancel)
        self.setVisible(False)

    # ------------------------------------------------------------------ queue

    def submit(self, title: str, fn: Callable[..., Any], *,
               on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> Transfer:
        """Queue ``fn(progress, cancel)`` under ``title``; it starts when the bar is free."""
        transfer = Transfer(title, fn, on_done, on_error)
        self._queue.append(transfer)
        if self._current is None:
            self._start_next()
        else:
            self._show()
        return transfer

    def is_busy(self) -> bool:
        """Whether a transfer is running or queued."""
        return self._current is not None or bool(self._queue)

    @property
    def current_title(self) -> str | None:
        """The running transfer's title, if any."""
        return self._current.title if self._current is not None else None

    def cancel_all(self) -> None:
        """Drop the queued transfers and cancel the running one (it stops at its next chunk)."""
        dropped = len(self._queue)
        self._queue.clear()
        if self._current is not None and self._current.worker is not None:
            self._current.worker.quit()
            self._label.setText(f"Cancelling {self._current.title}…")
            self._cancel.setEnabled(False)
        elif dropped:
            self.statusMessage.emit(f"Cancelled {dropped} queued transfer(s)")

    def _start_next(self) -> None:
        if not self._queue:
            self._current = None
            self.setVisible(False)
            self.idle.emit()
            return
        transfer = self._current = self._queue.popleft()
        worker = Worker(_run_transfer, transfer.fn)
        worker.context = transfer
        transfer.worker = worker
        worker.progress.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self._bar.setRange(0, 0)  # busy until the first progress report
        self._bar.setFormat("")
        self._cancel.setEnabled(True)
        self._show()
        worker.start()

    def _show(self) -> None:
        if self._current is None:
            return
        waiting = len(self._queue)
        more = f"  (+{waiting} queued)" if waiting else ""
        self._label.setText(f"{self._current.title}{more}")
        self._label.setToolTip(self._current.title)
        self.setVisible(True)

    # ------------------------------------------------------------------ worker signals

    def _mine(self) -> Transfer | None:
        worker = self.sender()
        if self._current is None or not isinstance(worker, Worker):
            return None
        return self._current if worker.context is self._current else None

    def _on_progress(self, done: Any, total: Any) -> None:
        if self._mine() is None:
            return
        if total:
            self._bar.setRange(0, _STEPS)
            self._bar.setValue(min(_STEPS, int(done * _STEPS / total)))
        else:
            self._bar.setRange(0, 0)
        self._bar.setFormat(format_progress(int(done), int(total) if total else None))

    def _on_returned(self, result: Any) -> None:
        transfer = self._mine()
        if transfer is None:
            return
        self.statusMessage.emit(f"Done: {transfer.title}")
        if transfer.on_done is not None:
            transfer.on_done(result)
        self.transferFinished.emit(transfer.title, result)

    def _on_errored(self, exc: BaseException) -> None:
        transfer = self._mine()
        if transfer is None:
            return
        if isinstance(exc, TransferCancelled):
            self.statusMessage.emit(f"Cancelled: {transfer.title}")
        else:
            self.statusMessage.emit(f"Failed: {transfer.title}: {exc}")
        if transfer.on_error is not None:
            transfer.on_error(exc)
        self.transferFailed.emit(transfer.title, exc)

    def _on_aborted(self) -> None:
        transfer = self._mine()
        if transfer is not None:
            self.statusMessage.emit(f"Cancelled: {transfer.title}")
            self.transferFailed.emit(transfer.title, TransferCancelled("cancelled"))

    def _on_finished(self) -> None:
        if self._mine() is not None:
            self._start_next()
