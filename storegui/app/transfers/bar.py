"""TransferStatusBar: the overall progress of the transfer queue, in the status bar.

It shows how many transfers run and wait, one bar for all of them (bytes
done out of the total since the queue was last idle) with the combined
rate, a button that opens the transfer panel and one that cancels them
all. It is hidden while the queue is idle. It updates on the queue's timer
ticks, like the panel, never per chunk.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QToolButton, QWidget

from .. import icons
from ..formatting import format_progress
from .panel import format_rate
from .queue import TransferQueue

_STEPS = 1000


class TransferStatusBar(QWidget):
    """Overall progress of ``queue`` (objectName ``transferStatus``).

    Signals
    -------
    showRequested()
        The user asked to see the transfer panel.
    """

    showRequested = Signal()

    def __init__(self, queue: TransferQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transferStatus")
        self.queue = queue

        self.label = QLabel(self)
        self.label.setObjectName("transferLabel")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setMinimumWidth(120)
        self.label.setMaximumWidth(360)
        self.label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("transferProgress")
        self.bar.setRange(0, _STEPS)
        self.bar.setMinimumWidth(260)
        self.bar.setTextVisible(True)
        self.show_button = QToolButton(self)
        self.show_button.setObjectName("showTransfers")
        self.show_button.setText("Transfers")
        self.show_button.setToolTip("Show every transfer, with its progress, errors and retry")
        self.show_button.clicked.connect(self.showRequested)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setObjectName("transferCancel")
        self.cancel_button.setIcon(icons.icon("cancel"))
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the running transfers and the queued ones")
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.cancel_button.clicked.connect(queue.cancel_all)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.show_button)
        layout.addWidget(self.cancel_button)
        self.setVisible(False)

        queue.jobAdded.connect(lambda _job: self.update_figures())
        queue.jobChanged.connect(lambda _job: self.update_figures())
        queue.progressed.connect(self.update_figures)

    def update_figures(self) -> None:
        """Show the queue's overall figures now (hidden while idle)."""
        busy = self.queue.is_busy()
        if busy != self.isVisible():
            self.setVisible(busy)
        if not busy:
            return
        overall = self.queue.overall()
        waiting = f", {overall.queued} queued" if overall.queued else ""
        title = self.queue.current_title or ""
        if overall.running > 1:
            title = f"{overall.running} transfers"
        # Only what changed: this runs on every tick of the queue's timer.
        _set(self.label.text, self.label.setText, f"{title}{waiting}")
        _set(self.label.toolTip, self.label.setToolTip,
             "\n".join(j.title for j in self.queue.running_jobs()))
        fraction = overall.fraction
        if fraction is None:
            self.bar.setRange(0, 0)  # busy: the total is not known yet
        else:
            if self.bar.maximum() != _STEPS:
                self.bar.setRange(0, _STEPS)
            _set(self.bar.value, self.bar.setValue, int(fraction * _STEPS))
        text = format_progress(overall.done, overall.total)
        if overall.rate:
            text += f" · {format_rate(overall.rate)}"
        _set(self.bar.format, self.bar.setFormat, text)


def _set(get: Any, put: Any, value: Any) -> None:
    if get() != value:
        put(value)
