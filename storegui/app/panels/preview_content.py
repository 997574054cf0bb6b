"""What a preview shows for a key's data, decided off the GUI thread.

:func:`load_preview` reads a bounded prefix of a key (see
:mod:`storegui.app.panels.preview` for the limits) and returns a
:class:`Preview`: text, a decoded QImage, or bytes for a hex dump. Only
QImage is used from Qt, which is safe on a worker thread (unlike QPixmap).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage, QImageReader

from ..formatting import format_size

PREVIEW_TEXT_LIMIT = 256 * 1024
PREVIEW_IMAGE_LIMIT = 8 * 1024 * 1024
HEX_DUMP_LIMIT = 4096
#: Decoded images larger than this on a side are scaled down while decoding.
IMAGE_MAX_SIDE = 4096

_MEDIA_TYPE_FIELDS = ("media_type", "mimetype", "mime_type", "content_type", "type")
_CONTROL_OK = frozenset("\t\n\r\f\v\x1b")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
)
_SVG_START = re.compile(rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*"
                        rb"(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Preview:
    """What the panel shows for one key (built on a worker).

    ``kind`` is "text", "image", "hex" or "empty"; ``content`` is the text,
    the QImage or the bytes to dump; ``shown`` the bytes the preview covers and
    ``size`` the key's full size (None if unknown); ``description`` says what
    was detected ("PNG image, 64 × 48", "text (utf-8)").
    """

    kind: str
    content: Any
    shown: int
    size: int | None
    description: str

    @property
    def truncated(self) -> bool:
        """Whether the preview covers only a prefix of the data."""
        return self.size is not None and self.shown < self.size


def media_type(metadata: dict) -> str:
    """The media type the metadata names ("image/png"), lower case, without parameters."""
    for field in _MEDIA_TYPE_FIELDS:
        value = metadata.get(field)
        if isinstance(value, str) and "/" in value:
            return value.split(";", 1)[0].strip().lower()
    return ""


def charset(metadata: dict) -> str | None:
    """The text encoding the metadata names (a ``charset`` field or media type parameter)."""
    for field in ("charset", "encoding"):
        value = metadata.get(field)
        if isinstance(value, str) and _known_codec(value):
            return value
    for field in _MEDIA_TYPE_FIELDS:
        value = metadata.get(field)
        if isinstance(value, str):
            found = re.search(r"charset=\"?([\w.:-]+)", value, re.IGNORECASE)
            if found and _known_codec(found.group(1)):
                return found.group(1)
    return None


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def image_format(head: bytes) -> str | None:
    """The image format the first bytes announce (PNG, JPEG, GIF, BMP, WebP, TIFF, ICO, SVG)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    # "BM" alone is too weak (text can start with it): check the DIB header size too.
    if head[:2] == b"BM" and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
            return "BMP"
    if _SVG_START.match(head[:4096]):
        return "SVG"
    return None


def decode_text(data: bytes, encoding: str | None, truncated: bool) -> tuple[str, str] | None:
    """``(text, encoding)`` if ``data`` reads as text, else None.

    A prefix cut inside a multi-byte character is fine when ``truncated``.
    Text with NUL bytes or more than 1 % other control characters is binary.
    """
    if data.startswith(codecs.BOM_UTF8):
        encoding = encoding or "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = encoding or "utf-16"
    encoding = encoding or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        text = decoder.decode(data, final=not truncated)
    except (UnicodeDecodeError, LookupError):
        return None
    if "\x00" in text:
        return None
    controls = sum(1 for ch in text if (ch < " " or ch == "\x7f") and ch not in _CONTROL_OK)
    if controls > max(1, len(text) // 100):
        return None
    return text, encoding


def hex_dump(data: bytes, start: int = 0, per_line: int = 16) -> str:
    """Lines of offset, ``per_line`` hex bytes (in groups of 8) and their ASCII.

    With 16 bytes a line this is the layout of ``hexdump -C``.
    """
    width = per_line * 3 + (per_line - 1) // 8 - 1
    lines = []
    for offset in range(0, len(data), per_line):
        chunk = data[offset:offset + per_line]
        groups = (chunk[i:i + 8] for i in range(0, len(chunk), 8))
        hex_part = "  ".join(" ".join(f"{b:02x}" for b in group) for group in groups)
        ascii_part = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + offset:08x}  {hex_part:<{width}}  |{ascii_part}|")
    return "\n".join(lines)


def hex_line_width(per_line: int) -> int:
    """Characters in one :func:`hex_dump` line of ``per_line`` bytes."""
    return 8 + 2 + per_line * 3 + (per_line - 1) // 8 - 1 + 2 + per_line + 2


def decode_image(data: bytes) -> QImage | None:
    """A QImage of ``data`` (scaled down past :data:`IMAGE_MAX_SIDE`), or None.

    Safe on a worker thread (QImage, unlike QPixmap, may be used off the GUI thread).
    """
    buffer = QBuffer()
    buffer.setData(QByteArray(data))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    reader.setAutoTransform(True)
    if not reader.canRead():
        return None
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > IMAGE_MAX_SIDE:
        reader.setScaledSize(size.scaled(IMAGE_MAX_SIDE, IMAGE_MAX_SIDE,
                                         Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    buffer.close()
    return None if image.isNull() else image


def read_prefix(store: Any, key: str, start: int, end: int) -> bytes:
    """Bytes ``start`` .. ``end - 1`` of ``key`` (fewer at the end of the data); never more."""
    want = end - start
    chunks = []
    with store.get_data_range(key, start, end) as stream:
        while want > 0:
            chunk = stream.read(want)
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
    return b"".join(chunks)


def load_preview(store: Any, key: str) -> Preview:
    """Read a bounded prefix of ``key`` and decide how to show it (blocking; see module doc).

    Raises
    ------
    KeyError
        If the key does not exist; StoreError if the store fails.
    """
    size = store.stat(key).size
    metadata = store.get_metadata(key)
    first = PREVIEW_TEXT_LIMIT if size is None else min(size, PREVIEW_TEXT_LIMIT)
    head = read_prefix(store, key, 0, first) if first else b""
    if size is None and len(head) < PREVIEW_TEXT_LIMIT:
        size = len(head)
    if not head:
        return Preview("empty", None, 0, size, "Empty")
    kind = image_format(head)
    declared = media_type(metadata)
    note = ""
    if kind or declared.startswith("image/"):
        if size is not None and size > PREVIEW_IMAGE_LIMIT:
            note = f"; image larger than the {format_size(PREVIEW_IMAGE_LIMIT)} preview limit"
        else:
            data = head
            if len(head) == PREVIEW_TEXT_LIMIT and size != len(head):
                data += read_prefix(store, key, len(head), PREVIEW_IMAGE_LIMIT)
            image = decode_image(data)
            if image is not None:
                name = kind or declared.split("/", 1)[1].upper()
                return Preview("image", image, len(data), size,
                               f"{name} image, {image.width()} × {image.height()} pixels")
            note = f"; not a readable {kind or declared} image"
    truncated = size is None or len(head) < size
    decoded = decode_text(head, charset(metadata), truncated)
    if decoded is not None:
        text, encoding = decoded
        return Preview("text", text, len(head), size, f"Text ({encoding.upper()}){note}")
    shown = head[:HEX_DUMP_LIMIT]
    return Preview("hex", shown, len(shown), size, f"Binary data{note}")


__all__ = ["HEX_DUMP_LIMIT", "IMAGE_MAX_SIDE", "PREVIEW_IMAGE_LIMIT", "PREVIEW_TEXT_LIMIT",
           "Preview", "charset", "decode_image", "decode_text", "hex_dump", "hex_line_width",
           "image_format", "load_preview", "media_type", "read_prefix"]
