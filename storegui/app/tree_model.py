"""KeyTreeModel: the merged key space of a MountedStore as a lazily loaded tree.

Folders load on demand (``canFetchMore``/``fetchMore``): one ``list_dir`` of
that folder runs on a worker and its entries arrive in batches, inserted with
``beginInsertRows``/``endInsertRows`` (never a model reset). A refresh lists
a loaded folder again and applies the difference (rows removed, inserted,
updated), so expanded folders and the selection survive it. The model itself
keeps children in display order (folders first, then by the sort column):
sorting a 100,000-row folder in a proxy would call Python for every
comparison, so the filter proxy forwards ``sort`` here instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from ..stores import events as ev
from . import icons
from .formatting import (
    FOLDER_ORIGIN_TIPS,
    KEY_ORIGIN_TIPS,
    ORIGIN_LABELS,
    format_size,
    format_time,
)
from .tree_loading import LOADING_TEXT, TreeLoadingMixin
from .tree_nodes import (
    FAILED,
    LOADED,
    LOADING,
    UNLOADED,
    KeyNode,
    StatusRow,
    sort_key_function,
)
from .tree_updates import HEADERS, MODIFIED, NAME, ORIGIN, SIZE, TreeUpdatesMixin
from .workers import Worker

__all__ = ["HEADERS", "MODIFIED", "NAME", "ORIGIN", "SIZE", "KeyTreeModel", "KeyRole",
           "OriginRole", "IsDirRole", "SortRole", "NameRole", "LOADING_TEXT"]

KeyRole = Qt.ItemDataRole.UserRole + 1
OriginRole = Qt.ItemDataRole.UserRole + 2
IsDirRole = Qt.ItemDataRole.UserRole + 3
SortRole = Qt.ItemDataRole.UserRole + 4
NameRole = Qt.ItemDataRole.UserRole + 5  # the name alone (None for status rows): filtering

ERROR_COLOR = QColor("#e53935")
_COLUMNS = len(HEADERS)
# Flag combinations built once: or-ing enums in Python costs more than the rest of flags().
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_DIR_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_KEY_FLAGS = _DIR_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_STATUS_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
# SortRole: what each column sorts by (name, origin rank, bytes, epoch seconds).
_COLUMN_SORT_KEYS = [sort_key_function(column, False) for column in range(len(HEADERS))]


class KeyTreeModel(TreeLoadingMixin, TreeUpdatesMixin, QAbstractItemModel):
    """A tree of folders and keys over a MountedStore, loaded lazily off the GUI thread.

    Signals
    -------
    statusMessage(str)
        A message for the status bar (e.g. a failed listing).
    folderLoaded(str)
        The listing of a folder (its prefix; "" for the top) was applied.
    revealed(str)
        A key asked for with :meth:`reveal` is now in the tree.
    """

    statusMessage = Signal(str)
    folderLoaded = Signal(str)
    revealed = Signal(str)
    _storeChanged = Signal(object)

    def __init__(self, store: Any = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._store: Any = None
        self._root = KeyNode("", True)
        self._jobs: dict[str, Worker] = {}
        self._refresh_again: set[str] = set()
        # key -> whether its folder was listed again after the key was not found
        self._reveals: dict[str, bool] = {}
        self._pending_refresh: set[str] = set()
        self._sort_column = NAME
        self._descending = False
        self._keyfn = sort_key_function(NAME, False)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_pending)
        self._storeChanged.connect(self.refresh_keys)
        self._status_pending: list[KeyNode] = []
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.setInterval(0)
        self._status_timer.timeout.connect(self._show_pending_status)
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
        self._root = KeyNode("", True)
        self.endResetModel()
        if store is not None:
            store.event_dispatcher.connect(self._on_store_event, ev.StoreKeyEvent)
            self._start_load(self._root)

    def shutdown(self) -> None:
        """Stop listening to the store and ask every running listing to stop."""
        if self._store is not None:
            self._store.event_dispatcher.disconnect(self._on_store_event)
        for worker in self._jobs.values():
            worker.quit()
        self._jobs.clear()
        self._refresh_again.clear()
        self._pending_refresh.clear()
        self._reveals.clear()
        self._refresh_timer.stop()
        self._status_pending.clear()

    def is_loading(self) -> bool:
        """Whether any listing is running."""
        return bool(self._jobs)

    def _on_store_event(self, event: ev.StoreEvent) -> None:
        # Runs on whatever thread wrote to the store; the signal hops to the GUI thread.
        if isinstance(event, ev.StoreSetEvent | ev.StoreUpdateEvent | ev.StoreDeleteEvent):
            self._storeChanged.emit([event.key])

    # ------------------------------------------------------------------ nodes and indexes

    def node(self, index: QModelIndex) -> KeyNode | StatusRow | None:
        """The node behind ``index`` (None for the invisible root)."""
        if not index.isValid():
            return None
        return index.internalPointer()

    def _dir_node(self, index: QModelIndex) -> KeyNode | None:
        if not index.isValid():
            return self._root
        node = index.internalPointer()
        return node if isinstance(node, KeyNode) and node.is_dir else None

    def index_of(self, node: KeyNode | StatusRow, column: int = 0) -> QModelIndex:
        """The index of ``node`` (invalid for the root)."""
        if node is self._root or node is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    def index_for_key(self, key: str) -> QModelIndex:
        """The index of a loaded key or folder prefix; invalid if it is not loaded."""
        node = self._find_loaded(key)
        return self.index_of(node) if node is not None else QModelIndex()

    def _find_loaded(self, key: str) -> KeyNode | None:
        node = self._root
        for prefix in _path_prefixes(key):
            if node.state not in (LOADED, LOADING, FAILED):
                return None
            node = node.child_by_key(prefix)
            if node is None:
                return None
        return node

    # ------------------------------------------------------------------ Qt model interface

    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:
        # The checks of hasIndex(), without its extra rowCount() round trip:
        # views and proxies call this once per row.
        if row < 0 or not 0 <= column < _COLUMNS or parent.column() > 0:
            return QModelIndex()
        node = self._dir_node(parent)
        if node is None:
            return QModelIndex()
        children = node.children
        if row < len(children):
            return self.createIndex(row, column, children[row])
        if row == len(children) and node.status is not None:
            return self.createIndex(row, column, node.status)
        return QModelIndex()

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        up = index.internalPointer().parent
        if up is None or up is self._root:
            return QModelIndex()
        return self.createIndex(up.row, 0, up)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        if parent.column() > 0:
            return 0
        node = self._dir_node(parent)
        return node.row_count() if node is not None else 0

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return len(HEADERS)

    def hasChildren(self, parent: QModelIndex = QModelIndex()) -> bool:
        if parent.column() > 0:
            return False
        node = self._dir_node(parent)
        if node is None:
            return False
        return node.state in (UNLOADED, LOADING) or node.row_count() > 0

    def canFetchMore(self, parent: QModelIndex) -> bool:
        node = self._dir_node(parent)
        return node is not None and node.state == UNLOADED and self._store is not None

    def fetchMore(self, parent: QModelIndex) -> None:
        node = self._dir_node(parent)
        if node is not None and node.state == UNLOADED:
            self._start_load(node)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        node = index.internalPointer()
        if isinstance(node, StatusRow):
            return _STATUS_FLAGS
        return _DIR_FLAGS if node.is_dir else _KEY_FLAGS

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section == SIZE:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node = index.internalPointer()
        column = index.column()
        if isinstance(node, StatusRow):
            return self._status_data(node, column, role)
        if role == NameRole:  # first: the filter asks for it once per row
            return node.name
        if role == Qt.ItemDataRole.DisplayRole:
            if column == NAME:
                return node.name
            if column == ORIGIN:
                return ORIGIN_LABELS.get(node.origin, "")
            if column == SIZE:
                return "" if node.is_dir else format_size(node.size)
            if column == MODIFIED:
                return format_time(node.modified)
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            if column == NAME:
                if node.is_dir:
                    return icons.icon("folder-local" if node.has_local else "folder")
                return icons.icon("key")
            if column == ORIGIN and node.origin in ORIGIN_LABELS:
                return icons.icon(f"origin-{node.origin}")
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == ORIGIN:
                tips = FOLDER_ORIGIN_TIPS if node.is_dir else KEY_ORIGIN_TIPS
                return tips.get(node.origin)
            return node.key
        if role == Qt.ItemDataRole.TextAlignmentRole and column == SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return status.text
        if role == Qt.ItemDataRole.DecorationRole:
            return icons.icon("error" if status.failed else "loading")
        if role == Qt.ItemDataRole.ForegroundRole and status.failed:
            return ERROR_COLOR
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setItalic(True)
            return font
        return None

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
            for prefix in _path_prefixes(key):
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
        for folder in folders.values():
            if folder.state in (LOADED, FAILED) and self._attached(folder):
                self._refresh_folder(folder)

    def reveal(self, key: str) -> None:
        """Load the folders down to ``key`` as needed, then emit ``revealed(key)``."""
        self._reveals.setdefault(key, False)
        self._continue_reveals()

    def _continue_reveals(self) -> None:
        waiting: dict[str, bool] = {}
        for key, relisted in self._reveals.items():
            node = self._root
            for prefix in _path_prefixes(key):
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
                self.revealed.emit(key)
        self._reveals = waiting


def _path_prefixes(key: str) -> list[str]:
    """The folder prefixes leading to ``key``, then ``key`` itself.

    ``"a/b/c"`` -> ``["a/", "a/b/", "a/b/c"]``; ``"a/b/"`` -> ``["a/", "a/b/"]``.
    """
    out = []
    start = 0
    while True:
        i = key.find("/", start)
        if i < 0 or i == len(key) - 1:
            break
        out.append(key[:i + 1])
        start = i + 1
    if key:
        out.append(key)
    return out
