"""The record file that holds one key of a :class:`FileSystemStore`, and the Value read from it.

A record is one file::

    16-byte prefix   b"SGKV", format version (1 byte), 3 zero bytes,
                     info length (uint32, big-endian), metadata length (uint32)
    info             JSON: {"blob": null | "<32 hex digits>", "created": float,
                     "modified": float, "size": int}
    metadata         the key's metadata, canonical JSON text, stored verbatim
    data             the value's bytes when "blob" is null (small values)

A value of more than :data:`INLINE_MAX` bytes lives in a separate,
never-modified *blob* file named in the info (read through
:mod:`..localfiles.streams`); replacing the record (one rename) switches
data and metadata together, and changing only the metadata writes a new
small record that names the same blob.

``created`` and ``modified`` are the writer's clock (``time.time()``) read
during the write call, never a file's mtime: a filesystem's timestamps lag
the clock by up to a kernel tick, so a value's ``modified`` could otherwise be
earlier than the moment its write began. Records written before
``modified`` was recorded report the record file's mtime.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
from dataclasses import dataclass

from ..errors import StoreError
from ..localfiles.streams import FdHandle, file_value
from ..value import Value

#: Values up to this size live inside their record; larger ones in a blob file.
INLINE_MAX = 64 * 1024
MAGIC = b"SGKV"
VERSION = 1
_PREFIX = struct.Struct(">4sB3xII")
PREFIX_SIZE = _PREFIX.size
_FIRST_READ = 4096
_BLOB_NAME = re.compile(r"[0-9a-f]{32}")


class DamagedRecordError(StoreError):
    """A record file that is not in the expected format (truncated, foreign, newer)."""


@dataclass(frozen=True, slots=True)
class Record:
    """The parsed head of a record file."""

    size: int
    created: float
    blob: str | None
    metadata_text: str
    data_offset: int
    modified: float | None = None

    def modified_or(self, file_mtime: float) -> float:
        """When the record was written: its ``modified``, else (older records) ``file_mtime``."""
        return file_mtime if self.modified is None else self.modified


def pack_record(size: int, created: float, blob: str | None, metadata_text: str,
                modified: float) -> bytes:
    """The prefix, info and metadata of a record (inline data follows it)."""
    info = json.dumps({"blob": blob, "created": created, "modified": modified,
                       "size": size}).encode("utf-8")
    meta = metadata_text.encode("utf-8")
    return _PREFIX.pack(MAGIC, VERSION, len(info), len(meta)) + info + meta


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def read_record(
    fd: int, where: str, file_size: int | None = None, inline: bool = True
) -> tuple[Record, bytes]:
    """Parse the record open at ``fd``: its head, and (with ``inline``) its inline data.

    ``where`` names the file in error messages. Reads the head with one
    ``pread`` in the common case; the inline data (small values only) when asked.

    Raises
    ------
    DamagedRecordError
        The file is truncated or not a record this version can read.
    """
    if file_size is None:
        file_size = os.fstat(fd).st_size
    head = os.pread(fd, min(max(file_size, PREFIX_SIZE), _FIRST_READ), 0)
    if len(head) < PREFIX_SIZE:
        raise DamagedRecordError(f"{where} is damaged: only {len(head)} bytes long")
    magic, version, info_len, meta_len = _PREFIX.unpack_from(head)
    if magic != MAGIC:
        raise DamagedRecordError(f"{where} is not a storegui record (bad signature)")
    if version != VERSION:
        raise DamagedRecordError(
            f"{where} has record format {version}; this storegui reads format {VERSION}"
        )
    offset = PREFIX_SIZE + info_len + meta_len
    if offset > file_size:
        raise DamagedRecordError(f"{where} is damaged: truncated in its header")
    if offset > len(head):
        head += _pread_exact(fd, offset - len(head), len(head))
    try:
        info = json.loads(head[PREFIX_SIZE : PREFIX_SIZE + info_len])
        meta = head[PREFIX_SIZE + info_len : offset].decode("utf-8")
        size, created, blob = int(info["size"]), float(info["created"]), info["blob"]
        modified = info.get("modified")
        modified = None if modified is None else float(modified)
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedRecordError(f"{where} is damaged: bad header ({exc})") from None
    if blob is not None and not (isinstance(blob, str) and _BLOB_NAME.fullmatch(blob)):
        raise DamagedRecordError(f"{where} is damaged: bad blob name {blob!r}")
    record = Record(size, created, blob, meta, offset, modified)
    if blob is not None:
        return record, b""
    if file_size - offset != size:
        raise DamagedRecordError(
            f"{where} is damaged: holds {file_size - offset} data bytes, expected {size}"
        )
    if not inline:
        return record, b""
    data = head[offset:] + _pread_exact(fd, file_size - len(head), len(head))
    return record, data[:size]


def inline_value(record: Record, data: bytes, file_mtime: float) -> Value:
    """The :class:`Value` of a record that holds its data (``file_mtime``: the record file's)."""
    return Value(lambda: io.BytesIO(data), record.metadata_text, record.size, record.created,
                 record.modified_or(file_mtime))


def blob_value(record: Record, handle: FdHandle, file_mtime: float) -> Value:
    """The :class:`Value` of a record whose data is the blob open in ``handle``."""
    return file_value(handle, record.size, record.metadata_text, record.created,
                      record.modified_or(file_mtime))
