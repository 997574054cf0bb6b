"""Metadata rules: JSON-compatible dictionaries, always copied in and out.

Stores keep metadata as canonical JSON text. Encoding on the way in both
validates and copies what the caller gave; decoding on the way out gives
every caller a fresh dictionary to mutate.

The limits, the same on every store because every store's write calls
:func:`encode_metadata` before it writes anything:

- a dict whose names are strings (``str`` itself, not a subclass) and whose
  values are ``None``, booleans, integers, finite floats, strings, lists
  (tuples are stored as lists) and dicts of the same;
- text is valid Unicode (no lone surrogates: nothing can write it as UTF-8);
- at most :data:`MAX_DEPTH` levels of nesting, the metadata dict itself
  being level 1 (``{"a": [1]}`` has 2). Python's JSON decoder gives up near
  its recursion limit (about 1000 levels, fewer on a deep call stack), and
  SQLite's JSON functions at 1000, so deeper metadata would be written and
  then reported damaged on reading;
- integers of at most :data:`MAX_INT_DIGITS` decimal digits, the most a
  Python process converts from text by default (``sys.int_info``): a value a
  writer with a raised limit could store, a reader could not read back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidMetadataError

#: The deepest nesting stored metadata may have (the metadata dict is level 1).
MAX_DEPTH = 100
#: The most decimal digits an integer in metadata may have.
MAX_INT_DIGITS = 4300

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_decode = json.JSONDecoder().decode


def field_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a new metadata field's name, or None if it can.

    The rule the app's editor and the command line share: a name is a Python
    identifier (letters, digits and ``_``, not starting with a digit), so that
    it can be a query's keyword argument. Stores themselves accept any string
    name, so names a key already has are kept whatever they are.
    """
    if not name:
        return "a name is required"
    if not name.isidentifier():
        shown = name if len(name) <= 40 else name[:39] + "…"
        return (f"{shown!r} is not a valid name (use letters, digits and _; "
                "not starting with a digit)")
    return None


def _make_encode() -> Any:
    """``_encoder.encode``, minus the set-up ``JSONEncoder.encode`` repeats on every call.

    The C encoder is built once (no circular-reference bookkeeping: a cycle
    ends in RecursionError, which ``encode_metadata`` reports). This halves
    the cost of encoding small metadata, which a multiset does per key.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the _json accelerator
        return _encoder.encode
    # Same arguments as JSONEncoder.iterencode passes for _encoder's settings.
    c_encode = make(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",",
                    False, False, False)
    join = "".join

    def encode(obj: Any) -> str:
        return join(c_encode(obj, 0))

    return encode


_encode = _make_encode()


def _explain(value: Any, path: str = "metadata", depth: int = 0) -> str | None:
    """Find the first part of ``value`` that JSON cannot hold, for the error message."""
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple):
        return _too_deep(path)
    if isinstance(value, str):
        return None if _is_unicode(value) else f"{path} holds {value!r:.60}, not valid text"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if _int_fits(value) else (
            f"{path} is an integer of more than {MAX_INT_DIGITS} digits")
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}, not a finite number"
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path} has a non-string name {k!r}"
            if not _is_unicode(k):
                return f"{path} has the name {k!r:.60}, which is not valid text"
            found = _explain(v, f"{path}[{k!r}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _explain(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
        return None
    return f"{path} holds a {type(value).__name__} ({value!r:.60}), which is not JSON"


def encode_metadata(metadata: Any, key: str | None = None) -> str:
    """Validate ``metadata`` and return it as canonical JSON text.

    Raises
    ------
    InvalidMetadataError
        If it is not a dict with string names and JSON values (finite numbers,
        strings, booleans, None, lists, dicts).
    """
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(
            f"metadata must be a dictionary, not {type(metadata).__name__}", key
        )
    metadata = dict(metadata)
    # The encoder turns non-string names (1, True, None) into strings
    # silently; that would not read back equal, so refuse them. Checked
    # first, with the depth: past MAX_DEPTH (or in a cycle) nothing recurses.
    if not _shape_ok(metadata):
        raise InvalidMetadataError(f"{_of(key)} cannot be stored: {_explain(metadata)}", key)
    try:
        text = _encode(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = _explain(metadata) or str(exc)
        raise InvalidMetadataError(f"{_of(key)} cannot be stored: {reason}", key) from None
    # Only text this long can hold an integer of MAX_INT_DIGITS digits.
    if len(text) > MAX_INT_DIGITS and not _ints_fit(metadata):
        raise InvalidMetadataError(f"{_of(key)} cannot be stored: {_explain(metadata)}", key)
    # A lone surrogate passes the encoder but no store can write it as UTF-8.
    if not text.isascii() and not _is_unicode(text):
        reason = _explain(metadata) or "it holds text that is not valid Unicode"
        raise InvalidMetadataError(f"{_of(key)} cannot be stored: {reason}", key)
    return text


def _of(key: str | None) -> str:
    return "metadata" if key is None else f"the metadata of {key!r}"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(path: str) -> str:
    # The path of the deepest part would be MAX_DEPTH subscripts long: name its field.
    field = path[: path.find("]") + 1] if "[" in path else path
    return (f"{field} is nested more than {MAX_DEPTH} levels deep (the most metadata "
            "may have, counting the metadata itself)")


_INT_BOUND = 10**MAX_INT_DIGITS


def _int_fits(value: int) -> bool:
    return -_INT_BOUND < value < _INT_BOUND


def _shape_ok(metadata: dict) -> bool:
    """Whether every name is a ``str`` and nothing is nested deeper than MAX_DEPTH.

    Called on every write: scalars cost nothing, and a flat dict (the usual
    case) is one pass over its names. No recursion, so a cycle or a very deep
    value ends at MAX_DEPTH levels.
    """
    if _SCALARS.issuperset(map(type, metadata.values())):
        return _STR.issuperset(map(type, metadata))
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(value, dict):
            if not _STR.issuperset(map(type, value)):
                return False
            value = value.values()
        stack.extend((v, depth + 1) for v in value if isinstance(v, _CONTAINERS))
    return True


def _ints_fit(metadata: dict) -> bool:
    """Whether no integer in ``metadata`` (already shape-checked) is too long."""
    stack: list[Any] = [metadata]
    while stack:
        value = stack.pop()
        for v in value.values() if isinstance(value, dict) else value:
            if isinstance(v, _CONTAINERS):
                stack.append(v)
            elif isinstance(v, int) and not isinstance(v, bool) and not _int_fits(v):
                return False
    return True


_CONTAINERS = (dict, list, tuple)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_STR = frozenset({str})


def decode_metadata(text: str, key: str | None = None, store: Any = None) -> dict:
    """A fresh dictionary from stored JSON text.

    Raises
    ------
    InvalidMetadataError
        If the stored text is not a JSON object (damaged or foreign data);
        the message names ``key`` and ``store`` when given.
    """
    try:
        value = _decode(text)
    except (ValueError, TypeError, RecursionError) as exc:
        reason = f"not JSON: {exc}"
    else:
        if isinstance(value, dict):
            return value
        reason = f"a JSON {type(value).__name__}, not an object"
    where = "" if key is None else f" of {key!r}"
    if store is not None:
        where += f" in {store!r}"
    raise InvalidMetadataError(
        f"the stored metadata{where} is damaged ({reason}); the key can still be "
        "deleted, or its metadata replaced with set_metadata", key, store)


def copy_metadata(metadata: Any, key: str | None = None) -> dict:
    """A validated deep copy of ``metadata``."""
    return _decode(encode_metadata(metadata, key))


def merge_metadata(current_text: str, fields: Mapping[str, Any], key: str | None = None,
                   store: Any = None) -> str:
    """What ``update_metadata`` stores: the stored ``current_text`` with ``fields`` set over it.

    ``fields`` has been validated already (``copy_metadata``); the result is
    canonical JSON text. Every store's ``update_metadata`` merges through this.

    Raises
    ------
    InvalidMetadataError
        If ``current_text`` is damaged (the message names ``key`` and ``store``).
    """
    merged = decode_metadata(current_text, key, store)
    merged.update(fields)
    return encode_metadata(merged, key)


def select_fields(metadata: dict, select: Iterable[str] | None) -> dict:
    """Only the ``select`` fields of ``metadata`` (all when ``select`` is None)."""
    if select is None:
        return metadata
    return {name: metadata[name] for name in select if name in metadata}


def matches(metadata: Mapping, criteria: Mapping) -> bool:
    """Whether every ``criteria`` field is present in ``metadata`` with an equal value.

    Equality is JSON equality: ``1 == 1.0`` but ``True != 1``.
    """
    for name, wanted in criteria.items():
        if name not in metadata:
            return False
        if not json_equal(metadata[name], wanted):
            return False
    return True


def json_equal(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return a == b
