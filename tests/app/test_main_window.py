"""The main window on real stores: browse, act on keys, search, stay responsive, remember."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QTreeView,
    QWidget,
)
from sample_stores import MOUNT_POINT, TOP, WORK, GatedMemoryStore, fill
from store_helpers import FullDisk, GatedBacking

from storegui.app import MainWindow, run, workspace_from_args
from storegui.app.dialogs.workspace import WorkspaceDialog
from storegui.app.panels.metadata_table import VALUE
from storegui.app.tree.model import LOADING_TEXT, KeyRole, OriginRole
from storegui.app.tree.nodes import LOADED
from storegui.config import Workspace, data_dir, recent_workspaces
from storegui.stores import MemoryStore, MountedStore, StoreError, open_store

# ---------------------------------------------------------------------- helpers


def index_of_key(window: MainWindow, key: str) -> QModelIndex:
    return window.model.index_for_key(key)


def shown(window: MainWindow, key: str = "") -> dict[str, str]:
    """{key: origin} of the rows the view shows under ``key`` (a loaded folder or "")."""
    parent = index_of_key(window, key) if key else QModelIndex()
    out = {}
    for row in range(window.model.rowCount(parent)):
        index = window.model.index(row, 0, parent)
        if index.data(KeyRole) is not None:
            out[index.data(KeyRole)] = index.data(OriginRole)
    return out


def origin(window: MainWindow, key: str) -> str | None:
    return window.model.index_for_key(key).data(OriginRole)


def open_folder(qtbot, window: MainWindow, key: str) -> None:
    """Expand ``key`` in the view, as a user clicking its arrow, and wait for its rows."""
    window.tree.expand(index_of_key(window, key))
    qtbot.waitUntil(lambda: window.model.node(window.model.index_for_key(key)).state == LOADED)


def select(qtbot, window: MainWindow, *keys: str) -> None:
    """Select ``keys`` (loaded rows) in the tree, as with Ctrl+click."""
    selection = window.tree.selectionModel()
    selection.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for key in keys:
        index = index_of_key(window, key)
        assert index.isValid(), key
        selection.setCurrentIndex(index, flags)
    qtbot.waitUntil(lambda: sorted(n.key for n in window.selected_nodes()) == sorted(keys))
    qtbot.waitUntil(lambda: not window._selection_timer.isActive())


def action(window: MainWindow, name: str) -> QAction:
    found = window.findChild(QAction, f"{name}Action")
    assert found is not None, name
    return found


def sample_workspace_store(backing) -> MountedStore:
    mount = MemoryStore()
    fill(backing, mount)
    return MountedStore(MOUNT_POINT, mount, backing)


# ---------------------------------------------------------------------- browsing


def test_the_window_has_its_named_parts(window):
    assert isinstance(window.findChild(QTreeView, "keyTree"), QTreeView)
    for name in ("metadataPanel", "previewPanel", "transferPanel"):
        assert isinstance(window.findChild(QWidget, name), QWidget), name
    for name in ("push", "pull", "revert", "delete", "refresh", "newKey", "export",
                 "openWorkspace", "search"):
        assert action(window, name).icon().isNull() is False, name
    box = window.findChild(QLineEdit, "filterBox")
    assert box.placeholderText() == "Filter loaded keys (wildcards: * ?)"
    assert window.windowTitle().startswith("test")
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Edit", "&Key", "&View", "&Help"]


def test_the_tree_shows_the_merged_keys_and_loads_folders_when_expanded(qtbot, window,
                                                                         qtmodeltester):
    assert shown(window) == TOP
    assert window.model.node(window.model.index_for_key("archive/")).state != LOADED
    open_folder(qtbot, window, "work/")
    assert shown(window, "work/") == WORK
    assert window.model.node(window.model.index_for_key("archive/")).state != LOADED
    qtmodeltester.check(window.model)


def test_selecting_a_key_fills_the_metadata_panel_and_the_preview(qtbot, window):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/shadow.txt")
    assert window.metadata_panel.key() == "work/shadow.txt"
    assert window.preview_panel.key() == "work/shadow.txt"
    text = window.preview_panel.findChild(QWidget, "previewText")
    qtbot.waitUntil(lambda: "local version" in text.toPlainText())
    qtbot.waitUntil(lambda: not window.metadata_panel.is_loading())
    select(qtbot, window, "work/")
    assert window.metadata_panel.key() is None


def test_applying_metadata_to_a_remote_key_makes_it_shadowing_in_the_tree(qtbot, window):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/remote.txt")
    panel = window.metadata_panel
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0 and not panel.is_loading())
    row = [name for name, _type, _text in panel.model.rows()].index("kind")
    panel.model.setData(panel.model.index(row, VALUE), "edited")
    with qtbot.waitSignal(panel.metadataApplied):
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: origin(window, "work/remote.txt") == "shadowing")
    assert window.store.get_metadata("work/remote.txt")["kind"] == "edited"
    # the actions follow the new origin on their next update (a zero-delay timer)
    qtbot.waitUntil(lambda: action(window, "revert").isEnabled())


# ---------------------------------------------------------------------- actions


def test_push_pull_and_revert_change_origins_in_the_tree(qtbot, window, workspace, dialogs):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    assert action(window, "push").isEnabled()
    action(window, "push").trigger()
    qtbot.waitUntil(lambda: origin(window, "work/local.txt") == "remote")
    backing = open_store(workspace.backing_url)
    assert backing.to_bytes("work/local.txt") == b"only here\n"
    backing.disconnect()

    select(qtbot, window, "work/remote.txt")
    action(window, "pull").trigger()
    qtbot.waitUntil(lambda: origin(window, "work/remote.txt") == "shadowing")

    select(qtbot, window, "work/shadow.txt")
    action(window, "revert").trigger()
    qtbot.waitUntil(lambda: origin(window, "work/shadow.txt") == "remote")
    assert "Discard the local changes" in dialogs.texts("question")[0]
    assert window.store.to_bytes("work/shadow.txt") == b"backing version\n"

    select(qtbot, window, "work/new/")  # a whole folder
    action(window, "push").trigger()
    qtbot.waitUntil(lambda: origin(window, "work/new/") == "remote")
    assert dialogs.texts("warning") == []


def test_a_read_only_backing_store_disables_push_with_the_reason(qtbot, make_window,
                                                                 workspace):
    backing = MemoryStore()
    store = sample_workspace_store(backing)
    backing.readonly = True
    window = make_window(workspace, store)
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    push = action(window, "push")
    assert not push.isEnabled()
    assert "is read-only; nothing can be pushed to it" in push.toolTip()
    assert push.statusTip() == push.toolTip()
    assert action(window, "delete").isEnabled()  # the mount store is still writable


def test_delete_asks_first_and_removes_only_mount_copies(qtbot, window, dialogs):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt", "work/shadow.txt")
    dialogs.answer = dialogs.answer.Cancel
    action(window, "delete").trigger()
    assert len(dialogs.shown) == 1
    assert "work/local.txt" in shown(window, "work/")

    dialogs.answer = dialogs.answer.Yes
    window.activateWindow()
    window.tree.setFocus()
    qtbot.keyClick(window.tree, Qt.Key.Key_Delete)  # the Delete key triggers the action
    qtbot.waitUntil(lambda: "work/local.txt" not in shown(window, "work/"))
    qtbot.waitUntil(lambda: origin(window, "work/shadow.txt") == "remote")
    assert len(dialogs.texts("question")) == 2
    assert window.store.to_bytes("work/shadow.txt") == b"backing version\n"


def test_actions_are_enabled_only_where_they_can_succeed_and_say_why_not(qtbot, window):
    open_folder(qtbot, window, "work/")
    push, pull, revert, delete, export = (action(window, n) for n in
                                          ("push", "pull", "revert", "delete", "export"))
    select(qtbot, window)
    assert not push.isEnabled() and push.toolTip() == "Select keys or folders to push"

    select(qtbot, window, "README.md")  # backing only, outside the mount point
    assert not push.isEnabled() and "has no local copy to push" in push.toolTip()
    assert not pull.isEnabled() and "outside the mount point 'work/'" in pull.toolTip()
    assert not revert.isEnabled() and "no local copy to revert" in revert.toolTip()
    assert not delete.isEnabled() and "only in the backing store" in delete.toolTip()
    assert export.isEnabled()

    select(qtbot, window, "work/local.txt")
    assert push.isEnabled() and delete.isEnabled()
    assert not pull.isEnabled() and "already has a local copy" in pull.toolTip()
    assert not revert.isEnabled() and "no backing version to revert to" in revert.toolTip()

    select(qtbot, window, "work/")
    assert push.isEnabled() and pull.isEnabled() and revert.isEnabled()
    assert not export.isEnabled() and "is a folder" in export.toolTip()

    select(qtbot, window, "work/local.txt", "work/remote.txt")
    assert push.isEnabled() and "Push 1 of 2 selected" in push.toolTip()
    assert window.actions.targets["push"][0].key == "work/local.txt"


def test_the_context_menu_and_keyboard_reach_the_actions(qtbot, window, monkeypatch):
    menus = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, *args: menus.append(menu))
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    where = window.tree.visualRect(index_of_key(window, "work/local.txt")).center()
    window.tree.customContextMenuRequested.emit(where)
    names = [a.objectName() for a in menus[0].actions() if a.objectName()]
    assert names == ["pushAction", "pullAction", "revertAction", "deleteAction", "exportAction",
                     "newKeyAction", "refreshAction"]
    assert action(window, "refresh").shortcut().toString() == "F5"
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    with qtbot.waitSignal(action(window, "refresh").triggered):
        qtbot.keyClick(window.tree, Qt.Key.Key_F5)
    assert window.statusBar().currentMessage() == "Refreshing…"


def test_errors_from_workers_reach_the_user(qtbot, make_window, workspace, dialogs):
    backing = FullDisk()
    store = sample_workspace_store(backing)
    backing.full = True
    window = make_window(workspace, store)
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    action(window, "push").trigger()
    qtbot.waitUntil(lambda: len(dialogs.texts("warning")) == 1)
    assert "No space left on device" in dialogs.texts("warning")[0]
    assert "No space left" in window.statusBar().currentMessage()
    assert origin(window, "work/local.txt") == "local"


def pushing_big_key(qtbot, make_window, workspace) -> tuple[MainWindow, MountedStore]:
    """A window whose push of work/big.bin (3 MB) holds in the gated backing store."""
    # Held until ``proceed``: a cancel does not release it.
    store = sample_workspace_store(GatedBacking(cancellable=False))
    store.mount_store.from_bytes("big.bin", os.urandom(3 << 20))
    store.backing_store.armed = True
    window = make_window(workspace, store)
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/big.bin")
    action(window, "push").trigger()
    qtbot.waitUntil(store.backing_store.started.is_set)
    return window, store


def test_a_transfer_shows_progress_and_can_be_cancelled(qtbot, make_window, workspace, dialogs):
    window, store = pushing_big_key(qtbot, make_window, workspace)
    status = window.findChild(QWidget, "transferStatus")  # the overall bar in the status bar
    qtbot.waitUntil(lambda: status.isVisible() and status.bar.value() > 0)
    assert "Push 'work/big.bin'" in window.transfers.current_title
    assert "MiB of 3.0 MiB" in status.bar.format()
    qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    store.backing_store.proceed.set()
    qtbot.waitUntil(lambda: not status.isVisible())
    assert "cancelled" in window.statusBar().currentMessage().lower()
    assert window.transfers.jobs[-1].state.value == "cancelled"
    assert dialogs.texts("warning") == []
    assert origin(window, "work/big.bin") == "local"
    assert not store.backing_store.exists("work/big.bin")


def test_new_key_from_file_and_export_to_file(qtbot, window, tmp_path, monkeypatch):
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from a file\n")
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    assert window.actions.new_key_prefix == "work/"
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(source)], "")))
    monkeypatch.setattr(QInputDialog, "getText",
                        staticmethod(lambda *a, **k: (k.get("text", "") , True)))
    action(window, "newKey").trigger()
    qtbot.waitUntil(lambda: [n.key for n in window.selected_nodes()] == ["work/hello.txt"])
    assert origin(window, "work/hello.txt") == "local"
    assert window.store.get_metadata("work/hello.txt")["filename"] == "hello.txt"

    target = tmp_path / "out" / "exported.txt"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    select(qtbot, window, "work/remote.txt")
    action(window, "export").trigger()
    qtbot.waitUntil(target.exists)
    assert target.read_bytes() == b"remote text\n"
    assert [p.name for p in target.parent.iterdir()] == ["exported.txt"]  # no temp file left


# ---------------------------------------------------------------------- filter and search


def test_the_filter_box_filters_the_loaded_keys(qtbot, window):
    open_folder(qtbot, window, "work/")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # Find
    qtbot.waitUntil(window.filter_box.hasFocus)
    qtbot.keyClicks(window.filter_box, "*.txt")
    qtbot.waitUntil(lambda: window.model.name_filter == "*.txt")
    assert shown(window) == {"work/": "shadowing"}  # README.md and unloaded archive/ hidden
    assert shown(window, "work/") == {k: v for k, v in WORK.items() if k.endswith(".txt")}
    window.filter_box.setText("SHADOW")  # no wildcard: a case-insensitive substring
    qtbot.waitUntil(lambda: shown(window, "work/") == {"work/shadow.txt": "shadowing"})
    window.filter_box.clear()
    qtbot.waitUntil(lambda: shown(window) == TOP)


def test_search_the_store_with_a_glob_or_a_query_and_reveal_a_result(qtbot, window):
    window.filter_box.setText("*.csv")
    qtbot.waitUntil(lambda: window.model.name_filter == "*.csv")
    action(window, "search").trigger()  # opens the search panel, the cursor in its field
    panel = window.search_panel
    assert window.search_dock.isVisible()
    qtbot.waitUntil(panel.search_box.hasFocus)
    qtbot.keyClicks(panel.search_box, "*.csv")
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not panel.is_running())
    assert sorted(panel.result_keys()) == ["archive/2023/a.csv", "archive/b.csv"]
    assert window.search_dock.isVisible()

    panel.results.itemClicked.emit(panel.results.findItems("archive/2023/a.csv",
                                                           Qt.MatchFlag.MatchExactly)[0])
    qtbot.waitUntil(lambda: [n.key for n in window.selected_nodes()] == ["archive/2023/a.csv"])
    assert window.filter_box.text() == ""  # the filter was cleared to show the key

    window.search_store("kind=mount")
    qtbot.waitUntil(lambda: not panel.is_running())
    assert sorted(panel.result_keys()) == ["work/local.txt", "work/new/fresh.txt",
                                           "work/shadow.txt"]
    window.search_store("=oops")
    assert "not a name=value query term" in panel.summary.text()


def test_a_search_lists_its_results_in_the_search_panel_and_leaves_the_tree_alone(qtbot, window):
    open_folder(qtbot, window, "work/")
    panel = window.search_panel
    action(window, "search").trigger()
    qtbot.waitUntil(panel.search_box.hasFocus)
    qtbot.keyClicks(panel.search_box, "kind=mount")
    qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running() and bool(panel.result_keys()))
    assert sorted(panel.result_keys()) == ["work/local.txt", "work/new/fresh.txt",
                                           "work/shadow.txt"]
    assert window.filter_box.text() == "" and window.model.name_filter == ""
    assert shown(window) == TOP and shown(window, "work/") == WORK  # nothing filtered away
    panel.search_box.clear()
    qtbot.keyClicks(panel.search_box, "count=42")  # no match: the tree still shows every key
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not panel.is_running() and panel.summary.text().startswith("0 found"))
    assert shown(window) == TOP


def test_the_filter_is_reset_when_another_workspace_opens(qtbot, window, memory_store):
    window.filter_box.setText("nothing-matches-this")
    qtbot.waitUntil(lambda: window.model.name_filter == "nothing-matches-this")
    qtbot.waitUntil(lambda: shown(window) == {})
    assert window.open_workspace(Workspace("other", "memory://", "memory://", MOUNT_POINT),
                                 memory_store)
    assert window.filter_box.text() == "" and window.model.name_filter == ""
    qtbot.waitUntil(lambda: shown(window) == TOP)


# ---------------------------------------------------------------------- responsiveness


def test_a_hung_backing_store_does_not_freeze_the_window(qtbot, make_window, workspace):
    backing = GatedMemoryStore()
    store = sample_workspace_store(backing)
    backing.hold()
    window = make_window(workspace, store, wait=False)
    qtbot.waitUntil(backing.waiting.is_set)
    ticks = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    qtbot.waitUntil(lambda: len(ticks) >= 10)  # the event loop runs while list_dir hangs
    qtbot.waitUntil(lambda: window.model.index(0, 0).data() == LOADING_TEXT)
    qtbot.keyClicks(window.filter_box, "abc")  # and the window takes input
    assert window.filter_box.text() == "abc"
    window.filter_box.clear()
    backing.release()
    qtbot.waitUntil(lambda: shown(window) == TOP)
    timer.stop()


def test_switching_workspace_during_a_transfer_never_blocks_the_window(
        qtbot, make_window, workspace, tmp_path, dialogs):
    window, store = pushing_big_key(qtbot, make_window, workspace)
    [job] = window.transfers.running_jobs()
    disconnects = []  # whether the push had ended, at each disconnect of the old store
    real_disconnect = store.disconnect

    def disconnect():
        disconnects.append(job.worker.is_done())
        real_disconnect()
    store.disconnect = disconnect

    ticks = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    other = MountedStore("", MemoryStore(), MemoryStore())
    other.backing_store.from_bytes("elsewhere.txt", b"x")
    start = time.monotonic()
    assert window.open_workspace(Workspace("other", str(tmp_path), "memory://", ""), other)
    assert time.monotonic() - start < 1  # it waited 2 s for the held push before
    qtbot.waitUntil(lambda: shown(window) == {"elsewhere.txt": "remote"})
    qtbot.waitUntil(lambda: len(ticks) >= 20)  # the event loop runs while the push holds
    timer.stop()
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 1
    assert window.transfers.is_cancelling(job) and disconnects == []

    store.backing_store.proceed.set()
    qtbot.waitUntil(lambda: job.state.value == "cancelled")
    qtbot.waitUntil(lambda: disconnects == [True])  # only once the push ended
    assert not store.backing_store.exists("work/big.bin")  # rolled back
    assert dialogs.texts("warning") == []
    assert shown(window) == {"elsewhere.txt": "remote"}  # the old push's end changed nothing
    assert window.store is other


def test_closing_the_window_does_not_wait_forever_for_a_hung_store(qtbot, make_window,
                                                                   workspace):
    backing = GatedMemoryStore()
    store = sample_workspace_store(backing)
    backing.hold()
    window = make_window(workspace, store, wait=False)
    qtbot.waitUntil(backing.waiting.is_set)
    start = time.monotonic()
    window.close()
    assert time.monotonic() - start < 5
    backing.release()


# ---------------------------------------------------------------------- workspaces and settings


def test_the_default_workspace_lives_in_the_temporary_data_dir(qtbot, make_window):
    ws = workspace_from_args([])
    temp_data = Path(os.environ["XDG_DATA_HOME"])
    assert Path(ws.backing_url).is_relative_to(temp_data)
    assert Path(ws.mount_url.removeprefix("sqlite://")).is_relative_to(temp_data)
    assert data_dir().is_relative_to(temp_data)
    window = make_window(ws)
    assert shown(window) == {}
    assert Path(ws.backing_url).is_dir()
    assert [w.name for w in recent_workspaces()] == ["default"]
    window.close()
    assert (Path(os.environ["XDG_CONFIG_HOME"]) / "storegui" / "window.ini").is_file()


def test_window_geometry_and_splitter_sizes_persist(qtbot, make_window, workspace):
    first = make_window(workspace)
    first.resize(760, 560)  # within the offscreen screen (800 x 600)
    first.splitter.setSizes([300, 460])
    first.tree.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # by size, as a header click
    sizes = first.splitter.sizes()
    first.close()
    second = make_window(workspace)
    assert second.size().width() == 760
    assert second.splitter.sizes() == sizes
    open_folder(qtbot, second, "work/")
    assert list(shown(second, "work/")) == ["work/sub/", "work/new/", "work/shadow.txt",
                                            "work/remote.txt", "work/local.txt"]


def test_open_workspace_checks_the_urls_and_replaces_the_store(qtbot, window, tmp_path):
    dialog = WorkspaceDialog(window, window.workspace)
    qtbot.addWidget(dialog)
    dialog.backing_edit.setText("")
    dialog.mount_edit.setText("sqlite://")
    assert dialog.validate() is None
    assert "Enter a store URL" in dialog.findChild(QWidget, "backingError").text()
    assert "names no SQLite file" in dialog.findChild(QWidget, "mountError").text()

    other = tmp_path / "other"
    other.mkdir()
    open_store(str(other)).from_bytes("elsewhere.txt", b"x")
    dialog.backing_edit.setText(str(other))
    dialog.mount_edit.setText("memory://")
    dialog.mount_point_edit.setText("")
    dialog.name_edit.setText("other")
    dialog.accept()
    chosen = dialog.workspace()
    assert chosen == Workspace("other", str(other), "memory://", "")
    assert window.open_workspace(chosen)
    qtbot.waitUntil(lambda: shown(window) == {"elsewhere.txt": "remote"})
    assert window.windowTitle().startswith("other")
    assert [w.name for w in recent_workspaces()][:2] == ["other", "test"]


def test_command_line_arguments_choose_the_workspace(tmp_path, capsys):
    ws = workspace_from_args(["--backing", str(tmp_path), "--mount", "memory://",
                              "--mount-point", "w/"])
    assert (ws.backing_url, ws.mount_url, ws.mount_point) == (str(tmp_path), "memory://", "w/")
    with pytest.raises(SystemExit):
        workspace_from_args(["--backing", str(tmp_path)])
    with pytest.raises(StoreError, match="no workspace called 'nope'"):
        workspace_from_args(["--workspace", "nope"])


def test_run_opens_the_window_and_returns_when_it_closes(qtbot, tmp_path, dialogs):
    opened = []

    def close_it():
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                opened.append(widget.workspace)
                qtbot.waitUntil(lambda w=widget: not w.model.is_loading())
                widget.close()  # the last window closing ends the event loop

    QTimer.singleShot(50, close_it)
    # Only if the window did not close: an explicit quit would also be queued
    # after a close and stop event processing in the following tests.
    fallback = QTimer()
    fallback.setSingleShot(True)
    fallback.timeout.connect(QApplication.instance().quit)
    fallback.start(20000)
    assert run(["--backing", str(tmp_path), "--mount", "memory://"]) == 0
    fallback.stop()
    assert opened and opened[0].backing_url == str(tmp_path)
    assert QApplication.instance().applicationName() == "storegui"
    assert not QApplication.instance().windowIcon().isNull()


# ---------------------------------------------------------------------- unapplied metadata edits

ANSWERS = {"apply": "Apply", "discard": "Discard", "cancel": "Cancel"}


def edit_local_metadata(qtbot, window: MainWindow) -> None:
    """Select work/local.txt and change its "kind" in the metadata panel, unapplied."""
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    panel = window.metadata_panel
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0 and not panel.is_loading())
    row = [name for name, _type, _text in panel.model.rows()].index("kind")
    panel.model.setData(panel.model.index(row, VALUE), "edited")
    assert panel.has_unapplied_changes()


def mount_kind(workspace: Workspace) -> str:
    mount = open_store(workspace.mount_url)
    try:
        return mount.get_metadata("local.txt")["kind"]
    finally:
        mount.disconnect()


@pytest.mark.parametrize("answer", ANSWERS)
def test_selecting_another_key_asks_about_unapplied_metadata(qtbot, window, dialogs, answer):
    edit_local_metadata(qtbot, window)
    panel = window.metadata_panel
    dialogs.answer = getattr(QMessageBox.StandardButton, ANSWERS[answer])
    select(qtbot, window, "work/shadow.txt")
    assert dialogs.texts("question") == [
        "The metadata of work/local.txt has changes that were not applied. "
        "Apply them before showing another key?"]
    if answer == "cancel":
        # The selection goes back to the edited key, which keeps its edits.
        qtbot.waitUntil(lambda: [n.key for n in window.selected_nodes()] == ["work/local.txt"])
        assert panel.key() == "work/local.txt"
        assert ("kind", "string", "edited") in [tuple(map(str, r)) for r in panel.model.rows()]
        assert panel.has_unapplied_changes()
        dialogs.answer = QMessageBox.StandardButton.Discard  # for the window's close
        return
    assert panel.key() == "work/shadow.txt"
    expected = "edited" if answer == "apply" else "mount"
    qtbot.waitUntil(lambda: window.store.get_metadata("work/local.txt")["kind"] == expected)
    qtbot.waitUntil(lambda: not panel.is_loading())
    assert not panel.has_unapplied_changes()


@pytest.mark.parametrize("answer", ANSWERS)
def test_opening_another_workspace_asks_about_unapplied_metadata(
        qtbot, window, dialogs, workspace, tmp_path, answer):
    edit_local_metadata(qtbot, window)
    dialogs.answer = getattr(QMessageBox.StandardButton, ANSWERS[answer])
    other = tmp_path / "other"
    other.mkdir()
    opened = window.open_workspace(Workspace("other", str(other), "memory://", ""))
    assert dialogs.texts("question") == [
        "The metadata of work/local.txt has changes that were not applied. "
        "Apply them before opening the workspace other?"]
    if answer == "cancel":
        assert not opened
        assert window.workspace.name == "test"
        assert window.metadata_panel.has_unapplied_changes()
        dialogs.answer = QMessageBox.StandardButton.Discard
        return
    assert opened == (answer == "discard")
    qtbot.waitUntil(lambda: window.workspace.name == "other")
    qtbot.waitUntil(lambda: not window.model.is_loading())
    assert mount_kind(workspace) == ("edited" if answer == "apply" else "mount")


@pytest.mark.parametrize("answer", ANSWERS)
def test_closing_the_window_asks_about_unapplied_metadata(
        qtbot, window, dialogs, workspace, answer):
    edit_local_metadata(qtbot, window)
    dialogs.answer = getattr(QMessageBox.StandardButton, ANSWERS[answer])
    window.close()
    assert dialogs.texts("question") == [
        "The metadata of work/local.txt has changes that were not applied. "
        "Apply them before closing?"]
    if answer == "cancel":
        assert window.isVisible()
        assert window.metadata_panel.has_unapplied_changes()
        dialogs.answer = QMessageBox.StandardButton.Discard
        return
    qtbot.waitUntil(lambda: not window.isVisible())
    assert mount_kind(workspace) == ("edited" if answer == "apply" else "mount")


def test_with_the_transfers_dock_open_the_metadata_table_keeps_four_rows(qtbot, window):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    window.resize(1100, 700)
    window.show_transfers()
    dock = window.transfer_dock
    qtbot.waitUntil(lambda: dock.isVisible() and dock.height() <= max(window.height() // 4, 150)
                    or dock.height() <= dock.minimumSizeHint().height())
    table = window.metadata_panel.table
    rows = table.verticalHeader().defaultSectionSize()
    qtbot.waitUntil(lambda: table.viewport().height() >= 4 * rows)
