"""Listing folders for the key tree: one ``list_dir`` per folder on a worker.

A mixin of :class:`~storegui.app.tree.model.KeyTreeModel`. A folder never
listed fills in part by part (the first part is small, so a huge folder
shows rows at once); a folder that already has rows is listed whole and the
difference applied. The worker builds the nodes and works out the changes
(:mod:`storegui.app.tree.jobs`); the GUI thread only installs them. A "Loading…" row
shows meanwhile; a failure leaves the error in that row and goes to
``statusMessage``.
"""

from __future__ import annotations

from typing import Any

from ..scheduling import note_new_nodes
from ..workers import Worker
from .jobs import (
    BATCH,
    BATCH_SECONDS,
    FIRST_BATCH,
    Listing,
    job,
    load_folder,
    relist_folder,
)
from .nodes import FAILED, LOADED, LOADING, KeyNode
from .window import LOADING_TEXT

__all__ = ["BATCH", "BATCH_SECONDS", "FIRST_BATCH", "LOADING_TEXT", "TreeLoadingMixin"]

class TreeLoadingMixin:
    """Starts listings and installs their results (needs the model's jobs, timers, signals)."""

    _store: Any
    _jobs: dict[str, Worker]

    def _start_load(self, folder: KeyNode) -> None:
        if self._store is None:
            return
        if folder.key in self._jobs:
            # The running listing may predate the change: list again after it.
            self._refresh_again.add(folder.key)
            return
        self._stop_sort_job(folder)
        relist = bool(folder.children)
        if folder.state != LOADED:
            folder.state = LOADING
            if folder.status is not None:
                self._apply_tail(folder)
            else:
                # Not inserted here: fetchMore may run inside a view's (or the
                # model tester's) handling of another insert.
                self._status_pending.append(folder)
                self._status_timer.start()
        rows = folder.rows
        if relist:
            worker = job(relist_folder, self._store, folder, list(folder.children),
                         rows.version, rows.order)
        else:
            rows.order = self._order()
            worker = job(load_folder, self._store, folder, rows.order)
            worker.yielded.connect(self._on_batch)
        worker.context = folder
        worker.relist = relist
        worker.returned.connect(self._on_listed)
        worker.errored.connect(self._on_list_failed)
        worker.finished.connect(self._on_list_finished)
        self._jobs[folder.key] = worker
        worker.start()
        self._update_heartbeat()

    def _show_pending_status(self) -> None:
        pending, self._status_pending = self._status_pending, []
        for folder in pending:
            if (folder.state == LOADING and folder.key in self._jobs
                    and folder.status is None and self._attached(folder)):
                self._apply_tail(folder)

    def _current_job(self) -> tuple[Worker | None, KeyNode | None]:
        worker = self.sender()
        if not isinstance(worker, Worker):
            return None, None
        folder = worker.context
        if self._jobs.get(folder.key) is not worker:
            return None, None  # stale: the store changed or the folder went away
        return worker, folder

    def _on_batch(self, listing: Listing) -> None:
        worker, folder = self._current_job()
        if worker is not None:
            self._install(folder, listing)

    def _on_listed(self, result: Listing | None) -> None:
        worker, folder = self._current_job()
        if worker is None:
            return
        if worker.relist and result is not None:
            if result.version != folder.rows.version:
                self._refresh_again.add(folder.key)  # changed meanwhile: list once more
            else:
                self._install(folder, result)
        folder.state = LOADED
        self._apply_tail(folder)
        self.folderLoaded.emit(folder.key)

    def _on_list_failed(self, exc: BaseException) -> None:
        worker, folder = self._current_job()
        if worker is None:
            return
        where = f"'{folder.key}'" if folder.key else "the top level"
        message = f"Cannot list {where}: {exc}"
        folder.state = FAILED
        folder.rows.error = message
        self._apply_tail(folder)
        self.statusMessage.emit(message)
        self._reveals = {k: v for k, v in self._reveals.items() if not k.startswith(folder.key)}

    def _on_list_finished(self) -> None:
        worker = self.sender()
        if not isinstance(worker, Worker):
            return
        folder = worker.context
        if self._jobs.get(folder.key) is worker:
            del self._jobs[folder.key]
            if folder.key in self._refresh_again:
                self._refresh_again.discard(folder.key)
                if folder.state == LOADED and self._attached(folder):
                    self._start_load(folder)
            if folder.key not in self._jobs and folder.state == LOADED:
                # Listed in the order of its start: sort it if the order changed since.
                self._sort_folders([folder])
            self._continue_reveals()
        self._update_heartbeat()

    def _install(self, folder: KeyNode, listing: Listing) -> None:
        """Take a listing's nodes into ``folder`` and show what changed."""
        rows = folder.rows
        at_end = self._window_at_end(folder)
        gone = listing.gone
        changed = [node for node, entry in listing.changed if node.update_from(entry)]
        if listing.children is not None:
            folder.children = listing.children
        else:
            folder.children.extend(listing.added)
        rows.version += 1
        rows.order = listing.order
        folder.index_children(listing.added)
        if gone:
            folder.forget_children(gone)
            for node in gone:
                self._forget_jobs_under(node)
        matcher = self._matcher
        if matcher is not None:
            self._filter_children(folder, listing.added, gone)
        self._rebuild_window(folder, at_end, set(gone))
        for node in gone:
            node.dismantle()  # detached: late results for it are dropped
        note_new_nodes(len(listing.added))
        if changed:
            self._emit_changed(folder, changed)
        if matcher is not None:
            self._refilter_up(folder)
        if changed and self._sort_column != 0:
            self._sort_folders([folder], force=True)  # sizes, times or origins moved rows

    def _attached(self, node: KeyNode) -> bool:
        while node.parent is not None:
            node = node.parent
        return node is self._root

    def _forget_jobs_under(self, node: KeyNode) -> None:
        if node.is_dir:
            for key in [k for k in self._jobs if k.startswith(node.key)]:
                self._jobs.pop(key).quit()
