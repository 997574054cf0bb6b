"""The metadata panel: the selected key's details and its metadata as an editable table.

Every store call (loading the key, applying edits) runs on a worker;
a generation counter drops results that arrive after the selection moved on.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..workers import run_in_thread
from .key_details import (
    KeyDetails,
    KeyDetailsHeader,
    describe_error,
    is_folder,
    load_key_details,
)
from .metadata_table import (
    NAME,
    TYPE,
    VALUE,
    MetadataDelegate,
    MetadataTableModel,
    error_colour,
)

HINT = "Select a key to see its metadata"
MIN_VISIBLE_ROWS = 4
PROBLEM_LINES = 2
REMOTE_NOTE = ("This key is only in the backing store: applying makes a local copy that "
               "shadows the backing one. Push it to publish the change.")


def _load(generation: int, store: Any, key: str) -> tuple[int, Any]:
    # Runs on a worker; a failure comes back as a value tagged with its
    # generation, so the slot can tell a stale result from a current one.
    try:
        return generation, load_key_details(store, key)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        return generation, exc


def _apply(generation: int, store: Any, key: str, metadata: dict) -> tuple[int, str, Any]:
    try:
        store.set_metadata(key, metadata)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        return generation, key, exc
    return generation, key, None


class MetadataPanel(QWidget):
    """The selected key's details and metadata, editable where the key may be written.

    ``set_store(store)`` then ``show_key(key)``; a key of None or a folder
    (ending with "/") shows an empty, disabled panel. Applying writes
    ``set_metadata`` through the store on a worker (a MountedStore copies a
    backing-only key inside the mount point into the mount store first).

    Signals
    -------
    statusMessage(str)
        A message for the status bar (load or apply failures, applied, discarded edits).
    metadataApplied(str)
        The key whose metadata was written.
    applyFinished(str, bool)
        An apply of the key's metadata ended: written (True) or failed (False).
    """

    statusMessage = Signal(str)
    metadataApplied = Signal(str)
    applyFinished = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metadataPanel")
        self._store: Any = None
        self._key: str | None = None
        self._details: KeyDetails | None = None
        self._generation = 0
        self._state = "empty"  # empty | loading | error | loaded | applying
        self._build()
        self._show_empty()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        self.message = QLabel(self)
        self.message.setObjectName("metadataMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)

        self.header = KeyDetailsHeader(self)
        # Shortcuts to the header's labels, for the main window and tests.
        self.key_label = self.header.key_label
        self.origin_label = self.header.origin_label
        self.size_label = self.header.size_label
        self.created_label = self.header.created_label
        self.modified_label = self.header.modified_label
        layout.addWidget(self.header)

        self.read_only_label = QLabel(self)
        self.read_only_label.setObjectName("readOnlyReason")
        self.read_only_label.setWordWrap(True)
        self.read_only_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.read_only_label.setStyleSheet(
            "QLabel { background: palette(alternate-base); border: 1px solid palette(mid);"
            " border-radius: 4px; padding: 4px 6px; }")
        layout.addWidget(self.read_only_label)

        # A remote key's metadata is written into a local copy: say so before Apply.
        self.remote_note = QLabel(REMOTE_NOTE, self)
        self.remote_note.setObjectName("remoteNote")
        self.remote_note.setWordWrap(True)
        self.remote_note.setStyleSheet(self.read_only_label.styleSheet())
        layout.addWidget(self.remote_note)

        self.model = MetadataTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("metadataTable")
        self.table.setModel(self.model)
        self.table.setItemDelegate(MetadataDelegate(self.table))
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(TYPE, QHeaderView.ResizeMode.Fixed)
        # Wide enough for the longest type name plus the combo box arrow.
        header.resizeSection(TYPE, self.fontMetrics().horizontalAdvance("boolean") + 44)
        header.setSectionResizeMode(VALUE, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        rows = self.table.verticalHeader()
        rows.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 12)
        # At least four rows stay in view, however little room the docks leave.
        self.table.setMinimumHeight(MIN_VISIBLE_ROWS * rows.defaultSectionSize()
                                    + header.sizeHint().height() + 2 * self.table.frameWidth())
        layout.addWidget(self.table, 1)
        remove = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        remove.setContext(Qt.ShortcutContext.WidgetShortcut)
        remove.activated.connect(self.remove_selected_rows)

        self.problems_label = QLabel(self)
        self.problems_label.setObjectName("problemsLabel")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(f"color: {error_colour()};")
        self.problems_label.setTextFormat(Qt.TextFormat.PlainText)
        # Its room is kept while there is no problem, so the rows do not move
        # under the cursor when one appears: two lines, the full list in the tooltip.
        self.problems_label.setFixedHeight(
            PROBLEM_LINES * self.problems_label.fontMetrics().lineSpacing() + 4)
        self.problems_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        policy = self.problems_label.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.problems_label.setSizePolicy(policy)
        layout.addWidget(self.problems_label)

        self.apply_error_label = QLabel(self)
        self.apply_error_label.setObjectName("applyError")
        self.apply_error_label.setWordWrap(True)
        self.apply_error_label.setStyleSheet(f"color: {error_colour()};")
        self.apply_error_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.apply_error_label)

        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add row", self)
        self.add_button.setObjectName("addRowButton")
        self.add_button.setToolTip("Add a metadata field")
        self.remove_button = QPushButton("Remove row", self)
        self.remove_button.setObjectName("removeRowButton")
        self.remove_button.setToolTip("Remove the selected fields (Delete)")
        self.revert_button = QPushButton("Revert", self)
        self.revert_button.setObjectName("revertButton")
        self.revert_button.setToolTip("Discard the changes made here")
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setObjectName("applyButton")
        self.apply_button.setToolTip("Write the metadata to the store")
        self.apply_button.setDefault(True)
        for button in (self.add_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.revert_button, self.apply_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        self.add_button.clicked.connect(self.add_row)
        self.remove_button.clicked.connect(self.remove_selected_rows)
        self.revert_button.clicked.connect(self.revert)
        self.apply_button.clicked.connect(self.apply)
        self.model.changed.connect(self._update_controls)
        self.table.selectionModel().selectionChanged.connect(self._update_controls)

    # ---------------------------------------------------------------- public API

    def set_store(self, store: Any) -> None:
        """Show keys of ``store`` (a MountedStore, or None); clears the panel."""
        self._store = store
        self._key = None
        self._generation += 1
        self._show_empty()

    def store(self) -> Any:
        """The store the panel reads from, or None."""
        return self._store

    def key(self) -> str | None:
        """The key shown, or None."""
        return self._key

    def show_key(self, key: str | None) -> None:
        """Show ``key``'s metadata (loaded on a worker); None or a folder clears the panel.

        Showing the key already shown keeps unapplied edits (use ``reload()``
        to drop them); switching to another key discards them with a status
        message (call ``has_unapplied_changes()`` first to ask the user).
        """
        if is_folder(key) or self._store is None:
            key = None
        if key is not None and key == self._key and self.has_unapplied_changes():
            return
        self._discard_with_message()
        self._key = key
        self._generation += 1
        if key is None:
            self._show_empty()
        else:
            self._start_load()

    def reload(self) -> None:
        """Read the shown key again from the store, dropping unapplied edits."""
        if self._key is not None and self._store is not None:
            self._generation += 1
            self._start_load()

    def has_unapplied_changes(self) -> bool:
        """Whether the table holds edits that were not applied."""
        return self._state in ("loaded", "applying") and self.model.is_modified()

    def settle_unapplied_changes(self, before: str) -> str:
        """Ask the user what to do with unapplied edits before ``before`` happens.

        ``before`` completes "… before {before}?" (say "showing another key").
        Returns "none" (nothing to ask), "applying" (Apply: the edits are being
        written; ``applyFinished`` tells how it ended), "discarded" (Discard:
        the edits are gone) or "cancelled" (Cancel, or Apply while a value is
        invalid: the edits stay and the caller should not go on).
        """
        if self._state != "loaded" or not self.model.is_modified() or self._key is None:
            return "none"
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unapplied metadata changes",
            f"The metadata of {self._key} has changes that were not applied. "
            f"Apply them before {before}?",
            buttons.Apply | buttons.Discard | buttons.Cancel, buttons.Cancel)
        if answer == buttons.Apply:
            if not self._can_apply():
                QMessageBox.warning(
                    self, "Cannot apply the metadata",
                    f"The metadata of {self._key} cannot be applied: fix the rows marked "
                    "in red, or discard the changes.")
                return "cancelled"
            self.apply()
            return "applying"
        if answer == buttons.Discard:
            self.revert()
            return "discarded"
        return "cancelled"

    def discard_changes(self) -> None:
        """Drop unapplied edits (the same as Revert)."""
        self.revert()

    def is_loading(self) -> bool:
        """Whether a load or an apply is in progress."""
        return self._state in ("loading", "applying")

    def details(self) -> KeyDetails | None:
        """What was last loaded for the shown key, or None."""
        return self._details

    # ---------------------------------------------------------------- actions

    def add_row(self) -> None:
        """Append a row and start editing its name."""
        if self._editable():
            index = self.model.add_row()
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)
            self.table.edit(index)

    def remove_selected_rows(self) -> None:
        """Remove the rows selected in the table."""
        if self._editable():
            rows = {index.row() for index in self.table.selectionModel().selectedRows()}
            if not rows and self.table.currentIndex().isValid():
                rows = {self.table.currentIndex().row()}
            self.model.remove_rows(rows)

    def revert(self) -> None:
        """Back to the metadata as loaded."""
        if self._state == "loaded":
            self.model.revert()
            self.apply_error_label.clear()

    def apply(self) -> None:
        """Write the edited metadata through the store (on a worker)."""
        # Editors commit as the user types, so the model already holds an open editor's text.
        if not self._can_apply():
            return
        key, metadata = self._key, self.model.metadata()
        self._state = "applying"
        self.model.set_read_only(True)
        self.apply_error_label.clear()
        self.message.setStyleSheet("")
        self.message.setText(f"Applying the metadata of {key}…")
        self.message.setVisible(True)
        self._update_controls()
        run_in_thread(_apply, self._generation, self._store, key, metadata,
                      on_result=self._on_applied)

    # ---------------------------------------------------------------- states

    def _discard_with_message(self) -> None:
        if self._state == "loaded" and self.model.is_modified() and self._key is not None:
            self.statusMessage.emit(f"Unapplied changes to {self._key} were discarded")

    def _show_empty(self) -> None:
        self._state = "empty"
        self._details = None
        self.model.clear()
        self.model.set_read_only(True)
        self.header.setVisible(False)
        self.read_only_label.setVisible(False)
        self.remote_note.setVisible(False)
        self.apply_error_label.clear()
        self.message.setStyleSheet("")
        self.message.setText(HINT)
        self.message.setVisible(True)
        self._update_controls()

    def _start_load(self) -> None:
        self._state = "loading"
        self._details = None
        self.model.clear()
        self.model.set_read_only(True)
        self.apply_error_label.clear()
        self.read_only_label.setVisible(False)
        self.remote_note.setVisible(False)
        self._fill_header(None)
        self.message.setStyleSheet("")
        self.message.setText("Loading…")
        self.message.setVisible(True)
        self._update_controls()
        run_in_thread(_load, self._generation, self._store, self._key, on_result=self._on_loaded)

    def _on_loaded(self, result: tuple[int, Any]) -> None:
        generation, details = result
        if generation != self._generation:
            return  # the selection moved on
        if not isinstance(details, KeyDetails):
            self._state = "error"
            text = f"Could not load {self._key}: {describe_error(details)}"
            self.message.setStyleSheet(f"color: {error_colour()};")
            self.message.setText(text)
            self.message.setVisible(True)
            self.statusMessage.emit(text)
            self._update_controls()
            return
        self._state = "loaded"
        self._details = details
        self._fill_header(details)
        self.message.setVisible(False)
        read_only = details.write_denied_reason is not None
        self.read_only_label.setText(f"Read-only: {details.write_denied_reason}"
                                     if read_only else "")
        self.read_only_label.setVisible(read_only)
        self.remote_note.setVisible(details.origin == "remote" and not read_only)
        self.model.load(details.metadata)
        self.model.set_read_only(read_only)
        self._fit_columns()
        self._update_controls()

    def _on_applied(self, result: tuple[int, str, BaseException | None]) -> None:
        generation, key, error = result
        current = generation == self._generation and key == self._key
        if error is None:
            self.statusMessage.emit(f"Applied the metadata of {key}")
            self.metadataApplied.emit(key)
            if current:
                self._generation += 1
                self._start_load()
            self.applyFinished.emit(key, True)
            return
        text = f"Could not apply the metadata of {key}: {describe_error(error)}"
        self.statusMessage.emit(text)
        if current:
            self._state = "loaded"
            self.model.set_read_only(False)
            self.message.setVisible(False)
            self.apply_error_label.setText(text)
            self._update_controls()
        self.applyFinished.emit(key, False)

    # ---------------------------------------------------------------- helpers

    def _fill_header(self, details: KeyDetails | None) -> None:
        self.header.setVisible(True)
        self.header.show_details(self._key or "", details)

    def _fit_columns(self) -> None:
        self.table.resizeColumnToContents(NAME)
        width = self.table.columnWidth(NAME)
        limit = max(120, self.table.viewport().width() * 2 // 5)
        self.table.setColumnWidth(NAME, min(max(width + 16, 110), limit))

    def _editable(self) -> bool:
        return self._state == "loaded" and not self.model.is_read_only()

    def _can_apply(self) -> bool:
        return self._editable() and self.model.is_modified() and not self.model.problems()

    def _update_controls(self, *_: Any) -> None:
        editable = self._editable()
        loaded = self._state in ("loaded", "applying")
        self.table.setEnabled(loaded)
        self.add_button.setEnabled(editable)
        has_rows = bool(self.table.selectionModel().selectedRows()) or (
            self.table.currentIndex().isValid())
        self.remove_button.setEnabled(editable and self.model.rowCount() > 0 and has_rows)
        modified = loaded and self.model.is_modified()
        self.revert_button.setEnabled(editable and modified)
        self.apply_button.setEnabled(self._can_apply())
        problems = self.model.problems() if loaded else []
        if problems:
            lines = []
            for p in problems:
                name = self.model.rows()[p.row][0]
                which = f"Row {p.row + 1} ({name})" if name else f"Row {p.row + 1} (no name yet)"
                lines.append(f"{which}: {p.message}")
            shown = lines[0]
            if len(lines) > 1:
                shown += f"\n… and {len(lines) - 1} more (hover to see them all)"
            self.problems_label.setText(shown)
            self.problems_label.setToolTip("\n".join(lines[:20] + (
                [f"… and {len(lines) - 20} more"] if len(lines) > 20 else [])))
        else:
            self.problems_label.clear()
            self.problems_label.setToolTip("")
        self.problems_label.setVisible(bool(problems))
        self.apply_error_label.setVisible(bool(self.apply_error_label.text()))


__all__ = ["HINT", "REMOTE_NOTE", "MetadataPanel"]
