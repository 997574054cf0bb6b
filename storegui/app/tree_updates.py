"""How the key tree's rows change: sorted inserts, diffs against a new listing, re-sorts.

A mixin of :class:`~storegui.app.tree_model.KeyTreeModel`. Every change goes
through ``beginInsertRows``/``beginRemoveRows``/``dataChanged`` or a layout
change for one folder, never a model reset, so views keep their expanded
folders, selection and scroll position.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QPersistentModelIndex, Qt

from ..stores.value import Entry
from .tree_nodes import KeyNode, StatusRow, insertion_point, sort_key_function

NAME, ORIGIN, SIZE, MODIFIED = range(4)
HEADERS = ("Name", "Origin", "Size", "Modified")

#: More scattered runs than this in one batch: append, then re-sort once.
MAX_RUNS = 32


class TreeUpdatesMixin:
    """Row bookkeeping of the tree model; needs ``_root``, ``index_of`` and the Qt model methods."""

    _root: KeyNode
    _sort_column: int = NAME
    _descending: bool = False
    _keyfn: Any = staticmethod(sort_key_function(NAME, False))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order every loaded folder by ``column`` (folders first), keeping selections."""
        if not 0 <= column < len(HEADERS):
            column = NAME
        descending = order == Qt.SortOrder.DescendingOrder
        if (column, descending) == (self._sort_column, self._descending):
            return
        self._sort_column, self._descending = column, descending
        self._keyfn = sort_key_function(column, descending)
        folders = list(self._root.iter_loaded_folders())
        self._layout_signal(self.layoutAboutToBeChanged, [])
        old = self.persistentIndexList()
        nodes = [(i.internalPointer(), i.column()) for i in old]
        for folder in folders:
            folder.children.sort(key=self._keyfn, reverse=self._descending)
            folder.renumber()
        self.changePersistentIndexList(old, [self.createIndex(n.row, c, n) for n, c in nodes])
        self._layout_signal(self.layoutChanged, [])

    def _resort(self, folder: KeyNode) -> None:
        parent = QPersistentModelIndex(self.index_of(folder))
        self._layout_signal(self.layoutAboutToBeChanged, [parent])
        old = [i for i in self.persistentIndexList()
               if i.isValid() and i.internalPointer().parent is folder]
        nodes = [(i.internalPointer(), i.column()) for i in old]
        folder.children.sort(key=self._keyfn, reverse=self._descending)
        folder.renumber()
        self.changePersistentIndexList(old, [self.createIndex(n.row, c, n) for n, c in nodes])
        self._layout_signal(self.layoutChanged, [parent])

    @staticmethod
    def _layout_signal(signal: Any, parents: list[QPersistentModelIndex]) -> None:
        # PySide exposes only the no-argument overload unless it is picked by name.
        overload = signal["QList<QPersistentModelIndex>", "QAbstractItemModel::LayoutChangeHint"]
        overload.emit(parents, QAbstractItemModel.LayoutChangeHint.VerticalSortHint)

    def _set_status(self, folder: KeyNode, text: str | None, failed: bool = False) -> None:
        parent = self.index_of(folder)
        row = len(folder.children)
        if text is None:
            if folder.status is not None:
                self.beginRemoveRows(parent, row, row)
                folder.status = None
                self.endRemoveRows()
        elif folder.status is None:
            self.beginInsertRows(parent, row, row)
            folder.status = StatusRow(folder, text, failed)
            self.endInsertRows()
        else:
            folder.status.text, folder.status.failed = text, failed
            index = self.createIndex(row, NAME, folder.status)
            self.dataChanged.emit(index, index)

    def _insert_entries(self, folder: KeyNode, entries: list[Entry]) -> None:
        """Insert rows for new entries at their sorted places (contiguous runs)."""
        if not entries:
            return
        keyfn, desc = self._keyfn, self._descending
        nodes = [KeyNode.from_entry(e, folder) for e in entries]
        nodes.sort(key=keyfn, reverse=desc)
        children = folder.children
        parent = self.index_of(folder)
        # Group the new nodes by where they go among the existing children.
        runs: list[tuple[int, list[KeyNode]]] = []
        if not children or insertion_point(children, keyfn(nodes[0]), keyfn, desc) == len(
                children):
            runs.append((len(children), nodes))
        else:
            for node in nodes:
                pos = insertion_point(children, keyfn(node), keyfn, desc)
                if runs and runs[-1][0] == pos:
                    runs[-1][1].append(node)
                else:
                    runs.append((pos, [node]))
        if len(runs) > MAX_RUNS:
            # Many scattered runs: append them all, then re-sort once.
            runs = [(len(children), nodes)]
            resort = True
        else:
            resort = False
        offset = 0
        for pos, run in runs:
            first = pos + offset
            self.beginInsertRows(parent, first, first + len(run) - 1)
            children[first:first] = run
            folder.renumber(first)
            self.endInsertRows()
            offset += len(run)
        if resort:
            self._resort(folder)

    def _apply_listing(self, folder: KeyNode, entries: list[Entry]) -> None:
        """Bring a loaded folder's rows in line with a fresh listing (no reset)."""
        # A key "a/" and a folder "a/" can both exist: identify rows by both.
        fresh = {(e.key, e.is_dir): e for e in entries}
        parent = self.index_of(folder)
        children = folder.children
        gone = [c.row for c in children if (c.key, c.is_dir) not in fresh]
        # Remove from the bottom so earlier row numbers stay valid.
        while gone:
            last = gone.pop()
            first = last
            while gone and gone[-1] == first - 1:
                first = gone.pop()
            removed = children[first:last + 1]
            for node in removed:
                self._forget_jobs_under(node)
            self.beginRemoveRows(parent, first, last)
            del children[first:last + 1]
            folder.renumber(first)
            self.endRemoveRows()
            for node in removed:
                node.parent = None  # detached: late results for it are dropped
        known = {(c.key, c.is_dir) for c in children}
        changed = [c.row for c in children if c.update_from(fresh[c.key, c.is_dir])]
        if changed:
            self.dataChanged.emit(self.createIndex(min(changed), 0, children[min(changed)]),
                                  self.createIndex(max(changed), len(HEADERS) - 1,
                                                   children[max(changed)]))
            if self._sort_column != NAME:
                self._resort(folder)
        self._insert_entries(folder, [e for e in entries if (e.key, e.is_dir) not in known])

