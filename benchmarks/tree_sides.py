"""The two sides of :mod:`benchmarks.bench_tree`, each run in a child process of its own.

- :func:`run_ours`: the real MainWindow over the fixture's workspace, opened
  and browsed by a script, with a 5 ms timer measuring the event loop's stalls;
- :func:`run_reference`: the eager way, a QStandardItemModel built from every
  key of the same workspace and shown in a QTreeView.

Each returns a dict of figures (seconds, milliseconds, MB) for the parent to
tabulate. Qt is imported here only, in the child processes.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from typing import Any

STALL_INTERVAL = 0.005  # seconds: the timer that measures its own lateness
PAGE_STEPS = 6  # scrolls to the bottom of the big folder (each shows one more page)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class StallMeter:
    """A 5 ms Qt timer measuring its own lateness: the longest event-loop stall, per step."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(round(STALL_INTERVAL * 1000))
        self.timer.timeout.connect(self._tick)
        self.step = "start"
        self.worst: dict[str, float] = {}
        self.sample: Callable[[], None] | None = None
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def at(self, step: str) -> None:
        """Name the step that stalls measured from now on belong to."""
        self.step = step
        self.worst.setdefault(step, 0.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        late = now - self._last - STALL_INTERVAL
        self._last = now
        if late > self.worst.get(self.step, 0.0):
            self.worst[self.step] = late
        if self.sample is not None:
            self.sample()

    @property
    def max_ms(self) -> float:
        return max(self.worst.values(), default=0.0) * 1000


def wait_until(cond: Callable[[], Any], what: str, timeout: float = 300.0) -> None:
    """Run the event loop until ``cond()`` is true (checked every 2 ms).

    Raises
    ------
    TimeoutError
        If it is still false after ``timeout`` seconds.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(2)
    poll.timeout.connect(lambda: cond() and loop.quit())
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    poll.start()
    deadline.start(round(timeout * 1000))
    loop.exec()
    poll.stop()
    deadline.stop()
    if not cond():
        raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def run_for(seconds: float) -> None:
    """Run the event loop for ``seconds``."""
    end = time.perf_counter() + seconds
    wait_until(lambda: time.perf_counter() >= end, "time to pass", seconds + 5)


def _paint_clock(widget: Any) -> list[float]:
    """Times of the paint events ``widget`` gets from now on (an event filter records them)."""
    from PySide6.QtCore import QEvent, QObject

    class Clock(QObject):
        def __init__(self) -> None:
            super().__init__(widget)
            self.times: list[float] = []

        def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 (Qt override)
            if event.type() == QEvent.Type.Paint:
                self.times.append(time.perf_counter())
            return False

    clock = Clock()
    widget.installEventFilter(clock)
    return clock.times


def _view_rows(folder: Any) -> list:
    """The rows of ``folder`` that the view holds (all its children before paging)."""
    rows = getattr(folder, "rows", None)
    return rows.window if rows is not None else folder.children


def _app() -> Any:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["storegui"])


def _workspace(fixture: str) -> Any:
    # The app's modules are imported at start-up, before any window: not timed.
    import storegui.stores.mounted.store  # noqa: F401
    import storegui.stores.sqlite.store  # noqa: F401
    from storegui.config import Workspace

    return Workspace("bench-tree", f"sqlite://{fixture}/backing.db",
                     f"sqlite://{fixture}/mount.db", "")


def run_ours(fixture: str, big: str, small: str, big_count: int, mount_count: int,
             profile: str | None = None) -> dict:
    """Open the real window on the fixture, browse it; the figures."""
    app = _app()
    from PySide6.QtCore import Qt, QThreadPool

    from storegui.app import apply_app_style
    from storegui.app.main_window import MainWindow
    from storegui.app.tree.model import NAME, SIZE
    from storegui.app.tree.nodes import LOADED

    apply_app_style(app)
    workspace = _workspace(fixture)
    meter = StallMeter()
    started = time.perf_counter()
    window = MainWindow(workspace)
    window.show()
    meter.start()  # the event loop runs from here on
    meter.at("open")
    model, tree = window.model, window.tree
    # Also runs against the app before paging (for before/after figures).
    busy = getattr(model, "is_busy", model.is_loading)
    painted = _paint_clock(tree.viewport())
    wait_until(lambda: model.root.state == LOADED and model.rowCount() > 0, "the first level")
    rows_at = time.perf_counter()
    wait_until(lambda: painted and painted[-1] >= rows_at, "the first level painted")
    first_level = painted[-1] - started

    def node(key: str) -> Any:
        return model.node(model.index_for_key(key))

    def open_folder(key: str) -> None:
        tree.expand(model.index_for_key(key))
        wait_until(lambda: node(key) is not None and node(key).state == LOADED
                   and not model.is_listing(key), f"{key} listed")

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    meter.at("open folders")
    parts = big.rstrip("/").split("/")
    for i in range(1, len(parts)):
        open_folder("/".join(parts[:i]) + "/")
    meter.at("expand big folder")
    expanded = time.perf_counter()
    tree.expand(model.index_for_key(big))
    wait_until(lambda: node(big) is not None and _view_rows(node(big)), "first rows")
    rows_at = time.perf_counter()
    wait_until(lambda: painted[-1] >= rows_at, "first rows painted")
    first_rows = painted[-1] - expanded
    folder = node(big)
    seen = {"rows": 0}

    def sample() -> None:
        seen["rows"] = max(seen["rows"], len(_view_rows(folder)))

    meter.sample = sample
    wait_until(lambda: folder.state == LOADED and not busy(), "the big folder listed")
    loaded = time.perf_counter() - expanded
    run_for(0.3)

    bar = tree.verticalScrollBar()
    meter.at("page down")
    for _ in range(PAGE_STEPS):
        bar.setValue(bar.maximum())
        run_for(0.25)
    meter.at("page up")
    for _ in range(3):
        bar.setValue(bar.minimum())
        run_for(0.25)
    for step, column, order in (("sort by size", SIZE, Qt.SortOrder.DescendingOrder),
                                ("sort by name", NAME, Qt.SortOrder.AscendingOrder)):
        meter.at(step)
        tree.sortByColumn(column, order)
        wait_until(lambda: not busy(), step)
        run_for(0.2)
    meter.at("filter")
    window.filter_box.setText("*99*")
    wait_until(lambda: model.name_filter == "*99*" and not busy(), "the filter")
    run_for(0.3)
    meter.at("clear filter")
    window.filter_box.clear()
    wait_until(lambda: model.name_filter == "" and not busy(), "the filter cleared")
    run_for(0.2)
    meter.at("reveal")
    target = folder.children[len(folder.children) * 9 // 10].key
    window.reveal_key(target)
    wait_until(lambda: [n.key for n in window.selected_nodes()] == [target], "the reveal")
    run_for(0.2)
    meter.at("small folder")
    parts = small.rstrip("/").split("/")
    for i in range(1, len(parts) + 1):
        open_folder("/".join(parts[:i]) + "/")
    run_for(0.2)
    meter.at("refresh all")
    window.refresh()
    wait_until(lambda: not busy(), "the refresh")
    run_for(0.3)
    meter.stop()
    if profiler is not None:
        profiler.stop()
        with open(profile, "w") as f:
            f.write(profiler.output_text(unicode=False, color=False))
    result = {
        "first_level_s": first_level,
        "first_rows_s": first_rows,
        "loaded_s": loaded,
        "max_stall_ms": meter.max_ms,
        "phase_stalls_ms": {k: v * 1000 for k, v in meter.worst.items()},
        "peak_rss_mb": _peak_rss_mb(),
        "big_rows": len(folder.children),
        "loaded_nodes": sum(len(f.children) for f in model.root.iter_loaded_folders()),
        "max_view_rows": seen["rows"],
    }
    window.close()
    QThreadPool.globalInstance().waitForDone(10000)
    return result


def run_reference(fixture: str, big: str, small: str, big_count: int, mount_count: int,
                  profile: str | None = None) -> dict:
    """Build a QStandardItemModel of every key eagerly and show it; the figures."""
    _app()
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QTreeView

    store = _workspace(fixture).open()
    meter = StallMeter()
    meter.at("build")
    started = time.perf_counter()
    meter.start()  # its first tick comes after the build: the build is the stall
    model = QStandardItemModel()
    model.setHorizontalHeaderLabels(["Name"])
    folders: dict[str, Any] = {"": model.invisibleRootItem()}
    key_role = Qt.ItemDataRole.UserRole + 1

    def folder_item(prefix: str) -> Any:
        item = folders.get(prefix)
        if item is None:
            up, _, name = prefix.rpartition("/")
            item = QStandardItem(name)
            folder_item(up).appendRow(item)
            folders[prefix] = item
        return item

    count = 0
    for key in store.keys():
        up, _, name = key.rpartition("/")
        item = QStandardItem(name)
        item.setData(key, key_role)
        folder_item(up).appendRow(item)
        count += 1
    view = QTreeView()
    view.setUniformRowHeights(True)
    view.setModel(model)
    view.resize(1100, 700)
    view.show()
    painted = _paint_clock(view.viewport())
    wait_until(lambda: bool(painted), "the first level painted")
    first_level = painted[-1] - started
    run_for(0.2)
    meter.stop()
    with contextlib.suppress(Exception):
        store.disconnect()
    return {"first_level_s": first_level, "max_stall_ms": meter.max_ms,
            "peak_rss_mb": _peak_rss_mb(), "keys": count}
