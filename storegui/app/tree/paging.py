"""Paging the rows of big folders in the key tree's view.

Qt's tree view lays out every row of its expanded folders again after each
change, at a few microseconds of Python per row, so :class:`TreePager`
turns paging on in the :class:`~storegui.app.tree.model.KeyTreeModel`
behind a view: a folder shows a window of at most ``limit`` rows, with a
placeholder row above and below for the rest. When the view scrolls a
placeholder into sight, the pager asks the model for the next (or the
previous) page, and keeps the rows the user was looking at in place.

After a change to the rows, the pager also has the view lay them out in one
pass of the event loop and paint them in the next (the view would do both
at once, in one pass twice as long): input and timers get their turn in
between.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QPoint, QTimer
from PySide6.QtWidgets import QAbstractItemView, QTreeView

from .model import KeyTreeModel
from .nodes import HEAD, KeyNode, StatusRow

#: Rows a folder shows first, and how many more each step shows.
PAGE_ROWS = 200
#: The most rows of one folder in the view at a time (a layout of this many
#: rows stays well under the 50 ms a user notices).
WINDOW_ROWS = 600
#: How long after a scroll or a change the pager looks for placeholders in sight.
CHECK_DELAY_MS = 16


def tree_model_of(model: Any) -> KeyTreeModel | None:
    """The :class:`KeyTreeModel` under ``model`` (itself, or behind proxies), if any."""
    while model is not None and not isinstance(model, KeyTreeModel):
        model = model.sourceModel() if hasattr(model, "sourceModel") else None
    return model


class TreePager(QObject):
    """Pages big folders in ``view`` (a QTreeView over a KeyTreeModel, or a proxy of one)."""

    def __init__(self, view: QTreeView, page: int = PAGE_ROWS, limit: int = WINDOW_ROWS) -> None:
        super().__init__(view)
        self._view = view
        self._page = page
        self._limit = limit
        self._model: Any = None
        self._source: KeyTreeModel | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        # After the repaint of a scroll, not in the same pass of the event loop.
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check)
        self._holding = False  # the viewport's updates are off until the next pass
        self._layout_timer = QTimer(self)
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(0)
        self._layout_timer.timeout.connect(self._lay_out)
        self._paint_timer = QTimer(self)
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(0)
        self._paint_timer.timeout.connect(self._paint)
        view.verticalScrollBar().valueChanged.connect(self.schedule)
        view.expanded.connect(self.schedule)

    def attach(self, model: Any) -> None:
        """Page the rows of ``model`` (the view's new model); call after ``setModel``."""
        if self._model is not None:
            for signal in self._signals(self._model):
                signal.disconnect(self._changed)
            self._model.dataChanged.disconnect(self.schedule)
            if self._source is not None:
                self._source.filterApplied.disconnect(self._on_filter_applied)
        self._model = model
        self._source = tree_model_of(model)
        if model is None:
            return
        for signal in self._signals(model):
            signal.connect(self._changed)
        model.dataChanged.connect(self.schedule)
        if self._source is not None:
            self._source.set_paging(self._page, self._limit)
            self._source.filterApplied.connect(self._on_filter_applied)

    @staticmethod
    def _signals(model: Any) -> list[Any]:
        """The signals after which the view lays rows out again."""
        return [model.rowsInserted, model.rowsRemoved, model.layoutChanged, model.modelReset]

    def schedule(self, *_args: Any) -> None:
        """Look for placeholder rows in sight shortly (after the repaint of a scroll)."""
        self._timer.start()

    def _changed(self, *_args: Any) -> None:
        self.schedule()
        if not self._holding and self._view.isVisible():
            self._holding = True
            self._view.viewport().setUpdatesEnabled(False)
            self._layout_timer.start()

    def _lay_out(self) -> None:
        view = self._view
        view.executeDelayedItemsLayout()
        if self.check():  # a page more: lay that out too, still before painting
            view.executeDelayedItemsLayout()
        self._paint_timer.start()

    def _paint(self) -> None:
        self._holding = False
        self._view.viewport().setUpdatesEnabled(True)  # repaints the viewport

    def _on_filter_applied(self, text: str) -> None:
        # A filter applied in the background: show its matches, as when typed.
        if text and hasattr(self._view, "expand_loaded"):
            self._view.expand_loaded()

    def _node(self, index: QModelIndex) -> Any:
        return index.internalPointer() if index.isValid() else None

    def visible_rows(self) -> list[QModelIndex]:
        """The indexes (column 0) of the rows in sight, top to bottom."""
        view = self._view
        height = view.viewport().height()
        out = []
        index = view.indexAt(QPoint(1, 1))
        while index.isValid() and view.visualRect(index).top() < height:
            out.append(index.siblingAtColumn(0))
            index = view.indexBelow(index)
        return out

    def check(self) -> bool:
        """Show the next or previous page of a folder whose placeholder row is in sight.

        The key rows in sight stay where they were on screen. Returns
        whether a window moved (another check follows from the model's
        signals then, until no placeholder in sight has rows to show).
        """
        source = self._source
        if source is None or not self._view.isVisible():
            return False
        rows = self.visible_rows()
        nodes = [self._node(i) for i in rows]
        for i, node in enumerate(nodes):
            if not (isinstance(node, StatusRow) and node.pages):
                continue
            # The rows to keep in place: below a placeholder above the window
            # (a page goes in above them), else the first in sight (a page
            # may leave above them).
            below = range(i + 1, len(rows)) if node.kind == HEAD else range(len(rows))
            anchor = next((rows[j] for j in below if isinstance(nodes[j], KeyNode)), None)
            kept = QPersistentModelIndex(anchor) if anchor is not None else None
            top = self._view.visualRect(anchor).top() if anchor is not None else 0
            if node.kind == HEAD:
                moved = source.show_earlier(node.parent)
            else:
                moved = source.show_more(node.parent)
            if moved and kept is not None and kept.isValid():
                self._keep_in_place(QModelIndex(kept), top)
            return moved
        return False

    def _keep_in_place(self, index: QModelIndex, top: int) -> None:
        view = self._view
        view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)
        rect = view.visualRect(index)
        shift = top - rect.top()
        if not shift:
            return
        bar = view.verticalScrollBar()
        if view.verticalScrollMode() == QAbstractItemView.ScrollMode.ScrollPerItem:
            shift = round(shift / max(1, rect.height()))
        bar.setValue(bar.value() - shift)
