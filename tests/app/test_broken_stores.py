"""A workspace whose stores are corrupt or foreign: the window says so and stays open."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from storegui.config import Workspace


def _error_shown(window) -> str:
    message = window.statusBar().currentMessage()
    root = window.model.index(0, 0)
    row_text = window.model.data(root, Qt.ItemDataRole.DisplayRole) if root.isValid() else ""
    return f"{message}\n{row_text}"


def test_truncated_sqlite_mount_store(make_window, qtbot, tmp_path):
    db = tmp_path / "mount.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x01" * 300)  # a header, then nothing usable
    (tmp_path / "backing").mkdir()
    window = make_window(Workspace("t", str(tmp_path / "backing"), f"sqlite://{db}", ""),
                         wait=False)
    qtbot.waitUntil(lambda: str(db) in window.statusBar().currentMessage(), timeout=10000)
    assert window.isVisible()
    assert str(db) in _error_shown(window)


def test_folder_that_is_not_a_store(make_window, qtbot, tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8 not ours")
    window = make_window(Workspace("t", str(foreign), "memory://", ""), wait=False)
    qtbot.waitUntil(lambda: "not a storegui store" in window.statusBar().currentMessage(),
                    timeout=10000)
    assert str(foreign) in window.statusBar().currentMessage()
    assert window.isVisible()


def test_key_with_invalid_metadata_json(make_window, qtbot, tmp_path):
    from storegui.stores import FileSystemStore

    backing_dir = tmp_path / "backing"
    store = FileSystemStore(backing_dir)
    store.from_bytes("good", b"fine", {"ok": True})
    store.from_bytes("bad", b"data", {"x": 1})
    store.disconnect()
    record = next(p for p in backing_dir.rglob("bad@v"))
    raw = record.read_bytes()
    start = raw.index(b'{"x":1}')
    record.write_bytes(raw[:start] + b'{"x":!' + raw[start + 6:])

    window = make_window(Workspace("t", str(backing_dir), "memory://", ""))
    names = [window.model.data(window.model.index(r, 0)) for r in range(window.model.rowCount())]
    assert "good" in names and "bad" in names  # the listing survives the damaged key
    row = names.index("bad")
    window.tree.setCurrentIndex(window.model.index(row, 0))
    message = window.metadata_panel.findChild(QLabel, "metadataMessage")
    qtbot.waitUntil(lambda: "bad" in message.text(), timeout=10000)
    assert message.isVisible()
    assert window.isVisible()
