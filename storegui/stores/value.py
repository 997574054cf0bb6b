"""The :class:`Value` a store returns: a data stream plus metadata."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, BinaryIO

from .errors import InvalidDataError
from .metadata import decode_metadata, encode_metadata


@dataclass(frozen=True, slots=True)
class Entry:
    """One child in a :meth:`Store.list_dir` listing.

    ``key`` is the full key, or for a folder the full prefix ending with the
    delimiter. ``size`` and ``modified`` are known for keys where the listing
    gives them cheaply, else None. ``origin`` is set by a MountedStore:
    ``"local"``, ``"shadowing"`` or ``"remote"`` (for a folder: where its
    keys are, ``"shadowing"`` meaning both stores have keys under it).
    """

    key: str
    is_dir: bool
    size: int | None = None
    modified: float | None = None
    origin: str | None = None

    @property
    def name(self) -> str:
        """The last path part (without the trailing delimiter for folders)."""
        k = self.key.rstrip("/") if self.is_dir else self.key
        return k.rsplit("/", 1)[-1]


class RangeReader(io.RawIOBase):
    """Reads at most ``length`` bytes of ``stream`` (which it closes when closed)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = max(0, length)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)
        if len(view) > self._left:
            view = view[: self._left]
        data = self._stream.read(len(view))
        n = len(data)
        view[:n] = data
        self._left -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def open_range(stream: BinaryIO, start: int, end: int | None) -> BinaryIO:
    """Position ``stream`` at ``start`` and limit it to ``end`` (half-open range)."""
    if start < 0 or (end is not None and end < start):
        stream.close()
        raise ValueError(f"invalid range {start}..{end}")
    if start:
        if getattr(stream, "seekable", lambda: False)():
            stream.seek(start)
        else:
            left = start
            while left > 0:
                chunk = stream.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
    if end is None:
        return stream
    return io.BufferedReader(RangeReader(stream, end - start))


class Value:
    """A key's data stream and metadata, as returned by ``Store.get``.

    ``data`` is a readable binary stream, opened on first access and then the
    same object (it is a context manager; close it when done). ``open()``
    opens a fresh stream, ``range(start, end)`` one of bytes ``start..end-1``.
    ``metadata`` is a fresh dictionary on every access. A value unpacks as
    ``data, metadata = store.get(key)``.

    Parameters
    ----------
    opener : callable
        Returns a new readable binary stream of the whole value.
    metadata : dict or str
        The metadata, or its JSON text as stored.
    size : int or None
        The data's length in bytes, if known.
    created, modified : float or None
        Epoch seconds.
    range_opener : callable, optional
        ``range_opener(start, end)`` returns a stream of that range; by default
        the stream from ``opener`` is positioned and limited.
    """

    __slots__ = ("_opener", "_metadata_text", "size", "created", "modified", "_range", "_data",
                 "_where")

    def __init__(
        self,
        opener: Callable[[], BinaryIO],
        metadata: dict | str,
        size: int | None = None,
        created: float | None = None,
        modified: float | None = None,
        range_opener: Callable[[int, int | None], BinaryIO] | None = None,
    ) -> None:
        self._opener = opener
        self._metadata_text = metadata if isinstance(metadata, str) else encode_metadata(metadata)
        self.size = size
        self.created = created
        self.modified = modified
        self._range = range_opener
        self._data: BinaryIO | None = None
        self._where: tuple[Any, Any] = (None, None)

    @classmethod
    def from_bytes(cls, data: bytes, metadata: dict | None = None, **times: float) -> Value:
        """A value over an in-memory ``bytes`` object."""
        data = bytes(data)
        return cls(lambda: io.BytesIO(data), metadata or {}, len(data), **times)

    def locate(self, key: str, store: Any) -> Value:
        """Say which key of which store this is, for error messages; returns the value itself."""
        self._where = (key, store)
        return self

    @property
    def metadata(self) -> dict:
        """A fresh copy of the metadata (callers may mutate it).

        Raises
        ------
        InvalidMetadataError
            If the stored metadata is damaged (not a JSON object).
        """
        return decode_metadata(self._metadata_text, *self._where)

    @property
    def metadata_text(self) -> str:
        """The metadata as canonical JSON text."""
        return self._metadata_text

    @property
    def data(self) -> BinaryIO:
        """The data stream (opened on first access)."""
        if self._data is None:
            self._data = self._opener()
        return self._data

    def open(self) -> BinaryIO:
        """A new stream over the whole value."""
        return self._opener()

    def range(self, start: int = 0, end: int | None = None) -> BinaryIO:
        """A new stream of bytes ``start`` .. ``end - 1`` (``end`` None: to the end)."""
        if end is not None and self.size is not None:
            end = min(end, self.size)
            start = min(start, end)
        if self._range is not None:
            return self._range(start, end)
        return open_range(self._opener(), start, end)

    def read(self) -> bytes:
        """The whole data as bytes (from a fresh stream)."""
        with self.open() as stream:
            return stream.read()

    def close(self) -> None:
        """Close the data stream if it was opened."""
        if self._data is not None:
            self._data.close()

    def __iter__(self) -> Iterator[Any]:
        yield self.data
        yield self.metadata

    def __enter__(self) -> Value:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Value size={self.size} metadata={self._metadata_text[:60]}>"


def unpack_value(value: Any, key: str) -> tuple[Any, Any, int | None]:
    """The data stream, metadata and size (None if unknown) of a value given to a write.

    A write (``set``, ``multiset``) takes a :class:`Value` or a ``(readable
    binary stream, metadata)`` pair; the metadata is not checked here.

    Raises
    ------
    InvalidDataError
        If ``value`` is neither (the message names ``key``).
    """
    if isinstance(value, Value):
        return value.data, value.metadata, value.size
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], value[1], None
    raise InvalidDataError(
        f"a value must be a Value or a (stream, metadata) pair, not {type(value).__name__}", key
    )


_TUPLE = frozenset({tuple})
_TWO = frozenset({2})
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def unpack_values(keys: list[str], values: list[Any]
                  ) -> tuple[list[Any], list[Any], list[int | None] | None]:
    """:func:`unpack_value` of each of ``values``: streams, metadata and sizes.

    The sizes are None (not a list) when every value is a pair: a multiset of
    many small values then unpacks without a Python step per value.

    Raises
    ------
    InvalidDataError
        For the first value that is neither a Value nor a (stream, metadata) pair.
    """
    if _TUPLE.issuperset(map(type, values)) and _TWO.issuperset(map(len, values)):
        return list(map(_FIRST, values)), list(map(_SECOND, values)), None
    datas: list[Any] = []
    metadatas: list[Any] = []
    totals: list[int | None] = []
    for key, value in zip(keys, values, strict=True):
        data, metadata, total = unpack_value(value, key)
        datas.append(data)
        metadatas.append(metadata)
        totals.append(total)
    return datas, metadatas, totals
