"""The key tree's view: it shows the KeyTreeModel itself (the model filters and sorts)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTreeView, QWidget

from .model import MODIFIED, NAME, ORIGIN, SIZE
from .nodes import LOADED, KeyNode
from .paging import TreePager

REFUSED_COLOR = QColor("#e53935")


class KeyTreeView(QTreeView):
    """The tree of keys (objectName ``keyTree``): multi-selection, sortable columns.

    Drag and drop go through two handlers the window sets (the model itself
    takes no part, so its flags stay cheap for huge folders):
    ``drop_handler`` (a :class:`~storegui.app.dnd.drop.DropImporter`)
    judges what is dragged over a row (``drag_verdict``), runs drops and is
    told when a drag leaves; ``drag_handler`` (a
    :class:`~storegui.app.dnd.drag.DragOut`) starts a drag of the selection.
    While dragging, the target row (or the whole view, for the top level) is
    outlined: in the highlight colour where the drop is accepted, dashed red
    where it is refused.

    While the model has no rows and lists nothing, the viewport shows
    ``empty_text`` (the window says there what the stores are and that files
    can be dropped), or ``no_match_text`` while the model filters rows.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyTree")
        # Big folders show a window of their rows, paged as the view scrolls.
        self.pager = TreePager(self)
        self.drop_handler: Any = None
        self.drag_handler: Any = None
        self._drop_hint: tuple[QModelIndex, bool] | None = None
        self._press_pos: QPoint | None = None
        self.empty_text = ""
        self.no_match_text = "No loaded key matches the filter."
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDropIndicatorShown(False)  # the outline below shows where a drop lands
        self.setAutoExpandDelay(800)  # a folder hovered while dragging opens
        # Uniform rows let the view skip measuring every row of a huge folder.
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAllColumnsShowFocus(True)
        self.setAlternatingRowColors(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAnimated(False)
        self.setExpandsOnDoubleClick(True)

    def setModel(self, model: Any) -> None:  # noqa: N802 (Qt override)
        super().setModel(model)
        header = self.header()
        header.setSectionsMovable(True)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        metrics = self.fontMetrics()
        widths = {
            ORIGIN: metrics.horizontalAdvance("Shadowing") + 48,
            SIZE: metrics.horizontalAdvance("999.9 MB") + 28,
            MODIFIED: metrics.horizontalAdvance("2024-12-31 23:59") + 28,
        }
        for column, width in widths.items():
            header.resizeSection(column, width)
        header.setMinimumSectionSize(metrics.horizontalAdvance("Name") + 24)
        header.setSortIndicator(NAME, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.pager.attach(model)
        # Rows inserted or removed repaint the viewport anyway; a listing that ends
        # with no rows, or a filter, changes only what the empty state says.
        for name in ("folderLoaded", "filterApplied", "modelReset"):
            signal = getattr(model, name, None)
            if signal is not None:
                signal.connect(self.viewport().update)

    def empty_state_text(self) -> str:
        """What the viewport shows now for an empty tree ("" while it has rows, or lists)."""
        model = self.model()
        if model is None or model.rowCount() > 0:
            return ""
        if getattr(model, "is_loading", lambda: False)():
            return ""
        if getattr(model, "name_filter", ""):
            return self.no_match_text
        return self.empty_text

    def expand_loaded(self, limit: int = 500) -> None:
        """Expand the loaded folders that are visible (e.g. to show filter matches).

        Unloaded folders stay closed: expanding them would list them.
        """
        model = self.model()
        if model is None:
            return
        stack = [QModelIndex()]
        expanded = 0
        while stack and expanded < limit:
            parent = stack.pop()
            for row in range(model.rowCount(parent)):
                index = model.index(row, 0, parent)
                node = model.node(index)
                if isinstance(node, KeyNode) and node.is_dir and node.state == LOADED:
                    self.expand(index)
                    expanded += 1
                    stack.append(index)

    # ------------------------------------------------------------------ dropping on the tree

    def _judge(self, event: Any) -> Any:
        verdict = self.drop_handler.drag_verdict(self, event) if self.drop_handler else None
        if verdict is not None and verdict.accepted:
            event.setDropAction(verdict.action)
            event.accept()
        else:
            event.ignore()
        self._set_hint((verdict.target, verdict.accepted) if verdict is not None else None)
        return verdict

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        verdict = self._judge(event)
        # Keep the drag state even while refused: the verdict changes from row to row.
        if verdict is not None:
            self.setState(QAbstractItemView.State.DraggingState)
            event.accept() if verdict.accepted else event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        super().dragMoveEvent(event)  # auto-scroll, and auto-expand of the folder under it
        self._judge(event)

    def dragLeaveEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        super().dragLeaveEvent(event)
        self._set_hint(None)
        if self.drop_handler is not None:
            self.drop_handler.drag_left()
        if self.drag_handler is not None:
            self.drag_handler.left_tree()

    def dropEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        verdict = self._judge(event)
        self._set_hint(None)
        self.stopAutoScroll()
        self.setState(QAbstractItemView.State.NoState)
        if verdict is not None and verdict.accepted:
            self.drop_handler.drop(self, event, verdict)

    def _set_hint(self, hint: tuple[QModelIndex, bool] | None) -> None:
        if hint != self._drop_hint:
            self._drop_hint = hint
            self.viewport().update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        empty = self.empty_state_text()
        if empty:
            self._paint_empty_state(empty)
        if self._drop_hint is None:
            return
        index, accepted = self._drop_hint
        area = self.viewport().rect()
        if index.isValid():
            row = self.visualRect(index)
            rect = QRect(area.left(), row.top(), area.width(), row.height())
        else:
            rect = area
        painter = QPainter(self.viewport())
        color = self.palette().highlight().color() if accepted else REFUSED_COLOR
        pen = QPen(color, 2, Qt.PenStyle.SolidLine if accepted else Qt.PenStyle.DashLine)
        painter.setPen(pen)
        fill = QColor(color)
        fill.setAlpha(40 if accepted else 18)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect.adjusted(1, 1, -2, -2), 3, 3)
        painter.end()

    def _paint_empty_state(self, text: str) -> None:
        area = self.viewport().rect()
        margin = max(12, self.fontMetrics().height())
        width = min(area.width() - 2 * margin, 64 * self.fontMetrics().averageCharWidth())
        rect = QRect(0, 0, max(width, 40), area.height() - 2 * margin)
        rect.moveCenter(area.center())
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), text)
        painter.end()

    # ------------------------------------------------------------------ dragging keys out

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        left = event.button() == Qt.MouseButton.LeftButton
        pos = event.position().toPoint()
        self._press_pos = pos if left and self.indexAt(pos).isValid() else None
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        start = self._press_pos
        if (start is None or self.drag_handler is None
                or not event.buttons() & Qt.MouseButton.LeftButton):
            super().mouseMoveEvent(event)
            return
        # A move after a press on a row is a drag in the making, as in a file manager: Qt
        # would treat it as a drag selection (the model's rows are not drag-enabled) and
        # drop the rest of the selection.
        if (event.position().toPoint() - start).manhattanLength() < \
                QApplication.startDragDistance():
            return
        self._press_pos = None
        if self.selectionModel().isSelected(self.indexAt(start).siblingAtColumn(0)):
            self.drag_handler.start_drag(self)
        self.setState(QAbstractItemView.State.NoState)

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self._press_pos = None
        super().mouseReleaseEvent(event)
