"""The key tree with a big folder (a small version of benchmark 1 of issue 6).

A folder of 20,000 keys in a real SqliteStore (plus mount keys, half of them
shadowing) shown in the real view: listings stream, rows arrive in parts,
the view only ever holds a window of the folder and pages through it as it
scrolls, sorting and filtering cover every loaded row, a reveal moves the
window, and the GUI's timers keep running meanwhile.
"""

from __future__ import annotations

import gc
import io
import sys
import time
from itertools import islice

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt, QTimer

from storegui.app.tree.jobs import FIRST_BATCH
from storegui.app.tree.model import SIZE, KeyRole, KeyTreeModel, OriginRole
from storegui.app.tree.nodes import HEAD, LOADED, KeyNode, StatusRow
from storegui.app.tree.paging import PAGE_ROWS, WINDOW_ROWS
from storegui.app.tree.view import KeyTreeView
from storegui.stores import MemoryStore, MountedStore, SqliteStore, StoreError

BIG = "big/"
KEYS = 20_000
LOCAL = 500  # mount keys: the last 250 backing keys shadowed, 250 new ones


def name(i: int) -> str:
    return f"{BIG}k{i:05d}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Backing and mount SqliteStores: 20,000 keys in big/, 500 mount keys there."""
    folder = tmp_path_factory.mktemp("scale")
    backing = SqliteStore(str(folder / "backing.db"))
    keys = [name(i) for i in range(KEYS)] + ["small/a", "small/b", "top.txt"]
    backing.multiset(keys, [(io.BytesIO(b"backing"), {}) for _ in keys])
    mount = SqliteStore(str(folder / "mount.db"))
    local = [name(i) for i in range(KEYS - LOCAL // 2, KEYS + LOCAL // 2)]
    mount.multiset(local, [(io.BytesIO(b"mount copy"), {}) for _ in local])
    backing.disconnect()
    mount.disconnect()
    return str(folder / "backing.db"), str(folder / "mount.db")


@pytest.fixture
def store(stores):
    backing, mount = stores
    store = MountedStore("", SqliteStore(mount), SqliteStore(backing))
    yield store
    store.disconnect()


@pytest.fixture
def view(qtbot, store):
    """A shown KeyTreeView over the store, top level loaded."""
    model = KeyTreeModel(store)
    view = KeyTreeView()
    view.setModel(model)
    view.resize(600, 500)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: not model.is_busy())
    yield view
    model.shutdown()


def model_of(view):
    return view.model()


def expand(qtbot, view, key):
    model = model_of(view)
    view.expand(model.index_for_key(key))
    qtbot.waitUntil(lambda: model.node(model.index_for_key(key)).state == LOADED
                    and not model.is_busy(), timeout=20000)
    return model.node(model.index_for_key(key))


def window_keys(folder: KeyNode) -> list[str]:
    return [n.key for n in folder.rows.window]


# ---------------------------------------------------------------------- streaming listings


def test_listings_stream_and_merge_in_key_order(store):
    backing, mount = store.backing_store, store.mount_store
    listing = backing.list_dir(BIG)
    first = next(listing)  # a generator: the rest is not read yet
    mount.from_bytes("zz-new-last", b"x")  # after the first page: seen by the lazy listing
    assert first.key == name(0)
    merged = store.list_dir(BIG)
    head = list(islice(merged, 3))
    assert [e.key for e in head] == [name(0), name(1), name(2)]
    assert [e.origin for e in head] == ["remote"] * 3
    rest = list(merged)
    assert len(head) + len(rest) == KEYS + LOCAL // 2
    keys = [e.key for e in head + rest]
    assert keys == sorted(keys)
    origins = {e.key: e.origin for e in rest}
    assert origins[name(KEYS - 1)] == "shadowing" and origins[name(KEYS)] == "local"
    assert origins[name(KEYS - LOCAL // 2 - 1)] == "remote"
    shadow = next(e for e in rest if e.key == name(KEYS - 1))
    assert shadow.size == len(b"mount copy")  # what get() returns
    mount.delete("zz-new-last")


class Unsorted(MemoryStore):
    """A store breaking the list_dir contract (entries out of key order)."""

    def list_dir(self, prefix: str = "", delimiter: str = "/"):
        return iter(sorted(super().list_dir(prefix, delimiter), key=lambda e: e.key,
                           reverse=True))


def test_a_listing_out_of_key_order_fails_clearly():
    backing = Unsorted()
    for key in ("a", "b", "c"):
        backing.from_bytes(key, b"")
    merged = MountedStore("", MemoryStore(), backing).list_dir("")
    with pytest.raises(StoreError, match="key order"):
        list(merged)


def test_every_store_lists_in_key_order(tmp_path):
    from storegui.stores import FileSystemStore, FsspecStore

    keys = ["b/x", "a", "B", "a-b", "a/z", "é", "a/y/q", "0"]
    for store in (MemoryStore(), FileSystemStore(tmp_path / "fs"),
                  SqliteStore(str(tmp_path / "s.db")),
                  FsspecStore(f"memory://tree-scale/{tmp_path.name}")):
        for key in keys:
            store.from_bytes(key, b"1")
        listed = [e.key for e in store.list_dir("")]
        assert listed == sorted(listed) == ["0", "B", "a", "a-b", "a/", "b/", "é"], store
        store.disconnect()


# ---------------------------------------------------------------------- the view


def test_a_big_folder_shows_its_first_rows_at_once_and_pages(qtbot, view, qtmodeltester):
    model = model_of(view)
    inserted: list[int] = []
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    big_index = model.index_for_key(BIG)
    model.rowsInserted.connect(
        lambda parent, first, last: parent == big_index and inserted.append(last - first + 1))
    folder = expand(qtbot, view, BIG)
    timer.stop()
    # Rows came in parts, the first one small; the view never got the whole folder.
    assert 1 < len(inserted) and inserted[0] <= FIRST_BATCH + 1
    assert len(folder.children) == KEYS + LOCAL // 2
    assert len(folder.rows.window) == PAGE_ROWS
    assert model.rowCount(big_index) == PAGE_ROWS + 1
    tail = model.node(model.index(PAGE_ROWS, 0, big_index))
    assert isinstance(tail, StatusRow) and tail.pages
    assert f"{KEYS + LOCAL // 2 - PAGE_ROWS:,} more" in tail.text
    # The GUI kept running while the folder was listed.
    assert len(ticks) >= 5
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 1.0

    # Scrolling to the bottom shows a page more each time, then slides the window.
    bar = view.verticalScrollBar()
    for _ in range(WINDOW_ROWS // PAGE_ROWS + 2):  # 2 more pages, then 2 slides
        end = folder.rows.lo + len(folder.rows.window)
        bar.setValue(bar.maximum())
        qtbot.waitUntil(lambda end=end: folder.rows.lo + len(folder.rows.window) > end)
    rows = folder.rows
    steps = WINDOW_ROWS // PAGE_ROWS + 2
    assert len(rows.window) == WINDOW_ROWS and rows.lo == PAGE_ROWS * (steps + 1) - WINDOW_ROWS
    assert window_keys(folder) == [n.key for n in folder.children[rows.lo:rows.lo + WINDOW_ROWS]]
    head = model.node(model.index(0, 0, big_index))
    assert isinstance(head, StatusRow) and head.kind == HEAD
    assert head.text.startswith(f"{rows.lo:,} more above")
    assert model.rowCount(big_index) == WINDOW_ROWS + 2
    # The rows in sight stayed in sight: the last page is just below them.
    shown = [model_of(view).node(i) for i in view.pager.visible_rows()]
    assert shown and all(isinstance(n, KeyNode) for n in shown)
    qtmodeltester.check(view.model())

    # Scrolling up to the placeholder above the window brings the earlier pages back.
    for _ in range(rows.lo // PAGE_ROWS):
        lo = rows.lo
        view.scrollTo(view.model().index(0, 0, big_index))
        qtbot.waitUntil(lambda lo=lo: rows.lo < lo)
    assert rows.lo == 0 and rows.head is None
    assert window_keys(folder)[0] == name(0)


def test_sorting_a_big_folder_runs_in_the_background(qtbot, view):
    model = model_of(view)
    folder = expand(qtbot, view, BIG)
    first = model.index_for_key(name(0))
    kept = QPersistentModelIndex(first)
    view.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not model.is_busy())
    # The mount copies are bigger: they come first.
    assert {n.size for n in folder.rows.window} == {len(b"mount copy")}
    assert {n.origin for n in folder.rows.window} <= {"local", "shadowing"}
    sizes = [n.size for n in folder.children]
    assert sizes == sorted(sizes, reverse=True)
    assert folder.children[0].size == len(b"mount copy")
    assert len(folder.rows.window) == PAGE_ROWS  # same window, new rows
    assert not kept.isValid()  # k00000 went out of the window
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(lambda: not model.is_busy())
    assert window_keys(folder)[:2] == [name(0), name(1)]


def test_the_filter_covers_every_loaded_row(qtbot, view):
    model = model_of(view)
    folder = expand(qtbot, view, BIG)
    target = name(KEYS - 2)
    assert model.node(model.index_for_key(target)) is None  # far beyond the window
    filtered = []
    model.filterApplied.connect(filtered.append)
    model.set_name_filter(f"*{KEYS - 2}")
    qtbot.waitUntil(lambda: filtered == [f"*{KEYS - 2}"], timeout=20000)
    assert window_keys(folder) == [target]
    assert [model.data(model.index(r, 0)) for r in range(model.rowCount())] == ["big"]
    assert model.index_for_key(target).data(OriginRole) == "shadowing"
    model.set_name_filter("")
    qtbot.waitUntil(lambda: filtered[-1:] == [""])
    assert len(folder.rows.window) == PAGE_ROWS and window_keys(folder)[0] == name(0)
    assert {model.data(model.index(r, 0)) for r in range(model.rowCount())} == {
        "big", "small", "top.txt"}


def test_a_folder_filtered_and_sorted_while_it_is_listed_ends_up_right(qtbot, view):
    model = model_of(view)
    view.expand(model.index_for_key(BIG))
    model.set_name_filter("*999*")  # "big" has no match yet: hidden until one is listed
    view.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)
    folder = model.root.child_by_key(BIG)
    qtbot.waitUntil(lambda: folder.state == LOADED and not model.is_busy(), timeout=20000)
    expected = [n for n in folder.children if "999" in n.name]
    assert len(expected) == sum("999" in name(i) for i in range(KEYS + LOCAL // 2))
    assert folder.shown == expected and window_keys(folder) == [n.key for n in expected]
    assert model.index_for_key(BIG).isValid()  # shown again, now that it has matches
    sizes = [n.size for n in folder.children]
    assert sizes == sorted(sizes, reverse=True) and folder.rows.order == (SIZE, True)


def test_a_reveal_moves_the_window_to_the_key(qtbot, view):
    model = model_of(view)
    folder = expand(qtbot, view, BIG)
    target = name(KEYS - 3)
    with qtbot.waitSignal(model.revealed) as revealed:
        model.reveal(target)
    assert revealed.args == [target]
    index = model.index_for_key(target)
    assert index.isValid() and index.data(KeyRole) == target
    assert folder.rows.lo > 0 and len(folder.rows.window) <= WINDOW_ROWS


def test_a_refresh_of_a_big_folder_applies_the_difference(qtbot, view, store, qtmodeltester):
    model = model_of(view)
    folder = expand(qtbot, view, BIG)
    backing = store.backing_store
    removed = model.node(model.index_for_key(name(1)))
    moved = QPersistentModelIndex(model.index_for_key(name(10)))
    # Behind the model's back (the inner store sends no events to the mounted one).
    backing.delete(name(1))
    backing.from_bytes(name(3), b"changed size")
    backing.from_bytes(f"{BIG}a-first", b"new")
    try:
        model.refresh()
        qtbot.waitUntil(lambda: window_keys(folder)[0] == f"{BIG}a-first")
        qtbot.waitUntil(lambda: not model.is_busy())
        keys = window_keys(folder)
        assert name(1) not in keys and keys[1:3] == [name(0), name(2)]
        assert model.node(model.index_for_key(name(3))).size == len(b"changed size")
        assert removed.parent is None  # detached
        assert moved.isValid() and moved.data(KeyRole) == name(10)
        assert len(folder.children) == KEYS + LOCAL // 2
        qtmodeltester.check(view.model())
    finally:
        backing.from_bytes(name(1), b"backing")
        backing.from_bytes(name(3), b"backing")
        backing.delete(f"{BIG}a-first")


def test_a_dropped_tree_is_freed_without_the_garbage_collector(qtbot, store):
    model = KeyTreeModel(store)
    qtbot.waitUntil(lambda: not model.is_busy())
    model.fetchMore(model.index_for_key("small/"))
    qtbot.waitUntil(lambda: not model.is_busy())
    folder = model.node(model.index_for_key("small/"))
    child = folder.children[0]
    model.set_store(None)  # as when another workspace is opened
    assert model.rowCount() == 0
    # No cycle is left: once the workers that listed them are gone, only this test's
    # names refer to the nodes, so reference counting frees them (the tree may sit in
    # gc.freeze()'s permanent generation, where the collector never looks).
    assert folder.parent is None and folder.children == [] and child.parent is None
    gc.disable()
    try:
        qtbot.waitUntil(lambda: sys.getrefcount(child) == sys.getrefcount(folder) == 2)
    finally:
        gc.enable()


def test_without_a_paging_view_every_row_is_shown(qtbot, store):
    model = KeyTreeModel(store)
    qtbot.waitUntil(lambda: not model.is_busy())
    big = model.index_for_key(BIG)
    model.fetchMore(big)
    qtbot.waitUntil(lambda: not model.is_busy(), timeout=20000)
    assert model.rowCount(big) == KEYS + LOCAL // 2
    assert model.index(KEYS + LOCAL // 2 - 1, 0, big).data(KeyRole) == name(KEYS + LOCAL // 2 - 1)
    assert model.paging == (None, 0)
    model.shutdown()


def test_paging_is_per_view_and_checked(qtbot):
    model = KeyTreeModel(MountedStore("", MemoryStore(), MemoryStore()))
    with pytest.raises(ValueError, match="at least one row"):
        model.set_paging(0)
    model.set_paging(10)
    assert model.paging == (10, 40)
    qtbot.waitUntil(lambda: not model.is_busy())
    model.shutdown()
