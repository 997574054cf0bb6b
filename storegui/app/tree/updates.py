"""How the loaded key tree changes: refreshes, reveals and sorting.

A mixin of :class:`~storegui.app.tree.model.KeyTreeModel`. A refresh lists
loaded folders again (the difference is applied, see :mod:`storegui.app.tree.loading`);
store events refresh the folders that show the keys written, soon and once;
a reveal loads the folders down to a key and brings its row into view.

Every loaded folder keeps its children in display order. Sorting a
100,000-row folder in a proxy would call Python for every comparison, so
the model sorts instead: a small folder at once, a big one on a worker
(:func:`~storegui.app.tree.jobs.sort_nodes`, in short bursts), and the
result goes out as one layout change, so views keep their expanded
folders, selection and scroll position. A folder being listed is sorted
when its listing lands.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, Qt

from ..workers import Worker
from .jobs import job, sort_nodes
from .nodes import (
    FAILED,
    LOADED,
    UNLOADED,
    KeyNode,
    StatusRow,
    path_prefixes,
    sort_key_function,
)

NAME, ORIGIN, SIZE, MODIFIED = range(4)
HEADERS = ("Name", "Origin", "Size", "Modified")

#: Folders with at most this many children are sorted at once on the GUI thread.
SYNC_SORT_ROWS = 5000


class TreeUpdatesMixin:
    """Refresh, reveal, sort; needs the model's jobs, timers, signals and window methods."""

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
                children = sorted(folder.children, key=keyfn, reverse=order[1])
                if children == folder.children:  # same nodes, same order: nothing moves
                    folder.rows.order = order
                else:
                    now.append((folder, children))
            else:
                self._start_sort_job(folder, order)
        if now:
            self._install_sorted(now, order)

    def _start_sort_job(self, folder: KeyNode, order: tuple[int, bool]) -> None:
        self._stop_sort_job(folder)
        worker = job(sort_nodes, list(folder.children), order)
        worker.context = (folder, folder.rows.version, order)
        worker.returned.connect(self._on_sorted)
        worker.finished.connect(self._on_sort_finished)
        self._sort_jobs[folder.key] = worker
        worker.start()
        self._update_heartbeat()

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
            if children == folder.children:  # same nodes, same order: nothing moves
                folder.rows.order = order
            else:
                self._install_sorted([(folder, children)], order)

    def _on_sort_finished(self) -> None:
        worker = self.sender()
        if isinstance(worker, Worker):
            folder = worker.context[0]
            if self._sort_jobs.get(folder.key) is worker:
                del self._sort_jobs[folder.key]
        self._update_heartbeat()

    def _install_sorted(self, items: list[tuple[KeyNode, list[KeyNode]]],
                        order: tuple[int, bool]) -> None:
        """Give folders their children in a new order; each window keeps its place and size."""
        changes = []
        for folder, children in items:
            rows = folder.rows
            folder.children = children
            rows.order = order
            rows.version += 1
            if rows.hits is not None:
                rows.filtered = [c for c in children if c in rows.hits]
            shown = folder.shown
            size = len(rows.window)
            lo = max(0, min(rows.lo, len(shown) - size))
            changes.append((folder, shown[lo:lo + size], lo))
        self._relayout(changes, sort_hint=True)

    # ------------------------------------------------------------------ refresh and reveal

    def refresh(self, index: QModelIndex | None = None) -> None:
        """List again every loaded folder (at and under ``index``; default: everything)."""
        node = self._root if index is None or not index.isValid() else index.internalPointer()
        if isinstance(node, StatusRow):
            node = node.parent
        if not node.is_dir:
            node = node.parent
        for folder in list(node.iter_loaded_folders()):
            self._refresh_folder(folder)

    def _refresh_folder(self, folder: KeyNode) -> None:
        if folder.state == FAILED:
            folder.state = UNLOADED
        self._start_load(folder)

    def refresh_keys(self, keys: Iterable[str]) -> None:
        """Refresh, soon and once, the loaded folders that show ``keys``.

        A key (or a prefix ending in "/") affects the folder holding it and
        every folder above it (their origins may change); a prefix also
        affects the loaded folders under it.
        """
        self._pending_refresh.update(keys)
        self._refresh_timer.start()

    def _refresh_pending(self) -> None:
        keys, self._pending_refresh = self._pending_refresh, set()
        folders: dict[str, KeyNode] = {}
        for key in keys:
            node = self._root
            folders[""] = node
            for prefix in path_prefixes(key):
                if not prefix.endswith("/") or node.state != LOADED:
                    break
                node = node.child_by_key(prefix)
                if node is None:
                    break
                if node.state in (LOADED, FAILED):
                    folders[node.key] = node
            if key.endswith("/") and node is not None and node.key == key:
                for folder in node.iter_loaded_folders():
                    folders[folder.key] = folder
        # Deepest first: a folder's new listing then tends to land before its parent's.
        for folder in sorted(folders.values(), key=lambda f: -f.key.count("/")):
            if folder.state in (LOADED, FAILED) and self._attached(folder):
                self._refresh_folder(folder)

    def reveal(self, key: str) -> None:
        """Load the folders down to ``key`` as needed, then emit ``revealed(key)``.

        The key's row is brought into its folder's window (and the filter's
        matches, if a filter hides it, are not: it stays hidden).
        """
        self._reveals.setdefault(key, False)
        self._continue_reveals()

    def _continue_reveals(self) -> None:
        waiting: dict[str, bool] = {}
        for key, relisted in self._reveals.items():
            node = self._root
            for prefix in path_prefixes(key):
                if node.state == UNLOADED:
                    self._start_load(node)
                if node.state == FAILED:
                    break
                if node.state != LOADED or node.key in self._jobs:
                    waiting[key] = relisted
                    break
                child = node.child_by_key(prefix)
                if child is None:
                    if not relisted:
                        # The key may be newer than the listing: list the folder once more.
                        self._start_load(node)
                        waiting[key] = True
                    else:
                        self.statusMessage.emit(f"'{key}' is not in the store")
                    break
                node = child
            else:
                if self._window_around(node):
                    self.revealed.emit(key)
                else:
                    self.statusMessage.emit(f"'{key}' is hidden by the filter")
        self._reveals = waiting
