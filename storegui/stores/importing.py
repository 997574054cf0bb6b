"""Importing local files as keys, shared by ``storegui put`` and drag and drop.

An imported key gets the file's data and metadata describing it:

=============  ==========================================================
``filename``   the file's name (last path part)
``size``       bytes stored
``mtime``      the file's modification time (epoch seconds, float)
``media_type`` guessed from the name (``mimetypes``), e.g. ``text/plain``
``sha256``     hex digest of the data, computed while it streams in
=============  ==========================================================

The data streams in (bounded memory) with progress and cancel. The digest is
only known once the stream ends, so the value is written and its digest then
added inside one transaction: a failure or cancel at either step leaves no
key behind (or the previous value, if the key existed).

A file that changes while it is imported (its size, its modification time,
or it is deleted or replaced) would give a key that matches no version of
it, so :func:`import_file` checks the open file before and after streaming
and rolls the import back if anything changed.

Derived metadata never goes stale: ``size``, ``sha256`` and ``mtime``
(:data:`DERIVED`) describe the bytes the key holds now, on every store, or
are absent. When the bytes change by another route than an import:

- ``set_data`` (new bytes, metadata kept) records the new ``size`` and drops
  ``sha256`` and ``mtime`` (the bytes no longer come from that file, and
  hashing every ``set_data`` would cost what the import's digest costs);
- a MountedStore pull or push writes the ``size`` of the bytes it copied,
  and corrects ``sha256`` to the digest of the bytes copied whenever the copy
  computed one (it does unless the copy is a hard link to the very same
  file); it never carries a differing value forward;
- a FileSystemStore value whose blob file was changed by another program
  (edited in place or replaced: its size, mtime or inode differ from what the
  write saw) reports the file's current ``size`` and ``mtime`` and no
  ``sha256``.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .errors import StoreError
from .sqlite.schema import refuse_in_use
from .transfer.streaming import DEFAULT_BUFFER_SIZE, CancelToken, Progress, ProgressReader

DIGEST = "sha256"
DEFAULT_MEDIA_TYPE = "application/octet-stream"

# mimetypes reports "x.tar.gz" as a tar file with gzip encoding; the bytes
# stored are the compressed file, so name the compression's own type.
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}

# Facts about the stored bytes: measured while streaming, never taken from the caller.
_MEASURED = ("size", DIGEST)
#: Metadata fields that describe a value's bytes: see the module docstring.
DERIVED = ("size", DIGEST, "mtime")


def restate_derived(metadata: dict, size: int | None, digest: str | None = None) -> dict:
    """``metadata`` with its :data:`DERIVED` fields made true of new bytes.

    ``size`` replaces a recorded size (dropped if None); ``digest`` replaces a
    recorded sha256 (dropped if None); ``mtime`` is dropped. Fields that were
    absent stay absent. Returns ``metadata`` itself if it has none of them.
    """
    if not any(name in metadata for name in DERIVED):
        return metadata
    md = {k: v for k, v in metadata.items() if k not in DERIVED}
    if "size" in metadata and size is not None:
        md["size"] = size
    if DIGEST in metadata and digest is not None:
        md[DIGEST] = digest
    return md


def media_type(name: str) -> str:
    """The media type of a file called ``name`` (``application/octet-stream`` if unknown)."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _ENCODING_TYPES.get(encoding, DEFAULT_MEDIA_TYPE)
    return guessed or DEFAULT_MEDIA_TYPE


def file_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """``filename``, ``size``, ``mtime`` and ``media_type`` of the file at ``path``.

    Raises
    ------
    OSError
        If the file cannot be examined.
    """
    path = Path(path)
    st = path.stat()
    return {
        "filename": path.name,
        "size": st.st_size,
        "mtime": st.st_mtime,
        "media_type": media_type(path.name),
    }


def import_stream(
    store: Any,
    key: str,
    stream: BinaryIO,
    metadata: Mapping[str, Any] | None = None,
    *,
    total: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    check: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Store the binary ``stream`` as ``key`` with ``metadata`` plus its size and sha256.

    Returns the metadata the key now has. ``progress(done, total)`` is called
    with bytes; setting ``cancel`` stops the import. ``check(bytes read)``,
    if given, runs once the data is stored, inside the import's transaction:
    an exception it raises rolls the import back.

    Raises
    ------
    TransferCancelled
        ``cancel`` was set; the key is as it was before.
    StoreError
        The store refused the write (read-only, invalid key or metadata);
        the key is as it was before.
    """
    md = {k: v for k, v in dict(metadata or {}).items() if k not in _MEASURED}
    if total is not None:
        md["size"] = total
    reader = ProgressReader(stream, total, progress, cancel, DIGEST, key, owns_stream=False)
    try:
        with store.transaction(f"import {key}"):
            store.set(key, (reader, md), buffer_size=buffer_size)
            if check is not None:
                check(reader.done)
            measured = {"size": reader.done, DIGEST: reader.hexdigest}
            store.update_metadata(key, measured)
    finally:
        reader.close()  # ends its hashing thread, if it started one
    md.update(measured)
    return md


def import_file(
    store: Any,
    key: str,
    path: str | os.PathLike,
    *,
    extra_metadata: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> dict[str, Any]:
    """Store the file at ``path`` as ``key``; return the metadata written.

    The metadata is :func:`file_metadata` of the file, updated with
    ``extra_metadata`` (which may replace ``filename``, ``mtime`` or
    ``media_type``), plus ``size`` and ``sha256`` of the bytes actually stored.

    Raises
    ------
    OSError
        The file cannot be read (missing, a folder, no permission).
    TransferCancelled, StoreError
        As for :func:`import_stream`; the key is as it was before. A
        StoreError also if the file changed, or was deleted or replaced,
        while it was being read.
    """
    refuse_in_use(path)
    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        md = file_metadata(path)
        # describe the file that was opened, even if the path was replaced meanwhile
        md["size"], md["mtime"] = before.st_size, before.st_mtime
        total = md["size"]
        md.update(extra_metadata or {})

        def unchanged(done: int) -> None:
            if not stat.S_ISREG(before.st_mode):
                return  # a pipe or device has no size or version to compare
            after = os.fstat(f.fileno())
            if after.st_nlink == 0:
                why = "it was deleted or replaced"
            elif done != before.st_size or after.st_size != before.st_size:
                why = f"its size went from {before.st_size} to {after.st_size} bytes"
            elif after.st_mtime_ns != before.st_mtime_ns:
                why = "it was modified"
            else:
                return
            raise StoreError(f"{os.fspath(path)!r} changed while it was being imported as "
                             f"{key!r} ({why}); nothing was stored: import it again once the "
                             "file is complete", key, store)

        return import_stream(store, key, f, md, total=total, progress=progress,
                             cancel=cancel, buffer_size=buffer_size, check=unchanged)


def plan_import(prefix: str, paths: Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    """The ``(key, file)`` pairs that importing ``paths`` under ``prefix`` creates.

    A file becomes ``prefix + its name``; a folder brings every file inside
    it, keyed by ``prefix + folder name + "/" + relative path`` (``/``
    separated on every platform). Hidden files are included; symlinks to
    folders are not followed (so a link loop cannot recurse forever).
    ``prefix`` is used as given: pass ``""`` or a prefix ending with ``/``.

    Raises
    ------
    StoreError
        If a path does not exist, or two paths would give the same key.
    """
    plan: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}

    def add(key: str, file: Path) -> None:
        if key in seen:
            raise StoreError(f"{str(seen[key])!r} and {str(file)!r} would both become key {key!r}",
                             key)
        seen[key] = file
        plan.append((key, file))

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            base = path.resolve().name or path.name
            for root, dirs, files in os.walk(path):
                dirs.sort()
                rel = Path(root).relative_to(path)
                for name in sorted(files):
                    parts = [base, *rel.parts, name] if rel.parts else [base, name]
                    add(prefix + "/".join(parts), Path(root) / name)
        elif path.exists():
            add(prefix + path.name, path)
        else:
            raise StoreError(f"cannot import {str(path)!r}: no such file or folder")
    return plan
