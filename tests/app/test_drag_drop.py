"""Drag and drop on the real window: files in from the desktop, keys out as files, moves inside.

The drops are real QDragEnter/QDragMove/QDrop events carrying file URLs of
real files and folders under tmp_path, sent to the tree's viewport as the
platform would send them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QPushButton, QWidget
from test_main_window import index_of_key, open_folder, origin, select, shown

from storegui.app.actions import MountFacts
from storegui.app.dnd.drag import DragOut
from storegui.app.dnd.drop import DropImporter
from storegui.app.dnd.dropped_files import SMALL_FILE
from storegui.app.transfers.queue import JobState, TransferQueue
from storegui.app.tree.model import KeyTreeModel
from storegui.stores.importing import media_type

COPY_OR_MOVE = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction

# ---------------------------------------------------------------------- helpers


def file_mime(*paths: Path) -> QMimeData:
    """What a file manager puts in a drag of these files."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def row_point(window, key: str) -> QPoint:
    """The middle of ``key``'s row in the tree's viewport ("" for the empty area below)."""
    if not key:
        area = window.tree.viewport().rect()
        return QPoint(area.width() // 2, area.height() - 4)
    index = index_of_key(window, key)
    assert index.isValid(), key
    return window.tree.visualRect(index).center()


def drag_over(window, key: str, mime: QMimeData,
              modifiers=Qt.KeyboardModifier.NoModifier) -> QDragMoveEvent:
    """Enter the tree and move over ``key``'s row; the move event (accepted or not)."""
    viewport = window.tree.viewport()
    pos = row_point(window, key)
    QApplication.sendEvent(viewport, QDragEnterEvent(pos, COPY_OR_MOVE, mime,
                                                     Qt.MouseButton.LeftButton, modifiers))
    move = QDragMoveEvent(pos, COPY_OR_MOVE, mime, Qt.MouseButton.LeftButton, modifiers)
    QApplication.sendEvent(viewport, move)
    return move


def drop_on(window, key: str, mime: QMimeData,
            modifiers=Qt.KeyboardModifier.NoModifier) -> QDropEvent:
    """Drag ``mime`` over ``key``'s row and drop it there; the drop event."""
    drag_over(window, key, mime, modifiers)
    drop = QDropEvent(QPointF(row_point(window, key)), COPY_OR_MOVE, mime,
                      Qt.MouseButton.LeftButton, modifiers)
    QApplication.sendEvent(window.tree.viewport(), drop)
    return drop


def dragged(window, *keys: str):
    """The drag data of these loaded keys and folders, as a drag of the selection makes it."""
    nodes = [window.model.node(window.model.index_for_key(k)) for k in keys]
    assert None not in nodes, keys
    return window.drag_out.mime_data(nodes)


def wait_for_drops(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.drop_importer.sessions and not window.transfers.is_busy(),
                    timeout=20000)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clash_dialog(qtbot) -> QDialog:
    found = []

    def visible():
        found[:] = [w for w in QApplication.topLevelWidgets()
                    if w.objectName() == "clashDialog" and w.isVisible()]
        return bool(found)

    qtbot.waitUntil(visible)
    return found[0]


def answer(dialog: QDialog, button: str, apply_all: bool = False) -> None:
    if apply_all:
        dialog.all_box.setChecked(True)
    dialog.findChild(QPushButton, button).click()


# ---------------------------------------------------------------------- files in


def test_dropped_files_and_folders_become_keys_with_metadata(qtbot, window, tmp_path):
    src = tmp_path / "desktop"
    (src / "photos" / "2024").mkdir(parents=True)
    big = src / "big.bin"
    with open(big, "wb") as f:
        for _ in range(5):
            f.write(os.urandom(10 << 20))  # 50 MB: a job of its own, streamed
    empty = src / "empty.txt"
    empty.write_bytes(b"")
    (src / "photos" / "cat.png").write_bytes(b"\x89PNG fake")
    (src / "photos" / "2024" / "notes.md").write_bytes(b"# notes\n")
    (src / "photos" / ".hidden").write_bytes(b"h")
    open_folder(qtbot, window, "work/")
    open_folder(qtbot, window, "work/new/")

    mime = file_mime(big, empty, src / "photos")
    assert drop_on(window, "work/new/", mime).isAccepted()
    wait_for_drops(qtbot, window)

    store = window.store
    expected = {"work/new/big.bin": big, "work/new/empty.txt": empty,
                "work/new/photos/cat.png": src / "photos" / "cat.png",
                "work/new/photos/2024/notes.md": src / "photos" / "2024" / "notes.md",
                "work/new/photos/.hidden": src / "photos" / ".hidden"}
    assert sorted(store.keys("work/new/")) == sorted([*expected, "work/new/fresh.txt"])
    for key, path in expected.items():
        md = store.get_metadata(key)
        st = path.stat()
        assert md == {"filename": path.name, "size": st.st_size, "mtime": st.st_mtime,
                      "media_type": media_type(path.name), "sha256": sha256(path)}, key
    assert store.get_metadata("work/new/empty.txt")["sha256"] == hashlib.sha256(b"").hexdigest()
    with store.get_data("work/new/big.bin") as data:
        assert hashlib.sha256(data.read()).hexdigest() == sha256(big)
    # The big file had its own job; the four small ones went together in one.
    titles = sorted(j.title for j in window.transfers.jobs)
    assert titles == ["Import 'big.bin' into 'work/new/'", "Import 4 files into 'work/new/'"]
    qtbot.waitUntil(lambda: {"work/new/big.bin", "work/new/photos/"} <= set(shown(window,
                                                                                "work/new/")))
    assert origin(window, "work/new/big.bin") == "local"
    assert "Imported 5 key(s)" in window.statusBar().currentMessage()


def test_the_empty_area_takes_drops_into_the_mount_point(qtbot, window, tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes(b"dropped below the rows\n")
    assert drop_on(window, "", file_mime(note)).isAccepted()
    wait_for_drops(qtbot, window)
    assert window.store.to_bytes("work/note.txt") == note.read_bytes()
    qtbot.waitUntil(lambda: [n.key for n in window.selected_nodes()] == ["work/note.txt"])


def test_a_drop_reports_what_it_could_not_import_and_imports_the_rest(
        qtbot, window, tmp_path, dialogs):
    """Broken symlinks, a symlink loop, a FIFO, an unreadable and a vanished file.

    Tests may run as root, whom permissions do not stop from reading: the
    unreadable file is then one nobody can read, ``/proc/<pid>/mem`` (reading
    it at offset 0 fails with EIO), reached through a symlink in the dropped
    folder. A mode-000 file is dropped as well, and counted as unreadable only
    when not root. The vanished file is deleted after the drop was planned and
    before its job ran (the queue is kept busy until then).
    """
    drop = tmp_path / "mixed"
    drop.mkdir()
    (drop / "good.txt").write_bytes(b"fine\n")
    (drop / "empty.dat").write_bytes(b"")
    (drop / "broken.lnk").symlink_to(tmp_path / "nowhere")
    (drop / "loop.lnk").symlink_to(drop / "loop.lnk")
    os.mkfifo(drop / "pipe")
    (drop / "folder.lnk").symlink_to(tmp_path, target_is_directory=True)
    locked = drop / "locked.txt"
    locked.write_bytes(b"secret\n")
    locked.chmod(0)
    as_root = os.geteuid() == 0 or os.access(locked, os.R_OK)
    proc_mem = Path(f"/proc/{os.getpid()}/mem")
    if proc_mem.exists():
        (drop / "unreadable.bin").symlink_to(proc_mem)
    gone = drop / "gone.txt"
    gone.write_bytes(b"soon gone\n")

    queue = window.transfers
    queue.set_concurrency(1)
    started, release = threading.Event(), threading.Event()

    def hold(progress, cancel):
        started.set()
        release.wait(10)

    blocker = queue.submit("Hold the queue", hold)
    qtbot.waitUntil(started.is_set)
    open_folder(qtbot, window, "work/")
    assert drop_on(window, "work/", file_mime(drop)).isAccepted()
    qtbot.waitUntil(lambda: any(j.kind == "import" for j in queue.queued_jobs()))
    gone.unlink()
    release.set()
    wait_for_drops(qtbot, window)
    assert blocker.state is JobState.DONE

    store = window.store
    assert store.to_bytes("work/mixed/good.txt") == b"fine\n"
    assert store.to_bytes("work/mixed/empty.dat") == b""
    for name in ("broken.lnk", "loop.lnk", "pipe", "folder.lnk", "unreadable.bin", "gone.txt"):
        assert not store.exists(f"work/mixed/{name}"), name
    assert store.exists("work/mixed/locked.txt") == as_root
    summary = dialogs.texts("warning")
    assert len(summary) == 1
    text = summary[0]
    assert "broken.lnk: a broken symlink" in text
    assert "loop.lnk: a symlink loop" in text
    assert "pipe: a named pipe (FIFO), not a regular file" in text
    assert "folder.lnk: a link to a folder (not followed)" in text
    assert "gone.txt: vanished: it no longer exists" in text
    if proc_mem.exists():
        assert "unreadable.bin: cannot be read: Input/output error" in text
    if not as_root:
        assert "locked.txt: cannot be read: permission denied" in text
    message = window.statusBar().currentMessage()
    assert "could not be imported" in message and "Imported" in message


def test_dropping_where_the_key_space_is_read_only_is_refused_with_the_reason(
        qtbot, window, tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes(b"x")
    mime = file_mime(note)
    move = drag_over(window, "archive/", mime)
    assert not move.isAccepted()
    reason = window.statusBar().currentMessage()
    assert "outside the mount point 'work/'" in reason and "read-only" in reason
    assert window.tree._drop_hint[1] is False  # the outline says no
    drop = drop_on(window, "README.md", mime)  # a key outside: its folder is the top level
    assert drop.isAccepted()  # the top level takes files into the mount point...
    wait_for_drops(qtbot, window)
    assert window.store.exists("work/note.txt")
    drop = QDropEvent(QPointF(row_point(window, "archive/")), COPY_OR_MOVE, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.tree.viewport(), drop)
    assert not drop.isAccepted()  # ...but archive/ refuses them, even dropped straight away
    assert window.drop_importer.sessions == []
    assert not window.store.exists("archive/note.txt")

    window.store.readonly = True  # now nothing is writable
    window.facts = MountFacts.probe(window.store)
    move = drag_over(window, "work/", mime)
    assert not move.isAccepted()
    assert "Cannot drop here" in window.statusBar().currentMessage()
    assert "is read-only" in window.statusBar().currentMessage()


def test_name_clashes_ask_replace_keep_both_or_skip(qtbot, window, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    local = src / "local.txt"
    local.write_bytes(b"new local\n")
    open_folder(qtbot, window, "work/")
    store = window.store

    drop_on(window, "work/", file_mime(local))
    answer(clash_dialog(qtbot), "clashKeepBoth")
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/local.txt") == b"only here\n"
    assert store.to_bytes("work/local (2).txt") == b"new local\n"

    drop_on(window, "work/", file_mime(local))
    answer(clash_dialog(qtbot), "clashSkip")
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/local.txt") == b"only here\n"
    assert not store.exists("work/local (3).txt")

    drop_on(window, "work/", file_mime(local))
    answer(clash_dialog(qtbot), "clashReplace")
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/local.txt") == b"new local\n"

    shadow, remote = src / "shadow.txt", src / "remote.txt"
    shadow.write_bytes(b"s2\n")
    remote.write_bytes(b"r2\n")
    drop_on(window, "work/", file_mime(shadow, remote))
    dialog = clash_dialog(qtbot)
    assert "'work/shadow.txt' already exists" in dialog.findChild(QLabel, "clashText").text()
    assert dialog.all_box.text() == "Do the same for the other 1 clash(es)"
    answer(dialog, "clashKeepBoth", apply_all=True)  # one answer for both clashes
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/shadow (2).txt") == b"s2\n"
    assert store.to_bytes("work/remote (2).txt") == b"r2\n"

    drop_on(window, "work/", file_mime(local))
    answer(clash_dialog(qtbot), "clashCancel")
    qtbot.waitUntil(lambda: not window.drop_importer.sessions)
    assert "nothing was imported" in window.statusBar().currentMessage()


def test_many_small_files_are_imported_in_few_jobs(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(300):
        (folder / f"f{n:03}.txt").write_bytes(f"file {n}\n".encode())
    (folder / "large.bin").write_bytes(os.urandom(SMALL_FILE + 1))
    drop_on(window, "work/", file_mime(folder))
    wait_for_drops(qtbot, window)
    assert len(list(window.store.keys("work/many/"))) == 301
    assert len(window.transfers.jobs) == 2  # 300 small files in one job, the large one alone
    assert window.store.get_metadata("work/many/f007.txt")["sha256"] == \
        hashlib.sha256(b"file 7\n").hexdigest()


def test_skipping_the_clashes_of_a_big_drop_imports_the_others(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(40):
        (folder / f"f{n:02}.txt").write_bytes(f"new {n}\n".encode())
    store = window.store
    for n in (3, 7, 30):
        store.from_bytes(f"work/many/f{n:02}.txt", b"kept\n")
    drop_on(window, "work/", file_mime(folder))
    dialog = clash_dialog(qtbot)
    assert dialog.all_box.text() == "Do the same for the other 2 clash(es)"
    answer(dialog, "clashSkip", apply_all=True)
    wait_for_drops(qtbot, window)
    assert len(list(store.keys("work/many/"))) == 40
    for n in range(40):
        expected = b"kept\n" if n in (3, 7, 30) else f"new {n}\n".encode()
        assert store.to_bytes(f"work/many/f{n:02}.txt") == expected, n
    job, = window.transfers.jobs  # one job for the 37 files left, sized for them alone
    assert job.title == "Import 37 files into 'work/'"
    assert job.total == sum(len(f"new {n}\n") for n in range(40) if n not in (3, 7, 30))
    assert "Imported 37 key(s)" in window.statusBar().currentMessage()
    assert "3 skipped (the key exists)" in window.statusBar().currentMessage()


def test_a_plan_names_its_clashes_and_its_jobs_with_their_bytes(tmp_path, monkeypatch):
    from storegui.app.dnd import dropped_files
    from storegui.stores import MemoryStore

    monkeypatch.setattr(dropped_files, "BATCH_FILES", 3)
    folder = tmp_path / "drop"
    folder.mkdir()
    for n in range(7):
        (folder / f"s{n}.txt").write_bytes(b"x" * (n + 1))
    (folder / "t-large.bin").write_bytes(b"L" * (SMALL_FILE + 1))
    store = MemoryStore()
    store.from_bytes("in/drop/s2.txt", b"old")
    scan = dropped_files.plan_jobs(dropped_files.scan_drop(store, "in/", [folder]))
    assert [item.key for item in scan.clashes] == ["in/drop/s2.txt"]
    assert [([i.path.rsplit("/", 1)[1] for i in group], size) for group, size in scan.jobs] == [
        (["s0.txt", "s1.txt", "s2.txt"], 6), (["s3.txt", "s4.txt", "s5.txt"], 15),
        (["t-large.bin"], SMALL_FILE + 1), (["s6.txt"], 7)]
    scan.clashes[0].clash = dropped_files.SKIP
    assert [size for _group, size in dropped_files.without_skipped(scan.jobs)] == \
        [3, 15, SMALL_FILE + 1, 7]
    alone = dropped_files.plan_jobs(dropped_files.scan_drop(store, "in/", [folder]), batched=False)
    assert [len(group) for group, _size in alone.jobs] == [8]  # a copy or move: one job


def test_small_files_are_read_whole_at_every_size(tmp_path):
    from storegui.app.dnd import dropped_files
    from storegui.stores import MemoryStore
    from storegui.stores.transfer.streaming import CancelToken

    store = MemoryStore()
    sizes = [0, 1, 4095, 4096, 65537, SMALL_FILE]
    items = []
    for size in sizes:
        path = tmp_path / f"f{size}"
        path.write_bytes(os.urandom(size))
        items.append(dropped_files.ImportItem(f"k/{size}", str(path), size))
    report = dropped_files.import_small_files(store, items, lambda _d, _t: None, CancelToken())
    assert report.problems == [] and len(report.keys) == len(sizes)
    for size in sizes:
        data = (tmp_path / f"f{size}").read_bytes()
        assert store.to_bytes(f"k/{size}") == data
        assert store.get_metadata(f"k/{size}")["sha256"] == hashlib.sha256(data).hexdigest()

    # A file that grew past the small-file size since it was planned is read in pieces,
    # whole.
    grown = tmp_path / "grown"
    grown.write_bytes(os.urandom(2 * SMALL_FILE + 5))
    data, _st = dropped_files._read_small(str(grown), 4096)
    assert data == grown.read_bytes()


# ---------------------------------------------------------------------- keys out, keys moved


def test_dragging_keys_out_writes_them_as_files(qtbot, window):
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/shadow.txt", "work/new/", "README.md")
    mime = window.drag_out.mime_data(window.selected_nodes())
    assert mime.hasUrls() and window.drag_out.carries_keys(mime)
    assert mime.job is None  # nothing is written before a target asks for the files
    urls = mime.urls()  # what a file manager reads at the drop: waits for the export job
    paths = sorted(Path(u.toLocalFile()) for u in urls)
    assert [p.name for p in paths] == ["README.md", "new", "shadow.txt"]
    assert (paths[0].parent / "shadow.txt").read_bytes() == b"local version, longer\n"
    assert (paths[0].parent / "new" / "fresh.txt").read_bytes() == b"fresh\n"
    assert mime.job.state is JobState.DONE and mime.job.kind == "export"
    assert bytes(mime.data("text/uri-list").data()).split(b"\r\n")[:3] == \
        [u.toEncoded().data() for u in urls]  # as a file manager reads them
    folder = mime.folder
    window.close()
    assert not folder.exists()  # the drag's files are removed with the window


def test_pressing_on_a_selected_row_and_moving_starts_a_drag_of_the_selection(
        qtbot, window, monkeypatch):
    # QDrag.exec needs a real pointer to end; the drag's data is tested above.
    started = []
    monkeypatch.setattr(window.drag_out, "start_drag",
                        lambda view: started.append([n.key for n in window.selected_nodes()]))
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt", "work/shadow.txt")
    viewport = window.tree.viewport()
    start = row_point(window, "work/local.txt")
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(2, 1))  # not far enough yet
    assert started == []
    far = start + QPoint(QApplication.startDragDistance() + 5, 10)
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(far), QPointF(viewport.mapToGlobal(far)),
                       Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, move)
    assert started == [["work/local.txt", "work/shadow.txt"]]  # both, not just the pressed one


def test_a_drag_that_ends_nowhere_writes_nothing(qtbot, window):
    open_folder(qtbot, window, "work/")
    mime = dragged(window, "work/local.txt")
    window.drag_out.current = mime
    window.drag_out.left_tree()
    job = mime.job  # leaving the tree starts writing, in case a file manager is the target
    assert job is not None
    window.drag_out.discard(mime)  # the drag ended with no drop outside
    qtbot.waitUntil(lambda: job.state.finished and not mime.folder.exists())


def test_dragging_keys_within_the_tree_moves_or_copies_them(qtbot, window):
    open_folder(qtbot, window, "work/")
    open_folder(qtbot, window, "work/new/")
    store = window.store
    mime = dragged(window, "work/local.txt")
    assert drag_over(window, "work/new/", mime).dropAction() == Qt.DropAction.MoveAction
    assert "Move 'work/local.txt' into 'work/new/'" in window.statusBar().currentMessage()
    assert not drag_over(window, "work/", mime).isAccepted()  # already there
    assert "Already in 'work/'" in window.statusBar().currentMessage()
    assert drop_on(window, "work/new/", mime).isAccepted()
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/new/local.txt") == b"only here\n"
    assert not store.exists("work/local.txt")
    assert store.get_metadata("work/new/local.txt") == {"kind": "mount", "name": "local.txt"}

    mime = dragged(window, "README.md")  # only in the read-only backing store: copied, not moved
    move = drag_over(window, "work/sub/", mime)
    assert move.dropAction() == Qt.DropAction.CopyAction
    assert "cannot move" in window.statusBar().currentMessage()
    drop_on(window, "work/sub/", mime)
    wait_for_drops(qtbot, window)
    assert store.to_bytes("work/sub/README.md") == b"# readme\n"
    assert store.exists("README.md")

    mime = dragged(window, "work/new/")  # a folder, copied with Ctrl, and not into itself
    assert not drag_over(window, "work/new/", mime).isAccepted()
    drop_on(window, "work/sub/", mime, Qt.KeyboardModifier.ControlModifier)
    wait_for_drops(qtbot, window)
    assert sorted(store.keys("work/sub/new/")) == ["work/sub/new/fresh.txt",
                                                  "work/sub/new/local.txt"]
    assert store.exists("work/new/fresh.txt")


def test_the_importer_and_dragging_need_only_their_collaborators_not_a_window(
        qtbot, memory_store, tmp_path):
    parent = QWidget()
    qtbot.addWidget(parent)
    model, transfers = KeyTreeModel(parent=parent), TransferQueue(parent)
    model.set_store(memory_store)
    facts = MountFacts.probe(memory_store)
    messages, created = [], []
    drag_out = DragOut(lambda: memory_store, lambda: facts, transfers, list, parent)
    importer = DropImporter(lambda: memory_store, lambda: facts, model, transfers, drag_out,
                            parent)
    importer.statusMessage.connect(messages.append)
    importer.keyCreated.connect(created.append)
    note = tmp_path / "note.txt"
    note.write_bytes(b"no window\n")
    importer.import_paths("work/", [str(note)])
    qtbot.waitUntil(lambda: not importer.sessions and not transfers.is_busy())
    assert memory_store.to_bytes("work/note.txt") == b"no window\n"
    assert created == ["work/note.txt"]
    assert messages[-1].startswith("Imported 1 key(s)")
    model.shutdown()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_scan_never_opens_special_files(tmp_path):
    from storegui.app.dnd.dropped_files import scan_drop
    from storegui.stores import MemoryStore

    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block forever
    scan = scan_drop(MemoryStore(), "", [tmp_path / "pipe"])
    assert scan.items == [] and scan.problems[0][1].startswith("a named pipe")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_put_r_and_a_drop_of_one_folder_give_the_same_keys_and_metadata(tmp_path, capsys):
    """The command line's ``put -r`` and a drop plan with the same core function."""
    from storegui.app.dnd import dropped_files
    from storegui.cli.main import main
    from storegui.stores import SqliteStore
    from storegui.stores.transfer.streaming import CancelToken

    folder = tmp_path / "shoot"
    (folder / "raw" / "deep").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"alpha\n")
    (folder / "empty").write_bytes(b"")
    (folder / "raw" / "big.bin").write_bytes(os.urandom(SMALL_FILE + 3))  # streamed alone
    (folder / "raw" / "deep" / "notes.md").write_bytes(b"# notes\n")
    (folder / "link-to-a").symlink_to(folder / "a.txt")  # a link to a file: followed
    (folder / "link-to-raw").symlink_to(folder / "raw")  # to a folder: skipped
    (folder / "broken").symlink_to(tmp_path / "nowhere")
    os.mkfifo(folder / "pipe")
    locked = folder / "locked.txt"
    locked.write_bytes(b"secret\n")
    locked.chmod(0)  # unreadable, unless the tests run as root

    stores = {name: f"sqlite://{tmp_path / name}.db" for name in ("cli", "drop")}
    (tmp_path / "backing").mkdir()
    assert main(["put", "-r", "in/", str(folder), "--backing", str(tmp_path / "backing"),
                 "--mount", stores["cli"]]) == 1  # some files were skipped
    cli_skipped = {line.split("'")[1] for line in capsys.readouterr().err.splitlines()
                   if "skipped" in line}

    drop_store = SqliteStore(str(tmp_path / "drop.db"))
    scan = dropped_files.plan_jobs(dropped_files.scan_drop(drop_store, "in/", [folder]))
    for group, _size in scan.jobs:
        if len(group) == 1 and group[0].size > SMALL_FILE:
            dropped_files.import_large_file(drop_store, group[0], lambda _d, _t: None,
                                            CancelToken())
        else:
            report = dropped_files.import_small_files(drop_store, group, lambda _d, _t: None,
                                                      CancelToken())
            scan.problems += report.problems
    drop_store.disconnect()

    def contents(name):
        store = SqliteStore(str(tmp_path / f"{name}.db"))
        try:
            return {key: store.get_metadata(key) for key in store.keys()}
        finally:
            store.disconnect()

    from_cli, from_drop = contents("cli"), contents("drop")
    expected = ["in/shoot/a.txt", "in/shoot/empty", "in/shoot/link-to-a",
                "in/shoot/raw/big.bin", "in/shoot/raw/deep/notes.md"]
    if os.geteuid() == 0:  # root reads a file whatever its permissions
        expected.insert(4, "in/shoot/locked.txt")
    assert sorted(from_cli) == sorted(expected)
    assert from_cli == from_drop  # same keys, same metadata (file times, sizes, digests)
    assert from_cli["in/shoot/empty"]["size"] == 0
    assert from_cli["in/shoot/link-to-a"]["filename"] == "link-to-a"
    skipped = {"link-to-raw", "broken", "pipe"} | ({"locked.txt"} if os.geteuid() else set())
    assert {Path(p).name for p, _reason in scan.problems} == skipped
    assert {Path(p).name for p in cli_skipped} == skipped
