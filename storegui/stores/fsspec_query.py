"""Queries of FsspecStore: answered from the metadata index, not key by key.

A query with criteria loads the index (see :mod:`.fsspec_index`: one listing
of the index folder, then only the shards that changed, concurrently) and
matches every entry in memory. A query without criteria walks the keys (one
listing per 1,000 keys on S3) and takes each key's metadata from the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import StoreError, StoreKeyError
from .fsspec_reads import current
from .metadata import encode_metadata, matches, select_fields


class QueryMixin:
    """``_query``, ``multiget_metadata`` and ``rebuild_index`` for FsspecStore."""

    # FsspecStore provides _live(), _index, _iter_keys(), _data_path(), _meta_path(),
    # _checked(), _parse_record(), _error(), _check_key(), _check_writable(), readonly.

    def _query(self, criteria: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        try:
            view = self._index_view()
            keys = list(self._iter_keys("")) if not criteria else None
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "querying") from exc
        if keys is not None:
            for key in keys:
                entry = view.get(key)
                yield key, encode_metadata(entry["metadata"]) if entry else "{}"
            return
        for key in sorted(view):
            metadata = view[key]["metadata"]
            if matches(metadata, criteria):
                yield key, encode_metadata(metadata)

    def _index_view(self) -> dict[str, dict]:
        self._live()
        return self._index.load(self._resolve, repair=not self.readonly)

    def _records(self, keys: list[str], action: str) -> list[tuple[Any, dict | None]]:
        """(data info or None, metadata record or None) of each key, fetched concurrently."""
        rfs = self._live()
        coros = []
        for key in keys:
            coros += [rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))]
        results = rfs.run(*coros)
        out = []
        for i, key in enumerate(keys):
            info, raw = self._checked(results[2 * i:2 * i + 2], action, key)
            out.append((info, self._parse_record(raw, key) if info is not None else None))
        return out

    def _resolve(self, keys: list[str]) -> dict[str, dict | None]:
        """Index entries of ``keys`` read from their metadata objects (None: no such key)."""
        out: dict[str, dict | None] = {}
        for key, (info, record) in zip(keys, self._records(keys, "querying"), strict=True):
            if info is None:
                out[key] = None
            elif record is None:
                out[key] = {"metadata": {}, "created": info.modified}
            else:
                out[key] = {"metadata": record["metadata"], "created": record.get("created")}
        return out

    def multiget_metadata(
        self, keys: Iterable[str], select: Iterable[str] | None = None
    ) -> Iterator[dict]:
        """``get_metadata`` of each key, in order, all fetched concurrently.

        Raises
        ------
        KeyError
            One of the keys does not exist.
        """
        keys = [self._check_key(k) for k in keys]
        select = list(select) if select is not None else None
        out = []
        for key, (info, record) in zip(keys, self._records(keys, "reading"), strict=True):
            if info is None:
                raise StoreKeyError(key, self)
            out.append(select_fields(current(record, info), select))
        return iter(out)

    def rebuild_index(self) -> int:
        """Recreate the metadata index from the per-key metadata objects; return the key count.

        Use it after other tools deleted or changed keys behind this store's
        back. Costs one listing per 1,000 keys plus one small read per key
        (concurrent).

        Raises
        ------
        ReadOnlyError
            The store is read-only.
        StoreError
            The filesystem failed.
        """
        self._check_writable()
        rfs = self._live()
        keys = list(self._iter_keys(""))
        entries: dict[str, dict] = {}
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            raws = self._checked(rfs.run(*(rfs.read(self._meta_path(k)) for k in batch)),
                                 "rebuilding the index of", None)
            for key, raw in zip(batch, raws, strict=True):
                record = self._parse_record(raw, key)
                if record is not None:
                    entries[key] = {"metadata": record["metadata"],
                                    "created": record.get("created")}
        try:
            self._index.rebuild(entries)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "rebuilding the index of") from exc
        return len(keys)
