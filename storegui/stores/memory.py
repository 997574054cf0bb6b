"""MemoryStore: keys in a dictionary, for tests and scratch work."""

from __future__ import annotations

import bisect
import io
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from .contract import Store
from .errors import StoreKeyError
from .keys import split_child
from .metadata import decode_metadata, encode_metadata, matches
from .transfer.streaming import DEFAULT_BUFFER_SIZE, ProgressReader, check_readable
from .value import Entry, Value, unpack_value

_MISSING = object()


class _Item:
    __slots__ = ("data", "metadata_text", "created", "modified")

    def __init__(self, data: bytes, metadata_text: str, created: float, modified: float) -> None:
        self.data = data
        self.metadata_text = metadata_text
        self.created = created
        self.modified = modified


class MemoryStore(Store):
    """A store held in memory; transactions roll back completely.

    Keys are also kept in a sorted list so prefix listings cost
    O(log n + matches) instead of a scan of every key.
    """

    local = True

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, _Item] = {}
        self._sorted: list[str] = []
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return "memory://"

    # primitives

    def _item(self, key: str) -> _Item:
        try:
            return self._items[key]
        except KeyError:
            raise StoreKeyError(key, self) from None

    def _get(self, key: str) -> Value:
        item = self._item(key)
        data = item.data
        return Value(lambda: io.BytesIO(data), item.metadata_text, len(data), item.created,
                     item.modified)

    def _stat(self, key: str) -> Entry:
        item = self._item(key)
        return Entry(key, False, len(item.data), item.modified)

    def _exists(self, key: str) -> bool:
        return key in self._items

    def _get_metadata_text(self, key: str) -> str:
        return self._item(key).metadata_text

    def _put(self, key: str, data: BinaryIO | None, metadata_text: str | None,
             buffer_size: int) -> None:
        # Read the whole stream before touching the dict: a failing or
        # cancelled stream leaves the key as it was.
        payload = None
        if data is not None:
            chunks = []
            while True:
                chunk = data.read(buffer_size)
                if not chunk:
                    break
                chunks.append(chunk)
            payload = b"".join(chunks)
        now = time.time()
        with self._lock:
            old = self._items.get(key)
            if old is None:
                if data is None and metadata_text is not None:
                    raise StoreKeyError(key, self)
                self._items[key] = _Item(payload or b"", metadata_text or "{}", now, now)
                bisect.insort(self._sorted, key)
            else:
                self._items[key] = _Item(
                    old.data if payload is None else payload,
                    old.metadata_text if metadata_text is None else metadata_text,
                    old.created,
                    now,
                )

    def multiset(self, keys: Iterable[str], values: Iterable[Any],
                 buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """``set`` each key to its value, all or nothing.

        Every value is checked and read first, then all the keys change at
        once under the store's lock. (With event listeners, or inside an open
        transaction, this is the generic per-key ``set`` in one transaction,
        so events are exactly those of ``set``.)
        """
        keys, values = list(keys), list(values)
        if self.event_dispatcher.has_listeners() or self._txn is not None:
            super().multiset(keys, values, buffer_size)
            return
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        self._check_writable()
        self._ensure()
        items = []
        try:
            for key, value in zip(keys, values, strict=True):
                key = self._check_key(key)
                data, metadata, _ = unpack_value(value, key)
                text = encode_metadata(metadata, key)
                check_readable(data, key)
                items.append((key, _read_all(data, buffer_size, key), text))
        finally:
            for value in values:
                if isinstance(value, Value):
                    value.close()
        now = time.time()
        with self._lock:
            stored = self._items
            new = []
            for key, payload, text in items:
                old = stored.get(key)
                if old is None:
                    new.append(key)
                    stored[key] = _Item(payload, text, now, now)
                else:
                    stored[key] = _Item(payload, text, old.created, now)
            if len(new) < 64:
                for key in new:
                    bisect.insort(self._sorted, key)
            else:  # two sorted runs: the sort merges them in linear time
                self._sorted.extend(sorted(new))
                self._sorted.sort()

    def _delete(self, key: str) -> None:
        with self._lock:
            if self._items.pop(key, None) is None:
                raise StoreKeyError(key, self)
            i = bisect.bisect_left(self._sorted, key)
            del self._sorted[i]

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            i = bisect.bisect_left(self._sorted, prefix)
            out = []
            for key in self._sorted[i:]:
                if not key.startswith(prefix):
                    break
                out.append(key)
        return iter(out)

    def _query(self, criteria: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        with self._lock:
            items = list(self._items.items())
        for key, item in items:
            if not criteria or matches(decode_metadata(item.metadata_text), criteria):
                yield key, item.metadata_text

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """Children of ``prefix``; skips over each sub-folder's keys by bisection."""
        self._ensure()
        out = []
        with self._lock:
            keys = self._sorted
            i = bisect.bisect_left(keys, prefix)
            while i < len(keys):
                key = keys[i]
                if not key.startswith(prefix):
                    break
                child, is_dir = split_child(key, prefix, delimiter)
                if is_dir:
                    out.append(Entry(child, True))
                    # jump past every key under this folder
                    i = bisect.bisect_left(keys, child[:-1] + chr(ord(child[-1]) + 1), i)
                else:
                    item = self._items[key]
                    out.append(Entry(key, False, len(item.data), item.modified))
                    i += 1
        return iter(out)

    # transactions: snapshot the item object (items are replaced, never mutated)

    def _snapshot(self, key: str) -> Any:
        return self._items.get(key, _MISSING)

    def _restore(self, key: str, snapshot: Any) -> None:
        with self._lock:
            exists = key in self._items
            if snapshot is _MISSING:
                if exists:
                    del self._items[key]
                    self._sorted.remove(key)
            else:
                self._items[key] = snapshot
                if not exists:
                    bisect.insort(self._sorted, key)


def _read_all(data: Any, buffer_size: int, key: str) -> bytes:
    """All of ``data`` as bytes (in ``buffer_size`` reads; text chunks are refused)."""
    if type(data) is io.BytesIO:
        return data.read()
    reader = ProgressReader(data, key=key, owns_stream=False)
    chunks = []
    while chunk := reader.read(buffer_size):
        chunks.append(chunk)
    return b"".join(chunks)
