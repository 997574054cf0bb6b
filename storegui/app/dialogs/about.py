"""Help > About: the versions of storegui, Qt and the libraries, and the stores in use.

The versions come from the running interpreter (no store call); the stores'
kinds and URLs come from the workspace's ``info()``, asked on a worker so a
slow store never holds up the dialog. "Copy" puts the whole text on the
clipboard for a bug report.
"""

from __future__ import annotations

import platform
import sqlite3
import sys
from html import escape
from importlib import metadata
from typing import Any

import PySide6
from PySide6 import QtCore
from PySide6.QtCore import QSize, Qt, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ... import APP_NAME, __version__
from ...config import Workspace, config_dir, data_dir
from ..icons import app_icon
from ..workers import run_in_thread

ICON_SIZE = 64
#: Libraries whose versions the dialog lists when they are installed.
LIBRARIES = ("platformdirs", "fsspec", "s3fs", "superqt")


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def component_versions() -> list[tuple[str, str]]:
    """``(component, version)`` for storegui, Python, Qt, PySide6, SQLite and the libraries."""
    import shiboken6

    built = QtCore.__version__  # the Qt PySide6 was built against
    qt = qVersion() if qVersion() == built else f"{qVersion()} (PySide6 built with {built})"
    app = QApplication.instance()
    rows = [
        (APP_NAME, __version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()}, "
                   f"{sys.executable})"),
        ("Qt", qt + (f", platform {app.platformName()}" if app is not None else "")),
        ("PySide6", f"{PySide6.__version__} (shiboken6 {shiboken6.__version__})"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    rows += [(name, _installed(name)) for name in LIBRARIES]
    rows.append(("System", platform.platform()))
    return rows


def app_paths() -> list[tuple[str, str]]:
    """Where the app keeps its settings and data (platformdirs)."""
    return [("Settings", str(config_dir())), ("Data", str(data_dir()))]


def describe_store(info: dict) -> str:
    """One line for a store's ``info()``: kind, URL and whether it is read-only or remote."""
    notes = ["read-only"] if info.get("readonly") else []
    if info.get("local") is False:
        notes.append("remote")
    url = info.get("url") or "(no URL)"
    return f"{info.get('kind', '?')} — {url}" + (f" ({', '.join(notes)})" if notes else "")


def store_rows(info: dict) -> list[tuple[str, str]]:
    """``(label, text)`` rows for a MountedStore's ``info()``."""
    rows = []
    if "mount" in info:
        rows.append(("Mount store", describe_store(info["mount"])))
    if "backing" in info:
        rows.append(("Backing store", describe_store(info["backing"])))
    if "mount_point" in info:
        rows.append(("Mount point", repr(info["mount_point"])))
    return rows


class AboutDialog(QDialog):
    """The About box.

    Parameters
    ----------
    workspace : Workspace or None
        The window's workspace (its name and URLs show at once).
    store : MountedStore or None
        The workspace's store; its ``info()`` is asked on a worker.
    """

    def __init__(self, workspace: Workspace | None, store: Any,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle(f"About {APP_NAME}")
        layout = QVBoxLayout(self)

        header = QHBoxLayout()
        icon = QLabel(self)
        icon.setObjectName("aboutIcon")
        # The pixmap at the screen's device pixel ratio, so it is crisp on high-DPI screens.
        icon.setPixmap(app_icon().pixmap(QSize(ICON_SIZE, ICON_SIZE), self.devicePixelRatioF()))
        header.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        title = QLabel(f"<h2>{APP_NAME} {__version__}</h2>"
                       "<p>A desktop manager for key-value stores: a writable mount store "
                       "over a large backing store.</p>", self)
        title.setWordWrap(True)
        header.addWidget(title, 1)
        layout.addLayout(header)

        self._sections: dict[str, list[tuple[str, str]]] = {
            name: [] for name in ("Versions", "Stores in use", "Paths")}
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("aboutDetails")
        self.browser.setMinimumSize(560, 360)
        layout.addWidget(self.browser, 1)
        self._set_section("Versions", component_versions())
        self._set_section("Paths", app_paths())
        if workspace is not None:
            rows = [("Workspace", workspace.name), ("Mount store", workspace.mount_url),
                    ("Backing store", workspace.backing_url),
                    ("Mount point", repr(workspace.mount_point))]
        else:
            rows = [("Workspace", "none open")]
        self._set_section("Stores in use", rows)
        #: Whether the stores' own description has arrived (or failed, or there is no store).
        self.stores_loaded = store is None
        if store is not None:
            self._workspace_row = rows[:1]
            run_in_thread(store.info, on_result=self._on_info, on_error=self._on_info_failed)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("&Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setToolTip("Copy this information to the clipboard (for a bug report)")
        copy.clicked.connect(self.copy_to_clipboard)
        about_qt = buttons.addButton("About &Qt", QDialogButtonBox.ButtonRole.ActionRole)
        about_qt.clicked.connect(lambda: QApplication.aboutQt())
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _set_section(self, name: str, rows: list[tuple[str, str]]) -> None:
        self._sections[name] = rows
        # Plain HTML: the browser draws it in the palette's colours, light or dark.
        parts = []
        for title, section in self._sections.items():
            cells = "".join(f"<tr><td><b>{escape(label)}</b>&nbsp;&nbsp;</td>"
                            f"<td>{escape(text)}</td></tr>" for label, text in section)
            parts.append(f"<h3>{escape(title)}</h3><table cellspacing='2'>{cells}</table>")
        self.browser.setHtml("".join(parts))

    def _on_info(self, info: dict) -> None:
        self._set_section("Stores in use", self._workspace_row + store_rows(info))
        self.stores_loaded = True

    def _on_info_failed(self, exc: BaseException) -> None:
        self._set_section("Stores in use", self._sections["Stores in use"]
                          + [("Store information", f"unavailable: {exc}")])
        self.stores_loaded = True

    def text(self) -> str:
        """Everything the dialog shows, as plain text."""
        lines = [f"{APP_NAME} {__version__}"]
        for name, rows in self._sections.items():
            lines += ["", f"{name}:"] + [f"  {label}: {text}" for label, text in rows]
        return "\n".join(lines)

    def copy_to_clipboard(self) -> None:
        """Put :meth:`text` on the clipboard."""
        QApplication.clipboard().setText(self.text())


def show_about(window: Any) -> AboutDialog:
    """Open the About box over ``window`` (a MainWindow), without blocking; returns it."""
    dialog = AboutDialog(window.workspace, window.store, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
