"""The nodes of the key tree: one small object per loaded folder or key.

A folder of 100,000 keys holds 100,000 of these, so they carry only what the
tree shows (``__slots__``, no per-node Qt objects). A folder's ``children``
are all its loaded children, in display order; its :class:`FolderRows` say
which of them Qt's views see: a window over the children that pass the name
filter, with placeholder rows standing for the rest (Qt's tree view lays out
every row of an expanded folder again after each change, at a few
microseconds of Python per row, so a view must never hold 100,000 of them).
``row`` is a node's row in its parent's window, or -1 outside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...stores.value import Entry

UNLOADED, LOADING, LOADED, FAILED = 0, 1, 2, 3

#: Order of origins when sorting by the Origin column.
ORIGIN_RANK = {"local": 0, "shadowing": 1, "remote": 2}

#: Kinds of :class:`StatusRow`: above a folder's window, or below it.
HEAD, TAIL = 0, 1


class FolderRows:
    """Which children of a folder Qt's views see, and how to find a child by key.

    - ``window``: the children shown as rows, a slice of the shown children
      (``filtered``, or all ``children`` with no filter) starting at ``lo``
    - ``head``: the placeholder row above the window while ``lo > 0``
    - ``filtered``: the children that pass the name filter (None: no filter)
    - ``hits``: the same as a set, to tell whether a child passes it
    - ``order``: the ``(column, descending)`` the children are sorted by
    - ``version``: bumped whenever ``children`` changes, so that work done
      on a copy in the background can tell whether it still applies
    - ``keys`` / ``dirs``: the children by key (keys, folders)
    - ``error``: why the last listing failed
    """

    __slots__ = ("window", "lo", "head", "filtered", "hits", "order", "version", "keys", "dirs",
                 "error")

    def __init__(self) -> None:
        self.window: list[KeyNode] = []
        self.lo = 0
        self.head: StatusRow | None = None
        self.filtered: list[KeyNode] | None = None
        self.hits: set[KeyNode] | None = None
        self.order: tuple[int, bool] = (0, False)
        self.version = 0
        self.keys: dict[str, KeyNode] = {}
        self.dirs: dict[str, KeyNode] = {}
        self.error = ""


class KeyNode:
    """A folder (a prefix ending with "/") or a key in the merged key space.

    ``state`` says whether a folder's children are unloaded, loading, loaded
    or failed to load; ``status`` is the extra row shown below a folder's
    window while it loads, after its load failed, or while more rows follow.
    A node passes the name filter if its name matches or, for a folder, a
    loaded node below it does (its parent's ``rows.hits`` tell).
    """

    __slots__ = ("name", "key", "is_dir", "parent", "children", "row", "state",
                 "size", "modified", "origin", "status", "rows")

    def __init__(self, key: str, is_dir: bool, parent: KeyNode | None = None,
                 size: int | None = None, modified: float | None = None,
                 origin: str | None = None) -> None:
        self.key = key
        self.is_dir = is_dir
        self.parent = parent
        self.name = node_name(key, is_dir, parent.key if parent is not None else "")
        self.children: list[KeyNode] | None = [] if is_dir else None
        self.rows: FolderRows | None = FolderRows() if is_dir else None
        self.row = -1
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

    @property
    def shown(self) -> list[KeyNode]:
        """The children that pass the name filter (all of them with no filter), in order."""
        rows = self.rows
        if rows is None:
            return []
        return rows.filtered if rows.filtered is not None else self.children

    def update_from(self, entry: Entry) -> bool:
        """Take size, modified and origin from a fresh listing; True if anything changed."""
        if (self.size, self.modified, self.origin) == (entry.size, entry.modified, entry.origin):
            return False
        self.size, self.modified, self.origin = entry.size, entry.modified, entry.origin
        return True

    def row_count(self) -> int:
        """Rows under this node in the view: the window, plus the placeholder rows."""
        rows = self.rows
        if rows is None:
            return 0
        return (len(rows.window) + (1 if rows.head is not None else 0)
                + (1 if self.status is not None else 0))

    def child_by_key(self, key: str) -> KeyNode | None:
        """The loaded child whose key is ``key`` (a folder first, for a key ending in "/")."""
        rows = self.rows
        if rows is None:
            return None
        if key.endswith("/"):
            found = rows.dirs.get(key)
            if found is not None:
                return found
        return rows.keys.get(key)

    def index_children(self, nodes: list[KeyNode]) -> None:
        """Make ``nodes`` (new children) findable with :meth:`child_by_key`."""
        keys, dirs = self.rows.keys, self.rows.dirs
        for node in nodes:
            (dirs if node.is_dir else keys)[node.key] = node

    def forget_children(self, nodes: list[KeyNode]) -> None:
        """The inverse of :meth:`index_children` (for children gone from the store)."""
        keys, dirs = self.rows.keys, self.rows.dirs
        for node in nodes:
            (dirs if node.is_dir else keys).pop(node.key, None)

    def iter_loaded_folders(self) -> Iterator[KeyNode]:
        """This folder and every folder below it whose listing was loaded, is loading or failed."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node.is_dir and node.state in (LOADED, FAILED, LOADING):
                yield node
                stack.extend(node.rows.dirs.values())

    def dismantle(self) -> None:
        """Break the reference cycles of this detached subtree (parent links, placeholder rows).

        Reference counting then frees it at once, even if the garbage
        collector would no longer look at it (see
        :func:`~storegui.app.scheduling.note_new_nodes`).
        """
        self.parent = None
        self.row = -1
        stack = [self]
        while stack:
            folder = stack.pop()
            rows = folder.rows
            if rows is None:
                continue
            for child in folder.children:
                child.parent = None
                if child.rows is not None:
                    stack.append(child)
            folder.children = []
            folder.status = None
            rows.window, rows.filtered, rows.hits, rows.head = [], None, None, None
            rows.keys, rows.dirs = {}, {}

    def __repr__(self) -> str:
        return f"<KeyNode {self.key!r} {'dir' if self.is_dir else 'key'} {self.origin}>"


class StatusRow:
    """A placeholder row of a folder: "Loading…", an error, or "N more" above or below.

    ``kind`` is :data:`HEAD` (the row above the window, standing for the
    rows before it) or :data:`TAIL` (the row below it).
    """

    __slots__ = ("parent", "text", "failed", "kind")

    #: Status rows have no rows below them (read as a leaf by the model).
    rows = None
    is_dir = False

    def __init__(self, parent: KeyNode, text: str, failed: bool = False,
                 kind: int = TAIL) -> None:
        self.parent = parent
        self.text = text
        self.failed = failed
        self.kind = kind

    @property
    def row(self) -> int:
        """This row's place under its folder: first, or just below the window."""
        if self.kind == HEAD:
            return 0
        rows = self.parent.rows
        return len(rows.window) + (1 if rows.head is not None else 0)

    def row_count(self) -> int:
        """No rows below a status row."""
        return 0

    @property
    def pages(self) -> bool:
        """Whether this row stands for rows of the folder not in its window."""
        rows = self.parent.rows
        if self.kind == HEAD:
            return rows.lo > 0
        return rows.lo + len(rows.window) < len(self.parent.shown)

    def __repr__(self) -> str:
        return f"<StatusRow {'head' if self.kind == HEAD else 'tail'} {self.text!r}>"


def path_prefixes(key: str) -> list[str]:
    """The folder prefixes leading to ``key``, then ``key`` itself.

    ``"a/b/c"`` -> ``["a/", "a/b/", "a/b/c"]``; ``"a/b/"`` -> ``["a/", "a/b/"]``.
    """
    out = []
    start = 0
    while True:
        i = key.find("/", start)
        if i < 0 or i == len(key) - 1:
            break
        out.append(key[:i + 1])
        start = i + 1
    if key:
        out.append(key)
    return out


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
    d, k = (1, 0) if descending else (0, 1)  # the folder rank of folders, of keys
    if column == 1:
        return lambda n: (d if n.is_dir else k, ORIGIN_RANK.get(n.origin or "", 3),
                          n.name.casefold(), n.name)
    if column == 2:
        return lambda n: (d if n.is_dir else k, -1 if n.size is None else n.size,
                          n.name.casefold(), n.name)
    if column == 3:
        return lambda n: (d if n.is_dir else k, n.modified or 0.0, n.name.casefold(), n.name)
    return lambda n: (d if n.is_dir else k, n.name.casefold(), n.name)


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


def position_of(nodes: list[KeyNode], node: KeyNode, order: tuple[int, bool]) -> int:
    """Where ``node`` is in ``nodes``, sorted by ``order``: a binary search.

    Falls back to a scan if the node is not where its sort key says (a
    folder being sorted again). Raises ValueError if it is not there.
    """
    keyfn = sort_key_function(*order)
    key = keyfn(node)
    i = insertion_point(nodes, key, keyfn, order[1]) - 1
    while i >= 0 and keyfn(nodes[i]) == key:
        if nodes[i] is node:
            return i
        i -= 1
    return nodes.index(node)
