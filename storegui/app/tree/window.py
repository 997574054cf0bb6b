"""Which rows of each folder Qt's views see: a window over the folder's shown children.

A mixin of :class:`~storegui.app.tree.model.KeyTreeModel`. Qt's tree view
lays out every row of an expanded folder again after each change, calling
the model twice per row, so a folder must never put 100,000 rows in front
of it. With paging off (the default, for views that do not page) a
folder's window is all its shown children. A view that pages
(:class:`~storegui.app.tree.view.KeyTreeView`) calls :meth:`set_paging`:
a folder then shows at most ``limit`` rows at a time, its first ``page``
to begin with; placeholder rows above and below the window stand for the
rest, and the view calls :meth:`show_more` / :meth:`show_earlier` when it
scrolls one into sight (a reveal moves the window to the key).

A small change goes out as row inserts and removals; one with many
scattered runs (a sort, a new filter) as one layout change.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex

from .nodes import FAILED, HEAD, LOADING, KeyNode, StatusRow, position_of

LOADING_TEXT = "Loading…"
LOADING_MORE_TEXT = "Loading… ({count:,} more so far)"
MORE_TEXT = "{count:,} more — scroll down to show them"
EARLIER_TEXT = "{count:,} more above — scroll up to show them"
#: More scattered runs of inserted/removed rows than this: one layout change instead.
MAX_RUNS = 16


def _renumber(window: list[KeyNode], start: int, offset: int) -> None:
    for i in range(start, len(window)):
        window[i].row = i + offset


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Consecutive positions grouped as inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p - 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


class TreeWindowMixin:
    """Folder windows and placeholder rows; needs the model's root and Qt's model methods."""

    _root: KeyNode
    _page: int | None = None
    _limit: int = 0

    # ------------------------------------------------------------------ paging

    def set_paging(self, page: int | None, limit: int | None = None) -> None:
        """Show at most ``limit`` rows of a folder at a time, ``page`` more per step.

        ``page`` None shows every row (the default). Every loaded folder
        starts again from its first rows.
        """
        if page is not None and page < 1:
            raise ValueError(f"a page holds at least one row, not {page}")
        self._page = page
        self._limit = max(limit or 4 * page, page) if page is not None else 0
        self._relayout([(f, *self._first_rows(f)) for f in self._root.iter_loaded_folders()])

    @property
    def paging(self) -> tuple[int | None, int]:
        """``(page, limit)`` as set by :meth:`set_paging` (``(None, 0)``: every row shown)."""
        return self._page, self._limit

    def show_more(self, folder: KeyNode) -> bool:
        """Show the next page of ``folder``'s rows (dropping its first ones past the limit).

        Returns whether the window moved.
        """
        rows = folder.rows
        if self._page is None or rows is None:
            return False
        shown = folder.shown
        hi = rows.lo + len(rows.window)
        if hi >= len(shown):
            return False
        new_hi = min(len(shown), hi + self._page)
        new_lo = max(rows.lo, new_hi - self._limit)
        self._set_window(folder, shown[new_lo:new_hi], new_lo)
        return True

    def show_earlier(self, folder: KeyNode) -> bool:
        """Show the page of ``folder``'s rows above its window; returns whether it moved."""
        rows = folder.rows
        if self._page is None or rows is None or rows.lo <= 0:
            return False
        new_lo = max(0, rows.lo - self._page)
        new_hi = min(rows.lo + len(rows.window), new_lo + self._limit)
        self._set_window(folder, folder.shown[new_lo:new_hi], new_lo)
        return True

    def _first_rows(self, folder: KeyNode) -> tuple[list[KeyNode], int]:
        shown = folder.shown
        return (list(shown) if self._page is None else shown[:self._page]), 0

    def _window_around(self, node: KeyNode) -> bool:
        """Move the windows from the top down so that ``node`` is a row.

        False if the node is not in the tree, or the filter hides it.
        """
        chain = []
        up = node
        while up.parent is not None:
            chain.append(up)
            up = up.parent
        if up is not self._root:
            return False
        for child in reversed(chain):
            if child.row >= 0:
                continue
            folder = child.parent
            shown = folder.shown
            try:
                pos = position_of(shown, child, folder.rows.order)
            except ValueError:
                return False
            if self._page is None:
                self._rebuild_window(folder, True)
                continue
            size = min(len(shown), self._limit, max(len(folder.rows.window), self._page))
            lo = max(0, min(pos - self._page // 2, len(shown) - size))
            self._set_window(folder, shown[lo:lo + size], lo)
        return True

    # ------------------------------------------------------------------ where rows are

    def _in_view(self, folder: KeyNode) -> bool:
        """Whether Qt holds rows of ``folder``: it, and every folder above it, is a row."""
        root = self._root
        node = folder
        while node is not root:
            if node.row < 0 or node.parent is None:
                return False
            node = node.parent
        return True

    def _index_if_shown(self, node: KeyNode | StatusRow | None, column: int = 0) -> QModelIndex:
        if node is None or node is self._root:
            return QModelIndex()
        if isinstance(node, StatusRow):
            folder = node.parent
            if (node is folder.status or node is folder.rows.head) and self._in_view(folder):
                return self.createIndex(node.row, column, node)
            return QModelIndex()
        if node.row < 0 or node.parent is None or not self._in_view(node.parent):
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    def _window_at_end(self, folder: KeyNode) -> bool:
        """Whether ``folder``'s window reaches its last shown child (call before changing it)."""
        rows = folder.rows
        return rows.lo + len(rows.window) >= len(folder.shown)

    # ------------------------------------------------------------------ changing windows

    def _rebuild_window(self, folder: KeyNode, at_end: bool,
                        gone: set[KeyNode] | frozenset = frozenset()) -> None:
        """Fit ``folder``'s window to its changed children (``gone``: those removed).

        The window keeps the rows it still can, plus whatever now falls
        between them; if it reached the end before, it grows with new rows
        up to a page.
        """
        rows = folder.rows
        shown = folder.shown
        if self._page is None:
            self._set_window(folder, list(shown), 0)
            return
        hits = rows.hits
        kept = [n for n in rows.window if n not in gone and (hits is None or n in hits)]
        if kept:
            lo = position_of(shown, kept[0], rows.order)
            hi = shown.index(kept[-1], lo) + 1
        else:
            lo = max(0, min(rows.lo, len(shown) - self._page))
            hi = lo
            at_end = True
        if at_end:
            hi = max(hi, min(len(shown), lo + self._page))
        hi = min(hi, lo + self._limit)
        self._set_window(folder, shown[lo:hi], lo)

    def _set_window(self, folder: KeyNode, want: list[KeyNode], lo: int) -> None:
        """Make ``want`` (a slice of the shown children from ``lo``) the window of ``folder``.

        ``want`` and the current window must keep the same relative order
        (as after inserts and removals); a reordering goes through
        :meth:`_relayout`.
        """
        rows = folder.rows
        old = rows.window
        head = self._page is not None and lo > 0
        if not self._in_view(folder):
            self._replace_window(folder, want, lo, head)
            self._apply_tail(folder)
            return
        wanted, had = set(want), set(old)
        gone_runs = _runs([i for i, n in enumerate(old) if n not in wanted])
        new_runs = _runs([j for j, n in enumerate(want) if n not in had])
        if len(gone_runs) + len(new_runs) > MAX_RUNS:
            self._relayout([(folder, want, lo)])
            return
        parent = self._index_if_shown(folder)
        offset = 1 if rows.head is not None else 0
        for first, last in reversed(gone_runs):
            self.beginRemoveRows(parent, first + offset, last + offset)
            for node in old[first:last + 1]:
                node.row = -1
            del old[first:last + 1]
            _renumber(old, first, offset)
            self.endRemoveRows()
        for first, last in new_runs:
            self.beginInsertRows(parent, first + offset, last + offset)
            old[first:first] = want[first:last + 1]
            _renumber(old, first, offset)
            self.endInsertRows()
        rows.lo = lo
        if old != want:  # not the same relative order after all: lay the folder out again
            self._relayout([(folder, want, lo)])
            return
        if head and rows.head is None:
            self.beginInsertRows(parent, 0, 0)
            rows.head = StatusRow(folder, "", kind=HEAD)
            _renumber(old, 0, 1)
            self.endInsertRows()
        elif not head and rows.head is not None:
            self.beginRemoveRows(parent, 0, 0)
            rows.head = None
            _renumber(old, 0, 0)
            self.endRemoveRows()
        if rows.head is not None:
            text = EARLIER_TEXT.format(count=lo)
            if rows.head.text != text:
                rows.head.text = text
                index = self.createIndex(0, 0, rows.head)
                self.dataChanged.emit(index, index)
        self._apply_tail(folder)

    def _replace_window(self, folder: KeyNode, want: list[KeyNode], lo: int, head: bool) -> None:
        """Set a window without telling Qt (inside a layout change, or out of view)."""
        rows = folder.rows
        for node in rows.window:
            node.row = -1
        rows.window = list(want)
        rows.lo = lo
        if head:
            if rows.head is None:
                rows.head = StatusRow(folder, "", kind=HEAD)
            rows.head.text = EARLIER_TEXT.format(count=lo)
        else:
            rows.head = None
        _renumber(rows.window, 0, 1 if head else 0)

    def _relayout(self, changes: list[tuple[KeyNode, list[KeyNode], int]],
                  sort_hint: bool = False) -> None:
        """Give folders new windows ``(folder, want, lo)`` as one layout change.

        Rows may move, come and go (as QSortFilterProxyModel does when its
        filter changes); persistent indexes follow their nodes, or become
        invalid for nodes no longer shown.
        """
        if not any(self._in_view(folder) for folder, _, _ in changes):
            for folder, want, lo in changes:
                self._replace_window(folder, want, lo, self._page is not None and lo > 0)
                self._set_tail_quietly(folder)
            return
        hint = (QAbstractItemModel.LayoutChangeHint.VerticalSortHint if sort_hint
                else QAbstractItemModel.LayoutChangeHint.NoLayoutChangeHint)
        self._layout_signal(self.layoutAboutToBeChanged, [], hint)
        old = self.persistentIndexList()
        nodes = [(i.internalPointer(), i.column()) for i in old]
        for folder, want, lo in changes:
            self._replace_window(folder, want, lo, self._page is not None and lo > 0)
            self._set_tail_quietly(folder)
        self.changePersistentIndexList(old, [self._index_if_shown(n, c) for n, c in nodes])
        self._layout_signal(self.layoutChanged, [], hint)

    @staticmethod
    def _layout_signal(signal: Any, parents: list[QPersistentModelIndex],
                       hint: QAbstractItemModel.LayoutChangeHint) -> None:
        # PySide exposes only the no-argument overload unless it is picked by name.
        overload = signal["QList<QPersistentModelIndex>", "QAbstractItemModel::LayoutChangeHint"]
        overload.emit(parents, hint)

    # ------------------------------------------------------------------ the row below the window

    def _tail_wanted(self, folder: KeyNode) -> tuple[str, bool] | None:
        """``(text, failed)`` of the row ``folder`` should show below its window, or None."""
        rows = folder.rows
        if folder.state == FAILED:
            return rows.error, True
        more = len(folder.shown) - rows.lo - len(rows.window)
        if folder.state == LOADING:
            return (LOADING_MORE_TEXT.format(count=more) if more > 0 else LOADING_TEXT), False
        if more > 0:
            return MORE_TEXT.format(count=more), False
        return None

    def _apply_tail(self, folder: KeyNode) -> None:
        """Insert, update or remove the row below ``folder``'s window, telling Qt."""
        if not self._in_view(folder):
            self._set_tail_quietly(folder)
            return
        want = self._tail_wanted(folder)
        status = folder.status
        parent = self._index_if_shown(folder)
        if want is None:
            if status is not None:
                row = status.row
                self.beginRemoveRows(parent, row, row)
                folder.status = None
                self.endRemoveRows()
        elif status is None:
            row = folder.row_count()
            self.beginInsertRows(parent, row, row)
            folder.status = StatusRow(folder, *want)
            self.endInsertRows()
        elif (status.text, status.failed) != want:
            status.text, status.failed = want
            index = self.createIndex(status.row, 0, status)
            self.dataChanged.emit(index, index)

    def _set_tail_quietly(self, folder: KeyNode) -> None:
        want = self._tail_wanted(folder)
        if want is None:
            folder.status = None
        elif folder.status is None:
            folder.status = StatusRow(folder, *want)
        else:
            folder.status.text, folder.status.failed = want

    def _emit_changed(self, folder: KeyNode, nodes: list[KeyNode]) -> None:
        """``dataChanged`` over the rows of ``nodes`` that are in ``folder``'s window."""
        rows = [n.row for n in nodes if n.row >= 0 and n.parent is folder]
        if not rows or not self._in_view(folder):
            return
        offset = 1 if folder.rows.head is not None else 0
        window = folder.rows.window
        first, last = min(rows), max(rows)
        self.dataChanged.emit(self.createIndex(first, 0, window[first - offset]),
                              self.createIndex(last, self.columnCount() - 1,
                                               window[last - offset]))
