"""TransferPanel: every queued, running and finished transfer with its progress.

One row per :class:`~storegui.app.transfers.queue.TransferJob`: its title, a
progress bar with bytes done of the total, the rate, the time remaining, its
state, and a button to cancel it (queued or running) or retry it (failed or
cancelled). A failed job shows its error in place of the bar. The rows
update when the queue's timer ticks (``progressed``), never per chunk.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ..formatting import format_progress, format_size
from .queue import MAX_CONCURRENCY, JobState, TransferJob, TransferQueue

TITLE, PROGRESS, RATE, REMAINING, STATE, ACTION = range(6)
HEADERS = ("Transfer", "Progress", "Rate", "Remaining", "State", "")
JobRole = Qt.ItemDataRole.UserRole + 1
ProgressRole = Qt.ItemDataRole.UserRole + 2  # (fraction or None, text, failed)
ERROR_COLOR = QColor("#e53935")
_STEPS = 1000


def format_rate(rate: float | None) -> str:
    """``"12.5 MB/s"`` ("" if unknown)."""
    return "" if rate is None else f"{format_size(int(rate))}/s"


def format_duration(seconds: float | None) -> str:
    """``"5 s"``, ``"3 min 20 s"``, ``"1 h 05 min"`` ("" if unknown)."""
    if seconds is None:
        return ""
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def action_text(job: TransferJob) -> str:
    """The row's button: "Cancel" while it may run, "Retry" after a failure or cancel."""
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        return "Cancel"
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        return "Retry"
    return ""


class TransferListModel(QAbstractTableModel):
    """The queue's jobs as table rows (kept in step through the queue's signals)."""

    def __init__(self, queue: TransferQueue, parent: Any = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._jobs: list[TransferJob] = list(queue.jobs)
        self._rows: dict[int, int] = {}
        self._renumber()
        queue.jobAdded.connect(self._on_added)
        queue.jobChanged.connect(self._on_changed)
        queue.jobsRemoved.connect(self._on_removed)
        queue.progressed.connect(self._on_progressed)

    def _renumber(self) -> None:
        self._rows = {job.id: row for row, job in enumerate(self._jobs)}

    def job(self, row: int) -> TransferJob | None:
        """The job shown in ``row``."""
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, job: TransferJob) -> int:
        """The row of ``job`` (-1 if not listed)."""
        return self._rows.get(job.id, -1)

    # ------------------------------------------------------------------ queue signals

    def _on_added(self, job: TransferJob) -> None:
        row = len(self._jobs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._jobs.append(job)
        self._rows[job.id] = row
        self.endInsertRows()

    def _on_changed(self, job: TransferJob) -> None:
        row = self.row_of(job)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, ACTION))

    def _on_removed(self, jobs: list[TransferJob]) -> None:
        rows = sorted((self.row_of(j) for j in jobs if self.row_of(j) >= 0), reverse=True)
        # Remove contiguous runs from the bottom up so the rows above stay valid.
        while rows:
            last = first = rows.pop(0)
            while rows and rows[0] == first - 1:
                first = rows.pop(0)
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._jobs[first:last + 1]
            self.endRemoveRows()
        self._renumber()

    def _on_progressed(self) -> None:
        rows = [r for r in map(self.row_of, self._queue.running_jobs()) if r >= 0]
        if rows:  # one signal a tick: the running jobs are usually next to each other
            self.dataChanged.emit(self.index(min(rows), PROGRESS), self.index(max(rows), STATE))

    # ------------------------------------------------------------------ Qt model interface

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(HEADERS)):
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        job = self.job(index.row()) if index.isValid() else None
        if job is None:
            return None
        column = index.column()
        if role == JobRole:
            return job
        if role == ProgressRole:
            return self._progress(job)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == TITLE:
                return job.title
            if column == PROGRESS:
                return self._progress(job)[1]
            moving = job.state is JobState.RUNNING and job.moving
            if column == RATE:
                return format_rate(job.rate) if moving else ""
            if column == REMAINING:
                return format_duration(job.remaining) if moving else ""
            if column == STATE:
                if self._queue.is_cancelling(job):
                    return "Cancelling…"
                if job.state is JobState.RUNNING and not moving:
                    return "Waiting"  # started, but no byte moved yet (e.g. for a lock)
                return job.state.label
            if column == ACTION:
                return action_text(job)
        if role == Qt.ItemDataRole.ToolTipRole:
            if job.state is JobState.FAILED:
                return f"{job.title}\nFailed: {job.error_text}"
            return job.title
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE \
                and job.state is JobState.FAILED:
            return ERROR_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (RATE, REMAINING):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _progress(job: TransferJob) -> tuple[float | None, str, bool]:
        if job.state is JobState.FAILED:
            return None, job.error_text, True
        if job.state is JobState.CANCELLED:
            return None, "Cancelled (nothing partial was kept)", False
        if job.state is JobState.QUEUED or (job.state is JobState.RUNNING and not job.moving):
            waiting = format_size(job.total) if job.total is not None else ""
            return 0.0, f"Waiting{' (' + waiting + ')' if waiting else ''}", False
        text = format_progress(int(job.done), job.total)
        fraction = job.fraction
        if fraction is not None and job.state is JobState.RUNNING:
            text += f" · {int(fraction * 100)}%"
        return fraction, text, False


def _row_size(option: Any, hint: QSize) -> QSize:
    # Room for a progress bar and a push button, which need more than a line of text.
    return QSize(hint.width(), max(hint.height(), option.fontMetrics.height() + 12))


class ProgressDelegate(QStyledItemDelegate):
    """Paints the Progress column: a progress bar, or a failed job's error in red."""

    def sizeHint(self, option: Any, index: QModelIndex) -> QSize:  # noqa: N802 (Qt override)
        return _row_size(option, super().sizeHint(option, index))

    def paint(self, painter: Any, option: Any, index: QModelIndex) -> None:
        value = index.data(ProgressRole)
        if value is None:
            super().paint(painter, option, index)
            return
        fraction, text, failed = value
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is None or fraction is None:
            painter.save()
            if option.state & QStyle.StateFlag.State_Selected:
                painter.fillRect(option.rect, option.palette.highlight())
            painter.setPen(ERROR_COLOR if failed else option.palette.text().color())
            rect = option.rect.adjusted(4, 0, -4, 0)
            shown = option.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                             shown)
            painter.restore()
            return
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(3, 3, -3, -3))
        bar.minimum, bar.maximum = 0, _STEPS
        bar.progress = int(fraction * _STEPS)
        bar.text = text
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class ActionDelegate(QStyledItemDelegate):
    """Paints the row's Cancel / Retry button (a click on it is handled by the panel)."""

    def sizeHint(self, option: Any, index: QModelIndex) -> QSize:  # noqa: N802 (Qt override)
        return _row_size(option, super().sizeHint(option, index))

    def paint(self, painter: Any, option: Any, index: QModelIndex) -> None:
        text = index.data(Qt.ItemDataRole.DisplayRole)
        widget = option.widget
        if not text or widget is None:
            return
        button = QStyleOptionButton()
        button.rect = QRect(option.rect.adjusted(4, 2, -4, -2))
        button.text = text
        button.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Raised
        button.palette = option.palette
        button.fontMetrics = option.fontMetrics
        widget.style().drawControl(QStyle.ControlElement.CE_PushButton, button, painter, widget)


class TransferPanel(QWidget):
    """The list of transfers (objectName ``transferPanel``) with cancel and retry.

    Signals
    -------
    wantsAttention()
        A job failed: show the panel.

    A new job's row is scrolled into view (once the panel is laid out: the
    window shows the panel when a job is queued).
    """

    wantsAttention = Signal()

    def __init__(self, queue: TransferQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transferPanel")
        self.queue = queue
        self.model = TransferListModel(queue, self)

        self.summary = QLabel(self)
        self.summary.setObjectName("transferSummary")
        self.concurrency = QSpinBox(self)
        self.concurrency.setObjectName("transferConcurrency")
        self.concurrency.setRange(1, MAX_CONCURRENCY)
        self.concurrency.setValue(queue.concurrency)
        self.concurrency.setToolTip("How many transfers run at the same time")
        self.concurrency.valueChanged.connect(queue.set_concurrency)
        self.cancel_all_button = self._button("cancelAllTransfers", "Cancel All",
                                              "Cancel every running and queued transfer",
                                              queue.cancel_all)
        self.clear_button = self._button("clearTransfers", "Clear Finished",
                                         "Remove the finished transfers from the list",
                                         queue.clear_finished)

        self.view = QTreeView(self)
        self.view.setObjectName("transferList")
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setItemDelegateForColumn(PROGRESS, ProgressDelegate(self.view))
        self.view.setItemDelegateForColumn(ACTION, ActionDelegate(self.view))
        self.view.clicked.connect(self._on_clicked)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(TITLE, QHeaderView.ResizeMode.Stretch)
        metrics = self.fontMetrics()
        for column, sample in ((PROGRESS, "999.9 MB of 999.9 MB · 100%  "),
                               (RATE, "999.9 MB/s"), (REMAINING, "59 min 59 s"),
                               (STATE, "Cancelling…"), (ACTION, "Cancel")):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 28)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(QLabel("At once:", self))
        top.addWidget(self.concurrency)
        top.addWidget(self.cancel_all_button)
        top.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.view)

        queue.jobChanged.connect(self._on_job_changed)
        queue.jobAdded.connect(self._on_job_added)
        queue.jobsRemoved.connect(lambda _jobs: self._update_summary())
        queue.progressed.connect(self._on_progressed)
        self._update_summary()

    def _button(self, name: str, text: str, tip: str, slot: Any) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def action_rect(self, job: TransferJob) -> QRect:
        """Where ``job``'s Cancel / Retry button is, in the list's viewport."""
        row = self.model.row_of(job)
        return self.view.visualRect(self.model.index(row, ACTION)) if row >= 0 else QRect()

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.column() != ACTION:
            return
        job = self.model.job(index.row())
        if job is None:
            return
        if job.state in (JobState.QUEUED, JobState.RUNNING):
            self.queue.cancel(job)
        elif job.state in (JobState.FAILED, JobState.CANCELLED):
            self.queue.retry(job)

    def _on_job_added(self, job: TransferJob) -> None:
        self._update_summary()
        # After the dock that holds the panel is shown and laid out: a queued call.
        QTimer.singleShot(0, self, lambda: self.scroll_to(job))

    def scroll_to(self, job: TransferJob) -> None:
        """Scroll ``job``'s row into view (if still listed)."""
        row = self.model.row_of(job)
        if row >= 0:
            self.view.scrollTo(self.model.index(row, TITLE))

    def _on_job_changed(self, job: TransferJob) -> None:
        if job.state is JobState.FAILED:
            self.wantsAttention.emit()
        self._update_summary()

    def _on_progressed(self) -> None:
        if self.isVisible():
            self._update_summary()

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self._update_summary()
        super().showEvent(event)

    def _update_summary(self) -> None:
        jobs = self.queue.jobs
        counts = {state: 0 for state in JobState}
        for job in jobs:
            counts[job.state] += 1
        parts = [f"{counts[s]} {s.value}" for s in JobState if counts[s]]
        overall = self.queue.overall()
        text = ", ".join(parts) if parts else "No transfers"
        if self.queue.is_busy():
            text += f" — {format_progress(overall.done, overall.total)}"
            if overall.rate:
                text += f", {format_rate(overall.rate)}"
        self.summary.setText(text)
        self.clear_button.setEnabled(any(j.state.finished for j in jobs))
        self.cancel_all_button.setEnabled(self.queue.is_busy())
