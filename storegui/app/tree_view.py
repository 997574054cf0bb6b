"""The key tree's view and its filter proxy."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QRegularExpression, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QWidget

from .tree_model import MODIFIED, NAME, ORIGIN, SIZE, NameRole
from .tree_nodes import LOADED, KeyNode


def name_filter(text: str) -> QRegularExpression:
    """The filter box's pattern as a case-insensitive regex over whole names.

    ``*`` and ``?`` are wildcards; text without them matches names containing it.
    An empty text gives an empty regex (no filtering).
    """
    text = text.strip()
    if not text:
        return QRegularExpression()
    pattern = text if any(c in text for c in "*?[") else f"*{text}*"
    return QRegularExpression.fromWildcard(
        pattern, Qt.CaseSensitivity.CaseInsensitive,
        QRegularExpression.WildcardConversionOption.NonPathWildcardConversion)


class KeyFilterProxyModel(QSortFilterProxyModel):
    """Filters the loaded tree by name; sorting is forwarded to :class:`KeyTreeModel`.

    A folder stays visible while anything loaded under it matches
    (recursive filtering). Unloaded folders are not listed to find matches:
    the filter covers what is loaded; "Search Store…" covers the rest.

    The matching is Qt's own (a regex on the NameRole): with no filter, Qt
    accepts every row without calling into Python, which matters for folders
    of 100,000 rows.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setFilterKeyColumn(NAME)
        self.setFilterRole(NameRole)
        self._text = ""

    @property
    def pattern(self) -> str:
        """The filter text in use ("" for none)."""
        return self._text

    def set_pattern(self, text: str) -> None:
        """Show only names matching ``text`` (``*`` and ``?`` wildcards; else a substring)."""
        if text.strip() == self._text:
            return
        self._text = text.strip()
        self.setFilterRegularExpression(name_filter(text))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        # Sorting a huge folder here would call Python per comparison; the
        # source model keeps its rows in display order instead.
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def source_node(self, index: QModelIndex) -> Any:
        """The tree node behind a proxy index."""
        source = self.sourceModel()
        return source.node(self.mapToSource(index)) if source is not None else None


class KeyTreeView(QTreeView):
    """The tree of keys (objectName ``keyTree``): multi-selection, sortable columns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyTree")
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

    def expand_loaded(self, limit: int = 500) -> None:
        """Expand the loaded folders that are visible (e.g. to show filter matches).

        Unloaded folders stay closed: expanding them would list them.
        """
        proxy = self.model()
        if proxy is None:
            return
        stack = [QModelIndex()]
        expanded = 0
        while stack and expanded < limit:
            parent = stack.pop()
            for row in range(proxy.rowCount(parent)):
                index = proxy.index(row, 0, parent)
                node = proxy.source_node(index)
                if isinstance(node, KeyNode) and node.is_dir and node.state == LOADED:
                    self.expand(index)
                    expanded += 1
                    stack.append(index)
