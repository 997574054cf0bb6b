"""What the metadata panel shows above its table: a key's origin, size and times.

:func:`load_key_details` does the store reads (on a worker);
:class:`KeyDetailsHeader` shows the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QIcon, QResizeEvent
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QMenu, QSizePolicy, QWidget

from storegui import resources_path
from storegui.stores.errors import StoreError

from ..formatting import KEY_ORIGIN_TIPS, ORIGIN_LABELS, format_size, format_time


def is_folder(key: str | None) -> bool:
    """Whether ``key`` is nothing or a folder (a tree prefix ends with "/")."""
    return not key or key.endswith("/")


def describe_error(exc: BaseException) -> str:
    """A message a user can read for an exception raised by a store call."""
    if isinstance(exc, KeyError) and not isinstance(exc, StoreError):
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    return str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class KeyDetails:
    """A key's metadata, size, times, origin and write permission, as read on a worker."""

    key: str
    metadata: dict
    size: int | None
    created: float | None
    modified: float | None
    origin: str | None
    write_denied_reason: str | None


def load_key_details(store: Any, key: str) -> KeyDetails:
    """Read what the metadata panel shows about ``key`` (blocking: call it on a worker).

    Works with a MountedStore and, without origin, with any store.

    Raises
    ------
    KeyError
        If the key does not exist; StoreError if the store fails.
    """
    value = store.get(key)  # metadata, size and both times; the data stays unopened
    value.close()
    size = value.size
    if size is None:
        size = store.stat(key).size
    origin = store.origin(key) if hasattr(store, "origin") else None
    if hasattr(store, "write_denied_reason"):
        reason = store.write_denied_reason(key)
    else:
        reason = "the store is read-only" if store.info().get("readonly") else None
    return KeyDetails(key, value.metadata, size, value.created, value.modified, origin, reason)


class ElidedLabel(QLabel):
    """A one-line label that elides its text in the middle; the full text is in the tooltip.

    Its context menu copies the full text (a selection of elided text would
    copy the ellipsis).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def full_text(self) -> str:
        """The text before eliding."""
        return self._full

    def set_full_text(self, text: str) -> None:
        """Show ``text``, elided in the middle if it does not fit."""
        self._full = text
        self.setToolTip(text)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle,
                                              max(self.width(), 10))
        if shown != self.text():
            self.setText(shown)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def minimumSizeHint(self) -> QSize:
        return QSize(40, super().minimumSizeHint().height())

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = QMenu(self)
        menu.addAction("Copy", lambda: QGuiApplication.clipboard().setText(self._full))
        menu.exec(event.globalPos())


class KeyDetailsHeader(QWidget):
    """Key, origin (with its icon), size, created and modified of one key, as a form."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.key_label = ElidedLabel(self)
        self.key_label.setObjectName("keyLabel")
        origin_row = QWidget(self)
        origin_layout = QHBoxLayout(origin_row)
        origin_layout.setContentsMargins(0, 0, 0, 0)
        self.origin_icon = QLabel(origin_row)
        self.origin_label = QLabel(origin_row)
        self.origin_label.setObjectName("originLabel")
        origin_layout.addWidget(self.origin_icon)
        origin_layout.addWidget(self.origin_label, 1)
        self.size_label = QLabel(self)
        self.size_label.setObjectName("sizeLabel")
        self.created_label = QLabel(self)
        self.created_label.setObjectName("createdLabel")
        self.modified_label = QLabel(self)
        self.modified_label.setObjectName("modifiedLabel")
        for title, widget in (("Key:", self.key_label), ("Origin:", origin_row),
                              ("Size:", self.size_label), ("Created:", self.created_label),
                              ("Modified:", self.modified_label)):
            form.addRow(title, widget)

    def show_details(self, key: str, details: KeyDetails | None) -> None:
        """Show ``key``; the other fields from ``details``, or "…" while they load."""
        self.key_label.set_full_text(key)
        if details is None:
            self.origin_icon.clear()
            for label in (self.origin_label, self.size_label, self.created_label,
                          self.modified_label):
                label.setText("…")
                label.setToolTip("")
            return
        origin = details.origin or ""
        icon_path = resources_path() / "icons" / f"origin-{origin}.svg"
        if origin and icon_path.is_file():
            self.origin_icon.setPixmap(QIcon(str(icon_path)).pixmap(16, 16))
        else:
            self.origin_icon.clear()
        self.origin_label.setText(ORIGIN_LABELS.get(origin, origin or "not mounted"))
        self.origin_label.setToolTip(KEY_ORIGIN_TIPS.get(origin, ""))
        self.origin_icon.setToolTip(self.origin_label.toolTip())
        self.size_label.setText(format_size(details.size) or "unknown")
        self.size_label.setToolTip("" if details.size is None else f"{details.size:,} bytes")
        self.created_label.setText(format_time(details.created) or "unknown")
        self.modified_label.setText(format_time(details.modified) or "unknown")


__all__ = ["ElidedLabel", "KeyDetails", "KeyDetailsHeader", "describe_error", "is_folder",
           "load_key_details"]
