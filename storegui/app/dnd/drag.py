"""Dragging keys out of the tree: onto a file manager as files, or within the tree to move or copy.

A drag carries the dragged keys and folders (:data:`KEYS_MIME`, read by the
tree itself) and offers ``text/uri-list``. The files behind those URLs are
written only when a drop target first asks for them, or when the drag
leaves the tree (a drop inside the tree never needs them): an export job on
the transfer queue writes every key, each through a temporary file renamed
at the end, into a fresh folder under the user cache dir; the URLs are
handed over once that job is done (the event loop keeps running meanwhile,
so the window and its progress bars stay live). A drag that ends with no
drop outside cancels that export. Dragging out never deletes a key, even if
the target asks to move.

Within the tree a drop moves keys (the default) or copies them (Ctrl), into
the writable area only: a move needs mount copies to move (local or
shadowing keys); anything else is offered as a copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QEventLoop, QMimeData, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDrag

from ... import APP_AUTHOR, APP_NAME
from ...stores.transfer.streaming import CancelToken, copy_value
from .. import icons, operations
from ..actions import MountFacts, without_nested
from ..transfers.queue import JobState, TransferJob, TransferQueue
from .drop import DropVerdict, describe_prefix, writable_prefix
from .dropped_files import REPLACE, DropScan, ImportItem, ImportReport, find_existing, target_key

KEYS_MIME = "application/x-storegui-keys"
URI_LIST = "text/uri-list"
Item = tuple[str, bool, "str | None"]  # key, is_dir, origin


def drag_folder_root() -> Path:
    """Where dragged-out keys are written (a folder per drag)."""
    return platformdirs.user_cache_path(APP_NAME, APP_AUTHOR) / "drag-out"


def safe_part(part: str) -> str:
    """A key part usable as one file name (never "", "." or "..")."""
    return part if part not in ("", ".", "..") else part.replace(".", "_") or "_"


def export_items(store: Any, items: Sequence[Item], folder: Path, names: Sequence[Path],
                 progress: Any, cancel: CancelToken) -> list[str]:
    """Write each key (a file) and folder (a folder of files) under ``folder``, as ``names``."""
    pairs: list[tuple[str, Path]] = []
    for (key, is_dir, _origin), target in zip(items, names, strict=True):
        if not is_dir:
            pairs.append((key, target))
            continue
        for sub in sorted(store.keys(key)):
            cancel.check(sub)
            parts = [safe_part(p) for p in sub[len(key):].split("/")]
            pairs.append((sub, target.joinpath(*parts)))
    for _key, path in pairs:
        os.makedirs(path.parent, exist_ok=True)
    return operations.export_keys(store, pairs, progress, cancel)


def plan_copy(store: Any, sources: Sequence[Item], prefix: str, move: bool) -> DropScan:
    """The keys a move or copy of ``sources`` into ``prefix`` writes (run on a worker).

    A folder brings the keys under it (for a move, only those with a mount
    copy). ``existing`` are the target keys that exist already.
    """
    scan = DropScan()
    seen: dict[str, str] = {}
    for key, is_dir, _origin in sources:
        if is_dir:
            name = key.rstrip("/").rsplit("/", 1)[-1]
            scan.roots.append(prefix + name + "/")
            keys = store.local_keys(key) if move else store.keys(key)
            pairs = [(prefix + name + "/" + k[len(key):], k) for k in sorted(keys)]
        else:
            pairs = [(prefix + key.rsplit("/", 1)[-1], key)]
        for dst, src in pairs:
            if dst == src:
                continue
            if dst in seen:
                scan.problems.append((src, f"would become key {dst!r} like {seen[dst]!r}"))
                continue
            seen[dst] = src
            scan.items.append(ImportItem(dst, src, 0))
    scan.existing = find_existing(store, list(seen), scan.roots)
    return scan


def copy_keys(store: Any, items: Sequence[ImportItem], progress: Any, cancel: CancelToken,
              move: bool) -> ImportReport:
    """Copy (or move) each ``item.path`` key to ``item.key``, streamed; a report of it.

    A move copies then deletes the source in one transaction, so a failure
    leaves the source as it was and no copy; the copy is written to disk
    (``flush_to_disk``) before the source is deleted. A source gone meanwhile is
    reported, not fatal.
    """
    report = ImportReport()
    sizes: list[int] = []
    for item in items:
        try:
            sizes.append(store.stat(item.path).size or 0)
        except KeyError:
            sizes.append(-1)
            report.problems.append((item.path, "no longer exists"))
    total = sum(s for s in sizes if s > 0)
    existing = find_existing(store, [i.key for i in items if i.clash != REPLACE])
    base = 0
    for item, size in zip(items, sizes, strict=True):
        if size < 0:
            continue
        cancel.check(item.path)
        key = target_key(store, item, existing)
        if key is None:
            report.skipped.append((item.path, item.key))
            continue

        def step(done: int, _total: Any, base: int = base) -> None:
            progress(base + done, total)

        if move:
            with store.transaction(f"move {item.path} to {key}"):
                copy_value(store, item.path, store, key, progress=step, cancel=cancel)
                store.flush_to_disk([key])  # the copy survives a power loss before the source goes
                store.delete(item.path)
        else:
            copy_value(store, item.path, store, key, progress=step, cancel=cancel)
        report.keys.append(key)
        report.bytes += size
        base += size
    return report


class KeyDragData(QMimeData):
    """What a drag of keys carries; the files behind its URLs are written on first request."""

    def __init__(self, owner: DragOut, items: list[Item], folder: Path) -> None:
        super().__init__()
        self.owner = owner
        self.items = items
        self.folder = folder
        names = [safe_part(k.rstrip("/").rsplit("/", 1)[-1]) for k, _d, _o in items]
        top = operations.export_names(names, folder)
        self.paths = [path for _key, path in top]
        self.job: TransferJob | None = None
        self.requested = False
        payload = {"window": owner.token, "items": [list(i) for i in items]}
        self.setData(KEYS_MIME, json.dumps(payload).encode("utf-8"))

    def formats(self) -> list[str]:
        return [KEYS_MIME, URI_LIST]

    def retrieveData(self, mimetype: str, preferred: Any) -> Any:  # noqa: N802 (Qt override)
        if mimetype == URI_LIST:
            self.requested = True
            return self.owner.files_for(self)
        return super().retrieveData(mimetype, preferred)


class DragOut(QObject):
    """Starts drags of the selected keys, judges and runs their drops inside the tree.

    Parameters
    ----------
    store : callable
        Returns the store shown now (None while there is none): the drag's source.
    facts : callable
        Returns the :class:`MountFacts` of the store shown (None while unknown).
    transfers : TransferQueue
        Runs the exports that write a drag's files.
    selected_nodes : callable
        Returns the tree nodes selected now (what a drag started in the tree carries).
    parent : QObject, optional

    Signals
    -------
    statusMessage(str)
        Why nothing was dragged out.
    """

    statusMessage = Signal(str)

    def __init__(self, store: Callable[[], Any], facts: Callable[[], MountFacts | None],
                 transfers: TransferQueue, selected_nodes: Callable[[], Sequence[Any]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._facts = facts
        self._transfers = transfers
        self._selected_nodes = selected_nodes
        self.token = uuid.uuid4().hex
        self.current: KeyDragData | None = None
        self._folders: list[Path] = []

    # ------------------------------------------------------------------ starting a drag

    def mime_data(self, nodes: Sequence[Any]) -> KeyDragData | None:
        """The drag data for tree nodes (None if there is nothing to drag)."""
        items = [(n.key, bool(n.is_dir), n.origin) for n in without_nested(list(nodes))]
        if not items or self._store() is None:
            return None
        root = drag_folder_root()
        root.mkdir(parents=True, exist_ok=True)
        folder = root / uuid.uuid4().hex[:12]
        folder.mkdir()
        self._folders.append(folder)
        return KeyDragData(self, items, folder)

    def start_drag(self, view: Any) -> None:
        """Drag the selected keys and folders (blocks until the drop, as QDrag does)."""
        mime = self.mime_data(self._selected_nodes())
        if mime is None:
            return
        drag = QDrag(view)
        drag.setMimeData(mime)
        drag.setPixmap(icons.icon("key").pixmap(32, 32))
        self.current = mime
        try:
            drag.exec(Qt.DropAction.CopyAction | Qt.DropAction.MoveAction,
                      Qt.DropAction.MoveAction)
        finally:
            self.current = None
        if not mime.requested:
            self.discard(mime)

    def left_tree(self) -> None:
        """The drag left the tree: it may be heading for a file manager, so start writing."""
        if self.current is not None:
            self.prepare(self.current)

    def discard(self, mime: KeyDragData) -> None:
        """Cancel the export of a drag nobody took files from, and remove its folder."""
        if mime.job is not None and not mime.job.state.finished:
            mime.job.on_done = lambda _r, m=mime: self._remove_folder(m.folder)
            mime.job.on_error = lambda _e, m=mime: self._remove_folder(m.folder)
            self._transfers.cancel(mime.job)
        else:
            self._remove_folder(mime.folder)

    def _remove_folder(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(ValueError):
            self._folders.remove(folder)

    def shutdown(self) -> None:
        """Remove the folders of this window's drags (files handed out were copied by now)."""
        for folder in list(self._folders):
            self._remove_folder(folder)

    # ------------------------------------------------------------------ files for a drop outside

    def prepare(self, mime: KeyDragData) -> TransferJob:
        """Start (once) the export job that writes the drag's files."""
        if mime.job is None or mime.job.state in (JobState.FAILED, JobState.CANCELLED):
            store, items = self._store(), mime.items
            names = mime.paths
            what = f"'{items[0][0]}'" if len(items) == 1 else f"{len(items)} items"
            mime.job = self._transfers.submit(
                f"Export {what} for dragging", lambda p, c: export_items(
                    store, items, mime.folder, names, p, c), kind="export")
        return mime.job

    def files_for(self, mime: KeyDragData) -> list[QUrl]:
        """The URLs of the drag's files, once written (an empty list if that failed)."""
        job = self.prepare(mime)
        if not job.state.finished:
            loop = QEventLoop()
            queue = self._transfers

            def ended(changed: TransferJob) -> None:
                if changed is job and changed.state.finished:
                    loop.quit()

            queue.jobChanged.connect(ended)
            try:
                loop.exec()  # the window stays live; the export's progress shows meanwhile
            finally:
                queue.jobChanged.disconnect(ended)
        if job.state is not JobState.DONE:
            self.statusMessage.emit(f"Nothing was dragged out: {job.error_text or 'cancelled'}")
            return []
        return [QUrl.fromLocalFile(str(p)) for p in mime.paths if p.exists()]

    # ------------------------------------------------------------------ drops inside the tree

    def carries_keys(self, mime: Any) -> bool:
        """Whether a drag carries keys from a storegui tree."""
        return mime is not None and mime.hasFormat(KEYS_MIME)

    def _payload(self, mime: Any) -> dict:
        try:
            return json.loads(bytes(mime.data(KEYS_MIME).data()).decode("utf-8"))
        except ValueError:
            return {}

    def items_of(self, mime: Any) -> list[Item]:
        """The keys and folders a drag of ours carries."""
        return [tuple(i) for i in self._payload(mime).get("items", [])]

    def verdict(self, mime: Any, folder: str, index: Any, event: Any) -> DropVerdict:
        """Whether dragged keys may be dropped on ``folder``, moved or copied."""
        payload = self._payload(mime)
        if payload.get("window") != self.token:
            return DropVerdict(False, "Keys can only be moved within their own window; export "
                                      "them and drop the files instead", index)
        prefix, why = writable_prefix(self._facts(), folder)
        if prefix is None:
            return DropVerdict(False, why, index)
        items = self.items_of(mime)
        where = describe_prefix(prefix)
        for key, is_dir, _origin in items:
            if is_dir and prefix.startswith(key):
                return DropVerdict(False, f"Cannot put '{key}' inside itself", index)
        if all(key[:key.rstrip("/").rfind("/") + 1] == prefix for key, _d, _o in items):
            return DropVerdict(False, f"Already in {where}", index)
        what = f"'{items[0][0]}'" if len(items) == 1 else f"{len(items)} items"
        reason = next(filter(None, (self._move_refusal(i) for i in items)), None)
        copy = Qt.DropAction.CopyAction
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return DropVerdict(True, f"Copy {what} into {where}", index, prefix, copy)
        if reason or not event.possibleActions() & Qt.DropAction.MoveAction:
            note = f" (cannot move: {reason})" if reason else ""
            return DropVerdict(True, f"Copy {what} into {where}{note}", index, prefix, copy)
        return DropVerdict(True, f"Move {what} into {where} (hold Ctrl to copy)", index,
                           prefix, Qt.DropAction.MoveAction)

    def _move_refusal(self, item: Item) -> str | None:
        key, is_dir, origin = item
        facts = self._facts()
        if is_dir:
            return None if origin in ("local", "shadowing") and facts.overlaps(key) else \
                f"nothing under '{key}' has a local copy"
        if origin not in ("local", "shadowing") or not facts.inside(key):
            return f"'{key}' has no local copy; the backing store is read-only here"
        return None

    plan_copy = staticmethod(plan_copy)
    copy_keys = staticmethod(copy_keys)
