"""File > Open Workspace…: pick a saved or recent workspace, or type the store URLs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...config import (
    Workspace,
    load_workspaces,
    recent_workspaces,
    workspace_from_urls,
    workspace_problem,
)
from ...stores.errors import StoreError
from ...stores.registry import open_store

WorkspaceRole = Qt.ItemDataRole.UserRole + 1


class WorkspaceDialog(QDialog):
    """Choose a workspace: the list holds recent and saved ones; the fields can be edited.

    The URLs are checked with ``open_store`` (which builds a store without
    connecting to it) when the user presses Open; a problem shows beside
    its field and keeps the dialog open.
    """

    def __init__(self, parent: QWidget | None = None, current: Workspace | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("workspaceDialog")
        self.setWindowTitle("Open Workspace")
        self.setMinimumWidth(560)
        self._chosen: Workspace | None = None

        self.list = QListWidget(self)
        self.list.setObjectName("workspaceList")
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self._fill_list()

        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("nameEdit")
        self.name_edit.setPlaceholderText("named after the backing store if left empty")
        self.backing_edit = QLineEdit(self)
        self.backing_edit.setObjectName("backingEdit")
        self.backing_edit.setPlaceholderText("a folder, file://…, sqlite://…, s3://…, https://…")
        self.mount_edit = QLineEdit(self)
        self.mount_edit.setObjectName("mountEdit")
        self.mount_edit.setPlaceholderText("sqlite:///path/to/mount.db, a folder, memory://")
        self.mount_point_edit = QLineEdit(self)
        self.mount_point_edit.setObjectName("mountPointEdit")
        self.mount_point_edit.setPlaceholderText("key prefix, e.g. projects/alpha/ (empty: all)")
        self.name_error = self._error_label("nameError")
        self.backing_error = self._error_label("backingError")
        self.mount_error = self._error_label("mountError")

        form = QFormLayout()
        form.addRow("Name:", self._with_error(self.name_edit, self.name_error))
        form.addRow("Backing store:", self._with_error(
            self._with_browse(self.backing_edit), self.backing_error))
        form.addRow("Mount store:", self._with_error(
            self._with_browse(self.mount_edit), self.mount_error))
        form.addRow("Mount point:", self.mount_point_edit)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Recent and saved workspaces:", self))
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addWidget(buttons)
        if current is not None:
            self.set_fields(current)

    # ------------------------------------------------------------------ building

    def _error_label(self, name: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setStyleSheet("color: #e53935;")
        label.setVisible(False)
        return label

    def _with_error(self, field: QWidget, error: QLabel) -> QWidget:
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(field)
        layout.addWidget(error)
        return box

    def _with_browse(self, edit: QLineEdit) -> QWidget:
        box = QWidget(self)
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Folder…", box)
        button.setToolTip("Choose a folder to use as a directory store")
        button.clicked.connect(lambda: self._browse(edit))
        layout.addWidget(button)
        return box

    def _browse(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if folder:
            edit.setText(folder)

    def _fill_list(self) -> None:
        seen: set[str] = set()
        try:
            workspaces = recent_workspaces() + load_workspaces()
        except StoreError as exc:
            item = QListWidgetItem(f"(cannot read the saved workspaces: {exc})")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(item)
            return
        for ws in workspaces:
            if ws.name in seen:
                continue
            seen.add(ws.name)
            item = QListWidgetItem(ws.title)
            item.setData(WorkspaceRole, ws)
            item.setToolTip(ws.title)
            self.list.addItem(item)

    # ------------------------------------------------------------------ fields

    def set_fields(self, ws: Workspace) -> None:
        """Show ``ws`` in the fields."""
        self.name_edit.setText(ws.name)
        self.backing_edit.setText(ws.backing_url)
        self.mount_edit.setText(ws.mount_url)
        self.mount_point_edit.setText(ws.mount_point)

    def _on_current(self, item: QListWidgetItem | None, _previous: object) -> None:
        ws = item.data(WorkspaceRole) if item is not None else None
        if isinstance(ws, Workspace):
            self.set_fields(ws)

    def validate(self) -> Workspace | None:
        """The workspace the fields describe, or None after showing what is wrong."""
        backing = self.backing_edit.text().strip()
        mount = self.mount_edit.text().strip()
        ok = True
        for url, label in ((backing, self.backing_error), (mount, self.mount_error)):
            message = _url_problem(url)
            label.setText(message or "")
            label.setVisible(message is not None)
            ok = ok and message is None
        if ok and backing == mount:
            self.mount_error.setText("The mount store must differ from the backing store.")
            self.mount_error.setVisible(True)
            ok = False
        name = self.name_edit.text().strip()
        self.name_error.setVisible(False)
        if not ok:
            return None
        ws = workspace_from_urls(backing, mount, self.mount_point_edit.text(), name or None)
        problem = workspace_problem(ws)
        if problem:
            self.name_error.setText(problem[0].upper() + problem[1:] + ".")
            self.name_error.setVisible(True)
            return None
        return ws

    def accept(self) -> None:
        """Close with the workspace chosen, if the fields are valid."""
        ws = self.validate()
        if ws is None:
            return
        self._chosen = ws
        super().accept()

    def workspace(self) -> Workspace | None:
        """The workspace chosen (after the dialog was accepted)."""
        return self._chosen


def _url_problem(url: str) -> str | None:
    if not url:
        return "Enter a store URL or folder."
    try:
        open_store(url)
    except StoreError as exc:
        return str(exc)
    except (OSError, ValueError, ImportError) as exc:
        return f"Cannot use {url!r}: {exc}"
    return None
