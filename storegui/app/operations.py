"""What the window's actions do to the store, as plain functions run on workers (no Qt).

Targets are full keys, or folder prefixes ending with "/". Transfers take
a :class:`~storegui.stores.transfer.progress.TransferProgress` (or a
``progress(done, total)`` callable) and a CancelToken.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..stores.importing import import_file
from ..stores.transfer.progress import TransferProgress, as_progress
from ..stores.transfer.streaming import CancelToken, copy_stream

Progress = TransferProgress | Callable[[int, "int | None"], None]


def push_targets(store: Any, targets: Sequence[str], progress: Progress,
                 cancel: CancelToken) -> list[str]:
    """Push each key or folder; every key pushed. A failure stops none (``push_many``)."""
    return store.push_many(targets, progress=progress, cancel=cancel)


def pull_targets(store: Any, targets: Sequence[str], progress: Progress,
                 cancel: CancelToken) -> list[str]:
    """Pull each key or folder into the mount store (``pull_many``); every key pulled."""
    return store.pull_many(targets, progress=progress, cancel=cancel)


def revert_targets(store: Any, targets: Sequence[str]) -> list[str]:
    """Drop the local copies of shadowing keys, under folders too (``revert_many``)."""
    return store.revert_many(targets)


def delete_local_copies(store: Any, targets: Sequence[str]) -> list[str]:
    """Delete the mount copies of the keys, and of every key under the folders, all or nothing.

    Backing copies are never touched: a shadowing key shows its backing
    version again afterwards.
    """
    keys: list[str] = []
    for target in targets:
        if target.endswith("/"):
            keys += store.local_keys(target)
        else:
            keys.append(target)
    with store.transaction(f"delete {len(keys)} local copies"):
        for key in dict.fromkeys(keys):
            store.delete(key)
    return keys


def export_names(keys: Iterable[str], folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(key, file path)`` pairs for saving ``keys`` into ``folder`` under their last names.

    Names that would clash get " (2)", " (3)"… before the extension.
    """
    out: list[tuple[str, Path]] = []
    taken: set[str] = set()
    for key in keys:
        base = key.rstrip("/").rsplit("/", 1)[-1] or "key"
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem:
            stem, ext = base, ""
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
        taken.add(name.casefold())
        out.append((key, Path(folder) / name))
    return out


def export_keys(store: Any, pairs: Sequence[tuple[str, str | os.PathLike]], progress: Progress,
                cancel: CancelToken) -> list[str]:
    """Save each key's data to its file: streamed, via a temporary file renamed at the end.

    A cancelled or failed export leaves no partial file (an existing file of
    that name is kept as it was).
    """
    sizes = [store.stat(key).size for key, _ in pairs]
    progress = as_progress(progress)
    progress.set_size(None if None in sizes else sum(sizes))  # type: ignore[arg-type]
    written = []
    for (key, path), size in zip(pairs, sizes, strict=True):
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".storegui-", suffix=".part", dir=folder)
        child = progress.branch(key, size)
        try:
            with os.fdopen(fd, "wb") as dst, store.get_data(key) as src:
                copy_stream(src, dst, progress=child, cancel=cancel, total=size, key=key)
            os.replace(tmp, path)
        except BaseException:
            child.close(False)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        child.close()
        written.append(path)
    return written


def import_files(store: Any, plan: Sequence[tuple[str, str | os.PathLike]], progress: Progress,
                 cancel: CancelToken) -> list[str]:
    """Store each file as its key (with file metadata and sha256); returns the keys written."""
    sizes = [os.path.getsize(path) for _, path in plan]
    progress = as_progress(progress)
    progress.set_size(sum(sizes))
    keys = []
    for (key, path), size in zip(plan, sizes, strict=True):
        child = progress.branch(key, size)
        try:
            import_file(store, key, path, cancel=cancel, progress=child)
        finally:
            child.close()
        keys.append(key)
    return keys
