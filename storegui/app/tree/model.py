"""KeyTreeModel: the merged key space of a MountedStore as a lazily loaded tree.

Folders load on demand (``canFetchMore``/``fetchMore``): a
:class:`~storegui.app.tree.loader.FolderLoader` runs one ``list_dir`` of
that folder on a worker and delivers its entries in parts, installed with
``beginInsertRows``/``endInsertRows`` (never a model reset). A "Loading…"
row shows meanwhile; a failure leaves the error in that row and goes to
``statusMessage``. A refresh lists a loaded folder again and applies the
difference (rows removed, inserted, updated), so expanded folders and the
selection survive it; store events refresh the folders that show the keys
written, soon and once; a reveal loads the folders down to a key and
brings its row into view.

Every loaded folder keeps its children in display order (folders first,
then by the sort column). Sorting a 100,000-row folder in a proxy would
call Python for every comparison, so the model sorts instead: a small
folder at once, a big one on a worker
(:func:`~storegui.app.tree.jobs.sort_nodes`, in short bursts), and the
result goes out as one layout change, so views keep their expanded
folders, selection and scroll position. A folder being listed is sorted
when its listing lands.

The name filter is the model's too: a proxy would call Python once per row
of every loaded folder, and page no better than the rows it was given;
here each folder's ``filtered`` list is what its window pages over. A
folder stays visible while anything loaded under it matches. Unloaded
folders are not listed to find matches: the filter covers what is loaded;
"Search Store…" covers the rest. A small tree is filtered at once; a big
one on a worker, the result installed as one layout change
(``filterApplied`` then).

Qt's tree view lays out every row of an expanded folder again after each
change, calling the model twice per row, so a folder must never put
100,000 rows in front of it: views see a *window* of each folder's shown
children. With paging off (the default, for views that do not page) a
folder's window is all its shown children. A view that pages
(:class:`~storegui.app.tree.view.KeyTreeView`) calls :meth:`set_paging`:
a folder then shows at most ``limit`` rows at a time, its first ``page``
to begin with; placeholder rows above and below the window stand for the
rest, and the view calls :meth:`show_more` / :meth:`show_earlier` when it
scrolls one into sight (a reveal moves the window to the key). A small
change goes out as row inserts and removals; one with many scattered runs
(a sort, a new filter) as one layout change.

Everything that grows with a folder's size runs on a worker
(:mod:`storegui.app.tree.jobs`); the GUI thread only installs results.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from ...stores import events as ev
from .. import icons
from ..formatting import (
    FOLDER_ORIGIN_TIPS,
    KEY_ORIGIN_TIPS,
    ORIGIN_LABELS,
    format_size,
    format_time,
)
from ..scheduling import HeartbeatTimer, give_way, note_new_nodes, release_frozen
from ..workers import Worker
from .jobs import FilterResult, Listing, filter_folders, job, sort_nodes
from .loader import FolderLoader
from .nodes import (
    FAILED,
    HEAD,
    LOADED,
    LOADING,
    UNLOADED,
    KeyNode,
    StatusRow,
    path_prefixes,
    position_of,
    sort_key_function,
)

__all__ = ["HEADERS", "MODIFIED", "NAME", "ORIGIN", "SIZE", "KeyTreeModel", "KeyRole",
           "OriginRole", "IsDirRole", "SortRole", "NameRole", "LOADING_TEXT"]

NAME, ORIGIN, SIZE, MODIFIED = range(4)
HEADERS = ("Name", "Origin", "Size", "Modified")

LOADING_TEXT = "Loading…"
LOADING_MORE_TEXT = "Loading… ({count:,} more so far)"
MORE_TEXT = "{count:,} more — scroll down to show them"
EARLIER_TEXT = "{count:,} more above — scroll up to show them"
#: More scattered runs of inserted/removed rows than this: one layout change instead.
MAX_RUNS = 16
#: Folders with at most this many children are sorted at once on the GUI thread.
SYNC_SORT_ROWS = 5000
#: Trees with at most this many loaded rows are filtered at once on the GUI thread.
SYNC_FILTER_ROWS = 20_000

KeyRole = Qt.ItemDataRole.UserRole + 1
OriginRole = Qt.ItemDataRole.UserRole + 2
IsDirRole = Qt.ItemDataRole.UserRole + 3
SortRole = Qt.ItemDataRole.UserRole + 4
NameRole = Qt.ItemDataRole.UserRole + 5  # the name alone (None for status rows)

ERROR_COLOR = QColor("#e53935")
_COLUMNS = len(HEADERS)
_INVALID = QModelIndex()
# Roles and flags as plain values, looked up once: views ask for them per row.
_DISPLAY = Qt.ItemDataRole.DisplayRole
_DECORATION = Qt.ItemDataRole.DecorationRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_FONT = Qt.ItemDataRole.FontRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_DIR_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_KEY_FLAGS = _DIR_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_STATUS_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
# SortRole: what each column sorts by (name, origin rank, bytes, epoch seconds).
_COLUMN_SORT_KEYS = [sort_key_function(column, False) for column in range(len(HEADERS))]
_CHANGE_EVENTS = (ev.StoreSetEvent, ev.StoreUpdateEvent, ev.StoreDeleteEvent)
_ITALIC: list[QFont] = []


def _italic() -> QFont:
    if not _ITALIC:
        font = QFont()
        font.setItalic(True)
        _ITALIC.append(font)
    return _ITALIC[0]


Matcher = Callable[[str], Any]


def name_matcher(text: str) -> Matcher | None:
    """The filter box's text as a case-insensitive match over whole names (None for no text).

    ``*``, ``?`` and ``[...]`` are wildcards (``*`` matches any characters);
    text without them matches names containing it. The matcher returns a
    true value for a match.
    """
    text = text.strip()
    if not text:
        return None
    pattern = text if any(c in text for c in "*?[") else f"*{text}*"
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL).match


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


class KeyTreeModel(QAbstractItemModel):
    """A tree of folders and keys over a MountedStore, loaded lazily off the GUI thread.

    Signals
    -------
    statusMessage(str)
        A message for the status bar (e.g. a failed listing).
    folderLoaded(str)
        The listing of a folder (its prefix; "" for the top) was applied.
    revealed(str)
        A key asked for with :meth:`reveal` is now in the tree.
    filterApplied(str)
        The name filter (its text) now shows in the rows.
    """

    statusMessage = Signal(str)
    folderLoaded = Signal(str)
    revealed = Signal(str)
    filterApplied = Signal(str)
    _storeChanged = Signal(object)

    def __init__(self, store: Any = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._store: Any = None
        self._root = KeyNode("", True)
        self._loader = FolderLoader(self)
        self._loader.partListed.connect(self._install)
        self._loader.folderListed.connect(self._on_listed)
        self._loader.listingFailed.connect(self._on_list_failed)
        self._loader.listingEnded.connect(self._on_listing_ended)
        self._loader.workerDone.connect(self._update_heartbeat)
        self._sort_jobs: dict[str, Worker] = {}
        # key -> whether its folder was listed again after the key was not found
        self._reveals: dict[str, bool] = {}
        self._pending_refresh: set[str] = set()
        self._sort_column = NAME
        self._descending = False
        # The name filter: its text, its matcher once applied, the job applying it.
        self._filter_text = ""
        self._matcher: Matcher | None = None
        self._filter_job: Worker | None = None
        # Paging (set_paging): rows per step, and at most per folder (page None: all rows).
        self._page: int | None = None
        self._limit = 0
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_pending)
        # Keys written by other threads, waiting for the GUI thread (see _on_store_event):
        # one key per folder, as every key of a folder refreshes the same folders.
        self._changed_keys: dict[str, str] = {}
        self._changed_lock = threading.Lock()
        self._storeChanged.connect(self._take_changed_keys)
        self._status_pending: list[KeyNode] = []
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.setInterval(0)
        self._status_timer.timeout.connect(self._show_pending_status)
        # While jobs run, workers watch this timer to leave the GIL to a busy GUI thread.
        self._heartbeat = HeartbeatTimer(self)
        if store is not None:
            self.set_store(store)

    # ------------------------------------------------------------------ store

    @property
    def root(self) -> KeyNode:
        """The invisible top node (its children are the top-level rows)."""
        return self._root

    @property
    def store(self) -> Any:
        """The MountedStore shown (None before :meth:`set_store`)."""
        return self._store

    def set_store(self, store: Any) -> None:
        """Show ``store``: drop the current tree and start listing the top level."""
        self.shutdown()
        self.beginResetModel()
        self._store = store
        old, self._root = self._root, KeyNode("", True)
        self.endResetModel()
        old.dismantle()  # its cycles broken: freed now, whatever the garbage collector sees
        if store is not None:
            # Only what changes keys: a write also sends progress events, four per key.
            for kind in _CHANGE_EVENTS:
                store.event_dispatcher.connect(self._on_store_event, kind)
            self._start_load(self._root)

    def shutdown(self) -> None:
        """Stop listening to the store and ask every running job to stop.

        The garbage collector sees every object again (see
        :func:`~storegui.app.scheduling.note_new_nodes`), so that nothing the app drops from now on
        outlives it.
        """
        if self._store is not None:
            self._store.event_dispatcher.disconnect(self._on_store_event)
        release_frozen()
        self._loader.stop_all()
        for worker in self._sort_jobs.values():
            worker.quit()
        if self._filter_job is not None:
            self._filter_job.quit()
            self._filter_job = None
        self._sort_jobs.clear()
        self._pending_refresh.clear()
        self._reveals.clear()
        self._refresh_timer.stop()
        self._status_pending.clear()
        self._update_heartbeat()

    def is_loading(self) -> bool:
        """Whether any listing is running."""
        return self._loader.is_busy()

    def is_listing(self, key: str) -> bool:
        """Whether the folder ``key`` (a prefix; "" for the top) is being listed."""
        return self._loader.is_listing(key)

    def is_busy(self) -> bool:
        """Whether any listing, sort or filter is running."""
        return self._loader.is_busy() or bool(self._sort_jobs) or self._filter_job is not None

    def _update_heartbeat(self) -> None:
        """Beat for the workers while any job runs (and only then: an idle app stays idle)."""
        self._heartbeat.set_running(self.is_busy())

    def _on_store_event(self, event: ev.StoreEvent) -> None:
        # Runs on whatever thread wrote to the store. A commit of thousands of keys (a drop)
        # sends thousands of events at once: one queued signal per burst, not one per key,
        # or delivering them stalls the window (0.1-0.2 s for 5,000 keys, measured). And
        # one key per folder: the GUI thread then walks a few folders, not 10,000 keys.
        # Such a burst holds the GIL for 10-20 ms (5,000 keys): give the GUI thread its turn
        # when it is late, as transfer jobs do between files (see transfer_queue).
        if isinstance(event, _CHANGE_EVENTS):
            key = event.key
            folder = key[:key.rfind("/") + 1]
            with self._changed_lock:
                first = not self._changed_keys
                self._changed_keys.setdefault(folder, key)
            if first:
                self._storeChanged.emit(None)
            give_way()

    def _take_changed_keys(self, _unused: Any = None) -> None:
        with self._changed_lock:
            keys, self._changed_keys = self._changed_keys, {}
        if keys:
            self.refresh_keys(keys.values())

    # ------------------------------------------------------------------ nodes and indexes

    def node(self, index: QModelIndex) -> KeyNode | StatusRow | None:
        """The node behind ``index`` (None for the invisible root)."""
        if not index.isValid():
            return None
        return index.internalPointer()

    def index_of(self, node: KeyNode | StatusRow | None, column: int = 0) -> QModelIndex:
        """The index of ``node`` (invalid for the root, and for a node not shown as a row)."""
        return self._index_if_shown(node, column)

    def index_for_key(self, key: str) -> QModelIndex:
        """The index of a loaded key or folder prefix; invalid if it is not a row."""
        node = self._find_loaded(key)
        return self.index_of(node) if node is not None else QModelIndex()

    def _find_loaded(self, key: str) -> KeyNode | None:
        node = self._root
        for prefix in path_prefixes(key):
            if node.state not in (LOADED, LOADING, FAILED):
                return None
            node = node.child_by_key(prefix)
            if node is None:
                return None
        return node

    # ------------------------------------------------------------------ Qt model interface
    # Views call these once or twice per row: they are kept short.

    def index(self, row: int, column: int, parent: QModelIndex = _INVALID) -> QModelIndex:
        if row < 0 or not 0 <= column < _COLUMNS:
            return _INVALID
        if parent.isValid():
            if parent.column() > 0:
                return _INVALID
            node = parent.internalPointer()
        else:
            node = self._root
        rows = node.rows
        if rows is None:
            return _INVALID
        head = rows.head
        i = row - 1 if head is not None else row
        window = rows.window
        if 0 <= i < len(window):
            return self.createIndex(row, column, window[i])
        if i < 0:
            return self.createIndex(0, column, head)
        if i == len(window) and node.status is not None:
            return self.createIndex(row, column, node.status)
        return _INVALID

    def parent(self, index: QModelIndex = _INVALID) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return _INVALID
        up = index.internalPointer().parent
        if up is None or up is self._root:
            return _INVALID
        return self.createIndex(up.row, 0, up)

    def rowCount(self, parent: QModelIndex = _INVALID) -> int:
        if not parent.isValid():
            return self._root.row_count()
        if parent.column() > 0:
            return 0
        return parent.internalPointer().row_count()

    def columnCount(self, parent: QModelIndex = _INVALID) -> int:
        return _COLUMNS

    def hasChildren(self, parent: QModelIndex = _INVALID) -> bool:
        if not parent.isValid():
            node = self._root
        elif parent.column() > 0:
            return False
        else:
            node = parent.internalPointer()
        if node.rows is None:
            return False
        return node.state in (UNLOADED, LOADING) or node.row_count() > 0

    def canFetchMore(self, parent: QModelIndex) -> bool:
        # Only a folder never listed: views call this on every layout, and
        # paging through a big folder is the view's choice (show_more).
        node = self._root if not parent.isValid() else parent.internalPointer()
        return node.rows is not None and node.state == UNLOADED and self._store is not None

    def fetchMore(self, parent: QModelIndex) -> None:
        node = self._root if not parent.isValid() else parent.internalPointer()
        if node.rows is not None and node.state == UNLOADED:
            self._start_load(node)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        node = index.internalPointer()
        if node.rows is not None:
            return _DIR_FLAGS
        return _STATUS_FLAGS if type(node) is StatusRow else _KEY_FLAGS

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = _DISPLAY) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            if role == _DISPLAY:
                return HEADERS[section]
            if role == _ALIGNMENT and section == SIZE:
                return _RIGHT
        return None

    def data(self, index: QModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        node = index.internalPointer()
        column = index.column()
        if type(node) is StatusRow:
            return self._status_data(node, column, role)
        if role == NameRole:
            return node.name
        if role == _DISPLAY:
            if column == NAME:
                return node.name
            if column == ORIGIN:
                return ORIGIN_LABELS.get(node.origin, "")
            if column == SIZE:
                return "" if node.is_dir else format_size(node.size)
            if column == MODIFIED:
                return format_time(node.modified)
            return None
        if role == _DECORATION:
            if column == NAME:
                if node.is_dir:
                    return icons.icon("folder-local" if node.has_local else "folder")
                return icons.icon("key")
            if column == ORIGIN and node.origin in ORIGIN_LABELS:
                return icons.icon(f"origin-{node.origin}")
            return None
        if role == _TOOLTIP:
            if column == ORIGIN:
                tips = FOLDER_ORIGIN_TIPS if node.is_dir else KEY_ORIGIN_TIPS
                return tips.get(node.origin)
            return node.key
        if role == _ALIGNMENT and column == SIZE:
            return _RIGHT
        if role == KeyRole:
            return node.key
        if role == OriginRole:
            return node.origin
        if role == IsDirRole:
            return node.is_dir
        if role == SortRole:
            return _COLUMN_SORT_KEYS[column](node)[1]
        return None

    def _status_data(self, status: StatusRow, column: int, role: int) -> Any:
        if column != NAME:
            return None
        if role == _DISPLAY or role == _TOOLTIP:
            return status.text
        if role == _DECORATION:
            if status.failed:
                return icons.icon("error")
            return icons.icon("loading") if status.parent.state == LOADING else None
        if role == _FOREGROUND and status.failed:
            return ERROR_COLOR
        if role == _FONT:
            return _italic()
        return None

    # ------------------------------------------------------------------ listings

    def _start_load(self, folder: KeyNode) -> None:
        if self._store is None:
            return
        if not self._loader.is_listing(folder.key):
            self._stop_sort_job(folder)
            if folder.state != LOADED:
                folder.state = LOADING
                if folder.status is not None:
                    self._apply_tail(folder)
                else:
                    # Not inserted here: fetchMore may run inside a view's (or the
                    # model tester's) handling of another insert.
                    self._status_pending.append(folder)
                    self._status_timer.start()
            if not folder.children:
                folder.rows.order = self._order()
        # A listing running already may predate the change: the loader lists again after it.
        self._loader.start(self._store, folder, folder.rows.order)
        self._update_heartbeat()

    def _show_pending_status(self) -> None:
        pending, self._status_pending = self._status_pending, []
        for folder in pending:
            if (folder.state == LOADING and self._loader.is_listing(folder.key)
                    and folder.status is None and self._attached(folder)):
                self._apply_tail(folder)

    def _on_listed(self, folder: KeyNode, changes: Listing | None) -> None:
        if changes is not None:
            if changes.version != folder.rows.version:
                self._loader.list_again(folder)  # changed meanwhile: list once more
            else:
                self._install(folder, changes)
        folder.state = LOADED
        self._apply_tail(folder)
        self.folderLoaded.emit(folder.key)

    def _on_list_failed(self, folder: KeyNode, exc: BaseException) -> None:
        where = f"'{folder.key}'" if folder.key else "the top level"
        message = f"Cannot list {where}: {exc}"
        folder.state = FAILED
        folder.rows.error = message
        self._apply_tail(folder)
        self.statusMessage.emit(message)
        self._reveals = {k: v for k, v in self._reveals.items() if not k.startswith(folder.key)}

    def _on_listing_ended(self, folder: KeyNode, again: bool) -> None:
        if again and folder.state == LOADED and self._attached(folder):
            self._start_load(folder)
        if not self._loader.is_listing(folder.key) and folder.state == LOADED:
            # Listed in the order of its start: sort it if the order changed since.
            self._sort_folders([folder])
        self._continue_reveals()

    def _install(self, folder: KeyNode, listing: Listing) -> None:
        """Take a listing's nodes into ``folder`` and show what changed."""
        rows = folder.rows
        at_end = self._window_at_end(folder)
        gone = listing.gone
        changed = [node for node, entry in listing.changed if node.update_from(entry)]
        if listing.children is not None:
            folder.children = listing.children
        else:
            folder.children.extend(listing.added)
        rows.version += 1
        rows.order = listing.order
        folder.index_children(listing.added)
        if gone:
            folder.forget_children(gone)
            for node in gone:
                self._loader.stop_under(node)
        matcher = self._matcher
        if matcher is not None:
            self._filter_children(folder, listing.added, gone)
        self._rebuild_window(folder, at_end, set(gone))
        for node in gone:
            node.dismantle()  # detached: late results for it are dropped
        note_new_nodes(len(listing.added))
        if changed:
            self._emit_changed(folder, changed)
        if matcher is not None:
            self._refilter_up(folder)
        if changed and self._sort_column != 0:
            self._sort_folders([folder], force=True)  # sizes, times or origins moved rows

    def _attached(self, node: KeyNode) -> bool:
        while node.parent is not None:
            node = node.parent
        return node is self._root

    # ------------------------------------------------------------------ sorting

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
            if (folder.rows.order == order and not force) or self._loader.is_listing(folder.key):
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
                and not self._loader.is_listing(folder.key) and self._attached(folder)):
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
                if node.state != LOADED or self._loader.is_listing(node.key):
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

    # ------------------------------------------------------------------ the name filter

    @property
    def name_filter(self) -> str:
        """The filter text asked for ("" for none); it may still be being applied."""
        return self._filter_text

    def set_name_filter(self, text: str) -> None:
        """Show only rows whose name matches ``text``, and the folders leading to them."""
        text = text.strip()
        if text == self._filter_text:
            return
        self._filter_text = text
        self._start_filter()

    def is_filtering(self) -> bool:
        """Whether a filter is being applied in the background."""
        return self._filter_job is not None

    def _start_filter(self) -> None:
        if self._filter_job is not None:
            self._filter_job.quit()
            self._filter_job = None
            self._update_heartbeat()
        matcher = name_matcher(self._filter_text)
        if matcher is None:
            self._install_filter(None, None)
            return
        snapshot = [(f, f.rows.version, list(f.children))
                    for f in self._root.iter_loaded_folders()]
        if sum(len(children) for _, _, children in snapshot) <= SYNC_FILTER_ROWS:
            self._install_filter(matcher, filter_folders(snapshot, matcher))
            return
        worker = job(filter_folders, snapshot, matcher)
        worker.context = matcher
        worker.returned.connect(self._on_filtered)
        worker.finished.connect(self._on_filter_finished)
        self._filter_job = worker
        worker.start()
        self._update_heartbeat()

    def _on_filtered(self, result: FilterResult | None) -> None:
        worker = self.sender()
        if worker is not self._filter_job or result is None:
            return
        self._filter_job = None
        done = {folder: version for folder, version, _, _ in result.folders}
        loaded = list(self._root.iter_loaded_folders())
        if len(loaded) != len(done) or any(done.get(f) != f.rows.version for f in loaded):
            self._start_filter()  # folders changed meanwhile: once more, from what they hold now
            return
        self._install_filter(worker.context, result)

    def _on_filter_finished(self) -> None:
        if self.sender() is self._filter_job:  # it failed: keep the filter in place
            self._filter_job = None
        self._update_heartbeat()

    def _install_filter(self, matcher: Matcher | None, result: FilterResult | None) -> None:
        """Make ``matcher`` the filter: every loaded folder shows its first matching rows."""
        self._matcher = matcher
        if result is None:
            folders = list(self._root.iter_loaded_folders())
            for folder in folders:
                folder.rows.filtered = folder.rows.hits = None
        else:
            folders = []
            for folder, _, filtered, hits in result.folders:
                folder.rows.filtered, folder.rows.hits = filtered, hits
                folders.append(folder)
        self._relayout([(folder, *self._first_rows(folder)) for folder in folders])
        self.filterApplied.emit(self._filter_text)

    def _filter_children(self, folder: KeyNode, added: list[KeyNode],
                         gone: list[KeyNode]) -> None:
        """Under a filter: take ``folder``'s new and gone children into its matches."""
        rows = folder.rows
        if rows.hits is None:
            rows.hits = set()
        hits, matcher = rows.hits, self._matcher
        for node in added:
            if matcher(node.name) is not None:
                hits.add(node)
        hits.difference_update(gone)
        rows.filtered = [c for c in folder.children if c in hits]

    def _refilter_up(self, folder: KeyNode) -> None:
        """After ``folder``'s children changed: show or hide it, and the folders above, to match."""
        matcher = self._matcher
        node = folder
        while node is not self._root and node.parent is not None:
            parent = node.parent
            hits = parent.rows.hits
            if hits is None:
                return
            hit = bool(node.rows.filtered) or matcher(node.name) is not None
            if hit == (node in hits):
                return
            at_end = self._window_at_end(parent)
            if hit:
                hits.add(node)
            else:
                hits.discard(node)
            parent.rows.filtered = [c for c in parent.children if c in hits]
            self._rebuild_window(parent, at_end)
            node = parent

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
