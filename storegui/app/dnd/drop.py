"""Drops on the key tree: files from the desktop become keys; keys dragged inside move or copy.

While something is dragged over the tree, :meth:`DropImporter.drag_verdict`
says (without any store call: from the tree and the facts gathered about
the stores) whether it may land there, where, and why not; the tree draws
that and the status bar says it. A drop then runs in steps, none of them
blocking the window:

1. on a worker: walk the dropped files (or list the dragged keys) and check
   which target keys exist already (:func:`storegui.app.dnd.dropped_files.scan_drop`);
2. on the GUI thread: ask about each name clash (:class:`ClashDialog`:
   replace, keep both, skip, with "apply to all");
3. queue the jobs on the transfer queue (small files batched, each large
   file alone);
4. when the drop's last job ends: a summary in the status bar, and a dialog
   listing what could not be imported (unreadable files, broken links, link
   loops, special files, files gone meanwhile) if anything.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...stores.errors import TransferCancelled
from ..actions import MountFacts
from ..formatting import format_size
from ..scheduling import HeartbeatTimer, freeze_alive, scan_pacer
from ..transfers.queue import TransferQueue
from ..tree.model import KeyTreeModel
from ..tree.nodes import KeyNode, StatusRow
from ..workers import run_in_thread
from . import dropped_files
from .dropped_files import KEEP_BOTH, REPLACE, SKIP, DropScan, ImportItem, ImportReport

if TYPE_CHECKING:
    from .drag import DragOut

#: At most this many problems are listed in the summary dialog.
MAX_LISTED = 15
#: A plan of this many files or more is moved out of the garbage collector's sight.
FREEZE_AFTER = 1000


@dataclass
class DropVerdict:
    """Whether a drag may drop where it is, and what the user is told."""

    accepted: bool
    message: str
    target: QModelIndex = field(default_factory=QModelIndex)  # the row to highlight
    prefix: str | None = None  # where the new keys go
    action: Qt.DropAction = Qt.DropAction.CopyAction


@dataclass
class DropSession:
    """One drop (or internal move/copy), from the scan to the summary."""

    verb: str  # "import", "copy" or "move"
    prefix: str
    store: Any = None  # the store it writes to (another workspace may be opened meanwhile)
    scan: DropScan | None = None
    clashes: deque[ImportItem] = field(default_factory=deque)  # not answered yet
    apply_all: str | None = None
    jobs: list[Any] = field(default_factory=list)
    reports: list[ImportReport] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0
    ended: int = 0
    summarized: bool = False


class ClashDialog(QDialog):
    """Asks what to do with a key that exists already (objectName ``clashDialog``).

    After it closes, ``choice`` is REPLACE, KEEP_BOTH, SKIP, or None (cancel
    the whole drop), and ``apply_all`` whether the choice covers the other
    clashes of the drop too.
    """

    def __init__(self, parent: QWidget | None, key: str, others: int) -> None:
        super().__init__(parent)
        self.setObjectName("clashDialog")
        self.setWindowTitle("Key exists")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.choice: str | None = None
        self.apply_all = False
        text = QLabel(f"'{key}' already exists.\n\nReplace it, keep both (the new one is "
                      "renamed), or skip this file?", self)
        text.setObjectName("clashText")
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setWordWrap(True)
        self.all_box = QCheckBox(f"Do the same for the other {others} clash(es)", self)
        self.all_box.setObjectName("clashApplyAll")
        self.all_box.setVisible(others > 0)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for name, label, choice in (("clashReplace", "&Replace", REPLACE),
                                    ("clashKeepBoth", "&Keep Both", KEEP_BOTH),
                                    ("clashSkip", "&Skip", SKIP),
                                    ("clashCancel", "Cancel Drop", None)):
            button = QPushButton(label, self)
            button.setObjectName(name)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, c=choice: self._choose(c))
            buttons.addWidget(button)
            if choice == KEEP_BOTH:
                button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.all_box)
        layout.addLayout(buttons)

    def _choose(self, choice: str | None) -> None:
        self.choice = choice
        self.apply_all = self.all_box.isChecked()
        if choice is None:
            self.reject()
        else:
            self.accept()


def writable_prefix(facts: MountFacts | None, folder: str) -> tuple[str | None, str]:
    """Where keys dropped on ``folder`` go, or None and why nothing may go there.

    ``facts`` are those gathered about the stores shown (None while they are
    being gathered, or while no store is shown).
    """
    if facts is None:
        return None, "Checking whether the stores can be written…"
    if facts.mount_readonly:
        return None, f"Cannot drop here: {facts.mount_readonly}"
    prefix = facts.new_key_prefix(folder)
    if prefix is None:
        return None, (f"Cannot drop on '{folder}': it is outside the mount point "
                      f"'{facts.mount_point}', and the backing store is read-only here. "
                      f"Drop on '{facts.mount_point}' or a folder under it")
    return prefix, ""


class DropImporter(QObject):
    """Judges drags over the tree and runs drops (files in; keys moved or copied).

    Parameters
    ----------
    store : callable
        Returns the store shown now (None while there is none). A drop writes
        to the store shown when it started, and is dropped if another store is
        shown by the time its jobs would be queued.
    facts : callable
        Returns the :class:`MountFacts` of the store shown (None while unknown).
    model : KeyTreeModel
        The tree's model: the rows under a drag, and the folders a drop wrote to.
    transfers : TransferQueue
        Runs the drop's jobs.
    drag_out : DragOut
        Tells a drag of keys from a drag of files, judges and plans moves and copies.
    parent : QWidget
        The parent of the dialogs (name clashes, the summary) and of this object.

    Signals
    -------
    statusMessage(str)
        What a drag over the tree would do, a drop's progress and its summary.
    errorRaised(str, object)
        A drop could not be planned: a title and the exception, for a dialog.
    keyCreated(str)
        The one key a drop stored: the window may show it.
    """

    statusMessage = Signal(str)
    errorRaised = Signal(str, object)
    keyCreated = Signal(str)

    def __init__(self, store: Callable[[], Any], facts: Callable[[], MountFacts | None],
                 model: KeyTreeModel, transfers: TransferQueue, drag_out: DragOut,
                 parent: QWidget) -> None:
        super().__init__(parent)
        self._store = store
        self._facts = facts
        self._model = model
        self._transfers = transfers
        self._drag_out = drag_out
        self._dialog_parent = parent
        self._closing = False
        self._last_message: str | None = None
        self._paths: list[str] | None = None  # the files of the drag in progress
        self.sessions: list[DropSession] = []
        # While drops are planned, the GUI thread's heartbeat, for the planning workers'
        # pauses (scan_pacer): the transfer queue beats once the jobs run.
        self._planning = 0
        self._heartbeat = HeartbeatTimer(self)

    # ------------------------------------------------------------------ while dragging

    def _folder_at(self, view: Any, pos: Any) -> tuple[str, QModelIndex]:
        """The folder under ``pos`` (a key's own folder) and the row that stands for it."""
        index = view.indexAt(pos)
        if not index.isValid():
            return "", QModelIndex()
        index = index.siblingAtColumn(0)
        node = self._model.node(index)
        if isinstance(node, StatusRow):
            node, index = node.parent, index.parent()
        elif isinstance(node, KeyNode) and not node.is_dir:
            node, index = node.parent, index.parent()
        if not isinstance(node, KeyNode) or not node.key:
            return "", QModelIndex()
        return node.key, index

    def drag_verdict(self, view: Any, event: Any) -> DropVerdict:
        """Whether what ``event`` carries may be dropped at its position (no store I/O)."""
        folder, index = self._folder_at(view, event.position().toPoint())
        mime = event.mimeData()
        if self._drag_out.carries_keys(mime):
            verdict = self._drag_out.verdict(mime, folder, index, event)
        else:
            # Read the URLs once per drag: on X11 each read asks the source application.
            if self._paths is None or event.type() == QEvent.Type.DragEnter:
                self._paths = local_paths(mime)
            verdict = self._files_verdict(self._paths, folder, index)
        self._say(verdict.message)
        return verdict

    def _files_verdict(self, paths: list[str], folder: str, index: QModelIndex) -> DropVerdict:
        if not paths:
            return DropVerdict(False, "Only files and folders can be dropped here", index)
        prefix, why = writable_prefix(self._facts(), folder)
        if prefix is None:
            return DropVerdict(False, why, index)
        what = f"'{os.path.basename(paths[0].rstrip(os.sep))}'" if len(paths) == 1 \
            else f"{len(paths)} items"
        return DropVerdict(True, f"Drop to import {what} into {describe_prefix(prefix)}",
                           index, prefix)

    def drag_left(self) -> None:
        """The drag left the tree: forget its message and files."""
        self._last_message = None
        self._paths = None

    def _say(self, message: str) -> None:
        if message != self._last_message:  # a drag moves a lot: say each thing once
            self._last_message = message
            self.statusMessage.emit(message)

    def shutdown(self) -> None:
        """The window closes: drops still ending say so in the status bar only, no dialog."""
        self._closing = True

    # ------------------------------------------------------------------ dropping

    def drop(self, view: Any, event: Any, verdict: DropVerdict) -> None:
        """Run an accepted drop (``verdict`` from :meth:`drag_verdict`)."""
        self._last_message = None
        self._paths = None
        mime = event.mimeData()
        drag_out = self._drag_out
        if drag_out.carries_keys(mime):
            move = verdict.action == Qt.DropAction.MoveAction
            sources = drag_out.items_of(mime)
            self.start("move" if move else "copy", verdict.prefix or "",
                       lambda store: drag_out.plan_copy(store, sources, verdict.prefix or "",
                                                        move))
        else:
            self.import_paths(verdict.prefix or "", local_paths(mime))

    def import_paths(self, prefix: str, paths: list[str]) -> DropSession | None:
        """Import files and folders under ``prefix`` (a drop, or New Key with several files)."""
        if not paths:
            return None
        return self.start("import", prefix,
                          lambda store: dropped_files.scan_drop(store, prefix, paths, scan_pacer()))

    def start(self, verb: str, prefix: str, plan: Callable[[Any], DropScan]) -> DropSession:
        """Plan on a worker with ``plan(store)``, then ask about clashes, then queue the jobs."""
        store = self._store()
        session = DropSession(verb, prefix, store)
        self.sessions.append(session)
        self.statusMessage.emit(f"Preparing to {verb} into {describe_prefix(prefix)}…")
        batched = verb == "import"

        def planned(store: Any) -> DropScan:
            # Everything that grows with the number of files happens here, on the worker:
            # the GUI thread then handles a few jobs, not 10,000 items (30 ms measured).
            return dropped_files.plan_jobs(plan(store), batched, scan_pacer())

        self._planning += 1
        self._heartbeat.set_running(True)
        run_in_thread(planned, store, context=store,
                      on_result=lambda scan: self._planned(session, scan),
                      on_error=lambda exc: self._plan_failed(session, exc),
                      on_finished=self._plan_ended)
        return session

    def _plan_ended(self) -> None:
        self._planning -= 1
        if not self._planning:
            self._heartbeat.set_running(False)

    def _plan_failed(self, session: DropSession, exc: BaseException) -> None:
        self._forget(session)
        self.errorRaised.emit(f"Cannot {session.verb} into {describe_prefix(session.prefix)}",
                              exc)

    def _planned(self, session: DropSession, scan: DropScan) -> None:
        session.scan = scan
        if self._planning <= 1:  # no other drop is being planned: "Preparing to…" is over
            self.statusMessage.emit("")
        if len(scan.items) >= FREEZE_AFTER:
            # The plan is thousands of long-lived objects, and the import workers allocate
            # fast: full collections then walk the whole heap holding the GIL, stalling the
            # window (70 ms measured, 10,000 files). As the tree does for its nodes (see
            # scheduling.note_new_nodes), freeze what is alive; release_frozen() gives it
            # back later.
            freeze_alive()
        session.clashes = deque(scan.clashes)
        self._resolve_next(session)

    def _resolve_next(self, session: DropSession) -> None:
        clashes = session.clashes
        if session.apply_all is not None:
            for item in clashes:
                item.clash = session.apply_all
            clashes.clear()
        if clashes:
            dialog = ClashDialog(self._dialog_parent, clashes[0].key, len(clashes) - 1)
            dialog.finished.connect(lambda _r, d=dialog: self._answered(session, d))
            dialog.open()
            return
        self._queue(session)

    def _answered(self, session: DropSession, dialog: ClashDialog) -> None:
        dialog.deleteLater()
        if dialog.choice is None:
            self._forget(session)
            self.statusMessage.emit(f"Cancelled: nothing was {past(session.verb)}")
            return
        item = session.clashes.popleft()
        item.clash = dialog.choice
        if dialog.apply_all:
            session.apply_all = dialog.choice
        self._resolve_next(session)

    def _queue(self, session: DropSession) -> None:
        if session.store is not self._store():  # another workspace was opened meanwhile
            self._forget(session)
            return
        scan = session.scan
        jobs = scan.jobs
        # Only a clash can be skipped: the items are walked again only if one was.
        skipped = [item for item in scan.clashes if item.clash == SKIP]
        if skipped:
            session.reports.append(ImportReport(skipped=[(i.path, i.key) for i in skipped]))
            jobs = dropped_files.without_skipped(jobs)
        if not jobs:
            self._summarize(session)
            return
        store = session.store
        where = describe_prefix(session.prefix)
        if session.verb != "import":
            drag_out = self._drag_out
            move = session.verb == "move"
            items = jobs[0][0]
            title = f"{session.verb.capitalize()} {describe_count(items)} to {where}"
            self._submit(session, title,
                         lambda p, c: drag_out.copy_keys(store, items, p, c, move), None)
            return
        for batch, size in jobs:
            name = os.path.basename(batch[0].path)
            if len(batch) == 1 and batch[0].size > dropped_files.SMALL_FILE:
                self._submit(session, f"Import '{name}' into {where}",
                             lambda p, c, i=batch[0]: dropped_files.import_large_file(
                                 store, i, p, c), size)
            else:
                title = (f"Import {len(batch):,} files into {where}" if len(batch) > 1
                         else f"Import '{name}' into {where}")
                self._submit(session, title,
                             lambda p, c, b=batch: dropped_files.import_small_files(
                                 store, b, p, c, scan.roots), size)

    def _submit(self, session: DropSession, title: str, fn: Any, total: int | None) -> None:
        job = self._transfers.submit(
            title, fn, kind=session.verb, total=total,
            on_done=lambda report: self._job_done(session, report),
            on_error=lambda exc, t=title: self._job_failed(session, t, exc))
        session.jobs.append(job)

    def _job_done(self, session: DropSession, report: ImportReport) -> None:
        session.reports.append(report)
        self._job_ended(session, report.keys)

    def _job_failed(self, session: DropSession, title: str, exc: BaseException) -> None:
        if isinstance(exc, TransferCancelled):
            session.cancelled += 1
        else:
            session.failed.append((title, str(exc) or type(exc).__name__))
        self._job_ended(session, [])

    def _job_ended(self, session: DropSession, keys: list[str]) -> None:
        session.ended += 1
        if session.store is not self._store():  # another workspace was opened meanwhile
            self._forget(session)
            return
        # The store's events name each key written; the folder itself may be new.
        self._model.refresh_keys([session.prefix])
        if session.summarized:  # a retried job: the drop was summed up already
            if keys:
                self.statusMessage.emit(f"{past(session.verb).capitalize()} {len(keys)} key(s)")
            return
        if session.ended >= len(session.jobs):
            self._summarize(session)

    # ------------------------------------------------------------------ the summary

    def _summarize(self, session: DropSession) -> None:
        session.summarized = True
        self._forget(session)
        keys = [k for r in session.reports for k in r.keys]
        size = sum(r.bytes for r in session.reports)
        problems = list(session.scan.problems if session.scan else [])
        problems += [p for r in session.reports for p in r.problems]
        skipped = [s for r in session.reports for s in r.skipped]
        verb = past(session.verb)
        text = f"{verb.capitalize()} {len(keys):,} key(s) ({format_size(size)}) into " \
               f"{describe_prefix(session.prefix)}"
        notes = []
        if skipped:
            notes.append(f"{len(skipped)} skipped (the key exists)")
        if problems:
            notes.append(f"{len(problems)} could not be {verb}")
        if session.failed:
            notes.append(f"{len(session.failed)} transfer(s) failed")
        if session.cancelled:
            notes.append(f"{session.cancelled} transfer(s) cancelled")
        if notes:
            text += "; " + ", ".join(notes)
        self.statusMessage.emit(text)
        if len(keys) == 1 and not problems and not session.failed:
            self.keyCreated.emit(keys[0])
        if (problems or session.failed) and not self._closing:
            lines = [f"{path}: {why}" for path, why in problems]
            lines += [f"{title}: {why}" for title, why in session.failed]
            listed = "\n".join(f"• {line}" for line in lines[:MAX_LISTED])
            more = f"\n…and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
            QMessageBox.warning(self._dialog_parent, f"Some items were not {verb}",
                                f"{text}.\n\nNot {verb}:\n{listed}{more}")

    def _forget(self, session: DropSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)


def local_paths(mime: Any) -> list[str]:
    """The local files and folders a drag carries (other URLs are ignored)."""
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def describe_prefix(prefix: str) -> str:
    """``'work/'``, or ``the top level`` for ""."""
    return f"'{prefix}'" if prefix else "the top level"


def describe_count(items: list[ImportItem]) -> str:
    """``'a.txt'`` or ``12 keys``."""
    return f"'{items[0].path}'" if len(items) == 1 else f"{len(items):,} keys"


def past(verb: str) -> str:
    """``imported``, ``copied``, ``moved``."""
    return {"import": "imported", "copy": "copied", "move": "moved"}.get(verb, verb + "ed")
