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

import codecs
import errno
import io
import mimetypes
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InvalidKeyError, StoreError
from .keys import check_key
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


def describe_file(name: str, st: os.stat_result) -> dict[str, Any]:
    """The metadata an import gives the file called ``name`` whose status is ``st``.

    ``filename``, ``size``, ``mtime`` and ``media_type``; the import adds the
    ``sha256`` of the bytes it stored. Every import of a local file (``put``,
    ``put -r``, a drop, the app's import) describes the file through this.
    """
    return {
        "filename": name,
        "size": st.st_size,
        "mtime": st.st_mtime,
        "media_type": media_type(name),
    }


def file_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`describe_file` of the file at ``path``.

    Raises
    ------
    OSError
        If the file cannot be examined.
    """
    path = Path(path)
    return describe_file(path.name, path.stat())


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


#: Leading bytes of common formats (offset, magic, media type), checked in order.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"\x89HDF\r\n\x1a\n", "application/x-hdf5"),
    (0, b"PAR1", "application/vnd.apache.parquet"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (257, b"ustar", "application/x-tar"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
#: How many leading bytes :func:`sniff_media_type` looks at.
SNIFF_BYTES = 8192


def sniff_media_type(head: bytes, name: str = "") -> str:
    """The media type of data starting with ``head`` (its first :data:`SNIFF_BYTES`).

    Magic bytes of common formats first; else text (valid UTF-8 without NUL
    characters) is ``text/plain``, or the text type the key ``name`` suggests
    (``.json``, ``.csv``, ``.md``...); else ``application/octet-stream``.
    """
    for offset, magic, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if b"\x00" in head:
        return DEFAULT_MEDIA_TYPE
    try:
        # final=False: a character cut off by the end of ``head`` is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return DEFAULT_MEDIA_TYPE
    by_name = mimetypes.guess_type(name, strict=False)[0] if name else None
    if by_name and (by_name.startswith("text/") or by_name in _TEXT_TYPES):
        return by_name
    return "text/plain"


_TEXT_TYPES = {"application/json", "application/xml", "application/x-yaml",
               "application/yaml", "application/javascript", "application/x-sh",
               "application/toml"}


class _Rejoined(io.RawIOBase):
    """``head`` then the rest of ``stream``: a stream whose first bytes were read already."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def import_piped(
    store: Any,
    key: str,
    stream: BinaryIO,
    metadata: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> dict[str, Any]:
    """:func:`import_stream` of data with no file behind it (``storegui put KEY -``).

    Besides ``size`` and ``sha256`` the key gets ``media_type``
    (:func:`sniff_media_type` of the first bytes and the key's name) and
    ``mtime``, the time of the write; ``metadata`` given for either wins.
    """
    head = b""
    while len(head) < SNIFF_BYTES:  # a pipe may give fewer bytes per read than asked
        chunk = stream.read(SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    md: dict[str, Any] = {"media_type": sniff_media_type(head, key.rsplit("/", 1)[-1]),
                          "mtime": time.time()}
    md.update(metadata or {})
    with io.BufferedReader(_Rejoined(head, stream), buffer_size) as joined:
        return import_stream(store, key, joined, md, progress=progress, cancel=cancel,
                             buffer_size=buffer_size)


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

    The metadata is :func:`describe_file` of the opened file, updated with
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
        # describe the file that was opened, even if the path was replaced meanwhile
        md = describe_file(Path(path).name, before)
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


@dataclass(frozen=True)
class PlannedFile:
    """A file an import stores as ``key``; ``size`` as planned (the import reads it again)."""

    key: str
    path: str
    size: int


@dataclass
class ImportPlan:
    """What importing some paths under a prefix does (see :func:`plan_import`)."""

    #: The files to store, in order: a folder's files by name, then its subfolders'.
    files: list[PlannedFile] = field(default_factory=list)
    #: ``(path, reason)`` of what cannot be imported, the reason in words.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: The key prefixes (ending with "/") of the folders given.
    roots: list[str] = field(default_factory=list)


def os_reason(exc: OSError) -> str:
    """Why a file could not be read, in words (``vanished: it no longer exists``...)."""
    if isinstance(exc, FileNotFoundError):
        return "vanished: it no longer exists"
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if isinstance(exc, PermissionError):
        return "cannot be read: permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder now, not a file"
    return f"cannot be read: {exc.strerror or exc}"


def special_file_reason(mode: int) -> str:
    """Why a file of mode ``mode`` (a pipe, socket, device) is not imported."""
    for test, what in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return f"{what}, not a regular file"
    return "not a regular file"


def unreadable_reason(path: str, exc: OSError) -> str:
    """Why ``path`` could not be opened or examined (``exc``), naming a broken link's target."""
    if not os.path.islink(path):
        return os_reason(exc)
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if isinstance(exc, FileNotFoundError):
        try:
            target = os.readlink(path)
        except OSError:
            return "vanished: it no longer exists"
        return f"a broken symlink (its target {target!r} does not exist)"
    return os_reason(exc)


def _no_pause() -> None:
    """The pace of work that needs no pauses."""


def plan_import(prefix: str, paths: Iterable[str | os.PathLike],
                pace: Callable[[], None] = _no_pause) -> ImportPlan:
    """Which files importing ``paths`` under ``prefix`` stores, as which keys; what it skips.

    The one planner of ``storegui put -r`` and a drop on the app's tree. A
    file becomes ``prefix + its name``; a folder brings every file in it as
    ``prefix + folder name + "/" + relative path`` (``/`` separated on every
    platform; hidden files included). ``prefix`` is used as given: ``""`` or
    a prefix ending with ``/``. Symlinks to files are followed; a symlink to
    a folder is followed when given itself, not inside a folder (a link loop
    cannot recurse forever). Skipped, with the reason: broken links, link
    loops, special files (pipes, sockets, devices), folders that cannot be
    listed, paths that do not exist (or no longer), names that cannot be a
    key, and a second file that would get a key already planned. The metadata
    each key gets is :func:`describe_file` of the file when it is imported,
    plus its ``sha256``. ``pace()`` is called for each entry (a GUI worker
    pauses there). Does not touch any store.
    """
    plan = ImportPlan()
    seen: dict[str, str] = {}

    def add(key: str, path: str, size: int) -> None:
        try:
            check_key(key)
        except InvalidKeyError as exc:
            plan.skipped.append((path, f"cannot be a key: {exc}"))
            return
        if key in seen:
            plan.skipped.append((path, f"would become key {key!r} like {seen[key]!r}"))
            return
        seen[key] = path
        plan.files.append(PlannedFile(key, path, size))

    def classify(path: str, st: os.stat_result, key: str, walk: list) -> None:
        pace()
        if stat.S_ISDIR(st.st_mode):
            walk.append((path, key + "/"))
        elif stat.S_ISREG(st.st_mode):
            add(key, path, st.st_size)
        else:
            plan.skipped.append((path, special_file_reason(st.st_mode)))

    folders: list[tuple[str, str]] = []
    for raw in paths:
        path = os.fspath(raw)
        # abspath: "." and "dir/" are named like the folder they are ("/" has no name)
        name = os.path.basename(os.path.abspath(path)) or "root"
        try:
            st = os.stat(path)  # a link given itself is followed: the user chose it
        except OSError as exc:
            plan.skipped.append((path, unreadable_reason(path, exc)))
            continue
        classify(path, st, prefix + name, folders)
        plan.roots += [key for _path, key in folders]
        while folders:
            _plan_folder(*folders.pop(), classify, folders, plan)
    return plan


def _plan_folder(folder: str, key_prefix: str, classify: Callable, stack: list,
                 plan: ImportPlan) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        plan.skipped.append((folder, f"the folder cannot be listed: {exc.strerror or exc}"))
        return
    subfolders: list[tuple[str, str]] = []
    for entry in entries:
        try:
            if entry.is_symlink():
                try:
                    st = os.stat(entry.path)
                except OSError as exc:
                    plan.skipped.append((entry.path, unreadable_reason(entry.path, exc)))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    plan.skipped.append((entry.path, "a link to a folder (not followed)"))
                    continue
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            plan.skipped.append((entry.path, os_reason(exc)))
            continue
        classify(entry.path, st, key_prefix + entry.name, subfolders)
    stack.extend(reversed(subfolders))  # popped in name order
