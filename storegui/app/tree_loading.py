"""Listing folders for the key tree: one ``list_dir`` per folder on a worker.

A mixin of :class:`~storegui.app.tree_model.KeyTreeModel`. A folder never
listed fills in batch by batch (the first batch is small so a huge folder
shows rows at once); a folder that already has rows is listed whole and the
difference applied. A "Loading…" row shows meanwhile; a failure leaves the
error in that row and goes to ``statusMessage``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..stores.value import Entry
from .tree_nodes import FAILED, LOADED, LOADING, KeyNode
from .workers import Worker

LOADING_TEXT = "Loading…"
FIRST_BATCH = 200  # small, so the first rows of a huge folder show at once
BATCH = 4000
BATCH_SECONDS = 0.1


def list_in_batches(store: Any, prefix: str, worker: Worker) -> Iterator[list[Entry]]:
    """Yield ``store.list_dir(prefix)`` in batches (on a worker thread)."""
    batch: list[Entry] = []
    limit = FIRST_BATCH
    last = time.monotonic()
    for entry in store.list_dir(prefix):
        batch.append(entry)
        if len(batch) >= limit or (len(batch) % 64 == 0
                                   and time.monotonic() - last >= BATCH_SECONDS):
            yield batch
            batch, limit, last = [], BATCH, time.monotonic()
        if worker.abort_requested:
            return
    if batch:
        yield batch


def list_all(store: Any, prefix: str, worker: Worker) -> list[Entry]:
    """The whole listing of ``prefix`` (on a worker thread; for refreshes)."""
    out = []
    for entry in store.list_dir(prefix):
        out.append(entry)
        if worker.abort_requested:
            break
    return out


class TreeLoadingMixin:
    """Starts listings and applies their results (needs the model's jobs, timers, signals)."""

    _store: Any
    _jobs: dict[str, Worker]

    def _start_load(self, folder: KeyNode) -> None:
        if self._store is None:
            return
        if folder.key in self._jobs:
            # The running listing may predate the change: list again after it.
            self._refresh_again.add(folder.key)
            return
        # A folder that already has rows is listed whole and diffed; a new one
        # fills in batch by batch.
        diff = bool(folder.children)
        if folder.state != LOADED:
            folder.state = LOADING
            if folder.status is not None:
                self._set_status(folder, LOADING_TEXT, failed=False)
            else:
                # Not inserted here: fetchMore may run inside a view's (or the
                # model tester's) handling of another insert.
                self._status_pending.append(folder)
                self._status_timer.start()
        if diff:
            worker = Worker(list_all, self._store, folder.key)
        else:
            worker = Worker(list_in_batches, self._store, folder.key)
            worker.yielded.connect(self._on_batch)
        worker.context = folder
        worker.diff = diff
        worker.returned.connect(self._on_listed)
        worker.errored.connect(self._on_list_failed)
        worker.finished.connect(self._on_list_finished)
        self._jobs[folder.key] = worker
        worker.start()

    def _show_pending_status(self) -> None:
        pending, self._status_pending = self._status_pending, []
        for folder in pending:
            if (folder.state == LOADING and folder.key in self._jobs
                    and folder.status is None and self._attached(folder)):
                self._set_status(folder, LOADING_TEXT, failed=False)

    def _current_job(self) -> tuple[Worker | None, KeyNode | None]:
        worker = self.sender()
        if not isinstance(worker, Worker):
            return None, None
        folder = worker.context
        if self._jobs.get(folder.key) is not worker:
            return None, None  # stale: the store changed or the folder went away
        return worker, folder

    def _on_batch(self, batch: list[Entry]) -> None:
        worker, folder = self._current_job()
        if worker is None:
            return
        self._insert_entries(folder, batch)

    def _on_listed(self, result: list[Entry] | None) -> None:
        worker, folder = self._current_job()
        if worker is None:
            return
        if worker.diff and result is not None:
            self._apply_listing(folder, result)
        folder.state = LOADED
        self._set_status(folder, None)
        self.folderLoaded.emit(folder.key)

    def _on_list_failed(self, exc: BaseException) -> None:
        worker, folder = self._current_job()
        if worker is None:
            return
        where = f"'{folder.key}'" if folder.key else "the top level"
        message = f"Cannot list {where}: {exc}"
        folder.state = FAILED
        self._set_status(folder, message, failed=True)
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
            self._continue_reveals()

    def _attached(self, node: KeyNode) -> bool:
        while node.parent is not None:
            node = node.parent
        return node is self._root

    def _forget_jobs_under(self, node: KeyNode) -> None:
        if node.is_dir:
            for key in [k for k in self._jobs if k.startswith(node.key)]:
                self._jobs.pop(key).quit()

