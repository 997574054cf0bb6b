"""Messages a newcomer reads in the window: what happened, never an internal object's text."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, QThreadPool

from storegui.app import MainWindow
from storegui.config import Workspace
from storegui.stores import StoreKeyError
from storegui.stores.errors import store_label


def open_folder(qtbot, window: MainWindow, key: str) -> None:
    window.tree.expand(window.model.index_for_key(key))
    qtbot.waitUntil(lambda: window.model.index_for_key(key + "local.txt").isValid()
                    if key == "work/" else True)


def select_one(qtbot, window: MainWindow, key: str) -> None:
    index = window.model.index_for_key(key)
    assert index.isValid(), key
    window.tree.selectionModel().setCurrentIndex(
        index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        | QItemSelectionModel.SelectionFlag.Rows)
    qtbot.waitUntil(lambda: window.preview_panel.key() == key
                    and not window.preview_panel.is_loading())


def settle(qtbot, window: MainWindow) -> None:
    QThreadPool.globalInstance().waitForDone(10000)
    qtbot.waitUntil(lambda: not window.preview_panel.is_loading()
                    and not window._selection_timer.isActive())
    QThreadPool.globalInstance().waitForDone(10000)
    qtbot.wait(50)  # let queued results arrive


def test_missing_key_message_names_the_key_and_store_urls_only(workspace):
    store = workspace.open()
    try:
        with pytest.raises(StoreKeyError) as caught:
            store.get("work/nosuch.txt")
        text = str(caught.value)
        assert text.startswith("no such key 'work/nosuch.txt' in ")
        assert "Store(" not in text and "MountedStore" not in text
        assert store.mount_store.url in text and store.backing_store.url in text
        assert store_label(store.mount_store) == f"the store {store.mount_store.url}"
    finally:
        store.disconnect()


@pytest.mark.parametrize(("key", "gone"), [("work/local.txt", True),
                                           ("work/shadow.txt", False)])
def test_delete_says_deleted_and_the_preview_does_not_read_a_gone_key(
        qtbot, window, dialogs, key, gone):
    open_folder(qtbot, window, "work/")
    select_one(qtbot, window, key)
    dialogs.answer = dialogs.answer.Yes
    window.actions.delete.trigger()
    if gone:
        qtbot.waitUntil(lambda: not window.model.index_for_key(key).isValid())
        qtbot.waitUntil(lambda: window.preview_panel.key() is None)
    else:
        qtbot.waitUntil(lambda: window.model.index_for_key(key).data() is not None
                        and window.statusBar().currentMessage().startswith("Deleted"))
        qtbot.waitUntil(lambda: window.preview_panel.preview() is not None
                        and window.preview_panel.preview().content == "backing version\n")
    settle(qtbot, window)
    message = window.statusBar().currentMessage()
    if gone:
        assert message == f"Deleted {key}"
    else:
        assert message == f"Deleted {key} (the backing store's version shows again)"
    assert "Could not" not in window.preview_panel.message_label.text()
    assert dialogs.texts("warning") == []


def test_an_empty_workspace_says_what_its_stores_are_and_that_files_can_be_dropped(
        qtbot, make_window, tmp_path):
    (tmp_path / "empty-backing").mkdir()
    ws = Workspace("empty", str(tmp_path / "empty-backing"),
                   f"sqlite://{tmp_path / 'empty.db'}", "work/")
    window = make_window(ws)
    text = window.tree.empty_state_text()
    assert "Backing store: " + ws.backing_url in text
    assert "Mount store: " + ws.mount_url in text
    assert "Drop files here" in text and "under work/" in text
    assert painted_colours(window) > 1  # the text is drawn in the viewport

    window.filter_box.setText("*.csv")  # a filter that matches nothing says so
    qtbot.waitUntil(lambda: window.tree.empty_state_text() == window.tree.no_match_text)
    window.filter_box.clear()
    qtbot.waitUntil(lambda: window.tree.empty_state_text() == text)

    window.store.from_bytes("work/first.txt", b"1")  # a key: no empty state any more
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    assert window.tree.empty_state_text() == ""
    assert painted_colours(window, rows=False) == 1  # below the row: blank


def painted_colours(window: MainWindow, rows: bool = True) -> int:
    """How many colours the tree's viewport shows (below its rows if not ``rows``)."""
    image = window.tree.viewport().grab().toImage()
    top = 0 if rows else image.height() // 2
    return len({image.pixel(x, y) for x in range(0, image.width(), 3)
                for y in range(top, image.height(), 3)})
