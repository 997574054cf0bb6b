"""Reads of FsspecStore: get, stat, exists, metadata, and the data streams.

A ``get`` fetches the data object's HEAD and the metadata object at once
(concurrently on S3). Data up to ``block_size`` bytes is read in one request
(on S3 conditional on the ETag the HEAD saw, so a value replaced meanwhile is
read whole, never mixed); larger data streams block by block.

Times and derived metadata: the metadata object records the data's size
and tag (S3 ETag) as written, and the write's own clock reading. While the
data object still matches them, ``created``/``modified`` are the recorded
times (S3's LastModified is whole seconds, earlier than the write). If the
data was replaced by another tool, its size and time are the object's own,
and the derived fields of the metadata are corrected (see :func:`current`):
``size`` and ``mtime`` from the object, ``sha256`` dropped.
"""

from __future__ import annotations

import io
import json
from typing import BinaryIO

from .errors import StoreError, StoreKeyError
from .fsspec_errors import GuardedStream, is_precondition_failure
from .fsspec_io import ObjectInfo
from .metadata import encode_metadata
from .value import Entry, Value, open_range

#: Metadata fields measured from the bytes that cannot be recomputed cheaply.
_DROPPED_WHEN_STALE = ("sha256",)


def matches_data(record: dict | None, info: ObjectInfo) -> bool:
    """Whether ``record`` was written for the data object ``info`` describes."""
    if not record:
        return False
    if record.get("size") != info.size:
        return False
    tag = record.get("etag")
    if tag is None:
        return "etag" not in record  # a record of an older version: sizes are all it has
    return tag == json.loads(json.dumps(info.tag))


def current(record: dict | None, info: ObjectInfo) -> dict:
    """The metadata of a key, with derived fields true of its current data."""
    metadata = dict(record["metadata"]) if record else {}
    if record and not matches_data(record, info):
        for name in _DROPPED_WHEN_STALE:
            metadata.pop(name, None)
        if "size" in metadata:
            metadata["size"] = info.size
        if "mtime" in metadata:
            if info.modified is None:
                del metadata["mtime"]
            else:
                metadata["mtime"] = info.modified
    return metadata


def times(record: dict | None, info: ObjectInfo) -> tuple[float | None, float | None]:
    """``(created, modified)`` of a key: recorded by the write, else the object's."""
    created = record.get("created") if record else None
    created = created if isinstance(created, int | float) else None
    if record and matches_data(record, info) and isinstance(record.get("modified"), int | float):
        return (record["modified"] if created is None else created), record["modified"]
    if created is None or info.modified is None:
        return (info.modified if created is None else created), info.modified
    return min(created, info.modified), info.modified


class ReadMixin:
    """The read primitives of :class:`~.fsspec_store.FsspecStore`."""

    # FsspecStore provides _live(), _data_path(), _meta_path(), _checked(),
    # _parse_record(), _error(), _block_size and url.

    def _state(self, key: str) -> tuple[ObjectInfo | None, dict | None]:
        """The data object's info and the metadata record of ``key``, fetched together."""
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "reading", key)
        return info, (self._parse_record(raw, key) if info is not None else None)

    # ------------------------------------------------------------------ reads

    def _get(self, key: str) -> Value:
        info, record = self._state(key)
        if info is None:
            raise StoreKeyError(key, self)
        text = encode_metadata(current(record, info))
        created, modified = times(record, info)
        return Value(lambda: self._open_data(key, info), text, info.size, created,
                     modified, lambda start, end: self._open_range(key, info, start, end))

    def _fetch(self, key: str, info: ObjectInfo, start: int | None = None,
               end: int | None = None) -> bytes:
        """Bytes of ``key`` in one request: the version ``info`` describes, else the newest."""
        rfs = self._live()
        path = self._data_path(key)
        (data,) = rfs.run(rfs.read(path, start, end, tag=info.tag if rfs.is_s3 else None))
        if isinstance(data, BaseException) and is_precondition_failure(data):
            # Replaced since get(): read the whole new version, never a mix of two.
            (data,) = rfs.run(rfs.read(path, start, end))
        if isinstance(data, BaseException):
            raise self._error(data, "reading", key) from data
        if data is None:
            raise StoreKeyError(key, self, f"{key!r} was deleted from {self.url} while being read")
        return data

    def _open_data(self, key: str, info: ObjectInfo) -> BinaryIO:
        rfs = self._live()
        if rfs.flat or info.size <= self._block_size:
            return io.BytesIO(self._fetch(key, info))
        try:
            raw = rfs.open_read(self._data_path(key))
        except Exception as exc:
            raise self._error(exc, "reading", key) from exc
        return GuardedStream(raw, lambda exc: self._error(exc, "reading", key))

    def _open_range(self, key: str, info: ObjectInfo, start: int, end: int | None) -> BinaryIO:
        if start >= info.size or (end is not None and end <= start):
            return io.BytesIO(b"")
        if end is not None and end - start <= self._block_size:
            return io.BytesIO(self._fetch(key, info, start, end))
        return open_range(self._open_data(key, info), start, end)

    def _stat(self, key: str) -> Entry:
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "reading", key)
        try:
            record = self._parse_record(raw, key) if info is not None else None
        except StoreError:
            record = None  # a damaged record does not hide the data's size and time
        if info is None:
            raise StoreKeyError(key, self)
        return Entry(key, False, info.size, times(record, info)[1])

    def _exists(self, key: str) -> bool:
        rfs = self._live()
        (info,) = self._checked(rfs.run(rfs.head(self._data_path(key))), "reading", key)
        return info is not None

    def _get_metadata_text(self, key: str) -> str:
        info, record = self._state(key)
        if info is None:
            raise StoreKeyError(key, self)
        return encode_metadata(current(record, info))
