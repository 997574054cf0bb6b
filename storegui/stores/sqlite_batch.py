"""Fast multi-key writes of SqliteStore: one SQL transaction, a few statements per key.

:class:`SqliteBatchWrites` is mixed into :class:`~storegui.stores.sqlite.SqliteStore`
and relies on its ``_db`` (:class:`~.sqlite_connections.SqliteConnections`),
``_read_data`` and ``_store``. Every value is checked before anything is
written; set / update events are emitted after the commit, as for ``set``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import events as ev
from .base import _unpack_value
from .errors import StoreKeyError
from .metadata import copy_metadata, decode_metadata, encode_metadata
from .sqlite_blobs import INLINE_MAX, end_owner, new_owner
from .sqlite_index import IndexPairs, encode_indexed
from .sqlite_rows import Row, lookup
from .streaming import DEFAULT_BUFFER_SIZE, ProgressReader, check_readable
from .value import Value


class SqliteBatchWrites:
    """``multiset``, ``multiset_metadata``, ``update_metadata`` and ``multiupdate_metadata``."""

    def _checked_pairs(self, keys: Iterable[str], items: Iterable[Any]) -> list[tuple[str, Any]]:
        keys, items = list(keys), list(items)
        if len(keys) != len(items):
            raise ValueError(f"{len(keys)} keys but {len(items)} values")
        keys = [self._check_key(k) for k in keys]
        self._check_writable()
        return list(zip(keys, items, strict=True))

    def multiset(self, keys: Iterable[str], values: Iterable[Any],
                 buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """``set`` each key to its value, in one transaction (values checked first)."""
        pairs = self._checked_pairs(keys, values)
        try:
            items = []
            append = items.append
            for key, value in pairs:  # once per key: the common cases inlined
                if type(value) is tuple and len(value) == 2:
                    data, metadata = value
                    total = None
                else:
                    data, metadata, total = _unpack_value(value, key)
                text, indexed = encode_indexed(metadata, key)
                if type(data) is not io.BytesIO or data.closed:
                    check_readable(data, key)
                append((key, data, text, total, indexed))
            self._write_many(items, buffer_size, "multiset")
        finally:
            for _, value in pairs:
                if isinstance(value, Value):
                    value.close()

    def multiset_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``set_metadata`` of each key, in one transaction (every key must exist)."""
        pairs = self._checked_pairs(keys, metadatas)
        items = []
        for key, md in pairs:
            text, indexed = encode_indexed(md, key)
            items.append((key, None, text, None, indexed))
        self._write_many(items, DEFAULT_BUFFER_SIZE, "multiset_metadata")

    def _write_many(self, items: list[tuple[str, Any, str, int | None, IndexPairs]],
                    buffer_size: int, notes: str) -> None:
        """Write ``(key, stream or None, metadata text, total, index pairs)`` items in one go."""
        emit = self.event_dispatcher.emit
        listening = self.event_dispatcher.has_listeners()
        self._ensure()
        with self.transaction(notes):
            rows = []
            owner = new_owner()
            try:
                for key, data, text, total, indexed in items:
                    if data is None:
                        rows.append(Row(key, text, indexed=indexed))
                        continue
                    if not listening and type(data) is io.BytesIO:
                        # small values in memory (the common bulk case): no chunk machinery
                        head = data.read(INLINE_MAX + 1)
                        if len(head) <= INLINE_MAX:
                            rows.append(Row(key, text, len(head), head, None, indexed))
                            continue
                        data.seek(-len(head), io.SEEK_CUR)
                    reader = data
                    if listening:
                        emit(ev.StoreProgressStartEvent(self, key, total))
                        reader = ProgressReader(data, total, self._stepper(key), key=key)
                    try:
                        size, inline, blob_id = self._read_data(reader, buffer_size, owner, [],
                                                                key)
                    except BaseException:
                        if listening:
                            emit(ev.StoreProgressEndEvent(self, key, reader.done, False))
                        raise
                    if listening:
                        emit(ev.StoreProgressEndEvent(self, key, reader.done, True))
                    rows.append(Row(key, text, size, inline, blob_id, indexed))
                with self._db.writing() as conn:
                    self._store(conn, rows)
                    if listening:
                        texts = dict(lookup(conn, [r.key for r in rows], "metadata"))
            finally:
                end_owner(owner)
            if listening:
                for row in rows:
                    self._emit(ev.StoreSetEvent(self, row.key, decode_metadata(texts[row.key])))

    def _stepper(self, key: str) -> Callable[[int, int | None], None]:
        def step(done: int, total: int | None) -> None:
            self.event_dispatcher.emit(ev.StoreProgressStepEvent(self, key, done, total))

        return step

    def update_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Change only the given fields of ``key``'s metadata (one SQLite transaction).

        Raises
        ------
        KeyError
            If the key does not exist.
        """
        self._update_many(self._checked_pairs([key], [metadata]))

    def multiupdate_metadata(self, keys: Iterable[str], metadatas: Iterable[Mapping]) -> None:
        """``update_metadata`` of each key, in one transaction (every key must exist)."""
        pairs = self._checked_pairs(keys, metadatas)
        with self.transaction("multiupdate_metadata"):
            self._update_many(pairs)

    def _update_many(self, pairs: list[tuple[str, Mapping]]) -> None:
        updates = [(key, copy_metadata(md, key)) for key, md in pairs]
        with self._db.writing() as conn:
            # Read and write in one write transaction: no update can be lost.
            current = dict(lookup(conn, [key for key, _ in updates], "metadata"))
            merged: dict[str, dict] = {}
            for key, fields in updates:
                if key not in current:
                    raise StoreKeyError(key, self)
                merged.setdefault(key, decode_metadata(current[key], key, self)).update(fields)
            self._store(conn, [Row(k, encode_metadata(md, k)) for k, md in merged.items()])
        for key, fields in updates:
            self._emit(ev.StoreUpdateEvent(self, key, fields))
