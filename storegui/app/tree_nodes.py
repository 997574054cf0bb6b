"""The nodes of the key tree: one small object per loaded folder or key.

A folder of 100,000 keys holds 100,000 of these, so they carry only what the
tree shows (``__slots__``, no per-node Qt objects). Children are kept in the
order the view shows them; ``row`` is each node's place in its parent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..stores.value import Entry

UNLOADED, LOADING, LOADED, FAILED = 0, 1, 2, 3

#: Order of origins when sorting by the Origin column.
ORIGIN_RANK = {"local": 0, "shadowing": 1, "remote": 2}


class KeyNode:
    """A folder (a prefix ending with "/") or a key in the merged key space.

    ``state`` says whether a folder's children are unloaded, loading, loaded
    or failed to load; ``status`` is the extra "Loading…"/error row shown
    under a folder while it loads or after its load failed.
    """

    __slots__ = ("name", "key", "is_dir", "parent", "children", "row", "state",
                 "size", "modified", "origin", "status")

    def __init__(self, key: str, is_dir: bool, parent: KeyNode | None = None,
                 size: int | None = None, modified: float | None = None,
                 origin: str | None = None) -> None:
        self.key = key
        self.is_dir = is_dir
        self.parent = parent
        self.name = node_name(key, is_dir, parent.key if parent is not None else "")
        self.children: list[KeyNode] | None = [] if is_dir else None
        self.row = 0
        self.state = UNLOADED
        self.size = size
        self.modified = modified
        self.origin = origin
        self.status: StatusRow | None = None

    @classmethod
    def from_entry(cls, entry: Entry, parent: KeyNode) -> KeyNode:
        """A node for one ``list_dir`` entry under ``parent``."""
        return cls(entry.key, entry.is_dir, parent, entry.size, entry.modified, entry.origin)

    @property
    def has_local(self) -> bool:
        """Whether this key, or anything under this folder, has a mount copy (not pushed)."""
        return self.origin in ("local", "shadowing")

    def update_from(self, entry: Entry) -> bool:
        """Take size, modified and origin from a fresh listing; True if anything changed."""
        if (self.size, self.modified, self.origin) == (entry.size, entry.modified, entry.origin):
            return False
        self.size, self.modified, self.origin = entry.size, entry.modified, entry.origin
        return True

    def row_count(self) -> int:
        """Rows under this node in the view (children plus the status row, if any)."""
        if self.children is None:
            return 0
        return len(self.children) + (1 if self.status is not None else 0)

    def child_by_key(self, key: str) -> KeyNode | None:
        """The loaded child whose key is ``key`` (a linear scan: used for reveals only)."""
        for child in self.children or ():
            if child.key == key:
                return child
        return None

    def renumber(self, start: int = 0) -> None:
        """Reset ``row`` of the children from ``start`` on (after inserts or removals)."""
        children = self.children or []
        for i in range(start, len(children)):
            children[i].row = i

    def iter_loaded_folders(self):
        """This folder and every folder below it whose listing was loaded or failed."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node.is_dir and node.state in (LOADED, FAILED, LOADING):
                yield node
                stack.extend(c for c in node.children or () if c.is_dir)

    def __repr__(self) -> str:
        return f"<KeyNode {self.key!r} {'dir' if self.is_dir else 'key'} {self.origin}>"


class StatusRow:
    """The "Loading…" row of a folder being listed, or the error of a failed listing."""

    __slots__ = ("parent", "text", "failed")

    def __init__(self, parent: KeyNode, text: str, failed: bool = False) -> None:
        self.parent = parent
        self.text = text
        self.failed = failed

    @property
    def row(self) -> int:
        return len(self.parent.children or ())


def node_name(key: str, is_dir: bool, parent_prefix: str) -> str:
    """The part of ``key`` shown in the tree: what follows the parent's prefix."""
    name = key[len(parent_prefix):] if key.startswith(parent_prefix) else key
    if is_dir and name.endswith("/"):
        name = name[:-1]
    if not key.startswith(parent_prefix):
        name = name.rsplit("/", 1)[-1]
    return name


def sort_key_function(column: int, descending: bool) -> Callable[[KeyNode], Any]:
    """The key function that orders children for ``column``, folders always first.

    Lists are sorted with ``reverse=descending``, so the folder rank flips
    with the order to keep folders on top either way.
    """
    dir_rank = (1, 0) if descending else (0, 1)

    def rank(node: KeyNode) -> int:
        return dir_rank[0] if node.is_dir else dir_rank[1]

    if column == 1:
        return lambda n: (rank(n), ORIGIN_RANK.get(n.origin or "", 3), n.name.casefold(), n.name)
    if column == 2:
        return lambda n: (rank(n), -1 if n.size is None else n.size, n.name.casefold(), n.name)
    if column == 3:
        return lambda n: (rank(n), n.modified or 0.0, n.name.casefold(), n.name)
    return lambda n: (rank(n), n.name.casefold(), n.name)


def insertion_point(children: list[KeyNode], key: Any, keyfn: Callable[[KeyNode], Any],
                    descending: bool) -> int:
    """Where a node whose sort key is ``key`` goes in ``children`` (after equal ones).

    A binary search evaluating ``keyfn`` on O(log n) children only.
    """
    lo, hi = 0, len(children)
    while lo < hi:
        mid = (lo + hi) // 2
        other = keyfn(children[mid])
        if (key > other) if descending else (key < other):
            hi = mid
        else:
            lo = mid + 1
    return lo
