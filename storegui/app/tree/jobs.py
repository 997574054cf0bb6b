"""Work the key tree does on worker threads: listing folders, sorting, filtering.

Each function here runs on a :class:`~storegui.app.workers.Worker` and hands
the GUI thread a result it only has to install (a few list operations and
the rows in view, whatever the folder's size). Each works in short bursts
(:class:`~storegui.app.scheduling.Pacer`): the GUI thread needs the GIL for
every call Qt makes into the model (a layout or a paint is thousands of
them), and a worker computing without a pause would make each of those
calls wait for the interpreter's switch interval.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...stores.transfer.streaming import CancelToken
from ..scheduling import Pacer, no_pause
from ..workers import Worker
from .nodes import KeyNode, sort_key_function

FIRST_BATCH = 200  # small, so the first rows of a huge folder show at once
BATCH = 4000
BATCH_SECONDS = 0.1
#: Nodes sorted at once before merging (one sort of a whole big folder would
#: hold the GIL for a tenth of a second).
SORT_CHUNK = 2048
_ABORT_CHECK = 1023  # check for quit() every 1,024 items


def job(fn: Callable[..., Any], *args: Any) -> Worker:
    """A :class:`Worker` (not started) for ``fn(*args, token)``; its ``quit()`` sets ``token``.

    The function gets the worker's cancel token rather than the worker
    itself, so that the worker holds no reference cycle: once it has
    finished, reference counting frees it, and the tree nodes it refers to
    (see :func:`~storegui.app.scheduling.note_new_nodes`).
    """
    token = CancelToken()
    worker = Worker(fn, *args, token)
    worker.cancel_token = token
    return worker


@dataclass(slots=True)
class Listing:
    """A folder's listing (or its next part), ready to install on the GUI thread.

    - ``added``: the new child nodes, in order
    - ``children``: the folder's complete new list of children, or None when
      ``added`` simply go after the children it has
    - ``gone``: children no longer listed
    - ``changed``: ``(node, entry)`` pairs whose size, time or origin changed
    - ``order``: the ``(column, descending)`` that ``children``/``added`` are in
    - ``version``: the folder's ``FolderRows.version`` it was computed from
      (None for the parts of a first listing, which only that listing changes)
    """

    added: list[KeyNode]
    children: list[KeyNode] | None = None
    gone: list[KeyNode] = field(default_factory=list)
    changed: list[tuple[KeyNode, Any]] = field(default_factory=list)
    order: tuple[int, bool] = (0, False)
    version: int | None = None


def _in_order(first: Any, then: Any, descending: bool) -> bool:
    return first >= then if descending else first <= then


def merge_sorted(a: list[KeyNode], b: list[KeyNode], order: tuple[int, bool],
                 pace: Callable[[], None] = no_pause) -> list[KeyNode]:
    """Two lists sorted by ``order``, merged (at once in the common case: ``b`` after ``a``)."""
    if not a or not b:
        return a + b
    keyfn, descending = sort_key_function(*order), order[1]
    if _in_order(keyfn(a[-1]), keyfn(b[0]), descending):
        return a + b
    out: list[KeyNode] = []
    append = out.append
    for node in heapq.merge(a, b, key=keyfn, reverse=descending):
        append(node)
        pace()
    return out


class _Collector:
    """The children of a folder listed for the first time, kept in display order."""

    def __init__(self, order: tuple[int, bool], pace: Pacer) -> None:
        self.order = order
        self.keyfn = sort_key_function(*order)
        self.nodes: list[KeyNode] = []
        self.pace = pace

    def add(self, batch: list[KeyNode]) -> Listing:
        batch.sort(key=self.keyfn, reverse=self.order[1])
        nodes = self.nodes
        if not nodes or _in_order(self.keyfn(nodes[-1]), self.keyfn(batch[0]), self.order[1]):
            nodes.extend(batch)  # keys come in key order: nearly always this case
            return Listing(batch, order=self.order)
        self.nodes = merge_sorted(nodes, batch, self.order, self.pace)
        # A copy: this list keeps growing here while the GUI thread holds the other.
        return Listing(batch, children=list(self.nodes), order=self.order)


def load_folder(store: Any, folder: KeyNode, order: tuple[int, bool],
                token: CancelToken) -> Iterator[Listing]:
    """Yield a folder's first listing in parts (a small first part, then larger ones).

    Runs ``store.list_dir(folder.key)`` and builds the child nodes here, off
    the GUI thread; each part holds the nodes found since the last one.
    """
    pace = Pacer()
    collect = _Collector(order, pace)
    batch: list[KeyNode] = []
    limit = FIRST_BATCH
    last = time.monotonic()
    for entry in store.list_dir(folder.key):
        batch.append(KeyNode.from_entry(entry, folder))
        pace()
        n = len(batch)
        if n >= limit or (n % 64 == 0 and time.monotonic() - last >= BATCH_SECONDS):
            yield collect.add(batch)
            batch, limit, last = [], BATCH, time.monotonic()
        if token.cancelled:
            return
    if batch:
        yield collect.add(batch)


def relist_folder(store: Any, folder: KeyNode, snapshot: list[KeyNode], version: int,
                  order: tuple[int, bool], token: CancelToken) -> Listing | None:
    """List a loaded folder again and work out how its children (``snapshot``) changed.

    The listing is compared as it streams in, against the folder's lookup of
    children by key, so that no entry outlives its comparison unless it
    changed something (a folder's worth of live objects would cost the
    garbage collector a long pause). Returns None if stopped (``token``).
    """
    pace = Pacer()
    keys, dirs = folder.rows.keys, folder.rows.dirs  # not changed until this job lands
    seen: set[KeyNode] = set()
    changed: list[tuple[KeyNode, Any]] = []
    added: list[KeyNode] = []
    for i, entry in enumerate(store.list_dir(folder.key)):
        # A key "a/" and a folder "a/" can both exist: identify rows by both.
        node = (dirs if entry.is_dir else keys).get(entry.key)
        if node is None or node in seen:
            added.append(KeyNode.from_entry(entry, folder))
        else:
            seen.add(node)
            if (node.size, node.modified, node.origin) != (entry.size, entry.modified,
                                                           entry.origin):
                changed.append((node, entry))
        pace()
        if not i & _ABORT_CHECK and token.cancelled:
            return None
    gone = [node for node in snapshot if node not in seen]
    pace()
    added.sort(key=sort_key_function(*order), reverse=order[1])
    children = None
    if gone or added:
        kept = [node for node in snapshot if node in seen] if gone else snapshot
        children = merge_sorted(kept, added, order, pace)
    return Listing(added, children, gone, changed, order, version)


def sort_nodes(nodes: list[KeyNode], order: tuple[int, bool],
               token: CancelToken) -> list[KeyNode] | None:
    """``nodes`` sorted by ``order``, in short bursts; None if stopped (``token``).

    Chunks are sorted one at a time, then merged lazily, so that only a
    chunk's worth of sort keys is alive at a time (a key per node would
    cost the garbage collector a long pause).
    """
    pace = Pacer()
    keyfn, descending = sort_key_function(*order), order[1]
    chunks = []
    for start in range(0, len(nodes), SORT_CHUNK):
        chunk = nodes[start:start + SORT_CHUNK]
        chunk.sort(key=keyfn, reverse=descending)
        chunks.append(chunk)
        pace()
        if token.cancelled:
            return None
    out = []
    append = out.append
    for i, node in enumerate(heapq.merge(*chunks, key=keyfn, reverse=descending)):
        append(node)
        pace()
        if not i & _ABORT_CHECK and token.cancelled:
            return None
    return out


@dataclass(slots=True)
class FilterResult:
    """Per loaded folder: ``(folder, version, filtered children, the same as a set)``."""

    folders: list[tuple[KeyNode, int, list[KeyNode], set[KeyNode]]]


def filter_folders(snapshot: list[tuple[KeyNode, int, list[KeyNode]]],
                   matcher: Callable[[str], Any],
                   token: CancelToken | None = None) -> FilterResult | None:
    """Apply a name filter to loaded folders; ``snapshot`` is ``(folder, version, children)``.

    A folder passes if its name matches or anything loaded under it passes,
    so deeper folders are done first. Runs in bursts on a worker, or at once
    (``token`` None) for a small tree on the GUI thread. None if stopped.
    """
    pace = Pacer() if token is not None else no_pause
    passes: dict[KeyNode, bool] = {}  # loaded folders
    out = []
    count = 0
    for folder, version, children in sorted(snapshot, key=lambda t: -t[0].key.count("/")):
        filtered = []
        for child in children:
            hit = passes.get(child)
            if hit is None:
                hit = matcher(child.name) is not None
            if hit:
                filtered.append(child)
            pace()
            count += 1
            if token is not None and not count & _ABORT_CHECK and token.cancelled:
                return None
        passes[folder] = bool(filtered) or matcher(folder.name) is not None
        out.append((folder, version, filtered, set(filtered)))
        pace()
    return FilterResult(out)
