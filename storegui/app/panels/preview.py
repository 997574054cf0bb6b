"""The preview panel: a bounded look at the selected key's data.

Never reads more than a bounded prefix of a key, on a worker:

- up to :data:`PREVIEW_TEXT_LIMIT` (256 KiB) first, enough for text and a hex dump;
- up to :data:`PREVIEW_IMAGE_LIMIT` (8 MiB) in all, only when those first bytes
  (or the metadata's media type) say the key is an image no larger than that.

Text is shown when the prefix decodes (as UTF-8, or the charset the metadata
names) without many control characters; images (PNG, JPEG, GIF, BMP, WebP,
TIFF, ICO, SVG) are decoded on the worker into a QImage; anything else shows a
hex dump of the first :data:`HEX_DUMP_LIMIT` (4 KiB) bytes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QImage,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QStackedWidget, QVBoxLayout, QWidget

from ..formatting import format_size
from ..workers import run_in_thread
from .key_details import describe_error, is_folder
from .metadata_table import error_colour
from .preview_content import (
    HEX_DUMP_LIMIT,
    PREVIEW_IMAGE_LIMIT,
    PREVIEW_TEXT_LIMIT,
    Preview,
    hex_dump,
    hex_line_width,
    load_preview,
)

HINT = "Select a key to preview its data"


def _load(generation: int, store: Any, key: str) -> tuple[int, Any]:
    try:
        return generation, load_preview(store, key)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        return generation, exc


class ImageView(QWidget):
    """Shows an image scaled down to fit (never up), centred, aspect ratio kept."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.setMinimumSize(32, 32)

    def set_image(self, image: QImage | None) -> None:
        """Show ``image`` (None clears)."""
        self._pixmap = QPixmap() if image is None else QPixmap.fromImage(image)
        self.update()

    def pixmap(self) -> QPixmap:
        """The image shown, at full size."""
        return self._pixmap

    def target_rect(self) -> QRect:
        """Where the image is drawn in the widget."""
        if self._pixmap.isNull():
            return QRect()
        size = self._pixmap.size()
        if size.width() > self.width() or size.height() > self.height():
            size = size.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRect(0, 0, max(1, size.width()), max(1, size.height()))
        rect.moveCenter(self.rect().center())
        return rect

    def sizeHint(self) -> QSize:
        return QSize(256, 256)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap.isNull():
            return
        painter = QPainter(self)
        target = self.target_rect()
        if self._pixmap.hasAlphaChannel():
            # A checkerboard shows which parts are transparent.
            light, dark = QColor(200, 200, 200), QColor(150, 150, 150)
            step = 8
            painter.setClipRect(target)
            for y in range(target.top(), target.bottom() + 1, step):
                for x in range(target.left(), target.right() + 1, step):
                    odd = ((x - target.left()) // step + (y - target.top()) // step) % 2
                    painter.fillRect(x, y, step, step, dark if odd else light)
            painter.setClipping(False)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, self._pixmap)
        painter.end()


class PreviewPanel(QWidget):
    """A preview of the selected key's data: text, an image, or a hex dump.

    ``set_store(store)`` then ``show_key(key)``; None or a folder (ending
    with "/") shows a hint. Reads are bounded (see the module docstring)
    and run on a worker; a result for a key no longer selected is dropped.

    Signals
    -------
    statusMessage(str)
        A message for the status bar (a failed read).
    """

    statusMessage = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewPanel")
        self._store: Any = None
        self._key: str | None = None
        self._generation = 0
        self._preview: Preview | None = None
        self._loading = False
        self._hex_per_line = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.info_label = QLabel(self)
        self.info_label.setObjectName("previewInfo")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.stack = QStackedWidget(self)
        layout.addWidget(self.stack, 1)

        self.message_label = QLabel(self.stack)
        self.message_label.setObjectName("previewMessage")
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.text_view = QPlainTextEdit(self.stack)
        self.text_view.setObjectName("previewText")
        self.text_view.setReadOnly(True)
        self.text_view.setFont(fixed)
        self.image_view = ImageView(self.stack)
        self.image_view.setObjectName("previewImage")
        self.hex_view = QPlainTextEdit(self.stack)
        self.hex_view.setObjectName("previewHex")
        self.hex_view.setReadOnly(True)
        self.hex_view.setFont(fixed)
        self.hex_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.hex_view.installEventFilter(self)
        for page in (self.message_label, self.text_view, self.image_view, self.hex_view):
            self.stack.addWidget(page)
        self._show_message(HINT)

    # ---------------------------------------------------------------- public API

    def set_store(self, store: Any) -> None:
        """Preview keys of ``store`` (or None); clears the panel."""
        self._store = store
        self.show_key(None)

    def show_key(self, key: str | None) -> None:
        """Preview ``key`` (read on a worker); None or a folder shows a hint."""
        self._generation += 1
        self._preview = None
        if is_folder(key) or self._store is None:
            self._key = None
            self._loading = False
            self._show_message(HINT)
            return
        self._key = key
        self._loading = True
        self._show_message("Loading…")
        run_in_thread(_load, self._generation, self._store, key, on_result=self._on_loaded)

    def reload(self) -> None:
        """Read the shown key again (after its data changed)."""
        self.show_key(self._key)

    def key(self) -> str | None:
        """The key shown, or None."""
        return self._key

    def preview(self) -> Preview | None:
        """What is shown for the current key, once loaded."""
        return self._preview

    def is_loading(self) -> bool:
        """Whether a read is in progress."""
        return self._loading

    # ---------------------------------------------------------------- internals

    def _show_message(self, text: str, error: bool = False) -> None:
        self.info_label.clear()
        self.info_label.setVisible(False)
        self.text_view.clear()
        self.hex_view.clear()
        self.image_view.set_image(None)
        self.message_label.setStyleSheet(f"color: {error_colour()};" if error else "")
        self.message_label.setText(text)
        self.stack.setCurrentWidget(self.message_label)

    def _on_loaded(self, result: tuple[int, Any]) -> None:
        generation, preview = result
        if generation != self._generation:
            return  # another key was selected meanwhile
        self._loading = False
        if not isinstance(preview, Preview):
            text = f"Could not preview {self._key}: {describe_error(preview)}"
            self._show_message(text, error=True)
            self.statusMessage.emit(text)
            return
        self._preview = preview
        if preview.kind == "empty":
            self._show_message("This key holds no data (0 bytes).")
            return
        info = preview.description
        if preview.truncated:
            info += f". Showing the first {preview.shown:,} of {preview.size:,} bytes."
        elif preview.size is not None:
            info += f", {format_size(preview.size)}"
        self.info_label.setText(info)
        self.info_label.setVisible(True)
        if preview.kind == "image":
            self.image_view.set_image(preview.content)
            self.stack.setCurrentWidget(self.image_view)
        elif preview.kind == "text":
            self.text_view.setPlainText(preview.content)
            self.stack.setCurrentWidget(self.text_view)
        else:
            self._hex_per_line = 0
            self.stack.setCurrentWidget(self.hex_view)  # sized only once it is the current page
            self._fill_hex()

    def _fill_hex(self, width: int | None = None) -> None:
        # 16 bytes a line where they fit, else 8: no sideways scrolling in a narrow panel.
        preview = self._preview
        if preview is None or preview.kind != "hex":
            return
        view = self.hex_view
        usable = (view.width() if width is None else width) - 2 * view.frameWidth() \
            - view.verticalScrollBar().sizeHint().width() \
            - 2 * int(view.document().documentMargin())
        chars = usable // max(1, view.fontMetrics().horizontalAdvance("0"))
        per_line = 16 if chars >= hex_line_width(16) else 8
        if per_line != self._hex_per_line:
            self._hex_per_line = per_line
            view.setPlainText(hex_dump(preview.content, per_line=per_line))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.hex_view and isinstance(event, QResizeEvent):
            # Filtered before the view lays out its viewport: use the new size.
            self._fill_hex(event.size().width())
        return super().eventFilter(watched, event)


__all__ = ["HEX_DUMP_LIMIT", "HINT", "ImageView", "PREVIEW_IMAGE_LIMIT", "PREVIEW_TEXT_LIMIT",
           "PreviewPanel"]
