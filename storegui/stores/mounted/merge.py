"""How MountedStore merges its two stores' answers: folder listings and queries.

Listings: one ``list_dir`` per inner store, merged as they stream in (both
come in key order), each entry's ``origin`` set. Queries: a shadowed backing
key is judged by its mount copy only, so every result describes what
``get`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..contract import Store
from ..errors import StoreError
from ..value import Entry


def mount_children(
    mount_store: Store, mount_point: str, prefix: str, delimiter: str
) -> Iterator[Entry]:
    """The children of ``prefix`` (a full prefix) that keys of ``mount_store`` make, in key order.

    Keys come back as full keys. If the mount point lies deeper than
    ``prefix`` by at least one folder, the mount store contributes that one
    folder, and only while it holds any key. The mount store's listing is
    started here (so a bad prefix or an unreachable store fails at once) and
    read lazily.
    """
    if prefix.startswith(mount_point):
        return _prefixed(mount_point, mount_store.list_dir(prefix[len(mount_point):], delimiter))
    if mount_point.startswith(prefix):
        rest = mount_point[len(prefix):]
        cut = rest.find(delimiter) if delimiter else -1
        if cut >= 0:
            return _folder_if_any(mount_store.list_dir("", delimiter),
                                  prefix + rest[: cut + len(delimiter)])
        # The mount point ends inside the next path segment ("a/bc" under
        # "a/"): its keys split at their own first delimiter.
        return _prefixed(mount_point, mount_store.list_dir("", delimiter))
    return iter(())


def _prefixed(mount_point: str, entries: Iterable[Entry]) -> Iterator[Entry]:
    # A common prefix keeps the key order.
    for e in entries:
        yield Entry(mount_point + e.key, e.is_dir, e.size, e.modified, e.origin)


def _folder_if_any(entries: Iterable[Entry], folder: str) -> Iterator[Entry]:
    if next(iter(entries), None) is not None:
        yield Entry(folder, True)


def merge_listings(local: Iterable[Entry], remote: Iterable[Entry]) -> Iterator[Entry]:
    """Merge the mount store's and the backing store's children, setting each ``origin``.

    Both inputs must come in key order (the ``list_dir`` contract); they are
    read one entry at a time, so the first merged entries come out as soon
    as both stores have sent their first ones. An entry both sides list is
    "shadowing" and keeps the mount side's size and time (that is what
    ``get`` returns); others are "local" or "remote". The result is in key
    order.

    Raises
    ------
    StoreError
        If either input goes back in key order (a store breaking the
        ``list_dir`` contract would otherwise show a key twice).
    """
    mine = _checked(local, "mount")
    theirs = _checked(remote, "backing")
    ours = next(mine, None)
    other = next(theirs, None)
    while ours is not None and other is not None:
        a = (ours.key, ours.is_dir)
        b = (other.key, other.is_dir)
        if a < b:
            yield _with_origin(ours, "local")
            ours = next(mine, None)
        elif b < a:
            yield _with_origin(other, "remote")
            other = next(theirs, None)
        else:
            yield _with_origin(ours, "shadowing")
            ours = next(mine, None)
            other = next(theirs, None)
    while ours is not None:
        yield _with_origin(ours, "local")
        ours = next(mine, None)
    while other is not None:
        yield _with_origin(other, "remote")
        other = next(theirs, None)


def _with_origin(entry: Entry, origin: str) -> Entry:
    return Entry(entry.key, entry.is_dir, entry.size, entry.modified, origin)


def _checked(entries: Iterable[Entry], side: str) -> Iterator[Entry]:
    """``entries``, failing clearly if they are not strictly in key order."""
    previous: tuple[str, bool] | None = None
    for entry in entries:
        current = (entry.key, entry.is_dir)
        if previous is not None and current <= previous:
            raise StoreError(
                f"the {side} store listed {entry.key!r} after {previous[0]!r}: a listing "
                "must come in key order, each child once", entry.key)
        previous = current
        yield entry


def merge_query(
    mount_point: str,
    local_keys: Iterable[str],
    mount_pairs: Iterable[tuple[str, Any]],
    backing_pairs: Iterable[tuple[str, Any]],
) -> Iterator[tuple[str, Any]]:
    """Mount results (re-prefixed), then backing results whose key has no mount copy.

    Results are ``(key, anything)`` pairs. ``local_keys`` are the full keys
    with a mount copy, collected once (the mount store is small), so no
    per-result request reaches the backing store.
    """
    shadowed = set(local_keys)
    for short, payload in mount_pairs:
        key = mount_point + short
        shadowed.add(key)
        yield key, payload
    for key, payload in backing_pairs:
        if key not in shadowed:
            yield key, payload
