"""The preview panel over a real MountedStore: text, images, hex, bounded reads."""

from __future__ import annotations

import io
import os
import threading

import pytest
from PySide6.QtCore import QBuffer, QCoreApplication, QIODevice, QThreadPool
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter

from storegui.app.panels.preview import (
    HEX_DUMP_LIMIT,
    HINT,
    PREVIEW_IMAGE_LIMIT,
    PREVIEW_TEXT_LIMIT,
    PreviewPanel,
)
from storegui.app.panels.preview_content import (
    charset,
    decode_text,
    hex_dump,
    image_format,
    media_type,
)
from storegui.stores import MemoryStore, MountedStore


class CountingStream(io.RawIOBase):
    """Counts the bytes a reader takes from a data stream."""

    def __init__(self, stream, counter: list[int]) -> None:
        super().__init__()
        self._stream = stream
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self._counter[0] += len(data)
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


class RecordingMountedStore(MountedStore):
    """A MountedStore that records every data range asked for and every byte read from it.

    ``hold(key)`` makes a range read of ``key`` wait for ``release()`` (a slow store).
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.ranges: list[tuple[str, int, int | None]] = []
        self.bytes_read = [0]
        self.held: str | None = None
        self.gate = threading.Event()
        self.passed_gate = threading.Event()

    def get_data_range(self, key, start, end=None):
        self.ranges.append((key, start, end))
        if key == self.held:
            self.gate.wait(10)
            self.passed_gate.set()
        return CountingStream(super().get_data_range(key, start, end), self.bytes_read)

    def get_data(self, key):  # the preview must only ever read ranges
        raise AssertionError(f"get_data({key!r}) reads the whole value")

    def to_bytes(self, key):
        raise AssertionError(f"to_bytes({key!r}) reads the whole value")


def png_bytes(width: int, height: int, noisy: bool = False) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("#2a82da"))
    if noisy:  # random pixels do not compress: a big file
        raw = os.urandom(width * height * 4)
        image = QImage(raw, width, height, QImage.Format.Format_RGB32).copy()
    else:
        painter = QPainter(image)
        painter.fillRect(0, 0, width // 2, height, QColor("#ffffff"))
        painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" '
       b'height="20"><rect width="40" height="20" fill="red"/></svg>')


@pytest.fixture
def store(qapp):
    store = RecordingMountedStore("work/", MemoryStore(), MemoryStore())
    store.from_bytes("work/hello.txt", "Hello, world\nÄpfel\n".encode(), {})
    store.from_bytes("work/latin.txt", "caf\xe9 cr\xe8me\n".encode("latin-1"),
                     {"media_type": "text/plain; charset=latin-1"})
    store.from_bytes("work/picture.png", png_bytes(64, 48), {"media_type": "image/png"})
    store.from_bytes("work/drawing.svg", SVG, {})
    store.from_bytes("work/blob.bin", bytes(range(256)) * 40, {})
    store.from_bytes("work/empty", b"", {})
    store.backing_store.from_bytes("archive/remote.txt", b"from the backing store\n", {})
    store.ranges.clear()
    return store


@pytest.fixture
def panel(qtbot, store):
    widget = PreviewPanel()
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    widget.set_store(store)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)


def show(qtbot, panel, key):
    panel.show_key(key)
    qtbot.waitUntil(lambda: not panel.is_loading())


def test_text_is_shown_as_text(qtbot, panel):
    show(qtbot, panel, "work/hello.txt")
    assert panel.stack.currentWidget() is panel.text_view
    assert panel.text_view.toPlainText() == "Hello, world\nÄpfel\n"
    assert panel.text_view.isReadOnly()
    assert panel.info_label.text().startswith("Text (UTF-8)")
    assert "Showing the first" not in panel.info_label.text()


def test_text_uses_the_charset_the_metadata_names(qtbot, panel):
    show(qtbot, panel, "work/latin.txt")
    assert panel.text_view.toPlainText() == "café crème\n"
    assert "LATIN-1" in panel.info_label.text()


def test_a_key_of_the_backing_store_is_previewed_too(qtbot, panel):
    show(qtbot, panel, "archive/remote.txt")
    assert panel.text_view.toPlainText() == "from the backing store\n"


@pytest.mark.parametrize(("key", "size", "label"), [("work/picture.png", (64, 48), "PNG image"),
                                                    ("work/drawing.svg", (40, 20), "SVG image")])
def test_images_are_shown_as_images(qtbot, panel, key, size, label):
    show(qtbot, panel, key)
    assert panel.stack.currentWidget() is panel.image_view
    pixmap = panel.image_view.pixmap()
    assert (pixmap.width(), pixmap.height()) == size
    assert panel.info_label.text().startswith(f"{label}, {size[0]} × {size[1]} pixels")


def test_the_image_is_scaled_to_fit_keeping_its_aspect_ratio(qtbot, panel, store):
    store.from_bytes("work/wide.png", png_bytes(800, 200), {})
    show(qtbot, panel, "work/wide.png")
    view = panel.image_view
    panel.resize(420, 480)
    qtbot.waitUntil(lambda: view.width() < 420)
    target = view.target_rect()
    assert view.rect().contains(target)
    assert target.width() == view.width()
    assert abs(target.width() / target.height() - 4.0) < 0.05
    panel.resize(1000, 700)
    qtbot.waitUntil(lambda: view.width() > 900)
    assert (view.target_rect().width(), view.target_rect().height()) == (800, 200)  # not enlarged


def test_binary_data_is_shown_as_a_hex_dump_of_the_first_bytes(qtbot, panel):
    show(qtbot, panel, "work/blob.bin")
    assert panel.stack.currentWidget() is panel.hex_view
    lines = panel.hex_view.toPlainText().splitlines()
    assert lines[0].startswith("00000000  00 01 02 03 04 05 06 07")
    per_line = 16 if lines[1].startswith("00000010") else 8
    assert len(lines) == HEX_DUMP_LIMIT // per_line
    assert lines[-1].startswith(f"{HEX_DUMP_LIMIT - per_line:08x}  ")
    assert lines[2 * 16 // per_line].endswith("|" + " !\"#$%&'()*+,-./"[:per_line] + "|")
    info = panel.info_label.text()
    assert info.startswith("Binary data") and "Showing the first 4,096 of 10,240 bytes" in info
    # What the user sees: every character as wide as every other (Qt reports some
    # monospaced fonts, such as Noto Sans Mono, as not fixed-pitch).
    metrics = QFontMetrics(panel.hex_view.font())
    assert len({metrics.horizontalAdvance(c) for c in "0123456789abcdef |.iWM"}) == 1


def test_the_hex_dump_fits_a_narrow_panel(qtbot, panel):
    show(qtbot, panel, "work/blob.bin")
    panel.resize(300, 400)
    qtbot.waitUntil(lambda: panel.hex_view.toPlainText().splitlines()[1].startswith("00000008"))
    panel.resize(900, 400)
    qtbot.waitUntil(lambda: panel.hex_view.toPlainText().splitlines()[1].startswith("00000010"))


def test_a_large_text_key_is_read_only_up_to_the_limit(qtbot, panel, store):
    size = 3 * 1024 * 1024
    line = b"0123456789 abcdefghij\n"
    store.from_bytes("work/big.log", (line * (size // len(line) + 1))[:size], {})
    store.bytes_read[0] = 0
    show(qtbot, panel, "work/big.log")
    assert store.ranges == [("work/big.log", 0, PREVIEW_TEXT_LIMIT)]
    assert store.bytes_read[0] == PREVIEW_TEXT_LIMIT
    assert panel.stack.currentWidget() is panel.text_view
    assert len(panel.text_view.toPlainText()) == PREVIEW_TEXT_LIMIT
    assert (f"Showing the first {PREVIEW_TEXT_LIMIT:,} of {size:,} bytes"
            in panel.info_label.text())


def test_a_large_image_is_read_up_to_the_image_limit(qtbot, panel, store):
    data = png_bytes(600, 400, noisy=True)
    assert PREVIEW_TEXT_LIMIT < len(data) < PREVIEW_IMAGE_LIMIT
    store.from_bytes("work/photo.png", data, {})
    store.bytes_read[0] = 0
    show(qtbot, panel, "work/photo.png")
    assert panel.stack.currentWidget() is panel.image_view
    assert panel.image_view.pixmap().width() == 600
    assert all(end is not None and end <= PREVIEW_IMAGE_LIMIT for _, _, end in store.ranges)
    assert store.bytes_read[0] == len(data)


def test_an_image_beyond_the_image_limit_is_not_read_whole(qtbot, panel, store):
    size = PREVIEW_IMAGE_LIMIT + 1024
    store.from_bytes("work/huge.png", b"\x89PNG\r\n\x1a\n" + bytes(size - 8), {})
    store.bytes_read[0] = 0
    show(qtbot, panel, "work/huge.png")
    assert store.ranges == [("work/huge.png", 0, PREVIEW_TEXT_LIMIT)]
    assert store.bytes_read[0] == PREVIEW_TEXT_LIMIT
    assert panel.stack.currentWidget() is panel.hex_view
    assert "larger than the" in panel.info_label.text()


def test_an_empty_key_says_so(qtbot, panel):
    show(qtbot, panel, "work/empty")
    assert panel.stack.currentWidget() is panel.message_label
    assert "no data" in panel.message_label.text()


@pytest.mark.parametrize("key", [None, "work/"])
def test_no_key_or_a_folder_shows_a_hint(qtbot, panel, key):
    show(qtbot, panel, "work/hello.txt")
    show(qtbot, panel, key)
    assert panel.message_label.text() == HINT
    assert panel.stack.currentWidget() is panel.message_label


def test_a_missing_key_shows_the_error(qtbot, panel):
    with qtbot.waitSignal(panel.statusMessage) as status:
        panel.show_key("work/missing")
    assert "Could not preview work/missing" in status.args[0]
    assert "no such key" in panel.message_label.text()


def test_switching_keys_quickly_shows_the_last_one_only(qtbot, panel, store):
    store.held = "work/picture.png"
    panel.show_key("work/picture.png")
    panel.show_key("work/blob.bin")
    panel.show_key("work/hello.txt")
    qtbot.waitUntil(lambda: not panel.is_loading())
    store.gate.set()
    qtbot.waitUntil(store.passed_gate.is_set)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)
    QCoreApplication.processEvents()  # deliver the stale results, if they were still wanted
    assert panel.key() == "work/hello.txt"
    assert panel.stack.currentWidget() is panel.text_view
    assert panel.text_view.toPlainText() == "Hello, world\nÄpfel\n"


# ---------------------------------------------------------------- detection rules


@pytest.mark.parametrize(
    ("head", "expected"),
    [(b"\x89PNG\r\n\x1a\n....", "PNG"), (b"\xff\xd8\xff\xe0", "JPEG"), (b"GIF89a..", "GIF"),
     (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"), (b"BM" + bytes(12) + (40).to_bytes(4, "little"),
                                                 "BMP"),
     (b"BMW drivers love text files", None), (b"  <svg viewBox='0 0 1 1'></svg>", "SVG"),
     (b"<?xml version='1.0'?><!-- c --><svg>", "SVG"), (b"<html><svg></svg></html>", None),
     (b"plain text", None)],
)
def test_image_format_by_magic_bytes(head, expected):
    assert image_format(head) == expected


def test_decode_text_rules():
    assert decode_text("Grüße".encode(), None, False) == ("Grüße", "utf-8")
    cut = "añb".encode()[:2]  # cut inside the two-byte ñ
    assert decode_text(cut, None, True) == ("a", "utf-8")
    assert decode_text(cut, None, False) is None
    assert decode_text(b"a\x00b", None, False) is None
    assert decode_text(bytes(range(1, 32)) * 4, None, False) is None
    assert decode_text(b"\xff\xfeh\x00i\x00", None, False) == ("hi", "utf-16")
    assert decode_text(b"tabs\tand\r\nnewlines\x1b[0m", None, False) is not None


def test_media_type_and_charset_from_metadata():
    assert media_type({"media_type": "Image/PNG; q=1"}) == "image/png"
    assert media_type({"content_type": "text/csv"}) == "text/csv"
    assert media_type({"type": "report"}) == ""
    assert charset({"content_type": "text/plain; charset=\"ISO-8859-1\""}) == "ISO-8859-1"
    assert charset({"charset": "no-such-codec"}) is None


def test_hex_dump_layout():
    assert hex_dump(b"AB\x00", start=16) == "00000010  41 42 00" + " " * 40 + "  |AB.|"
