"""How FsspecStore's reads trust a metadata record: does it still describe its data object?

The reads themselves are methods of :class:`~.store.FsspecStore`.

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

import json

from .remotefs import ObjectInfo

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


