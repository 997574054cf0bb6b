"""The metadata panel over a real MountedStore: load, edit, validate, apply, revert."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QThreadPool
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
)

from storegui.app.panels.metadata import HINT, MetadataPanel
from storegui.app.panels.metadata_table import NAME, TYPE, VALUE
from storegui.app.panels.value_types import ValueType
from storegui.stores import MemoryStore, MountedStore

METADATA = {
    "title": "Survey", "count": 12, "ratio": 0.75, "approved": True, "reviewer": None,
    "tags": ["soil", "north"], "location": {"lat": 51.5}, "samples": 2**70,
}


class RecordingStore(MemoryStore):
    """A MemoryStore that notes the thread of every read and write, and can hold one key's reads.

    ``hold(key)`` makes reads of ``key`` wait until ``release()``: a slow store, for real.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()
        self.held: str | None = None
        self.gate = threading.Event()
        self.passed_gate = threading.Event()

    def hold(self, key: str) -> None:
        self.held = key
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def _note(self, key: str) -> None:
        self.threads.add(threading.get_ident())
        if key == self.held:
            self.gate.wait(10)
            self.passed_gate.set()

    def _get(self, key):
        self._note(key)
        return super()._get(key)

    def _stat(self, key):
        self._note(key)
        return super()._stat(key)

    def _exists(self, key):
        self._note(key)
        return super()._exists(key)

    def _get_metadata_text(self, key):
        self._note(key)
        return super()._get_metadata_text(key)

    def _put(self, key, data, metadata_text, buffer_size):
        self._note(key)
        return super()._put(key, data, metadata_text, buffer_size)


@pytest.fixture
def stores():
    mount, backing = RecordingStore(), RecordingStore()
    store = MountedStore("work/", mount, backing)
    store.from_bytes("work/survey.csv", b"a,b\n1,2\n", METADATA)
    store.from_bytes("work/other.txt", b"other", {"note": "other"})
    backing.from_bytes("work/remote.txt", b"remote", {"source": "backing", "year": 2019})
    backing.from_bytes("archive/old.txt", b"old", {"source": "archive"})
    mount.threads.clear()
    backing.threads.clear()
    return store, mount, backing


@pytest.fixture
def panel(qtbot, stores):
    widget = MetadataPanel()
    qtbot.addWidget(widget)
    widget.resize(600, 560)
    widget.set_store(stores[0])
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)


def show(qtbot, panel, key):
    panel.show_key(key)
    qtbot.waitUntil(lambda: not panel.is_loading())


def cell(panel, row, column):
    return panel.model.index(row, column)


def row_of(panel, name):
    return next(i for i, row in enumerate(panel.model.rows()) if row[0] == name)


def test_showing_a_key_fills_the_table_with_typed_rows(qtbot, panel, stores, qtmodeltester):
    show(qtbot, panel, "work/survey.csv")
    rows = panel.model.rows()
    assert [name for name, _, _ in rows] == list(METADATA)
    types = {name: value_type for name, value_type, _ in rows}
    assert types == {"title": ValueType.STRING, "count": ValueType.INTEGER,
                     "ratio": ValueType.FLOAT, "approved": ValueType.BOOLEAN,
                     "reviewer": ValueType.NULL, "tags": ValueType.LIST,
                     "location": ValueType.OBJECT, "samples": ValueType.INTEGER}
    assert panel.model.metadata() == METADATA
    model = panel.model
    assert model.data(cell(panel, row_of(panel, "approved"), VALUE),
                      Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert model.data(cell(panel, row_of(panel, "tags"), VALUE)) == '["soil", "north"]'
    assert model.data(cell(panel, row_of(panel, "reviewer"), VALUE)) == "null"
    assert not model.flags(cell(panel, row_of(panel, "reviewer"), VALUE)) & \
        Qt.ItemFlag.ItemIsEditable
    assert panel.key_label.full_text() == "work/survey.csv"
    assert panel.origin_label.text() == "Local"
    assert panel.size_label.toolTip() == "8 bytes"
    assert panel.created_label.text()[:2] == "20" and panel.modified_label.text()[:2] == "20"
    assert not panel.read_only_label.isVisible()
    assert panel.add_button.isEnabled()
    assert not panel.apply_button.isEnabled() and not panel.revert_button.isEnabled()
    qtmodeltester.check(model)


def test_no_store_call_runs_on_the_gui_thread(qtbot, panel, stores):
    _, mount, backing = stores
    show(qtbot, panel, "work/survey.csv")
    panel.model.setData(cell(panel, row_of(panel, "count"), VALUE), "13")
    with qtbot.waitSignal(panel.metadataApplied):
        panel.apply()
    qtbot.waitUntil(lambda: not panel.is_loading())
    show(qtbot, panel, "archive/old.txt")
    assert mount.threads and backing.threads
    assert threading.get_ident() not in mount.threads | backing.threads


def test_a_user_edits_values_and_applies(qtbot, panel, stores):
    store = stores[0]
    show(qtbot, panel, "work/survey.csv")
    table, model = panel.table, panel.model
    panel.activateWindow()

    # Type a new count into the real line editor.
    index = cell(panel, row_of(panel, "count"), VALUE)
    table.setCurrentIndex(index)
    table.edit(index)
    editor = table.viewport().findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "42")
    assert panel.apply_button.isEnabled()  # edits count while the editor is still open
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState)

    # Pick a new type in the real combo box: the float 0.75 becomes the string "0.75".
    index = cell(panel, row_of(panel, "ratio"), TYPE)
    table.edit(index)
    combo = table.viewport().findChild(QComboBox)
    combo.setCurrentText("string")
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState)

    # Toggle a boolean, edit a list as JSON text, remove a row, add one.
    model.setData(cell(panel, row_of(panel, "approved"), VALUE), Qt.CheckState.Unchecked,
                  Qt.ItemDataRole.CheckStateRole)
    model.setData(cell(panel, row_of(panel, "tags"), VALUE), '["soil", "north", 3]')
    table.selectRow(row_of(panel, "reviewer"))
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    new_row = model.rowCount() - 1
    assert panel.problems_label.isVisible()  # a new row needs a name
    model.setData(cell(panel, new_row, NAME), "extra")
    model.setData(cell(panel, new_row, TYPE), "object")
    model.setData(cell(panel, new_row, VALUE), '{"nested": [1, 2]}')

    assert not model.problems() and panel.apply_button.isEnabled()
    with qtbot.waitSignal(panel.metadataApplied) as applied:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert applied.args == ["work/survey.csv"]
    expected = dict(METADATA, count=42, ratio="0.75", approved=False,
                    tags=["soil", "north", 3], extra={"nested": [1, 2]})
    del expected["reviewer"]
    assert store.get_metadata("work/survey.csv") == expected
    qtbot.waitUntil(lambda: panel.model.rowCount() == len(expected) and not panel.is_loading())
    assert panel.model.metadata() == expected
    assert not panel.has_unapplied_changes() and not panel.apply_button.isEnabled()


@pytest.mark.parametrize(
    ("name", "column", "text", "message"),
    [("count", VALUE, "12x", "'12x' is not an integer"),
     ("tags", VALUE, '["soil",', "not valid JSON"),
     ("location", VALUE, "[1, 2]", "the JSON is a list, not an object"),
     ("location", VALUE, "{'lat': 1}", "not valid JSON"),
     ("title", NAME, "2nd title", "is not a valid name"),
     ("title", NAME, "count", "the name 'count' is used more than once")],
)
def test_invalid_edits_are_refused_with_a_visible_message(qtbot, panel, stores, name, column,
                                                          text, message):
    show(qtbot, panel, "work/survey.csv")
    row = row_of(panel, name)
    assert panel.model.setData(cell(panel, row, column), text)
    assert message in panel.problems_label.text()
    assert f"Row {row + 1}" in panel.problems_label.text()
    assert panel.problems_label.isVisible()
    assert message in panel.model.data(cell(panel, row, column), Qt.ItemDataRole.ToolTipRole)
    assert panel.model.data(cell(panel, row, column), Qt.ItemDataRole.DecorationRole) is not None
    assert not panel.apply_button.isEnabled()
    assert panel.revert_button.isEnabled()
    panel.apply()  # refused as well when called directly
    assert not panel.is_loading()
    assert stores[0].get_metadata("work/survey.csv") == METADATA


def test_an_invalid_json_editor_is_flagged_while_typing(qtbot, panel):
    show(qtbot, panel, "work/survey.csv")
    index = cell(panel, row_of(panel, "location"), VALUE)
    panel.table.edit(index)
    editor = panel.table.viewport().findChild(QPlainTextEdit)
    assert editor is not None and editor.height() > panel.table.rowHeight(0)
    editor.setPlainText('{"lat": ')
    assert "not valid JSON" in editor.toolTip()
    assert "not valid JSON" in panel.problems_label.text()
    editor.setPlainText('{"lat": 2}')
    assert not panel.problems_label.isVisible() and panel.apply_button.isEnabled()


def test_changing_the_type_converts_or_flags_the_value(qtbot, panel):
    show(qtbot, panel, "work/survey.csv")
    model = panel.model
    row = row_of(panel, "title")
    model.setData(cell(panel, row, VALUE), "12")
    model.setData(cell(panel, row, TYPE), "integer")
    assert model.rows()[row] == ("title", ValueType.INTEGER, "12") and not model.problems()
    model.setData(cell(panel, row, TYPE), "boolean")
    assert "not a boolean" in panel.problems_label.text()
    model.setData(cell(panel, row, TYPE), "null")
    assert model.rows()[row] == ("title", ValueType.NULL, "") and not model.problems()


def test_a_backing_only_key_in_the_mount_point_becomes_shadowing(qtbot, panel, stores):
    store, mount, backing = stores
    show(qtbot, panel, "work/remote.txt")
    assert panel.origin_label.text() == "Remote"
    assert not panel.read_only_label.isVisible()
    # Said before it happens: applying makes a local shadowing copy.
    assert panel.remote_note.isVisible()
    assert "local copy that shadows the backing one" in panel.remote_note.text()
    panel.model.setData(cell(panel, row_of(panel, "year"), VALUE), "2020")
    with qtbot.waitSignal(panel.metadataApplied):
        panel.apply()
    assert store.origin("work/remote.txt") == "shadowing"
    assert mount.get_metadata("remote.txt") == {"source": "backing", "year": 2020}
    assert mount.to_bytes("remote.txt") == b"remote"
    assert backing.get_metadata("work/remote.txt") == {"source": "backing", "year": 2019}
    qtbot.waitUntil(lambda: panel.origin_label.text() == "Shadowing")
    assert not panel.remote_note.isVisible()
    show(qtbot, panel, "archive/old.txt")  # outside the mount point: read-only, no copy
    assert panel.read_only_label.isVisible() and not panel.remote_note.isVisible()


def test_a_key_outside_the_mount_point_is_read_only_with_the_reason(qtbot, panel):
    show(qtbot, panel, "archive/old.txt")
    reason = panel.findChild(type(panel.read_only_label), "readOnlyReason")
    assert reason.isVisible()
    assert "outside the mount point 'work/'" in reason.text()
    assert panel.model.rows() == [("source", ValueType.STRING, "archive")]
    for button in (panel.add_button, panel.remove_button, panel.apply_button):
        assert not button.isEnabled()
    index = cell(panel, 0, VALUE)
    assert not panel.model.flags(index) & Qt.ItemFlag.ItemIsEditable
    assert not panel.model.setData(index, "changed")
    panel.add_row()
    assert panel.model.rowCount() == 1


def test_revert_restores_the_loaded_metadata(qtbot, panel):
    show(qtbot, panel, "work/survey.csv")
    before = panel.model.rows()
    panel.model.setData(cell(panel, 0, VALUE), "changed")
    panel.model.remove_rows([1])
    panel.add_row()
    assert panel.has_unapplied_changes() and panel.revert_button.isEnabled()
    qtbot.mouseClick(panel.revert_button, Qt.MouseButton.LeftButton)
    assert panel.model.rows() == before
    assert not panel.has_unapplied_changes()
    assert not panel.revert_button.isEnabled() and not panel.apply_button.isEnabled()


def test_a_failed_apply_keeps_the_edits_and_says_why(qtbot, panel, stores):
    store = stores[0]
    show(qtbot, panel, "work/other.txt")
    panel.model.setData(cell(panel, 0, VALUE), "edited")
    store.delete("work/other.txt")  # gone behind the panel's back
    with qtbot.waitSignal(panel.statusMessage) as status:
        panel.apply()
    assert "Could not apply" in status.args[0]
    qtbot.waitUntil(lambda: not panel.is_loading())
    assert "no such key 'work/other.txt'" in panel.apply_error_label.text()
    assert panel.apply_error_label.isVisible()
    assert panel.model.rows()[0][2] == "edited" and panel.has_unapplied_changes()
    assert panel.apply_button.isEnabled()


def test_a_missing_key_shows_the_error(qtbot, panel):
    with qtbot.waitSignal(panel.statusMessage) as status:
        panel.show_key("work/nope")
    assert "Could not load work/nope" in status.args[0]
    assert "no such key" in panel.message.text() and panel.message.isVisible()
    assert panel.model.rowCount() == 0 and not panel.add_button.isEnabled()


@pytest.mark.parametrize("key", [None, "work/", "archive/"])
def test_no_key_or_a_folder_shows_an_empty_disabled_panel(qtbot, panel, key):
    show(qtbot, panel, "work/survey.csv")
    show(qtbot, panel, key)
    assert panel.message.text() == HINT and panel.message.isVisible()
    assert panel.model.rowCount() == 0 and not panel.table.isEnabled()
    assert not panel.header.isVisible()
    assert not any(b.isEnabled() for b in (panel.add_button, panel.remove_button,
                                           panel.revert_button, panel.apply_button))


def test_switching_keys_discards_unapplied_edits_with_a_message(qtbot, panel):
    show(qtbot, panel, "work/survey.csv")
    panel.model.setData(cell(panel, 0, VALUE), "edited")
    panel.show_key("work/survey.csv")  # the same key again keeps the edits
    assert panel.has_unapplied_changes() and not panel.is_loading()
    with qtbot.waitSignal(panel.statusMessage) as status:
        panel.show_key("work/other.txt")
    assert status.args == ["Unapplied changes to work/survey.csv were discarded"]
    qtbot.waitUntil(lambda: not panel.is_loading())
    assert panel.model.metadata() == {"note": "other"}


def test_switching_keys_quickly_shows_the_last_one_only(qtbot, panel, stores):
    _, mount, _ = stores
    mount.hold("survey.csv")  # the first key's read is slow
    panel.show_key("work/survey.csv")
    panel.show_key("work/remote.txt")
    panel.show_key("work/other.txt")
    qtbot.waitUntil(lambda: not panel.is_loading())
    assert panel.key() == "work/other.txt"
    mount.release()
    qtbot.waitUntil(mount.passed_gate.is_set)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)
    QCoreApplication.processEvents()  # deliver the stale result, if it were still wanted
    assert panel.key_label.full_text() == "work/other.txt"
    assert panel.model.metadata() == {"note": "other"}


def type_into_type_cell(qtbot, panel, row, letters):
    """Focus the row's Type cell, type ``letters`` as a user would, then press Enter."""
    table = panel.table
    panel.activateWindow()
    qtbot.waitActive(panel)
    table.setFocus()
    table.setCurrentIndex(cell(panel, row, TYPE))
    # Each key goes where the keyboard focus is: the first opens the editor.
    for letter in letters:
        qtbot.keyClick(QApplication.focusWidget(), letter)
    assert isinstance(QApplication.focusWidget(), QComboBox)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)


def test_typing_a_type_name_waits_for_enter(qtbot, panel):
    show(qtbot, panel, "work/other.txt")
    row = row_of(panel, "note")
    panel.model.setData(cell(panel, row, VALUE), "12")
    type_into_type_cell(qtbot, panel, row, "int")
    assert panel.model.rows()[row] == ("note", ValueType.INTEGER, "12")
    type_into_type_cell(qtbot, panel, row, "n")  # "n" alone is null
    assert panel.model.rows()[row][1] is ValueType.NULL


def test_a_new_boolean_row_gets_a_checkbox_that_space_toggles(qtbot, panel):
    show(qtbot, panel, "work/other.txt")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    editor = panel.table.viewport().findChild(QLineEdit)
    qtbot.keyClicks(editor, "done")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    row = row_of(panel, "done")
    type_into_type_cell(qtbot, panel, row, "b")
    value = cell(panel, row, VALUE)
    assert panel.model.rows()[row] == ("done", ValueType.BOOLEAN, "false")
    assert value.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert not panel.model.problems() and panel.apply_button.isEnabled()
    panel.table.setCurrentIndex(value)
    qtbot.keyClick(panel.table, Qt.Key.Key_Space)
    assert panel.model.rows()[row][2] == "true"
    assert value.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert panel.model.metadata() == {"note": "other", "done": True}


def test_an_invalid_boolean_text_still_shows_a_checkbox_that_fixes_it(qtbot, panel):
    show(qtbot, panel, "work/other.txt")
    row = row_of(panel, "note")
    panel.model.setData(cell(panel, row, TYPE), "boolean")  # "other" is not a boolean
    value = cell(panel, row, VALUE)
    assert "not a boolean" in panel.problems_label.text()
    assert value.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    panel.table.setFocus()
    panel.table.setCurrentIndex(value)
    qtbot.keyClick(panel.table, Qt.Key.Key_Space)
    assert panel.model.rows()[row][2] == "true" and not panel.model.problems()


def test_a_problem_on_a_row_without_a_name_says_so(qtbot, panel):
    show(qtbot, panel, "work/other.txt")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert panel.problems_label.text() == "Row 2 (no name yet): a name is required"


def test_an_mtime_field_shows_a_local_date_and_time_and_edits_the_number(qtbot, panel, stores):
    store = stores[0]
    store.from_bytes("work/timed.txt", b"t", {"mtime": 1700000000.5, "count": 1700000000})
    show(qtbot, panel, "work/timed.txt")
    mtime = cell(panel, row_of(panel, "mtime"), VALUE)
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1700000000.5))
    assert mtime.data() == expected
    assert "1700000000.5 seconds since 1970" in mtime.data(Qt.ItemDataRole.ToolTipRole)
    assert mtime.data(Qt.ItemDataRole.EditRole) == "1700000000.5"
    assert cell(panel, row_of(panel, "count"), VALUE).data() == "1700000000"  # other names: as is
    panel.model.setData(mtime, "not a time")
    assert mtime.data() == "not a time"  # shown as typed, with its problem
    panel.model.setData(mtime, "1700000100.5")
    with qtbot.waitSignal(panel.metadataApplied):
        panel.apply()
    assert store.get_metadata("work/timed.txt")["mtime"] == 1700000100.5


def test_the_table_keeps_four_rows_and_does_not_move_when_a_problem_appears(qtbot, panel):
    show(qtbot, panel, "work/survey.csv")
    table = panel.table
    rows = table.verticalHeader().defaultSectionSize()
    assert table.minimumHeight() >= 4 * rows + table.horizontalHeader().height()
    panel.resize(600, 200)  # squeezed, as by an open dock: the table keeps its four rows
    qtbot.waitUntil(lambda: panel.height() == panel.minimumSizeHint().height()
                    or panel.height() >= 200)
    assert table.height() >= table.minimumHeight()
    before = table.geometry()
    panel.model.setData(cell(panel, row_of(panel, "count"), VALUE), "many")
    panel.model.setData(cell(panel, row_of(panel, "ratio"), VALUE), "half")
    assert panel.problems_label.isVisible()
    assert panel.problems_label.text() == (
        "Row 2 (count): 'many' is not an integer\n… and 1 more (hover to see them all)")
    assert "Row 3 (ratio): 'half' is not a number" in panel.problems_label.toolTip()
    QCoreApplication.processEvents()
    assert table.geometry() == before
