"""How the key tree is sorted: every loaded folder keeps its children in display order.

A mixin of :class:`~storegui.app.tree_model.KeyTreeModel`. Sorting a
100,000-row folder in a proxy would call Python for every comparison, so
the model sorts instead: a small folder at once, a big one on a worker
(:func:`~storegui.app.tree_jobs.sort_nodes`, in short bursts), and the
result goes out as one layout change, so views keep their expanded
folders, selection and scroll position. A folder being listed is sorted
when its listing lands.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from .tree_jobs import sort_nodes
from .tree_nodes import KeyNode, sort_key_function
from .workers import Worker

NAME, ORIGIN, SIZE, MODIFIED = range(4)
HEADERS = ("Name", "Origin", "Size", "Modified")

#: Folders with at most this many children are sorted at once on the GUI thread.
SYNC_SORT_ROWS = 5000


class TreeUpdatesMixin:
    """Sorting; needs ``_root``, ``_jobs``, ``_sort_jobs`` and the window methods."""

    _root: KeyNode
    _sort_column: int = NAME
    _descending: bool = False

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order every loaded folder by ``column`` (folders first), keeping selections."""
        if not 0 <= column < len(HEADERS):
            column = NAME
        descending = order == Qt.SortOrder.DescendingOrder
        if (column, descending) == (self._sort_column, self._descending):
            return
        self._sort_column, self._descending = column, descending
        self._sort_folders(list(self._root.iter_loaded_folders()))

    def sort_order(self) -> tuple[int, Qt.SortOrder]:
        """The column and order rows are sorted by."""
        return self._sort_column, (Qt.SortOrder.DescendingOrder if self._descending
                                   else Qt.SortOrder.AscendingOrder)

    def is_sorting(self) -> bool:
        """Whether a big folder is being sorted in the background."""
        return bool(self._sort_jobs)

    def _order(self) -> tuple[int, bool]:
        return self._sort_column, self._descending

    def _sort_folders(self, folders: list[KeyNode], force: bool = False) -> None:
        """Bring ``folders`` into the current order (``force``: even if they say they are)."""
        order = self._order()
        keyfn = sort_key_function(*order)
        now = []
        for folder in folders:
            if (folder.rows.order == order and not force) or folder.key in self._jobs:
                continue  # a folder being listed is sorted when its listing lands
            if len(folder.children) <= SYNC_SORT_ROWS:
                self._stop_sort_job(folder)
                now.append((folder, sorted(folder.children, key=keyfn, reverse=order[1])))
            else:
                self._start_sort_job(folder, order)
        if now:
            self._install_sorted(now, order)

    def _start_sort_job(self, folder: KeyNode, order: tuple[int, bool]) -> None:
        self._stop_sort_job(folder)
        worker = Worker(sort_nodes, list(folder.children), order)
        worker.context = (folder, folder.rows.version, order)
        worker.returned.connect(self._on_sorted)
        worker.finished.connect(self._on_sort_finished)
        self._sort_jobs[folder.key] = worker
        worker.start()

    def _stop_sort_job(self, folder: KeyNode) -> None:
        worker = self._sort_jobs.pop(folder.key, None)
        if worker is not None:
            worker.quit()

    def _on_sorted(self, children: list[KeyNode] | None) -> None:
        worker = self.sender()
        if not isinstance(worker, Worker) or children is None:
            return
        folder, version, order = worker.context
        if self._sort_jobs.get(folder.key) is not worker:
            return
        # Listed again meanwhile (it is sorted when that lands) or sorted otherwise since.
        if (folder.rows.version == version and order == self._order()
                and folder.key not in self._jobs and self._attached(folder)):
            self._install_sorted([(folder, children)], order)

    def _on_sort_finished(self) -> None:
        worker = self.sender()
        if isinstance(worker, Worker):
            folder = worker.context[0]
            if self._sort_jobs.get(folder.key) is worker:
                del self._sort_jobs[folder.key]

    def _install_sorted(self, items: list[tuple[KeyNode, list[KeyNode]]],
                        order: tuple[int, bool]) -> None:
        """Give folders their children in a new order; each window keeps its place and size."""
        changes = []
        for folder, children in items:
            rows = folder.rows
            folder.children = children
            rows.order = order
            rows.version += 1
            if rows.filtered is not None:
                rows.filtered = [c for c in children if c.hit]
            shown = folder.shown
            size = len(rows.window)
            lo = max(0, min(rows.lo, len(shown) - size))
            changes.append((folder, shown[lo:lo + size], lo))
        self._relayout(changes, sort_hint=True)
