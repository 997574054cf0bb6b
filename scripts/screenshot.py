"""Render the main window on a small sample workspace to docs/screenshot.png (offscreen).

Builds, in a temporary folder, a directory backing store and an SQLite mount
store mounted at ``projects/``, with keys of every origin (local, shadowing,
remote), opens the real window, selects a key so the metadata panel and the
preview fill, waits for every load, and saves the window::

    python scripts/screenshot.py [--output docs/screenshot.png] [--dark]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

README = b"""# Field survey data

Raw exports live under archive/; active work under projects/.
"""

NOTES = b"""# Alpha: notes

- Re-ran the soil cores with the new calibration (2024-05-02).
- Outliers in plot 7 come from a flooded sensor; excluded below.
- TODO: push results.json once reviewed.

| plot | cores | kept |
|------|-------|------|
| 3    | 12    | 12   |
| 7    | 10    | 8    |
"""

CSV = b"plot,depth_cm,ph,moisture\n3,10,6.4,0.21\n3,20,6.6,0.19\n7,10,5.9,0.33\n7,20,6.1,0.30\n"


def sample_png() -> bytes:
    """A small gradient chart as PNG bytes (drawn with Qt; needs a QGuiApplication)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF
    from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen

    image = QImage(240, 160, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    gradient = QLinearGradient(QPointF(0, 0), QPointF(0, 160))
    gradient.setColorAt(0, QColor("#90caf9"))
    gradient.setColorAt(1, QColor("#e3f2fd"))
    p.fillRect(0, 0, 240, 160, gradient)
    p.setPen(QPen(QColor("#1565c0"), 3))
    points = [QPointF(10 + i * 22, 130 - (i * 37 % 90)) for i in range(11)]
    p.drawPolyline(points)
    p.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def build_sample(root: Path):
    """Create the sample stores under ``root``; returns the Workspace."""
    from storegui.config import Workspace
    from storegui.stores import open_store

    ws = Workspace("sample", str(root / "backing"), f"sqlite://{root / 'mount.db'}", "projects/")
    (root / "backing").mkdir(parents=True)
    backing = open_store(ws.backing_url)
    mount = open_store(ws.mount_url)

    def put(store, key, data, **metadata):
        store.from_bytes(key, data, metadata)

    put(backing, "README.md", README, media_type="text/markdown", author="survey team")
    put(backing, "archive/2022/cores.csv", CSV, media_type="text/csv", year=2022)
    put(backing, "archive/2023/cores.csv", CSV * 3, media_type="text/csv", year=2023)
    put(backing, "projects/alpha/cores.csv", CSV, media_type="text/csv", plots=[3, 7])
    put(backing, "projects/alpha/notes.md", NOTES[:60], media_type="text/markdown", version=2)
    put(backing, "projects/alpha/moisture.png", sample_png(), media_type="image/png")
    put(backing, "projects/beta/config.json", json.dumps({"plots": [1, 2]}).encode(),
        media_type="application/json")
    # The mount store holds keys relative to the mount point "projects/".
    put(mount, "alpha/notes.md", NOTES, media_type="text/markdown", title="Alpha: notes",
        version=3, reviewed=False, tags=["soil", "calibration"], author="Kim",
        updated="2024-05-02")
    put(mount, "alpha/results.json", json.dumps({"ph_mean": 6.25}).encode(),
        media_type="application/json", version=1)
    put(mount, "gamma/draft.txt", b"First thoughts on gamma.\n", media_type="text/plain")
    backing.disconnect()
    mount.disconnect()
    return ws


def wait_idle(app, window, timeout: float = 10.0) -> None:
    """Process events until no store call is running (or ``timeout`` passes)."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        app.processEvents()
        busy = (pool.activeThreadCount() or window.model.is_loading()
                or window.metadata_panel.is_loading() or window.preview_panel.is_loading())
        quiet = 0 if busy else quiet + 1
        if quiet > 20:
            return
        time.sleep(0.01)


def dark_palette():
    """A dark Fusion palette (to check the window reads well on dark desktops)."""
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    roles = QPalette.ColorRole
    for role, colour in ((roles.Window, "#2b2b2b"), (roles.WindowText, "#e0e0e0"),
                         (roles.Base, "#1e1e1e"), (roles.AlternateBase, "#262626"),
                         (roles.Text, "#e0e0e0"), (roles.Button, "#353535"),
                         (roles.ButtonText, "#e0e0e0"), (roles.Highlight, "#2f65ca"),
                         (roles.HighlightedText, "#ffffff"), (roles.ToolTipBase, "#353535"),
                         (roles.ToolTipText, "#e0e0e0"), (roles.PlaceholderText, "#8a8a8a"),
                         (roles.Mid, "#5a5a5a"), (roles.Light, "#4a4a4a"),
                         (roles.Dark, "#202020"), (roles.Link, "#7aa7ff")):
        p.setColor(role, QColor(colour))
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--dark", action="store_true", help="use a dark palette")
    parser.add_argument("--key", default="projects/alpha/notes.md", help="the key to select")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = tempfile.TemporaryDirectory(prefix="storegui-shot-")
    root = Path(tmp.name)
    # Keep the user's real workspace list and window settings out of this.
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        os.environ[var] = str(root / var.lower())
    sys.path.insert(0, str(ROOT))

    from PySide6.QtWidgets import QApplication

    from storegui.app import apply_app_style
    from storegui.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(["storegui"])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    apply_app_style(app)
    ws = build_sample(root / "sample")
    window = MainWindow(ws)
    window.resize(1280, 760)
    window.show()
    wait_idle(app, window)
    window.reveal_key(args.key)
    wait_idle(app, window)
    for folder in ("projects/alpha/", "projects/"):
        index = window.model.index_for_key(folder)
        window.tree.expand(index)
    wait_idle(app, window)
    window.tree.setFocus()
    wait_idle(app, window)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(output))
    window.close()
    wait_idle(app, window, 3.0)
    tmp.cleanup()
    if not ok:
        print(f"could not write {output}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
