"""How MountedStore merges its two stores' answers: folder listings and queries.

Listings: one ``list_dir`` per inner store, each entry's ``origin`` set.
Queries: a shadowed backing key is judged by its mount copy only, so every
result describes what ``get`` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from .base import Store
from .value import Entry


def mount_children(
    mount_store: Store, mount_point: str, prefix: str, delimiter: str
) -> list[Entry]:
    """The children of ``prefix`` (a full prefix) that keys of ``mount_store`` make.

    Keys come back as full keys. If the mount point lies deeper than
    ``prefix`` by at least one folder, the mount store contributes that one
    folder, and only while it holds any key.
    """
    if prefix.startswith(mount_point):
        entries: Iterable[Entry] = mount_store.list_dir(prefix[len(mount_point):], delimiter)
    elif mount_point.startswith(prefix):
        rest = mount_point[len(prefix):]
        cut = rest.find(delimiter) if delimiter else -1
        if cut >= 0:
            if next(iter(mount_store.list_dir("", delimiter)), None) is None:
                return []
            return [Entry(prefix + rest[: cut + len(delimiter)], True)]
        # The mount point ends inside the next path segment ("a/bc" under
        # "a/"): its keys split at their own first delimiter.
        entries = mount_store.list_dir("", delimiter)
    else:
        return []
    return [dataclasses.replace(e, key=mount_point + e.key) for e in entries]


def merge_listings(local: Iterable[Entry], remote: Iterable[Entry]) -> list[Entry]:
    """Merge the mount store's and the backing store's children, setting each ``origin``.

    An entry both sides list is "shadowing" and keeps the mount side's size
    and time (that is what ``get`` returns); others are "local" or "remote".
    The result is in key order.
    """
    mine = {(e.key, e.is_dir): e for e in local}
    merged: list[Entry] = []
    for entry in remote:
        ours = mine.pop((entry.key, entry.is_dir), None)
        if ours is None:
            merged.append(dataclasses.replace(entry, origin="remote"))
        else:
            merged.append(dataclasses.replace(ours, origin="shadowing"))
    merged.extend(dataclasses.replace(e, origin="local") for e in mine.values())
    merged.sort(key=lambda e: (e.key, e.is_dir))
    return merged


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
