"""Filtering the key tree by name: the model keeps, per folder, the children that match.

A mixin of :class:`~storegui.app.tree.model.KeyTreeModel`. Filtering in a
proxy would call Python once per row of every loaded folder, and page no
better than the rows it was given; here each folder's ``filtered`` list is
what its window pages over. A folder stays visible while anything loaded
under it matches. Unloaded folders are not listed to find matches: the
filter covers what is loaded; "Search Store…" covers the rest. A small
tree is filtered at once; a big one on a worker, the result installed as
one layout change (``filterApplied`` then).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from ..workers import Worker
from .jobs import FilterResult, filter_folders, job
from .nodes import KeyNode

#: Trees with at most this many loaded rows are filtered at once on the GUI thread.
SYNC_FILTER_ROWS = 20_000

Matcher = Callable[[str], Any]


def name_matcher(text: str) -> Matcher | None:
    """The filter box's text as a case-insensitive match over whole names (None for no text).

    ``*``, ``?`` and ``[...]`` are wildcards (``*`` matches any characters);
    text without them matches names containing it. The matcher returns a
    true value for a match.
    """
    text = text.strip()
    if not text:
        return None
    pattern = text if any(c in text for c in "*?[") else f"*{text}*"
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL).match


class TreeFilterMixin:
    """The name filter; needs ``_root``, the window methods and ``filterApplied``."""

    _root: KeyNode
    _matcher: Matcher | None = None
    _filter_text: str = ""
    _filter_job: Worker | None = None

    @property
    def name_filter(self) -> str:
        """The filter text asked for ("" for none); it may still be being applied."""
        return self._filter_text

    def set_name_filter(self, text: str) -> None:
        """Show only rows whose name matches ``text``, and the folders leading to them."""
        text = text.strip()
        if text == self._filter_text:
            return
        self._filter_text = text
        self._start_filter()

    def is_filtering(self) -> bool:
        """Whether a filter is being applied in the background."""
        return self._filter_job is not None

    def _start_filter(self) -> None:
        if self._filter_job is not None:
            self._filter_job.quit()
            self._filter_job = None
            self._update_heartbeat()
        matcher = name_matcher(self._filter_text)
        if matcher is None:
            self._install_filter(None, None)
            return
        snapshot = [(f, f.rows.version, list(f.children))
                    for f in self._root.iter_loaded_folders()]
        if sum(len(children) for _, _, children in snapshot) <= SYNC_FILTER_ROWS:
            self._install_filter(matcher, filter_folders(snapshot, matcher))
            return
        worker = job(filter_folders, snapshot, matcher)
        worker.context = matcher
        worker.returned.connect(self._on_filtered)
        worker.finished.connect(self._on_filter_finished)
        self._filter_job = worker
        worker.start()
        self._update_heartbeat()

    def _on_filtered(self, result: FilterResult | None) -> None:
        worker = self.sender()
        if worker is not self._filter_job or result is None:
            return
        self._filter_job = None
        done = {folder: version for folder, version, _, _ in result.folders}
        loaded = list(self._root.iter_loaded_folders())
        if len(loaded) != len(done) or any(done.get(f) != f.rows.version for f in loaded):
            self._start_filter()  # folders changed meanwhile: once more, from what they hold now
            return
        self._install_filter(worker.context, result)

    def _on_filter_finished(self) -> None:
        if self.sender() is self._filter_job:  # it failed: keep the filter in place
            self._filter_job = None
        self._update_heartbeat()

    def _install_filter(self, matcher: Matcher | None, result: FilterResult | None) -> None:
        """Make ``matcher`` the filter: every loaded folder shows its first matching rows."""
        self._matcher = matcher
        if result is None:
            folders = list(self._root.iter_loaded_folders())
            for folder in folders:
                folder.rows.filtered = folder.rows.hits = None
        else:
            folders = []
            for folder, _, filtered, hits in result.folders:
                folder.rows.filtered, folder.rows.hits = filtered, hits
                folders.append(folder)
        self._relayout([(folder, *self._first_rows(folder)) for folder in folders])
        self.filterApplied.emit(self._filter_text)

    def _filter_children(self, folder: KeyNode, added: list[KeyNode],
                         gone: list[KeyNode]) -> None:
        """Under a filter: take ``folder``'s new and gone children into its matches."""
        rows = folder.rows
        if rows.hits is None:
            rows.hits = set()
        hits, matcher = rows.hits, self._matcher
        for node in added:
            if matcher(node.name) is not None:
                hits.add(node)
        hits.difference_update(gone)
        rows.filtered = [c for c in folder.children if c in hits]

    def _refilter_up(self, folder: KeyNode) -> None:
        """After ``folder``'s children changed: show or hide it, and the folders above, to match."""
        matcher = self._matcher
        node = folder
        while node is not self._root and node.parent is not None:
            parent = node.parent
            hits = parent.rows.hits
            if hits is None:
                return
            hit = bool(node.rows.filtered) or matcher(node.name) is not None
            if hit == (node in hits):
                return
            at_end = self._window_at_end(parent)
            if hit:
                hits.add(node)
            else:
                hits.discard(node)
            parent.rows.filtered = [c for c in parent.children if c in hits]
            self._rebuild_window(parent, at_end)
            node = parent
