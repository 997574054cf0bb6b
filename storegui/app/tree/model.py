"""KeyTreeModel: the merged key space of a MountedStore as a lazily loaded tree.

Folders load on demand (``canFetchMore``/``fetchMore``): one ``list_dir`` of
that folder runs on a worker and its entries arrive in parts, installed
with ``beginInsertRows``/``endInsertRows`` (never a model reset). A refresh
lists a loaded folder again and applies the difference (rows removed,
inserted, updated), so expanded folders and the selection survive it.

The model keeps each folder's children in display order (folders first,
then by the sort column) and filters them by name itself (:mod:`storegui.app.tree.updates`,
:mod:`storegui.app.tree.filter`); views that page (:mod:`storegui.app.tree.window`) see a window of
each folder's rows, so that a folder of 100,000 keys costs Qt no more than
one of a few thousand. Everything that grows with a folder's size runs on a
worker (:mod:`storegui.app.tree.jobs`); the GUI thread only installs results.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt, QTimer, Signal
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
from ..scheduling import HeartbeatTimer, give_way, release_frozen
from ..workers import Worker
from .filter import TreeFilterMixin
from .loading import TreeLoadingMixin
from .nodes import (
    FAILED,
    LOADED,
    LOADING,
    UNLOADED,
    KeyNode,
    StatusRow,
    path_prefixes,
    sort_key_function,
)
from .updates import HEADERS, MODIFIED, NAME, ORIGIN, SIZE, TreeUpdatesMixin
from .window import LOADING_TEXT, TreeWindowMixin

__all__ = ["HEADERS", "MODIFIED", "NAME", "ORIGIN", "SIZE", "KeyTreeModel", "KeyRole",
           "OriginRole", "IsDirRole", "SortRole", "NameRole", "LOADING_TEXT"]

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


class KeyTreeModel(TreeLoadingMixin, TreeUpdatesMixin, TreeFilterMixin, TreeWindowMixin,
                   QAbstractItemModel):
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
        self._jobs: dict[str, Worker] = {}
        self._sort_jobs: dict[str, Worker] = {}
        self._refresh_again: set[str] = set()
        # key -> whether its folder was listed again after the key was not found
        self._reveals: dict[str, bool] = {}
        self._pending_refresh: set[str] = set()
        self._sort_column = NAME
        self._descending = False
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
        for worker in [*self._jobs.values(), *self._sort_jobs.values()]:
            worker.quit()
        if self._filter_job is not None:
            self._filter_job.quit()
            self._filter_job = None
        self._jobs.clear()
        self._sort_jobs.clear()
        self._refresh_again.clear()
        self._pending_refresh.clear()
        self._reveals.clear()
        self._refresh_timer.stop()
        self._status_pending.clear()
        self._update_heartbeat()

    def is_loading(self) -> bool:
        """Whether any listing is running."""
        return bool(self._jobs)

    def is_busy(self) -> bool:
        """Whether any listing, sort or filter is running."""
        return bool(self._jobs or self._sort_jobs or self._filter_job is not None)

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
