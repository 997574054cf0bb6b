"""The connect sweep of FsspecStore: clean up after writers that died.

A writer killed mid-write leaves its pending marker (see
:mod:`.fsspec_index`), maybe a copy of the key's previous data in
``.storegui/tmp/``, and on S3 maybe an incomplete multipart upload, which
the bucket would keep (and bill) forever. Connecting a writable store runs
one bounded sweep: one listing of the pending markers and one
ListMultipartUploads under the root (the first 1,000 of each), reads of at
most :data:`MAX_MARKERS` markers, and the repair of at most
:data:`MAX_REPAIRS` dead writes (a few requests each).

Which writer is dead (:func:`~.fsspec_index.marker_alive`): one on this
machine whose process is gone (or, for this process, whose write is no
longer running); one on another machine once its marker is
:data:`~.fsspec_index.STALE_UPLOAD` (24 h) old, since its process cannot be
asked. A dead write is repaired: if its metadata object was not written (the
record does not describe the data object), the previous data is copied back
from its backup, or the new key's data removed; then the key's shard entry
is rewritten from its record and the marker and backup are removed. An
incomplete upload is aborted when the only writers of its key are dead and
it started after the dead marker, or when no live writer claims its key and
it is older than STALE_UPLOAD.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from .fsspec_index import STALE_UPLOAD, DamagedShard, marker_alive
from .fsspec_reads import matches_data

MAX_MARKERS = 64
MAX_REPAIRS = 16


class SweepMixin:
    """``_sweep`` for :class:`~.fsspec_store.FsspecStore`."""

    # FsspecStore provides _rfs, _index, _root, _data_path(), _meta_path(),
    # _retagged(), _quietly().

    def _sweep(self) -> None:
        """Clean up what dead writers left (best effort: a failure is left to the next one)."""
        try:
            self._sweep_now()
        except Exception:  # noqa: BLE001 - clean-up must never stop a connect
            pass

    def _sweep_now(self) -> None:
        rfs = self._rfs
        pending_dir = self._root + "/.storegui/index/pending"
        markers, uploads = rfs.run(rfs.list_page(pending_dir), rfs.list_uploads(self._root + "/"))
        markers = [] if isinstance(markers, BaseException) else markers[:MAX_MARKERS]
        uploads = [] if isinstance(uploads, BaseException) else uploads
        if not markers and not uploads:
            return
        raws = rfs.run(*(rfs.read(path) for path, _ in markers))
        now = time.time()
        live: set[str] = set()
        dead: dict[str, list[tuple[str, dict]]] = {}
        for (path, modified), raw in zip(markers, raws, strict=True):
            try:
                marker = json.loads(raw)
                key = marker["key"]
            except (TypeError, ValueError, KeyError):
                continue
            if not isinstance(key, str):
                continue
            age = None if modified is None else now - modified
            if marker_alive(marker, path, age, STALE_UPLOAD):
                live.add(self._data_path(key))
            else:
                dead.setdefault(self._data_path(key), []).append((path, marker))
        for upload in uploads:
            if upload["path"] in live:
                continue
            started = [m.get("started") for _, m in dead.get(upload["path"], [])]
            mine = any(isinstance(t, int | float) and (upload["initiated"] or 0) >= t - 2
                       for t in started)
            old = upload["initiated"] is not None and now - upload["initiated"] > STALE_UPLOAD
            if mine or old:
                self._quietly(rfs.abort_upload(upload["path"], upload["id"]))
        repairs = [(p, m) for data_path, found in dead.items() if data_path not in live
                   for p, m in found][:MAX_REPAIRS]
        for path, marker in repairs:
            self._repair(path, marker)

    def _repair(self, path: str, marker: dict) -> None:
        """Finish or undo the dead write of ``marker``; then remove the marker."""
        rfs, index = self._rfs, self._index
        key = marker["key"]
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        backup = marker.get("backup") if isinstance(marker.get("backup"), str) else None
        info, raw, kept = rfs.run(rfs.head(data_path), rfs.read(meta_path),
                                  rfs.head(backup) if backup else _none())
        for result in (info, raw, kept):
            if isinstance(result, BaseException):
                return
        try:
            record = json.loads(raw) if raw is not None else None
        except ValueError:
            record = None
        if info is not None and not matches_data(record, info):
            started = marker.get("started")
            if kept is not None:
                # Died between its upload and its metadata object: the previous data back.
                _, tag = rfs.run1(rfs.copy_object(backup, data_path))
                if isinstance(record, dict) and record.get("size") == kept.size:
                    fixed = self._retagged(raw, record.get("etag"), tag)
                    if fixed != raw:
                        rfs.run1(rfs.write(meta_path, fixed))
            elif record is None and isinstance(started, int | float) \
                    and info.modified is not None and info.modified >= math.floor(started):
                rfs.run1(rfs.remove(data_path))  # a new key's data, never committed
        info, raw = rfs.run(rfs.head(data_path), rfs.read(meta_path))
        if isinstance(info, BaseException) or isinstance(raw, BaseException):
            return
        try:
            record = json.loads(raw) if raw is not None else {}
        except ValueError:
            record = {}
        metadata = record.get("metadata") if isinstance(record, dict) else None
        entry = None if info is None else {
            "metadata": metadata if isinstance(metadata, dict) else {},
            "created": record.get("created", info.modified) if metadata else info.modified}
        try:
            index.apply(key, lambda _old: entry)
        except DamagedShard:
            return  # left for rebuild_index(); the marker keeps queries re-reading the key
        self._quietly(*([rfs.remove(backup)] if backup else []), index.clear_pending(path))


async def _none() -> Any:
    return None
