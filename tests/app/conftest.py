"""Fixtures for the app's tests: real stores on tmp_path, the real window, recorded dialogs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QMessageBox

# tests/app is on sys.path (pytest's rootdir-relative import of this conftest).
from sample_stores import MOUNT_POINT, fill

from storegui.config import Workspace
from storegui.stores import MemoryStore, MountedStore, open_store


@pytest.fixture(autouse=True)
def _drain_thread_pool(qapp):
    """After each test, let every worker end and deliver its last signals."""
    yield
    QThreadPool.globalInstance().waitForDone(15000)
    qapp.processEvents()


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """A workspace of a directory backing store and an SQLite mount store, filled."""
    ws = Workspace("test", str(tmp_path / "backing"), f"sqlite://{tmp_path / 'mount.db'}",
                   MOUNT_POINT)
    (tmp_path / "backing").mkdir()
    backing, mount = open_store(ws.backing_url), open_store(ws.mount_url)
    fill(backing, mount)
    backing.disconnect()
    mount.disconnect()
    return ws


@pytest.fixture
def memory_store() -> MountedStore:
    """The sample key set as a MountedStore over two MemoryStores."""
    mount, backing = MemoryStore(), MemoryStore()
    fill(backing, mount)
    return MountedStore(MOUNT_POINT, mount, backing)


@dataclass
class Dialogs:
    """Message boxes the code under test opened (instead of blocking the test)."""

    shown: list[tuple[str, str, str]] = field(default_factory=list)
    answer: QMessageBox.StandardButton = QMessageBox.StandardButton.Yes

    def texts(self, kind: str | None = None) -> list[str]:
        return [text for k, _title, text in self.shown if kind is None or k == kind]


@pytest.fixture
def dialogs(monkeypatch) -> Dialogs:
    """Record QMessageBox calls; ``question`` answers ``dialogs.answer``."""
    record = Dialogs()

    def recorder(kind: str, result: Any):
        def show(_parent, title, text, *args, **kwargs):
            record.shown.append((kind, title, text))
            return record.answer if result is None else result
        return staticmethod(show)

    ok = QMessageBox.StandardButton.Ok
    monkeypatch.setattr(QMessageBox, "warning", recorder("warning", ok))
    monkeypatch.setattr(QMessageBox, "critical", recorder("critical", ok))
    monkeypatch.setattr(QMessageBox, "information", recorder("information", ok))
    monkeypatch.setattr(QMessageBox, "question", recorder("question", None))
    return record


@pytest.fixture
def make_window(qtbot, dialogs):
    """Build a shown MainWindow for a workspace (and optional ready-made store)."""
    from storegui.app import MainWindow

    def make(ws: Workspace, store: Any = None, wait: bool = True) -> MainWindow:
        window = MainWindow(ws, store=store)
        qtbot.addWidget(window)
        window.show()
        if wait:
            qtbot.waitUntil(lambda: not window.model.is_loading() and window.facts is not None)
        return window

    return make


@pytest.fixture
def window(make_window, workspace):
    """The main window on the sample workspace, top level loaded."""
    return make_window(workspace)
