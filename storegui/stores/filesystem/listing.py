"""Listing the key tree of a :class:`FileSystemStore`: one folder, or a whole subtree.

Entries that are not in the store's layout (foreign files, symlinks, hidden
files, names that are not canonical encodings) are not keys and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..localfiles.descriptors import DIR_FLAGS, READ_FLAGS, open_dir
from ..value import Entry
from .paths import CONT_TAG, KEY_TAG, parse_chain
from .records import DamagedRecordError, read_record


@dataclass(frozen=True, slots=True)
class Child:
    """One key or folder found in a store directory."""

    segment: str
    is_key: bool
    names: tuple[str, ...]  # path components from the scanned directory


def scan_children(fd: int, portable: bool) -> list[Child]:
    """The keys and folders directly in the store directory open at ``fd``.

    Continuation directories (long segments) are followed; entries that are
    not in the store's layout (foreign files, symlinks, hidden files) are
    skipped.
    """
    found: list[Child] = []
    _scan(fd, (), portable, found)
    return found


def _scan(fd: int, chain: tuple[str, ...], portable: bool, found: list[Child]) -> None:
    with os.scandir(fd) as entries:
        listed = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                  for e in entries]
    for name, is_dir, is_file in listed:
        if name.endswith(CONT_TAG):
            if not is_dir:
                continue
            try:
                sub = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # removed meanwhile
            try:
                _scan(sub, chain + (name,), portable, found)
            finally:
                os.close(sub)
            continue
        if name.endswith(KEY_TAG) and not is_file:
            continue
        if not name.endswith(KEY_TAG) and not is_dir:
            continue
        parsed = parse_chain([*chain, name], portable)
        if parsed is not None:
            found.append(Child(parsed[0], parsed[1], chain + (name,)))


def walk_keys(fd: int, folder: str, partial: str, portable: bool) -> Iterator[str]:
    """Keys in the store directory open at ``fd`` (which it closes), in key order.

    ``folder`` is the prefix that directory stands for; only children whose
    segment starts with ``partial`` are followed. Depth-first and iterative
    (keys may nest thousands of folders deep); a directory's descriptor is
    closed as soon as no sub-folder is left to enter from it, so a deep chain
    holds few descriptors open.
    """
    stack = [_frame(fd, folder, partial, portable)]
    try:
        while stack:
            frame = stack[-1]
            fd, base, children, last_dir, i = frame
            if i >= len(children):
                if fd >= 0:
                    os.close(fd)
                stack.pop()
                continue
            frame[4] = i + 1
            child = children[i]
            if child.is_key:
                yield base + child.segment
                continue
            try:
                sub = open_dir(fd, child.names)
            except OSError:
                continue  # removed meanwhile
            if i == last_dir:
                os.close(fd)
                frame[0] = -1
            stack.append(_frame(sub, base + child.segment + "/", "", portable))
    finally:
        for frame in stack:
            if frame[0] >= 0:
                os.close(frame[0])


def _frame(fd: int, base: str, partial: str, portable: bool) -> list:
    try:
        children = [c for c in scan_children(fd, portable) if c.segment.startswith(partial)]
    except OSError:
        children = []
    # A folder sorts as "name/": walking in this order yields keys in sorted order.
    children.sort(key=lambda c: c.segment if c.is_key else c.segment + "/")
    last_dir = max((i for i, c in enumerate(children) if not c.is_key), default=-1)
    return [fd, base, children, last_dir, 0]


def list_entries(fd: int, folder: str, partial: str, portable: bool) -> list[Entry]:
    """:class:`Entry` rows for the children of the store directory open at ``fd``.

    ``folder`` is the prefix that directory stands for; only children whose
    segment starts with ``partial`` are listed. One scan of the directory,
    plus one small read per key for its size.
    """
    out = []
    for child in scan_children(fd, portable):
        if not child.segment.startswith(partial):
            continue
        if child.is_key:
            entry = _key_entry(fd, child, folder + child.segment)
            if entry is not None:
                out.append(entry)
        else:
            out.append(Entry(folder + child.segment + "/", True))
    out.sort(key=lambda e: e.key)
    return out


def _key_entry(fd: int, child: Child, key: str) -> Entry | None:
    try:
        dfd = open_dir(fd, child.names[:-1]) if len(child.names) > 1 else fd
        try:
            rfd = os.open(child.names[-1], READ_FLAGS, dir_fd=dfd)
        finally:
            if dfd != fd:
                os.close(dfd)
    except OSError:
        return None  # deleted meanwhile
    try:
        st = os.fstat(rfd)
        try:
            record, _ = read_record(rfd, key, st.st_size, inline=False)
        except DamagedRecordError:
            return Entry(key, False, None, st.st_mtime)  # listed, so it can be deleted
        return Entry(key, False, record.size, record.modified_or(st.st_mtime))
    finally:
        os.close(rfd)
