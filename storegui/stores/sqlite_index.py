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
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .metadata import decode_metadata, encode_metadata

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
    ``encode_metadata`` and is decoded again. A multiset of many small keys
    spends most of its Python time here.

    Raises
    ------
    InvalidMetadataError
        As ``encode_metadata``.
    """
    if type(metadata) is dict:
        parts = []
        pairs = []
        for name, value in metadata.items():
            kind = type(value)
            if type(name) is not str:
                break
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
                break  # containers, subclasses, bad values: the general path below
            if len(index) > MAX_INDEXED_TEXT:
                index = "#" + hashlib.sha256(index.encode("utf-8")).hexdigest()
            parts.append(f"{_encode_str(name)}:{text}")
            pairs.append((name, index))
        else:
            text = "{" + ",".join(parts) + "}"
            if text.isascii() or _is_utf8(text):
                return text, tuple(pairs)
    text = encode_metadata(metadata, key)
    return text, index_pairs(text)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: encode_metadata explains the refusal
        return False
    return True


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
