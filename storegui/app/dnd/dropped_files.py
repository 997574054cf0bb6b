"""What files dropped on the tree become, and importing them, on workers (no Qt).

:func:`scan_drop` plans what was dropped with the core's
:func:`~storegui.stores.importing.plan_import` (the planner of ``storegui put
-r`` too: same files, keys and skipped paths) and asks the store which keys
exist. :func:`import_batches` splits the files into jobs:
small files together, imported by :func:`import_small_files` in one
transaction per batch (one store write per file, not a job and a commit per
file: 10,000 small files would otherwise spend most of their time
committing); each large file alone, streamed by :func:`import_large_file`.
Every key gets the file's metadata
(:func:`~storegui.stores.importing.describe_file`) and the ``sha256`` of the
bytes stored, computed as they are read, never in a second pass.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...stores.errors import StoreError
from ...stores.importing import (
    DIGEST,
    describe_file,
    import_file,
    os_reason,
    plan_import,
    special_file_reason,
    unreadable_reason,
)
from ...stores.sqlite.schema import refuse_in_use
from ...stores.transfer.streaming import CancelToken

Progress = Callable[[int, "int | None"], None]

#: Files up to this size are read whole and imported together, one transaction per batch.
SMALL_FILE = 1 << 20
#: A batch's size: a commit costs a filesystem flush in a FileSystemStore (0.1-1 s on the
#: VM measured), so 10,000 small files took 10.5 s in batches of 2,000 and 7.3 s in
#: batches of 5,000 (two run at once); bigger batches only delay the first keys.
BATCH_FILES = 5000
BATCH_BYTES = 128 << 20
#: What to do when a key to write exists already.
REPLACE, KEEP_BOTH, SKIP = "replace", "keep both", "skip"
# Up to this many keys of one folder are checked one by one; more, by listing the folder.
_EXISTS_ONE_BY_ONE = 32


@dataclass
class ImportItem:
    """A file to store as ``key``; ``clash`` says what to do if the key exists by then."""

    key: str
    path: str
    size: int
    clash: str = KEEP_BOTH


@dataclass
class DropScan:
    """What :func:`scan_drop` found: files to import, files that cannot be, existing keys."""

    items: list[ImportItem] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)
    roots: list[str] = field(default_factory=list)  # key prefixes of the dropped folders
    #: Filled by :func:`plan_jobs`: the items whose key exists, and the jobs with their bytes.
    clashes: list[ImportItem] = field(default_factory=list)
    jobs: list[tuple[list[ImportItem], int]] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import job did: keys written, bytes, files it could not read or skipped."""

    keys: list[str] = field(default_factory=list)
    bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _no_pause() -> None:
    """The pace of work that needs no pauses."""


def scan_drop(store: Any, prefix: str, paths: Iterable[str | os.PathLike],
              pace: Callable[[], None] = _no_pause) -> DropScan:
    """The files under ``paths`` to import under ``prefix``, and the ones that cannot be.

    The files, their keys and what is skipped are
    :func:`~storegui.stores.importing.plan_import`'s, as for ``storegui put
    -r``; ``existing`` are the planned keys that the store holds already
    (asks the store: run on a worker). ``pace()`` is called for each entry (a
    worker's pauses for the GUI thread).
    """
    plan = plan_import(prefix, paths, pace)
    scan = DropScan(items=[ImportItem(f.key, f.path, f.size) for f in plan.files],
                    problems=plan.skipped, roots=plan.roots)
    scan.existing = find_existing(store, [item.key for item in scan.items], scan.roots)
    return scan


def find_existing(store: Any, keys: Iterable[str], roots: Iterable[str] = ()) -> set[str]:
    """Which of ``keys`` the store holds (a few calls per folder, not one per key).

    ``roots`` are folder prefixes worth one listing first: nothing under an
    empty one needs checking (a new folder of 10,000 files costs one call).
    """
    by_folder: dict[str, list[str]] = {}
    for key in keys:
        by_folder.setdefault(key[:key.rfind("/") + 1], []).append(key)
    empty = {root for root in roots if root and _is_empty(store, root)}
    found: set[str] = set()
    for folder in sorted(by_folder, key=len):
        wanted = by_folder[folder]
        if any(folder.startswith(e) for e in empty):
            continue
        if len(wanted) > _EXISTS_ONE_BY_ONE:
            entries = list(store.list_dir(folder))
            if not entries and folder:
                empty.add(folder)
            found.update({e.key for e in entries if not e.is_dir}.intersection(wanted))
        elif len(wanted) > 2 and folder and _is_empty(store, folder):
            empty.add(folder)
        else:
            found.update(k for k in wanted if store.exists(k))
    return found


def _is_empty(store: Any, folder: str) -> bool:
    return next(iter(store.list_dir(folder)), None) is None


def free_key(key: str, taken: Callable[[str], bool]) -> str:
    """``key`` renamed ``name (2).ext``, ``name (3).ext``... to the first one not ``taken``."""
    folder, _, name = key.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    n = 2
    while True:
        candidate = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
        candidate = f"{folder}/{candidate}" if folder else candidate
        if not taken(candidate):
            return candidate
        n += 1


def import_batches(items: Sequence[ImportItem]) -> list[list[ImportItem]]:
    """Split ``items`` into jobs: each large file alone, small ones in batches."""
    out: list[list[ImportItem]] = []
    batch: list[ImportItem] = []
    size = 0
    for item in items:
        if item.size > SMALL_FILE:
            out.append([item])
            continue
        if batch and (len(batch) >= BATCH_FILES or size + item.size > BATCH_BYTES):
            out.append(batch)
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        out.append(batch)
    return out


def plan_jobs(scan: DropScan, batched: bool = True,
              pace: Callable[[], None] = _no_pause) -> DropScan:
    """Fill ``scan.clashes`` and ``scan.jobs`` (on the worker that planned: O(files) work).

    ``batched``: small files in batches and each large file alone (an import),
    else every item in one job (a copy or move of keys). ``pace()`` is called
    every few hundred items.
    """
    existing = scan.existing
    scan.clashes = []
    for n, item in enumerate(scan.items):
        if item.key in existing:
            scan.clashes.append(item)
        if not n & 255:
            pace()
    groups = import_batches(scan.items) if batched else [list(scan.items)] if scan.items else []
    pace()
    scan.jobs = [(group, sum(item.size for item in group)) for group in groups]
    return scan


def without_skipped(jobs: Sequence[tuple[list[ImportItem], int]]
                    ) -> list[tuple[list[ImportItem], int]]:
    """``jobs`` less the items to skip (their clash is SKIP), and less the jobs left empty."""
    out = []
    for group, _size in jobs:
        kept = [item for item in group if item.clash != SKIP]
        if kept:
            out.append((kept, sum(item.size for item in kept)))
    return out


def target_key(store: Any, item: ImportItem, existing: set[str]) -> str | None:
    """Where ``item`` goes, given the keys that exist (None: skip it); adds it to ``existing``."""
    key = item.key
    if key in existing and item.clash != REPLACE:
        if item.clash == SKIP:
            return None
        key = free_key(key, lambda k: k in existing or store.exists(k))
    existing.add(key)
    return key


class _Unreadable(Exception):
    """A dropped file that cannot be imported (the reason is the message)."""


def _read_small(path: str, expected: int) -> tuple[bytes, os.stat_result]:
    """The whole file and its status; raises _Unreadable if it is not a stable regular file."""
    try:
        refuse_in_use(path)
    except StoreError as exc:
        raise _Unreadable(str(exc)) from None
    try:
        # O_NONBLOCK: a file replaced by a named pipe must not hang the import.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _Unreadable(unreadable_reason(path, exc)) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise _Unreadable(special_file_reason(before.st_mode))
        chunks, n = [], 0
        limit = max(expected, before.st_size) + SMALL_FILE  # a growing file is not read forever
        # Reads of the file's size (plus one byte, to see growth), not of 1 MiB: Python
        # allocates what is asked for, and 1 MiB is a fresh mmap each time (twice a file).
        size = min(before.st_size, SMALL_FILE) + 1
        while chunk := os.read(fd, size):
            chunks.append(chunk)
            n += len(chunk)
            if n > limit:
                raise _Unreadable("it kept growing while it was read; import it once it is "
                                  "complete")
        after = os.fstat(fd)
    except OSError as exc:
        raise _Unreadable(os_reason(exc)) from None
    finally:
        os.close(fd)
    if after.st_nlink == 0:
        raise _Unreadable("it was deleted while it was read")
    if n != after.st_size or after.st_mtime_ns != before.st_mtime_ns:
        raise _Unreadable("it changed while it was read; import it again once it is complete")
    return b"".join(chunks), after


def import_small_files(store: Any, items: Sequence[ImportItem], progress: Progress,
                       cancel: CancelToken, roots: Iterable[str] = ()) -> ImportReport:
    """Store each small file as its key with file metadata and sha256, in one transaction.

    A file that cannot be read (gone, unreadable, changed meanwhile, not a
    regular file) goes to the report's ``problems`` and the others are still
    stored; a store error or a cancel rolls the whole batch back. Whether
    keys exist is checked again here (``roots`` as for :func:`find_existing`).
    """
    report = ImportReport()
    total = sum(item.size for item in items)
    done = 0
    existing = find_existing(store, [i.key for i in items if i.clash != REPLACE], roots)
    with store.transaction(f"import {len(items)} files"):
        for item in items:
            cancel.check(item.key)
            try:
                data, st = _read_small(item.path, item.size)
            except _Unreadable as exc:
                report.problems.append((item.path, str(exc)))
            else:
                key = target_key(store, item, existing)
                if key is None:
                    report.skipped.append((item.path, item.key))
                else:
                    metadata = describe_file(os.path.basename(item.path), st)
                    metadata[DIGEST] = hashlib.sha256(data).hexdigest()
                    store.set(key, (io.BytesIO(data), metadata))
                    report.keys.append(key)
                    report.bytes += len(data)
            done += item.size
            progress(done, total)
    return report


def import_large_file(store: Any, item: ImportItem, progress: Progress,
                      cancel: CancelToken) -> ImportReport:
    """Stream one file in as its key (sha256 computed on the way).

    Raises
    ------
    StoreError
        The file cannot be read (gone, unreadable, not a regular file) or
        changed while it was read; nothing was stored.
    TransferCancelled
        ``cancel`` was set; the key is as it was.
    """
    report = ImportReport()
    try:
        st = os.stat(item.path)
    except OSError as exc:
        raise StoreError(f"{item.path!r}: {unreadable_reason(item.path, exc)}; nothing was stored",
                         item.key, store) from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{item.path!r}: {special_file_reason(st.st_mode)}; nothing was stored",
                         item.key, store)
    key = target_key(store, item, find_existing(store, [item.key]))
    if key is None:
        report.skipped.append((item.path, item.key))
        return report
    try:
        metadata = import_file(store, key, item.path, progress=progress, cancel=cancel)
    except OSError as exc:
        raise StoreError(f"{item.path!r}: {os_reason(exc)}; nothing was stored", key,
                         store) from None
    report.keys.append(key)
    report.bytes = metadata["size"]
    return report
