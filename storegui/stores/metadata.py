"""Metadata rules: JSON-compatible dictionaries, always copied in and out.

Stores keep metadata as canonical JSON text. Encoding on the way in both
validates and copies what the caller gave; decoding on the way out gives
every caller a fresh dictionary to mutate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidMetadataError

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_decode = json.JSONDecoder().decode


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
    if depth > 200:
        return f"{path} is nested too deeply"
    if isinstance(value, str):
        return None if _is_unicode(value) else f"{path} holds {value!r:.60}, not valid text"
    if value is None or isinstance(value, bool | int):
        return None
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
    try:
        metadata = dict(metadata)
        text = _encode(metadata)
        # The encoder turns non-string names (1, True, None) into strings
        # silently; that would not read back equal, so refuse them.
        ok = _names_are_strings(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = _explain(metadata) or str(exc)
        raise InvalidMetadataError(f"metadata cannot be stored: {reason}", key) from None
    if not ok:
        raise InvalidMetadataError(f"metadata cannot be stored: {_explain(metadata)}", key)
    # A lone surrogate passes the encoder but no store can write it as UTF-8.
    if not text.isascii() and not _is_unicode(text):
        reason = _explain(metadata) or "it holds text that is not valid Unicode"
        raise InvalidMetadataError(f"metadata cannot be stored: {reason}", key)
    return text


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _names_are_strings(value: Any) -> bool:
    # Called on every write: look only inside containers, scalars cost nothing.
    if type(value) is dict and _SCALARS.issuperset(map(type, value.values())):
        return _STR.issuperset(map(type, value))  # flat (the usual case): names only
    if isinstance(value, dict):
        for k, v in value.items():
            if type(k) is not str:
                return False
            if isinstance(v, _CONTAINERS) and not _names_are_strings(v):
                return False
        return True
    return all(_names_are_strings(v) for v in value if isinstance(v, _CONTAINERS))


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
