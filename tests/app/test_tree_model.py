"""KeyTreeModel over real MountedStores: lazy listing, batches, refresh by diff, sorting."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from sample_stores import MOUNT_POINT, TOP, WORK, GatedMemoryStore, fill

from storegui.app.tree.jobs import FIRST_BATCH
from storegui.app.tree.model import (
    LOADING_TEXT,
    MODIFIED,
    NAME,
    ORIGIN,
    SIZE,
    KeyRole,
    KeyTreeModel,
    OriginRole,
    SortRole,
)
from storegui.app.tree.nodes import StatusRow
from storegui.stores import MemoryStore, MountedStore, StoreError


class CountingStore(MemoryStore):
    """A MemoryStore that records every list_dir prefix (and can fail chosen ones)."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[str] = []
        self.fail: dict[str, str] = {}
        self._count_lock = threading.Lock()

    def list_dir(self, prefix: str = "", delimiter: str = "/"):
        with self._count_lock:
            self.listed.append(prefix)
        if prefix in self.fail:
            raise StoreError(self.fail[prefix])
        return super().list_dir(prefix, delimiter)


def rows(model, parent=QModelIndex()):
    """{key: origin} of the key rows under ``parent`` (status rows left out)."""
    out = {}
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        if not isinstance(model.node(index), StatusRow):
            out[model.data(index, KeyRole)] = model.data(index, OriginRole)
    return out


def names(model, parent=QModelIndex()):
    return [model.index(r, NAME, parent).data() for r in range(model.rowCount(parent))]


def load(qtbot, model, key=""):
    """Fetch the folder ``key`` and wait for its rows."""
    index = model.index_for_key(key) if key else QModelIndex()
    if model.canFetchMore(index):
        model.fetchMore(index)
    qtbot.waitUntil(lambda: not model.is_loading())
    return model.index_for_key(key) if key else QModelIndex()


@pytest.fixture
def counting():
    mount, backing = CountingStore(), CountingStore()
    fill(backing, mount)
    return MountedStore(MOUNT_POINT, mount, backing), mount, backing


@pytest.fixture
def model(qtbot, memory_store):
    model = KeyTreeModel(memory_store)
    qtbot.waitUntil(lambda: not model.is_loading())
    yield model
    model.shutdown()


def test_top_level_and_a_folder_show_the_merged_keys_with_origins(qtbot, model, qtmodeltester):
    assert rows(model) == TOP
    assert names(model) == ["archive", "work", "README.md"]  # folders first
    work = load(qtbot, model, "work/")
    assert rows(model, work) == WORK
    qtmodeltester.check(model)
    shadow = model.index_for_key("work/shadow.txt")
    assert shadow.siblingAtColumn(ORIGIN).data() == "Shadowing"
    assert "hides the backing" in shadow.siblingAtColumn(ORIGIN).data(Qt.ItemDataRole.ToolTipRole)
    assert shadow.siblingAtColumn(SIZE).data() == "22 bytes"  # the mount copy's size
    assert shadow.siblingAtColumn(MODIFIED).data()
    assert not model.index(99, 0, work).isValid()
    assert not model.index(0, 9, work).isValid()


def test_folders_load_lazily_one_listing_per_store(qtbot, counting):
    store, mount, backing = counting
    model = KeyTreeModel(store)
    qtbot.waitUntil(lambda: not model.is_loading())
    assert backing.listed == [""]
    assert model.hasChildren(model.index_for_key("archive/"))
    assert model.rowCount(model.index_for_key("archive/")) == 0  # nothing listed yet
    load(qtbot, model, "work/")
    assert backing.listed == ["", "work/"]
    assert mount.listed.count("") == 2  # top level ("work/" folder) and work/ itself
    assert all(p == "" for p in mount.listed)
    load(qtbot, model, "archive/")
    assert backing.listed == ["", "work/", "archive/"]
    assert rows(model, model.index_for_key("archive/")) == {
        "archive/2023/": "remote", "archive/b.csv": "remote"}


def test_a_folder_being_listed_shows_a_loading_row(qtbot, qtmodeltester):
    backing = GatedMemoryStore()
    fill(backing, MemoryStore())
    backing.hold()
    model = KeyTreeModel(MountedStore(MOUNT_POINT, MemoryStore(), backing))
    qtmodeltester.check(model)
    qtbot.waitUntil(backing.waiting.is_set)
    qtbot.waitUntil(lambda: names(model) == [LOADING_TEXT])
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsSelectable
    backing.release()
    qtbot.waitUntil(lambda: not model.is_loading())
    assert rows(model) == {"archive/": "remote", "work/": "remote", "README.md": "remote"}
    assert LOADING_TEXT not in names(model)


def test_a_failed_listing_shows_the_error_in_the_tree_and_the_status(qtbot, counting):
    store, _mount, backing = counting
    backing.fail["work/"] = "the server said no"
    model = KeyTreeModel(store)
    qtbot.waitUntil(lambda: not model.is_loading())
    with qtbot.waitSignal(model.statusMessage) as message:
        model.fetchMore(model.index_for_key("work/"))
    assert "the server said no" in message.args[0]
    qtbot.waitUntil(lambda: not model.is_loading())
    work = model.index_for_key("work/")
    error = model.index(model.rowCount(work) - 1, 0, work)
    assert "the server said no" in error.data()
    assert error.data(Qt.ItemDataRole.ForegroundRole) is not None
    del backing.fail["work/"]
    model.refresh(work)
    qtbot.waitUntil(lambda: not model.is_loading())
    assert rows(model, work) == WORK
    assert model.rowCount(work) == len(WORK)


def test_a_huge_folder_arrives_in_batches_without_a_reset(qtbot):
    backing = MemoryStore()
    for i in range(12000):
        backing.from_bytes(f"big/k{i:05d}", b"")
    model = KeyTreeModel(MountedStore("", MemoryStore(), backing))
    qtbot.waitUntil(lambda: not model.is_loading())
    batches = []
    model.rowsInserted.connect(lambda parent, first, last: batches.append(last - first + 1))
    model.modelReset.connect(lambda: pytest.fail("a load must not reset the model"))
    big = load(qtbot, model, "big/")
    assert model.rowCount(big) == 12000
    assert batches[0] == 1  # the "Loading…" row
    assert batches[1] <= FIRST_BATCH
    assert len(batches) > 3
    assert model.index(0, 0, big).data() == "k00000"
    assert model.index(11999, 0, big).data() == "k11999"


def test_refresh_applies_the_difference(qtbot, model, memory_store, qtmodeltester):
    work = load(qtbot, model, "work/")
    qtmodeltester.check(model)
    kept = QPersistentModelIndex(model.index_for_key("work/remote.txt"))
    model.modelReset.connect(lambda: pytest.fail("a refresh must not reset the model"))
    memory_store.shutdown_listeners = True
    # Change the stores behind the model's back (no events): the refresh finds out.
    memory_store.mount_store.delete("local.txt")
    memory_store.mount_store.from_bytes("added.txt", b"new")
    memory_store.backing_store.from_bytes("work/shadow.txt", b"x")  # still shadowing
    memory_store.mount_store.delete("shadow.txt")  # now remote
    model.refresh()
    qtbot.waitUntil(lambda: rows(model, work).get("work/shadow.txt") == "remote")
    qtbot.waitUntil(lambda: not model.is_loading())
    expected = dict(WORK, **{"work/added.txt": "local", "work/shadow.txt": "remote"})
    del expected["work/local.txt"]
    assert rows(model, work) == expected
    assert kept.isValid() and kept.data(KeyRole) == "work/remote.txt"


def test_writes_through_the_store_update_the_tree(qtbot, model, memory_store):
    work = load(qtbot, model, "work/")
    memory_store.from_bytes("work/brand-new.txt", b"hello")
    qtbot.waitUntil(lambda: rows(model, work).get("work/brand-new.txt") == "local")
    memory_store.push("work/brand-new.txt")
    qtbot.waitUntil(lambda: rows(model, work).get("work/brand-new.txt") == "remote")
    memory_store.push("work/")
    qtbot.waitUntil(lambda: rows(model).get("work/") == "remote")
    # The folder's row and its children's are updated by separate events: wait for both.
    qtbot.waitUntil(lambda: set(rows(model, work).values()) == {"remote"})


def test_a_commit_of_many_keys_refreshes_each_folder_once(qtbot, model, memory_store,
                                                         monkeypatch):
    work = load(qtbot, model, "work/")
    new = load(qtbot, model, "work/new/")
    asked: list[list[str]] = []
    refresh_keys = model.refresh_keys
    monkeypatch.setattr(model, "refresh_keys",
                        lambda keys: (asked.append(list(keys)), refresh_keys(keys)))

    def write():  # on a worker, as an import job writes: 600 keys, one transaction
        with memory_store.transaction("burst"):
            for n in range(300):
                memory_store.from_bytes(f"work/burst-{n:03}.txt", b"x")
                memory_store.from_bytes(f"work/new/burst-{n:03}.txt", b"y")

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(30)
    qtbot.waitUntil(lambda: sum(k.startswith("work/burst-") for k in rows(model, work)) == 300)
    qtbot.waitUntil(lambda: len(rows(model, new)) == 301)
    # The GUI thread got one key per folder and burst, not 600 keys to walk.
    assert asked and all(len(keys) <= 2 for keys in asked)
    folders = {key.rpartition("/")[0] for keys in asked for key in keys}
    assert folders == {"work", "work/new"}


def test_sorting_keeps_folders_first_and_selections(qtbot, model):
    work = load(qtbot, model, "work/")
    current = QPersistentModelIndex(model.index_for_key("work/local.txt"))
    model.sort(SIZE, Qt.SortOrder.DescendingOrder)
    assert names(model, work) == ["sub", "new", "shadow.txt", "remote.txt", "local.txt"]
    model.sort(NAME, Qt.SortOrder.AscendingOrder)
    assert names(model, work) == ["new", "sub", "local.txt", "remote.txt", "shadow.txt"]
    model.sort(ORIGIN, Qt.SortOrder.AscendingOrder)
    assert names(model, work)[2:] == ["local.txt", "shadow.txt", "remote.txt"]
    assert current.isValid() and current.data(KeyRole) == "work/local.txt"
    assert current.row() == 2
    shadow = model.index_for_key("work/shadow.txt")
    assert shadow.siblingAtColumn(SIZE).data(SortRole) == 22  # bytes, not "22 bytes"


def test_reveal_lists_the_folders_down_to_a_key(qtbot, model):
    with qtbot.waitSignal(model.revealed) as revealed:
        model.reveal("work/sub/deep.txt")
    assert revealed.args == ["work/sub/deep.txt"]
    index = model.index_for_key("work/sub/deep.txt")
    assert index.isValid() and index.data() == "deep.txt"
    with qtbot.waitSignal(model.statusMessage) as message:
        model.reveal("work/sub/missing.txt")
    assert "missing.txt" in message.args[0]
