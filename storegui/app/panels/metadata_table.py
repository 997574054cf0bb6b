"""The metadata editor's table: a model of typed rows and the delegate that edits them.

Each row is ``(name, type, text)``: the value is kept as the text the user
typed, so a half-typed or invalid value survives until it is fixed; the
rules live in :mod:`storegui.app.panels.value_types`. The model recomputes the
problems after every change and shows them on the offending cell (icon,
tooltip, tinted row); :class:`MetadataTableModel.changed` tells the panel
to update its buttons and problem list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFontDatabase, QIcon, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from storegui import resources_path

from .value_types import (
    JSON_TYPES,
    RowProblem,
    ValueType,
    compact_json,
    convert_text,
    find_problems,
    metadata_to_rows,
    parse_value,
    rows_to_metadata,
    value_problem,
)

AnyIndex = QModelIndex | QPersistentModelIndex

NAME, TYPE, VALUE = range(3)
_HEADERS = ("Name", "Type", "Value")
_PROBLEM_TINT = QColor(229, 57, 53, 45)  # translucent, so it reads on light and dark palettes
_TOOLTIP_LIMIT = 2000
_MULTILINE_HINT = "Ctrl+Return to finish, Escape to cancel"

_error_icon: QIcon | None = None


def error_colour() -> str:
    """A red that reads on the current palette (lighter on dark backgrounds)."""
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    return "#ff6e6e" if window.lightness() < 128 else "#d32f2f"


def error_icon() -> QIcon:
    """The icon that marks a problem (loaded once, after the QApplication exists)."""
    global _error_icon
    if _error_icon is None:
        _error_icon = QIcon(str(resources_path() / "icons" / "error.svg"))
    return _error_icon


class MetadataTableModel(QAbstractTableModel):
    """Editable rows ``(name, type, text)`` of one key's metadata.

    ``load(metadata)`` fills it, ``metadata()`` gives back the dictionary to
    store, ``revert()`` returns to what was loaded. Names already stored may
    stay even if they are not identifiers (other tools may have written
    them); new or renamed rows must use identifiers.
    """

    #: Rows, values or problems changed.
    changed = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[list[Any]] = []
        self._original: list[tuple[str, ValueType, str]] = []
        self._accepted: frozenset[str] = frozenset()
        self._problems: dict[tuple[int, str], str] = {}
        self._problem_list: list[RowProblem] = []
        self._read_only = False

    # ---------------------------------------------------------------- contents

    def load(self, metadata: dict[str, Any]) -> None:
        """Show ``metadata`` as rows; this becomes the state ``revert()`` returns to."""
        self._original = metadata_to_rows(metadata)
        self._accepted = frozenset(metadata)
        self._reset(self._original)

    def clear(self) -> None:
        """No rows, nothing to revert to."""
        self._original = []
        self._accepted = frozenset()
        self._reset([])

    def revert(self) -> None:
        """Drop every edit: back to the loaded metadata."""
        self._reset(self._original)

    def _reset(self, rows: list[tuple[str, ValueType, str]]) -> None:
        self.beginResetModel()
        self._rows = [list(row) for row in rows]
        self._recheck()
        self.endResetModel()
        self.changed.emit()

    def rows(self) -> list[tuple[str, ValueType, str]]:
        """The current rows ``(name, type, text)``."""
        return [tuple(row) for row in self._rows]  # type: ignore[misc]

    def problems(self) -> list[RowProblem]:
        """The current problems, in row order."""
        return list(self._problem_list)

    def is_modified(self) -> bool:
        """Whether the rows differ from the loaded metadata."""
        return self.rows() != self._original

    def metadata(self) -> dict[str, Any]:
        """The metadata dictionary the rows describe.

        Raises
        ------
        ValueParseError
            If a value does not fit its type (see ``problems()``).
        """
        return rows_to_metadata(self.rows())

    def set_read_only(self, read_only: bool) -> None:
        """Allow or forbid edits (flags change; the rows stay)."""
        self._read_only = read_only
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, VALUE))

    def is_read_only(self) -> bool:
        """Whether edits are forbidden."""
        return self._read_only

    def add_row(self) -> QModelIndex:
        """Append an empty string row and return the index of its name cell."""
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(["", ValueType.STRING, ""])
        self._recheck()
        self.endInsertRows()
        self._announce()
        return self.index(row, NAME)

    def remove_rows(self, rows: Iterable[int]) -> None:
        """Remove the given rows (indexes into the current rows)."""
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self._rows):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        self._recheck()
        self._announce()

    def _recheck(self) -> None:
        self._problem_list = find_problems(self.rows(), self._accepted)
        self._problems = {(p.row, p.column): p.message for p in self._problem_list}

    def _announce(self) -> None:
        # A new problem (a duplicate name) can appear on a row nobody touched.
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, VALUE))
        self.changed.emit()

    # ---------------------------------------------------------------- Qt model

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal and 0 <= section < len(_HEADERS):
                return _HEADERS[section]
            if orientation == Qt.Orientation.Vertical:
                return str(section + 1)
        if (role == Qt.ItemDataRole.DecorationRole and orientation == Qt.Orientation.Vertical
                and any(p.row == section for p in self._problem_list)):
            return error_icon()
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self._read_only:
            return flags
        value_type = self._rows[index.row()][TYPE]
        if index.column() != VALUE:
            return flags | Qt.ItemFlag.ItemIsEditable
        if value_type is ValueType.BOOLEAN:
            return flags | Qt.ItemFlag.ItemIsUserCheckable
        if value_type is ValueType.NULL:
            return flags
        return flags | Qt.ItemFlag.ItemIsEditable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, column = index.row(), index.column()
        name, value_type, text = self._rows[row]
        problem = self._problems.get((row, "name" if column == NAME else "value"))
        if column == TYPE:
            problem = None
        if role == Qt.ItemDataRole.DisplayRole:
            return (name, str(value_type), _display_value(name, value_type, text))[column]
        if role == Qt.ItemDataRole.EditRole:
            return (name, str(value_type), text)[column]
        if role == Qt.ItemDataRole.CheckStateRole and column == VALUE:
            if value_type is ValueType.BOOLEAN:
                # An invalid text shows a cleared box (and the problem): a click fixes it.
                checked = problem is None and parse_value(text, value_type)
                return Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            return None
        if role == Qt.ItemDataRole.DecorationRole and problem:
            return error_icon()
        if role == Qt.ItemDataRole.ToolTipRole:
            if problem:
                return problem
            if column == VALUE and value_type in JSON_TYPES | {ValueType.STRING}:
                return text[:_TOOLTIP_LIMIT] or None
            if column == VALUE and _epoch(name, value_type, text) is not None:
                return f"{text.strip()} seconds since 1970-01-01 UTC (edit the number)"
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if any(p.row == row for p in self._problem_list):
                return _PROBLEM_TINT
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column == VALUE:
            if value_type is ValueType.NULL:
                return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.FontRole and column == VALUE and value_type in JSON_TYPES:
            return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        return None

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or self._read_only or not 0 <= index.row() < len(self._rows):
            return False
        row, column = index.row(), index.column()
        current = self._rows[row]
        if role == Qt.ItemDataRole.CheckStateRole and column == VALUE:
            if current[TYPE] is not ValueType.BOOLEAN:
                return False
            checked = Qt.CheckState(value) == Qt.CheckState.Checked
            new = "true" if checked else "false"
        elif role != Qt.ItemDataRole.EditRole:
            return False
        elif column == NAME:
            new = str(value).strip()
        elif column == TYPE:
            try:
                new_type = ValueType(str(value))
            except ValueError:
                return False
            if new_type is current[TYPE]:
                return True
            current[VALUE] = convert_text(current[VALUE], current[TYPE], new_type)
            current[TYPE] = new_type
            self._recheck()
            self._announce()
            return True
        else:
            new = str(value)
        if current[column] == new:
            return True
        current[column] = new
        self._recheck()
        self._announce()
        return True


#: Number fields shown as a local date and time (the editor and the store keep the number).
TIME_FIELDS = frozenset({"mtime"})


def _epoch(name: str, value_type: ValueType, text: str) -> float | None:
    """The seconds since the epoch that a valid ``mtime`` row holds, else None."""
    if name not in TIME_FIELDS or value_type not in (ValueType.INTEGER, ValueType.FLOAT):
        return None
    try:
        return float(parse_value(text, value_type))
    except (ValueError, OverflowError):
        return None


def _display_value(name: str, value_type: ValueType, text: str) -> str:
    """One line for the table cell: compact JSON, ``null``, a date and time, or the text."""
    epoch = _epoch(name, value_type, text)
    if epoch is not None:
        try:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
        except (OverflowError, OSError, ValueError):
            pass
    if value_type is ValueType.NULL:
        return "null"
    if value_type is ValueType.BOOLEAN:
        return text.strip().lower()
    if value_type in JSON_TYPES:
        try:
            return compact_json(json.loads(text))
        except (ValueError, RecursionError):
            pass
    return text.replace("\r\n", "\n").replace("\n", " ⏎ ")


class MultiLineEditor(QPlainTextEdit):
    """A multi-line value editor; Ctrl+Return commits (Return alone inserts a newline)."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class TypeComboBox(QComboBox):
    """The type editor: typed letters pick the first type they start ("int" -> integer).

    A plain combo box commits on its first letter (its keyboard search
    "activates" the item), so typing "int" would end on "n" -> null. Here the
    letters only move the choice; Enter, Tab, leaving the cell or a click in
    the list commits it.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._typed = ""
        self._typed_at = 0.0

    def keyPressEvent(self, event: QKeyEvent) -> None:
        text = event.text()
        if not text or not text.isprintable() or text.isspace():
            super().keyPressEvent(event)
            return
        now = time.monotonic()
        if now - self._typed_at > QApplication.keyboardInputInterval() / 1000:
            self._typed = ""
        self._typed_at = now
        typed = (self._typed + text).lower()
        for row in range(self.count()):
            if self.itemText(row).startswith(typed):
                self._typed = typed
                self.setCurrentIndex(row)
                return
        # No type starts so: start over from this letter.
        for row in range(self.count()):
            if self.itemText(row).startswith(text.lower()):
                self._typed = text.lower()
                self.setCurrentIndex(row)
                return


class MetadataDelegate(QStyledItemDelegate):
    """Edits a name (line edit), a type (combo box) and a value (an editor fit for its type).

    Lists, objects and multi-line strings get a multi-line editor taller than
    the row; numbers get a line edit that flags invalid text as it is typed
    (JSON integers can be larger than a spin box allows).
    """

    multiline_height = 160

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: AnyIndex) -> QWidget:
        if index.column() == TYPE:
            combo = TypeComboBox(parent)
            combo.addItems([t.value for t in ValueType])
            combo.activated.connect(lambda _=0, c=combo: self._finish(c))
            return combo
        value_type = _row_type(index)
        text = str(index.data(Qt.ItemDataRole.EditRole) or "")
        if index.column() == VALUE and (value_type in JSON_TYPES or "\n" in text):
            editor = MultiLineEditor(parent)
            editor.setTabChangesFocus(True)
            _flag(editor, None, _MULTILINE_HINT)
            if value_type in JSON_TYPES:
                editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            editor.setToolTip(_MULTILINE_HINT)
            editor.submitted.connect(lambda e=editor: self._finish(e))
            editor.textChanged.connect(lambda e=editor, t=value_type: self._changed(
                e, value_problem(e.toPlainText(), t), _MULTILINE_HINT))
            return editor
        line = QLineEdit(parent)
        line.setFrame(False)
        if index.column() == NAME:
            line.setPlaceholderText("name")
            line.textEdited.connect(lambda _t, e=line: self.commitData.emit(e))
        else:
            line.textEdited.connect(
                lambda text, e=line, t=value_type: self._changed(e, value_problem(text, t)))
        return line

    def _changed(self, editor: QWidget, problem: str | None, hint: str = "") -> None:
        # Commit as the user types, so the problem list and the Apply button
        # follow the text without waiting for the editor to close.
        _flag(editor, problem, hint)
        self.commitData.emit(editor)

    def _finish(self, editor: QWidget) -> None:
        self.commitData.emit(editor)
        self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)

    def setEditorData(self, editor: QWidget, index: AnyIndex) -> None:
        # Also called while the user types (edits are committed live and the
        # model announces changes): leave an editor alone that already shows
        # the text, or its cursor and undo history would be reset.
        text = str(index.data(Qt.ItemDataRole.EditRole) or "")
        if isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findText(text)))
        elif isinstance(editor, QPlainTextEdit):
            if editor.toPlainText() != text:
                # Not a user edit: do not commit it back (the view may not know
                # the editor yet), but do show whether the text is valid.
                editor.blockSignals(True)
                editor.setPlainText(text)
                editor.blockSignals(False)
                _flag(editor, value_problem(text, _row_type(index)), _MULTILINE_HINT)
        elif isinstance(editor, QLineEdit):
            if editor.text() != text:
                editor.setText(text)

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: AnyIndex) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText())
        elif isinstance(editor, QPlainTextEdit):
            model.setData(index, editor.toPlainText())
        elif isinstance(editor, QLineEdit):
            model.setData(index, editor.text())

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: AnyIndex) -> None:
        rect = QRect(option.rect)
        if isinstance(editor, QPlainTextEdit):
            # Taller than the row, floating over the rows below (or above, near the bottom).
            rect.setHeight(max(rect.height(), self.multiline_height))
            area = editor.parentWidget().rect() if editor.parentWidget() else rect
            if rect.bottom() > area.bottom():
                rect.moveBottom(area.bottom())
            if rect.top() < 0:
                rect.moveTop(0)
        editor.setGeometry(rect)


def _row_type(index: AnyIndex) -> ValueType:
    try:
        return ValueType(str(index.sibling(index.row(), TYPE).data(Qt.ItemDataRole.EditRole)))
    except ValueError:
        return ValueType.STRING


def _flag(editor: QWidget, problem: str | None, hint: str = "") -> None:
    """Mark an editor whose text does not fit its type (red frame, reason in the tooltip)."""
    if problem:
        border = error_colour()
    elif isinstance(editor, QPlainTextEdit):
        border = "palette(highlight)"  # it floats over other rows: show its edge
    else:
        border = ""
    kind = type(editor).__name__
    editor.setStyleSheet(f"{kind} {{ border: 1px solid {border}; }}" if border else "")
    editor.setToolTip(problem or hint)


__all__ = ["MetadataDelegate", "MetadataTableModel", "MultiLineEditor", "NAME", "TYPE",
           "TypeComboBox", "VALUE",
           "error_colour", "error_icon"]
