"""MainWindow: the merged key tree, metadata and preview panels, actions and transfers."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QThreadPool, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import APP_NAME
from ..config import Workspace, config_dir, recent_workspaces, remember_recent
from ..stores.errors import StoreError
from .actions import KeyActions, MountFacts
from .commands import KeyCommands, confirm
from .dialogs.about import show_about
from .dialogs.workspace import WorkspaceDialog
from .dnd.drag import DragOut
from .dnd.drop import DropImporter
from .panels.metadata import MetadataPanel
from .panels.preview import PreviewPanel
from .panels.search import SearchPanel
from .transfers.bar import TransferStatusBar
from .transfers.panel import TransferPanel
from .transfers.queue import TransferJob, TransferQueue
from .tree.model import KeyTreeModel
from .tree.nodes import KeyNode
from .tree.view import KeyTreeView
from .workers import active_workers, run_in_thread

log = logging.getLogger(__name__)

#: How long closing the window waits for running store calls (milliseconds).
CLOSE_WAIT_MS = 2000
MIN_POOL_THREADS = 8
FILTER_DELAY_MS = 150


class MainWindow(QMainWindow):
    """The storegui window for one workspace at a time.

    Parameters
    ----------
    workspace : Workspace
        Opened at once; :meth:`open_workspace` replaces it later.
    store : MountedStore, optional
        The store to show for ``workspace``, if already built (by default
        ``workspace.open()`` builds it).
    """

    def __init__(self, workspace: Workspace, parent: QWidget | None = None, *,
                 store: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.resize(1100, 700)
        pool = QThreadPool.globalInstance()
        # Store calls wait on I/O, not the CPU; a hung store must not starve the rest.
        pool.setMaxThreadCount(max(pool.maxThreadCount(), MIN_POOL_THREADS))
        self.workspace: Workspace | None = None
        self.store: Any = None
        self.facts: MountFacts | None = None
        self._closing = False
        self._shown_key: str | None = None
        self._shown_store: Any = None

        self.model = KeyTreeModel(parent=self)
        self.tree = KeyTreeView(self)
        self.tree.setModel(self.model)
        self.metadata_panel = MetadataPanel(self)
        self.preview_panel = PreviewPanel(self)
        self.transfers = TransferQueue(self)
        self.transfer_panel = TransferPanel(self.transfers, self)
        self.transfer_status = TransferStatusBar(self.transfers, self)
        self.search_panel = SearchPanel(self)
        self.actions = KeyActions(self)
        self.drag_out = DragOut(lambda: self.store, self._known_facts, self.transfers,
                                self.selected_nodes, self)
        self.drop_importer = DropImporter(lambda: self.store, self._known_facts, self.model,
                                          self.transfers, self.drag_out, self)
        self.commands = KeyCommands(lambda: self.store, self.actions, self.model,
                                    self.transfers, self.drop_importer, self)
        self.tree.drop_handler = self.drop_importer
        self.tree.drag_handler = self.drag_out
        self.filter_box = QLineEdit(self)
        self.filter_box.setObjectName("filterBox")
        self.filter_box.setPlaceholderText("Filter loaded keys (wildcards: * ?)")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.setToolTip("Filter the loaded keys by name (wildcards: * ?). To search "
                                   "the whole store, or by metadata, use Search Store "
                                   "(Ctrl+Shift+F)")

        self._build_layout()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self.open_workspace(workspace, store)

    # ------------------------------------------------------------------ building

    def _build_layout(self) -> None:
        self.right_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.right_splitter.setObjectName("detailsSplitter")
        self.right_splitter.addWidget(self.metadata_panel)
        self.right_splitter.addWidget(self.preview_panel)
        self.right_splitter.setSizes([430, 250])
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        left = QWidget(self)
        search_row = QHBoxLayout()
        search_row.setContentsMargins(0, 0, 0, 0)
        search_row.addWidget(self.filter_box, 1)
        search_button = QToolButton(left)
        search_button.setDefaultAction(self.actions.search)
        search_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        search_row.addWidget(search_button)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(4)
        left_layout.addLayout(search_row)
        left_layout.addWidget(self.tree)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right_splitter)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([640, 460])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        a = self.actions
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolBar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        for item in (a.open_workspace, None, a.new_key, a.export, None, a.push, a.pull,
                     a.revert, a.delete, None, a.refresh):
            toolbar.addAction(item) if item is not None else toolbar.addSeparator()
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        self.search_dock = QDockWidget("Search Store", self)
        self.search_dock.setObjectName("searchDock")
        self.search_dock.setWidget(self.search_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.search_dock)
        self.search_dock.hide()

        self.transfer_dock = QDockWidget("Transfers", self)
        self.transfer_dock.setObjectName("transferDock")
        self.transfer_dock.setWidget(self.transfer_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.transfer_dock)
        self.transfer_dock.hide()
        self.transfer_dock.visibilityChanged.connect(self._fit_transfer_dock)

        self.statusBar().addPermanentWidget(self.transfer_status)

    def _build_menus(self) -> None:
        a = self.actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(a.open_workspace)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.setObjectName("recentMenu")
        file_menu.addSeparator()
        file_menu.addAction(a.new_key)
        file_menu.addAction(a.export)
        file_menu.addSeparator()
        file_menu.addAction(a.quit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(a.copy)
        edit_menu.addAction(a.delete)
        edit_menu.addSeparator()
        edit_menu.addAction(a.find)
        edit_menu.addAction(a.search)
        key_menu = bar.addMenu("&Key")
        for action in (a.push, a.pull, a.revert):
            key_menu.addAction(action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(a.refresh)
        view_menu.addAction(self.search_dock.toggleViewAction())
        view_menu.addAction(self.transfer_dock.toggleViewAction())
        bar.addMenu("&Help").addAction(a.about)
        # Shortcuts of menu actions work anywhere in the window; find has no button.
        self.addAction(a.find)
        # Copy copies key names only from the tree: text fields keep their own Copy.
        a.copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.tree.addAction(a.copy)

    def _connect(self) -> None:
        a, commands = self.actions, self.commands
        a.push.triggered.connect(commands.push_selected)
        a.pull.triggered.connect(commands.pull_selected)
        a.revert.triggered.connect(commands.revert_selected)
        a.delete.triggered.connect(commands.delete_selected)
        a.export.triggered.connect(commands.export_selected)
        a.new_key.triggered.connect(commands.new_key_from_file)
        a.refresh.triggered.connect(self.refresh)
        a.open_workspace.triggered.connect(self.choose_workspace)
        a.search.triggered.connect(self.show_search)
        a.find.triggered.connect(self._focus_filter)
        a.quit.triggered.connect(self.close)
        a.copy.triggered.connect(self.copy_selected_keys)
        a.about.triggered.connect(lambda: show_about(self))
        self.filter_box.textChanged.connect(self._on_filter_changed)
        self.tree.selectionModel().selectionChanged.connect(self._schedule_selection_update)
        self.tree.customContextMenuRequested.connect(self._show_context_menu)
        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(0)
        self._selection_timer.timeout.connect(self._on_selection_changed)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.model.dataChanged.connect(self._schedule_selection_update)
        self.model.rowsRemoved.connect(self._schedule_selection_update)
        self.model.statusMessage.connect(self.show_status)
        self.model.revealed.connect(self._on_revealed)
        self.model.folderLoaded.connect(self._on_folder_loaded)
        self.metadata_panel.statusMessage.connect(self.show_status)
        self.metadata_panel.metadataApplied.connect(lambda key: self.model.refresh_keys([key]))
        self.preview_panel.statusMessage.connect(self.show_status)
        self.transfers.statusMessage.connect(self.show_status)
        self._transfers_dismissed = False
        self.transfer_panel.wantsAttention.connect(self.show_transfers)
        self.transfers.jobAdded.connect(self._on_transfer_queued)
        self.transfer_dock.visibilityChanged.connect(self._on_transfer_dock_visibility)
        self.transfers.idle.connect(lambda: setattr(self, "_transfers_dismissed", False))
        self.transfer_status.showRequested.connect(self.show_transfers)
        self.search_panel.statusMessage.connect(self.show_status)
        self.search_panel.searchFailed.connect(self.show_status)
        self.search_panel.keyChosen.connect(self.reveal_key)
        commands.statusMessage.connect(self.show_status)
        commands.errorRaised.connect(self.show_error)
        commands.keysChanged.connect(self.refresh_shown_key)
        commands.keyCreated.connect(self.reveal_key)
        self.drop_importer.statusMessage.connect(self.show_status)
        self.drop_importer.errorRaised.connect(self.show_error)
        self.drop_importer.keyCreated.connect(self.reveal_key)
        self.drag_out.statusMessage.connect(self.show_status)

    # ------------------------------------------------------------------ workspace

    def open_workspace(self, workspace: Workspace, store: Any = None) -> bool:
        """Show ``workspace`` in this window (the current store is let go); False on error.

        ``store`` is the workspace's MountedStore if the caller built it already.
        Unapplied metadata edits are asked about first: on Apply the workspace
        opens once they are written (this returns False meanwhile).
        """
        settled = self.metadata_panel.settle_unapplied_changes(
            f"opening the workspace {workspace.name}")
        if settled == "applying":
            self._after_metadata_applied(lambda: self.open_workspace(workspace, store))
        if settled in ("applying", "cancelled"):
            return False
        try:
            if store is None:
                store = workspace.open()
        except StoreError as exc:
            self.show_error(f"Cannot open workspace {workspace.name}", exc)
            return False
        self._release_store()
        self.workspace, self.store, self.facts = workspace, store, None
        self.tree.empty_text = empty_tree_text(workspace)
        self.model.set_store(store)
        self._reset_filter()
        self.metadata_panel.set_store(store)
        self.preview_panel.set_store(store)
        self.search_panel.set_store(store)
        self.setWindowTitle(f"{workspace.name} — {APP_NAME}")
        self.show_status(f"Opened {workspace.title}")
        run_in_thread(MountFacts.probe, store, context=store,
                      on_result=lambda facts: self._on_facts(store, facts),
                      on_error=lambda exc: self._on_facts_failed(store, exc))
        try:
            remember_recent(workspace)
        except (StoreError, OSError) as exc:
            self.show_status(f"Could not remember the workspace: {exc}")
        self._fill_recent_menu()
        self._on_selection_changed()
        return True

    def _release_store(self, *, closing: bool = False) -> None:
        """Stop work on the current store and disconnect it on a worker, never blocking.

        Its running transfers are cancelled: they stop at their next chunk and
        roll back, in the background; the store is disconnected once they all
        ended (their results are dropped: they belong to a store no longer
        shown). Only when the window closes (``closing``) does this wait for
        them, a little, as the event loop may not run again.
        """
        running = self.transfers.running_jobs()
        self.transfers.cancel_all()
        self.search_panel.stop()
        self.model.shutdown()
        store, self.store = self.store, None
        if store is None:
            return
        if closing:
            self.transfers.wait_for_running(CLOSE_WAIT_MS / 1000)
            disconnect_in_background(store)
        else:
            disconnect_when_ended(self.transfers, running, store)

    def _known_facts(self) -> MountFacts | None:
        """The facts about the store shown, if known (None while there is no store)."""
        return self.facts if self.store is not None else None

    def _on_facts(self, store: Any, facts: MountFacts) -> None:
        if store is self.store:  # not a probe of a store let go since
            self.facts = facts
            self._on_selection_changed()

    def _on_facts_failed(self, store: Any, exc: BaseException) -> None:
        if store is self.store:
            reason = f"cannot tell whether the stores can be written ({exc})"
            self.facts = MountFacts(store.mount_point, reason, reason)
            self.show_status(reason)
            self._on_selection_changed()

    def choose_workspace(self) -> None:
        """File > Open Workspace…"""
        dialog = WorkspaceDialog(self, self.workspace)
        if dialog.exec() and dialog.workspace() is not None:
            self.open_workspace(dialog.workspace())

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        try:
            recent = recent_workspaces()
        except StoreError as exc:
            self.recent_menu.addAction(f"(cannot read: {exc})").setEnabled(False)
            return
        for ws in recent:
            action = self.recent_menu.addAction(ws.title)
            action.triggered.connect(lambda _checked=False, w=ws: self.open_workspace(w))
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ selection

    def selected_nodes(self) -> list[KeyNode]:
        """The selected keys and folders."""
        rows = self.tree.selectionModel().selectedRows(0)
        nodes = (self.model.node(i) for i in rows)
        return [n for n in nodes if isinstance(n, KeyNode)]

    def _schedule_selection_update(self, *args: Any) -> None:
        self._selection_timer.start()

    def _target_folder(self, nodes: list[KeyNode]) -> str:
        current = self.model.node(self.tree.currentIndex())
        node = current if isinstance(current, KeyNode) else (nodes[0] if nodes else None)
        if node is None:
            return ""
        if node.is_dir:
            return node.key
        return node.parent.key if node.parent is not None else ""

    def _on_selection_changed(self) -> None:
        nodes = self.selected_nodes()
        self.actions.update(nodes, self._target_folder(nodes), self.facts)
        keys = [n.key for n in nodes if not n.is_dir]
        shown = keys[0] if len(nodes) == 1 and len(keys) == 1 else None
        if shown != self._shown_key or self._shown_store is not self.store:
            if (self._shown_store is self.store and self._shown_key is not None
                    and self.metadata_panel.settle_unapplied_changes(
                        "showing another key") == "cancelled"):
                self._on_revealed(self._shown_key)  # the selection goes back to the edited key
                return
            self._shown_key, self._shown_store = shown, self.store
            self.metadata_panel.show_key(shown)
            self.preview_panel.show_key(shown)

    def _after_metadata_applied(self, then: Any) -> None:
        """Call ``then()`` once the metadata panel's apply succeeded (not if it failed)."""
        def finished(_key: str, ok: bool) -> None:
            self.metadata_panel.applyFinished.disconnect(finished)
            if ok:
                then()
        self.metadata_panel.applyFinished.connect(finished)

    def refresh_shown_key(self, changed: list[str]) -> None:
        """Read the key shown in the panels again if ``changed`` (keys or folders) covers it."""
        key = self._shown_key
        if key is not None and any(key == t or (t.endswith("/") and key.startswith(t))
                                   for t in changed):
            self.metadata_panel.reload()
            self.preview_panel.reload()

    def _show_context_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for action in self.actions.key_actions():
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.actions.new_key)
        menu.addAction(self.actions.refresh)
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ filter, search, reveal

    def _focus_filter(self) -> None:
        self.filter_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_box.selectAll()

    def _reset_filter(self) -> None:
        """Show every row: a filter typed for one workspace would hide the next one's keys."""
        self._filter_timer.stop()
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        self.filter_box.blockSignals(False)
        self.model.set_name_filter("")

    def _on_filter_changed(self, _text: str) -> None:
        # Filtering a folder of 100,000 rows takes a moment: wait for a pause in typing.
        self._filter_timer.start()

    def _apply_filter(self) -> None:
        text = self.filter_box.text()
        if text.strip() == self.model.name_filter:
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.model.set_name_filter(text)
            if text.strip():
                self.tree.expand_loaded()
        finally:
            QApplication.restoreOverrideCursor()

    def _on_folder_loaded(self, _prefix: str) -> None:
        if self.model.name_filter:
            self.tree.expand_loaded()

    def show_search(self) -> None:
        """Edit > Search Store: show the search panel, the cursor in its field."""
        self.search_dock.show()
        self.search_dock.raise_()
        self.search_panel.focus_search_box()

    def search_store(self, text: str) -> None:
        """Search the whole store for ``text`` (a glob, or name=value terms).

        The results are listed in the search panel; the tree and its filter stay as they are.
        """
        self.show_search()
        if not text.strip():
            self.show_status("Type a key pattern (e.g. *.csv) or a query (e.g. kind=image) "
                             "in the search field, then press Enter")
            return
        self.search_panel.search(text)

    def reveal_key(self, key: str) -> None:
        """Load the folders down to ``key`` and select it in the tree."""
        if self.model.name_filter or self.filter_box.text():
            self.filter_box.clear()
            self._apply_filter()
        self.model.reveal(key)

    def _on_revealed(self, key: str) -> None:
        index = self.model.index_for_key(key)
        if not index.isValid():
            return
        parent = index.parent()
        while parent.isValid():
            self.tree.expand(parent)
            parent = parent.parent()
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                 | QItemSelectionModel.SelectionFlag.Rows)
        self.tree.selectionModel().setCurrentIndex(index, flags)
        self.tree.scrollTo(index)

    # ------------------------------------------------------------------ actions

    def refresh(self) -> None:
        """List every loaded folder again."""
        self.model.refresh()
        self.show_status("Refreshing…")

    def copy_selected_keys(self) -> None:
        """Put the selected keys' names (folders end in '/') on the clipboard, one a line."""
        keys = [n.key for n in self.selected_nodes()]
        if keys:
            QApplication.clipboard().setText("\n".join(keys))
            self.show_status(f"Copied {len(keys)} key name(s)")

    def show_transfers(self) -> None:
        """Show the transfer panel."""
        self.transfer_dock.show()
        self.transfer_dock.raise_()

    def _on_transfer_queued(self, _job: TransferJob) -> None:
        # Closed while transfers run, the panel stays closed for them (the status
        # bar shows their progress) until the queue is idle; a failure opens it.
        if not self._transfers_dismissed:
            self.show_transfers()

    def _fit_transfer_dock(self, visible: bool) -> None:
        # Opened, the Transfers dock takes at most a quarter of the window, so the
        # metadata table and the tree keep their rows (a smaller height set by hand stays).
        if visible:
            QTimer.singleShot(0, self, lambda: self.resizeDocks(
                [self.transfer_dock],
                [min(self.transfer_dock.height(), max(self.height() // 4, 150))],
                Qt.Orientation.Vertical))

    def _on_transfer_dock_visibility(self, visible: bool) -> None:
        if not visible and self.transfers.is_busy() and not self._closing \
                and not self.isMinimized():
            self._transfers_dismissed = True

    # ------------------------------------------------------------------ messages

    def show_status(self, message: str) -> None:
        """Show ``message`` in the status bar for a while."""
        self.statusBar().showMessage(message, 15000)

    def show_error(self, title: str, exc: BaseException | str) -> None:
        """Tell the user about an error: status bar and a dialog."""
        text = str(exc) or type(exc).__name__
        self.show_status(f"{title}: {text}")
        if not self._closing:
            QMessageBox.warning(self, title, text)

    # ------------------------------------------------------------------ settings and closing

    def _settings(self) -> QSettings:
        # An explicit file in the platformdirs config dir (which tests redirect),
        # rather than QSettings' own path logic, which caches its location.
        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_settings(self) -> None:
        s = self._settings()
        for key, restore in (("geometry", self.restoreGeometry),
                             ("windowState", self.restoreState),
                             ("mainSplitter", self.splitter.restoreState),
                             ("detailsSplitter", self.right_splitter.restoreState),
                             ("treeHeader", self.tree.header().restoreState)):
            value = s.value(key)
            if value is not None:
                restore(value)
        header = self.tree.header()
        self.tree.sortByColumn(header.sortIndicatorSection(), header.sortIndicatorOrder())
        concurrency = s.value("transferConcurrency")
        if concurrency is not None:
            self.transfer_panel.concurrency.setValue(int(concurrency))

    def save_settings(self) -> None:
        """Remember geometry, splitter sizes and the tree's columns."""
        s = self._settings()
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        s.setValue("mainSplitter", self.splitter.saveState())
        s.setValue("detailsSplitter", self.right_splitter.saveState())
        s.setValue("treeHeader", self.tree.header().saveState())
        s.setValue("transferConcurrency", self.transfers.concurrency)
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self._closing:
            settled = self.metadata_panel.settle_unapplied_changes("closing")
            if settled == "applying":
                self._after_metadata_applied(self.close)
            if settled in ("applying", "cancelled"):
                event.ignore()
                return
        if self.transfers.is_busy() and not confirm(
                self, "Transfers running",
                f"{describe_busy(self.transfers)} Cancel and close? A cancelled transfer keeps "
                "nothing partial: its keys or files stay as they were before it."):
            event.ignore()
            return
        self._closing = True
        self.drop_importer.shutdown()
        self.save_settings()
        self._release_store(closing=True)
        self.drag_out.shutdown()
        for worker in active_workers():
            worker.quit()
        # A store call stuck in a dead backing store cannot be interrupted; wait a
        # little for the rest, never forever.
        QThreadPool.globalInstance().waitForDone(CLOSE_WAIT_MS)
        super().closeEvent(event)


def empty_tree_text(workspace: Workspace) -> str:
    """What the tree says while the workspace has no keys: its two stores, and to drop files."""
    where = f"under {workspace.mount_point}" if workspace.mount_point else "at the top level"
    return ("No keys yet.\n\n"
            f"Backing store: {workspace.backing_url}\n"
            "the large store, usually shared; finished keys are pushed to it.\n\n"
            f"Mount store: {workspace.mount_url}\n"
            f"your writable store, shown {where}; new keys and edits go here.\n\n"
            "Drop files here to store them as keys (or use File > New Key from File).")


def disconnect_in_background(store: Any) -> None:
    """Disconnect ``store`` on a worker (a dead backing store may take long to answer)."""
    run_in_thread(store.disconnect, on_error=lambda exc: log.warning(
        "disconnecting %r failed: %s", store, exc))


def disconnect_when_ended(queue: TransferQueue, jobs: list[TransferJob], store: Any) -> None:
    """Disconnect ``store`` once each of ``jobs`` (cancelled, still running) has ended.

    The GUI thread does not wait: the queue's ``jobChanged`` tells when the
    last of them ended, and only then is the store disconnected, on a worker.
    """
    pending = [job for job in jobs if not job.state.finished]
    if not pending:
        disconnect_in_background(store)
        return

    def changed(_job: TransferJob) -> None:
        if all(job.state.finished for job in pending):
            queue.jobChanged.disconnect(changed)
            disconnect_in_background(store)

    queue.jobChanged.connect(changed)


def describe_busy(queue: TransferQueue) -> str:
    """``"Push 'a' is still running."`` or ``"2 transfer(s) are running, 3 queued."``."""
    running, queued = queue.running_jobs(), queue.queued_jobs()
    if len(running) == 1 and not queued:
        return f"{running[0].title} is still running."
    waiting = f", {len(queued)} queued" if queued else ""
    return f"{len(running)} transfer(s) are running{waiting}."
