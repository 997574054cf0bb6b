"""FolderLoader: runs the listings of the key tree's folders on workers and delivers them.

One ``list_dir`` per folder at a time. A folder never listed is listed in
parts (:func:`~storegui.app.tree.jobs.load_folder`: the first part is
small, so a huge folder shows rows at once); a folder that already has
children is listed whole and compared with them
(:func:`~storegui.app.tree.jobs.relist_folder`). The workers build the
nodes and work out the changes; the model only installs what the loader's
signals deliver, each carrying its folder. A listing asked for while one of
the same folder runs is run again once that one ends (the running one may
predate the change).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from ..workers import Worker
from .jobs import Listing, job, load_folder, relist_folder
from .nodes import KeyNode


class FolderLoader(QObject):
    """Listings of folders, one worker per folder; results arrive through signals.

    Signals (on the GUI thread; a listing stopped or replaced sends nothing more)
    -------
    partListed(KeyNode, Listing)
        A part of a folder's first listing.
    folderListed(KeyNode, object)
        A listing ended: the changes of a folder listed again (a
        :class:`~storegui.app.tree.jobs.Listing`), or None after a first listing.
    listingFailed(KeyNode, Exception)
        ``list_dir`` raised.
    listingEnded(KeyNode, bool)
        The folder's worker is done (after the signals above); the flag says
        whether the folder was asked to be listed again meanwhile.
    workerDone()
        Any listing's worker ended, stopped ones included (so the caller can
        tell when nothing runs any more).
    """

    partListed = Signal(object, object)
    folderListed = Signal(object, object)
    listingFailed = Signal(object, object)
    listingEnded = Signal(object, bool)
    workerDone = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[str, Worker] = {}
        self._again: set[str] = set()

    def start(self, store: Any, folder: KeyNode, order: tuple[int, bool]) -> None:
        """List ``folder`` of ``store`` (in parts, sorted by ``order``, if it has no children yet).

        If a listing of the folder runs, it is listed again after that one instead.
        """
        if folder.key in self._jobs:
            self._again.add(folder.key)
            return
        relist = bool(folder.children)
        if relist:
            rows = folder.rows
            worker = job(relist_folder, store, folder, list(folder.children), rows.version,
                         rows.order)
        else:
            worker = job(load_folder, store, folder, order)
            worker.yielded.connect(self._on_part)
        worker.context = (folder, relist)
        worker.returned.connect(self._on_listed)
        worker.errored.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._jobs[folder.key] = worker
        worker.start()

    def list_again(self, folder: KeyNode) -> None:
        """List ``folder`` once more when its running listing ends."""
        self._again.add(folder.key)

    def is_listing(self, key: str) -> bool:
        """Whether the folder ``key`` is being listed."""
        return key in self._jobs

    def is_busy(self) -> bool:
        """Whether any listing runs."""
        return bool(self._jobs)

    def stop_under(self, node: KeyNode) -> None:
        """Stop the listings of ``node`` (a folder gone from the tree) and of folders under it."""
        if node.is_dir:
            for key in [k for k in self._jobs if k.startswith(node.key)]:
                self._jobs.pop(key).quit()

    def stop_all(self) -> None:
        """Stop every listing; none of them sends anything more."""
        for worker in self._jobs.values():
            worker.quit()
        self._jobs.clear()
        self._again.clear()

    # ------------------------------------------------------------------ from the workers

    def _current(self) -> tuple[KeyNode, bool] | None:
        """The sending worker's ``(folder, relist)``, unless it was stopped or replaced."""
        worker = self.sender()
        if not isinstance(worker, Worker):
            return None
        folder, relist = worker.context
        if self._jobs.get(folder.key) is not worker:
            return None
        return folder, relist

    def _on_part(self, listing: Listing) -> None:
        current = self._current()
        if current is not None:
            self.partListed.emit(current[0], listing)

    def _on_listed(self, result: Listing | None) -> None:
        current = self._current()
        if current is not None:
            folder, relist = current
            self.folderListed.emit(folder, result if relist else None)

    def _on_failed(self, exc: BaseException) -> None:
        current = self._current()
        if current is not None:
            self.listingFailed.emit(current[0], exc)

    def _on_finished(self) -> None:
        current = self._current()
        if current is not None:
            folder = current[0]
            del self._jobs[folder.key]
            again = folder.key in self._again
            self._again.discard(folder.key)
            self.listingEnded.emit(folder, again)
        self.workerDone.emit()
