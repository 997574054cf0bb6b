"""How SqliteStore indexes keys and metadata for SQL range scans and queries.

Keys are compared by SQLite as UTF-8 bytes, which orders them exactly like
Python orders ``str`` (by code point), so a prefix is the key range
``prefix <= key < prefix_upper_bound(prefix)``.

Each top-level metadata field is also stored as a row ``(name, value,
key_id)`` in the ``meta_index`` table, ``value`` being the canonical JSON text
of the field's value: numbers equal in JSON give the same text (``1`` and
``1.0`` are both ``"1"``), booleans stay apart from numbers, objects have
sorted names. An equality query is then an indexed lookup on ``(name,
value)``. Long values are stored as a digest so the index stays small.

A bulk write encodes the metadata of all its keys at once
(:func:`encode_batch`): the texts to store, and the index as one column of
``(key position, index text)`` per field name.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

# The encoder encode_metadata uses: a batch's texts must be exactly what it gives.
from ..metadata import MAX_INT_DIGITS, _encode, decode_metadata, encode_metadata

#: Canonical texts longer than this are indexed by their SHA-256 digest.
MAX_INDEXED_TEXT = 200

_encode_str = json.encoder.encode_basestring  # the C encoder, non-ASCII kept as is
_canonical_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode

_MAX_CHAR = 0x10FFFF


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is no such string (``prefix`` is empty or made only of
    U+10FFFF), i.e. the range has no upper end. Surrogate code points, which
    cannot be stored as UTF-8, are skipped.
    """
    while prefix:
        code = ord(prefix[-1])
        if code < _MAX_CHAR:
            code += 1
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


def key_range(prefix: str) -> tuple[str, list[Any]]:
    """An SQL condition on column ``key`` (and its parameters) for keys starting with ``prefix``."""
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return "key >= ?", [prefix]
    return "key >= ? AND key < ?", [prefix, upper]


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return int(value) if value.is_integer() else value
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, Mapping):
        if not all(isinstance(name, str) for name in value):
            raise TypeError("object names must be strings")
        return {name: _canonical(item) for name, item in value.items()}
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def index_value(value: Any) -> str:
    """The canonical text under which ``value`` is indexed.

    Two JSON values get the same text exactly when they are equal by
    :func:`storegui.stores.metadata.json_equal` (up to SHA-256 collisions for
    long values).

    Raises
    ------
    TypeError, ValueError
        If ``value`` is not a JSON value (no stored metadata can then equal it).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = _encode_str(value)
    elif isinstance(value, int):
        text = repr(int(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        text = repr(int(value)) if value.is_integer() else float.__repr__(value)
    else:
        text = _canonical_dumps(_canonical(value))
    if len(text) > MAX_INDEXED_TEXT:
        # Canonical JSON never starts with "#", so a digest cannot equal a plain value.
        return "#" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


IndexPairs = tuple[tuple[str, str], ...]
"""``(name, index text)`` of each top-level metadata field."""


def index_pairs(metadata_text: str) -> IndexPairs:
    """``(name, index text)`` of each top-level field of stored metadata."""
    return tuple((name, index_value(value))
                 for name, value in decode_metadata(metadata_text).items())


def index_rows(key_id: int, metadata_text: str) -> set[tuple[str, str, int]]:
    """``(name, value, key_id)`` rows of the metadata index for one key."""
    return {(name, value, key_id) for name, value in index_pairs(metadata_text)}


def encode_indexed(metadata: Any, key: str | None = None) -> tuple[str, IndexPairs]:
    """``encode_metadata(metadata, key)`` and its :func:`index_pairs`, in one pass.

    Flat metadata of plain scalars (the usual case) is encoded field by field
    here, producing exactly the text ``encode_metadata`` gives, and each
    field's index text on the way; anything else goes through
    ``encode_metadata`` and is decoded again. (A batch of keys goes through
    :func:`encode_batch`, which falls back on this key by key.)

    Raises
    ------
    InvalidMetadataError
        As ``encode_metadata``.
    """
    if type(metadata) is dict:
        try:
            found = _flat_indexed(metadata)
        except ValueError:  # an int too long to print: encode_metadata explains
            found = None
        # Text this long may hold an integer past the limit: encode_metadata checks.
        if found is not None and len(found[0]) <= MAX_INT_DIGITS:
            return found
    text = encode_metadata(metadata, key)
    return text, index_pairs(text)


def _flat_indexed(metadata: dict) -> tuple[str, IndexPairs] | None:
    """``encode_indexed`` of a flat dict of plain scalars; None for anything else."""
    parts = []
    pairs = []
    for name, value in metadata.items():
        kind = type(value)
        if type(name) is not str:
            return None
        if kind is str:
            text = index = _encode_str(value)
        elif kind is int:
            text = index = int.__repr__(value)
        elif kind is bool:
            text = index = "true" if value else "false"
        elif value is None:
            text = index = "null"
        elif kind is float and math.isfinite(value):
            text = float.__repr__(value)
            index = int.__repr__(int(value)) if value.is_integer() else text
        else:
            return None  # containers, subclasses, bad values: the general path
        if len(index) > MAX_INDEXED_TEXT:
            index = _digest(index)
        parts.append(f"{_encode_str(name)}:{text}")
        pairs.append((name, index))
    text = "{" + ",".join(parts) + "}"
    if text.isascii() or _is_utf8(text):
        return text, tuple(pairs)
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: encode_metadata explains the refusal
        return False
    return True


# ---------------------------------------------------------------------- batches


class BatchIndex(NamedTuple):
    """The metadata of a batch of keys, encoded: what a bulk write stores.

    ``texts[i]`` is the metadata text of the batch's ``i``-th key (as
    ``encode_metadata`` gives it). ``fields`` holds the index, one column per
    field name: ``(positions, index texts)``, the positions (in the batch) of
    the keys having that field, and that field's :func:`index_value` text for
    each of them.
    """

    texts: list[str]
    fields: dict[str, tuple[Sequence[int], list[str]]]

    def pairs(self, positions: Iterable[int]) -> dict[int, IndexPairs]:
        """:func:`index_pairs` of the keys at ``positions``, by position."""
        wanted: dict[int, list[tuple[str, str]]] = {p: [] for p in positions}
        for name, (where, values) in self.fields.items():
            for position, value in zip(where, values, strict=True):
                found = wanted.get(position)
                if found is not None:
                    found.append((name, value))
        return {p: tuple(found) for p, found in wanted.items()}

    def subset(self, positions: Sequence[int]) -> BatchIndex:
        """The batch of the keys at ``positions`` (in that order, renumbered from 0)."""
        rank = {position: new for new, position in enumerate(positions)}
        fields: dict[str, tuple[Sequence[int], list[str]]] = {}
        for name, (where, values) in self.fields.items():
            kept = [(rank[p], value) for p, value in zip(where, values, strict=True)
                    if p in rank]
            if kept:
                fields[name] = ([new for new, _ in kept], [value for _, value in kept])
        return BatchIndex([self.texts[p] for p in positions], fields)


def encode_batch(metadatas: list[Any], keys: list[str]) -> BatchIndex:
    """``encode_indexed`` of each of ``metadatas`` (of ``keys``), as one :class:`BatchIndex`.

    Flat dicts of plain scalars (the usual bulk case) are encoded without a
    Python step per key or per field: each dict by the C JSON encoder, then
    all the texts at once cut into field values (see :func:`_flat_batch`).
    Anything else, or any doubt, goes key by key through
    :func:`encode_indexed`.

    Raises
    ------
    InvalidMetadataError
        For the first of ``metadatas`` that ``encode_metadata`` refuses.
    """
    fast = _flat_batch(metadatas)
    if fast is not None:
        return fast
    texts: list[str] = []
    fields: dict[str, tuple[list[int], list[str]]] = {}
    for position, (key, metadata) in enumerate(zip(keys, metadatas, strict=True)):
        text, pairs = encode_indexed(metadata, key)
        texts.append(text)
        for name, value in pairs:
            column = fields.get(name)
            if column is None:
                fields[name] = column = ([], [])
            column[0].append(position)
            column[1].append(value)
    return BatchIndex(texts, fields)  # type: ignore[arg-type]


_DICT = frozenset({dict})
_STR = frozenset({str})
_FLAT_SCALARS = frozenset({str, int, bool, float, type(None)})
_CUT = "\x00"  # never in encoded JSON (control characters are escaped): marks the cuts


def _flat_batch(metadatas: list[Any]) -> BatchIndex | None:
    """:class:`BatchIndex` of flat dicts with str names and scalar values; None if not all are.

    Every dict is encoded by the C encoder; the texts of the dicts with the
    same names in the same order (a *shape*) are joined and cut into values
    at each ``,"name":`` (and ``}{"first name":``) with two ``str`` calls.
    Such a separator can only be a real one: inside encoded text a ``"`` is
    always preceded by a backslash, so ``,"`` and ``{"`` never occur in a
    string, and a JSON string token ends at its first unescaped quote, so
    ``"name":`` matches only that name. A count check backs this up.
    """
    if not metadatas:
        return BatchIndex([], {})
    if not _DICT.issuperset(map(type, metadatas)):
        return None
    shapes = list(map(tuple, metadatas))
    first = shapes[0]
    groups: dict[tuple[str, ...], Sequence[int]]
    if shapes.count(first) == len(shapes):
        groups = {first: range(len(shapes))}
    else:
        groups = {}
        for position, shape in enumerate(shapes):
            group = groups.get(shape)
            if group is None:
                groups[shape] = group = []
            group.append(position)  # type: ignore[attr-defined]
        if len(groups) * 8 > len(shapes) + 8:
            return None  # mostly different names: key by key is as fast
    if not _STR.issuperset(map(type, chain.from_iterable(groups))):
        return None
    kinds = set(map(type, chain.from_iterable(map(dict.values, metadatas))))
    if not _FLAT_SCALARS.issuperset(kinds):
        return None
    try:
        texts = list(map(_encode, metadatas))
    except (TypeError, ValueError):  # a non-finite float, an int too long to print
        return None
    if int in kinds and max(map(len, texts)) > MAX_INT_DIGITS:
        return None  # maybe an integer past the limit: encode_metadata checks
    # No index text is longer than its key's whole text, but for integral floats
    # (1e+205 is indexed as its 206 digits).
    long_values = float in kinds or max(map(len, texts)) > MAX_INDEXED_TEXT
    parts: dict[str, list[tuple[Sequence[int], list[str]]]] = {}
    for shape, positions in groups.items():
        if not shape:
            continue
        group_texts = texts if len(positions) == len(texts) else list(
            map(texts.__getitem__, positions))
        values = _cut_values(shape, group_texts)
        if values is None:
            return None
        width = len(shape)
        for column, name in enumerate(shape):
            index = values[column::width]
            if float in kinds:
                index = [_float_index(v) for v in index]
            if long_values and max(map(len, index)) > MAX_INDEXED_TEXT:
                index = [v if len(v) <= MAX_INDEXED_TEXT else _digest(v) for v in index]
            parts.setdefault(name, []).append((positions, index))
    fields: dict[str, tuple[Sequence[int], list[str]]] = {}
    for name, found in parts.items():
        if len(found) == 1:
            fields[name] = found[0]
        else:  # the field is in several shapes
            fields[name] = ([p for where, _ in found for p in where],
                            [v for _, index in found for v in index])
    return BatchIndex(texts, fields)


def _cut_values(shape: tuple[str, ...], texts: list[str]) -> list[str] | None:
    """The value texts of ``texts`` (dicts of names ``shape``), row after row; None if unsure."""
    joined = "".join(texts)
    if not joined.isascii() and not _is_utf8(joined):
        return None  # a lone surrogate: encode_metadata explains the refusal
    separators = [f",{_encode_str(name)}:" for name in shape]
    head = "{" + separators[0][1:]
    body = joined[len(head):-1].replace("}" + head, _CUT)
    for separator in separators[1:]:
        body = body.replace(separator, _CUT)
    values = body.split(_CUT)
    if len(values) != len(shape) * len(texts):
        return None
    return values


def _float_index(text: str) -> str:
    """The index text of a scalar's JSON text: integral floats as integers (1.0 as 1)."""
    if ("." in text or "e" in text) and text[0] not in '"tf':
        number = float(text)
        if number.is_integer():
            return int.__repr__(int(number))
    return text


def _digest(text: str) -> str:
    return "#" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def query_page_sql(n_criteria: int, with_metadata: bool = True) -> str:
    """One page of an equality query: rows ``(key_id, key, metadata)`` in key_id order.

    Without ``with_metadata`` the rows are ``(key_id, key)`` (for ``query_keys``).

    Parameters are ``name, value, after_key_id`` of the driving criterion,
    then ``name, value`` of each other criterion, then the page size. The
    driving criterion is a range scan of the index's primary key; each other
    one is a point lookup per candidate.
    """
    others = (" AND EXISTS (SELECT 1 FROM meta_index AS o"
              " WHERE o.name = ? AND o.value = ? AND o.key_id = m.key_id)")
    return (
        "SELECT m.key_id, k.key" + (", k.metadata" if with_metadata else "")
        + " FROM meta_index AS m CROSS JOIN keys AS k ON k.id = m.key_id"
        " WHERE m.name = ? AND m.value = ? AND m.key_id > ?"
        + others * (n_criteria - 1)
        + " ORDER BY m.key_id LIMIT ?"
    )


#: How many index rows to count first when choosing the most selective criterion.
SELECTIVITY_PROBE = 1024

COUNT_SQL = (
    "SELECT count(*) FROM (SELECT 1 FROM meta_index WHERE name = ? AND value = ? LIMIT ?)"
)
