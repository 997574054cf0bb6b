"""Typed metadata values as the metadata editor shows them: parsing, validation, conversion.

Qt-free, so the rules can be tested without a display. The editor keeps each
row's value as *text* plus a :class:`ValueType`; :func:`parse_value` turns
that text into the JSON value to store (or says why it cannot),
:func:`format_value` turns a stored value into editor text, and
:func:`convert_text` carries a value across a change of type where that
makes sense ("12" as a string becomes the integer 12).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ...stores.metadata import field_name_problem


class ValueType(StrEnum):
    """The JSON types a metadata value can have, as named in the editor."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    NULL = "null"
    LIST = "list"
    OBJECT = "object"


#: The types edited as (multi-line) JSON text.
JSON_TYPES = frozenset({ValueType.LIST, ValueType.OBJECT})

_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ValueParseError(ValueError):
    """Text that does not fit its type; the message says why, in words a user can read."""


def infer_type(value: Any) -> ValueType:
    """The :class:`ValueType` of a JSON value (``bool`` before ``int``, as JSON means it).

    Raises
    ------
    TypeError
        If ``value`` is not a JSON value (str, int, float, bool, None, list, dict).
    """
    if value is None:
        return ValueType.NULL
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int):
        return ValueType.INTEGER
    if isinstance(value, float):
        return ValueType.FLOAT
    if isinstance(value, str):
        return ValueType.STRING
    if isinstance(value, list | tuple):
        return ValueType.LIST
    if isinstance(value, dict):
        return ValueType.OBJECT
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def format_value(value: Any, value_type: ValueType | None = None) -> str:
    """The editor text of ``value``: inverse of :func:`parse_value` for that type.

    Lists and objects become indented JSON; floats keep a decimal point or
    exponent so they read back as floats.
    """
    value_type = value_type or infer_type(value)
    if value_type is ValueType.NULL:
        return ""
    if value_type is ValueType.BOOLEAN:
        return "true" if value else "false"
    if value_type is ValueType.STRING:
        return str(value)
    if value_type is ValueType.FLOAT:
        return repr(float(value))
    if value_type is ValueType.INTEGER:
        return str(int(value))
    return json.dumps(value, indent=2, ensure_ascii=False)


def compact_json(value: Any) -> str:
    """One-line JSON of a list or object, for a table cell."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _reject_constant(name: str) -> Any:
    raise ValueParseError(f"{name} is not allowed: metadata numbers must be finite")


def _parse_json(text: str, value_type: ValueType) -> Any:
    if not text.strip():
        example = "[1, 2]" if value_type is ValueType.LIST else '{"a": 1}'
        raise ValueParseError(f"{_article(value_type)} {value_type} needs JSON text such as "
                              f"{example}")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueParseError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ValueParseError("the JSON is nested too deeply") from None
    wanted = list if value_type is ValueType.LIST else dict
    if not isinstance(value, wanted):
        found = infer_type(value)
        raise ValueParseError(f"the JSON is {_article(found)} {found}, not {_article(value_type)} "
                              f"{value_type}")
    return value


def _article(value_type: ValueType) -> str:
    return "an" if value_type in (ValueType.INTEGER, ValueType.OBJECT) else "a"


def parse_value(text: str, value_type: ValueType) -> Any:
    """The JSON value that ``text`` denotes as a ``value_type``.

    Strings are taken as they are; integers are decimal digits with an
    optional sign (any size, as JSON allows); floats must be finite;
    booleans are ``true``/``false`` (also yes/no, on/off, 1/0); null ignores
    the text; lists and objects are JSON text.

    Raises
    ------
    ValueParseError
        If the text does not fit the type; the message says why.
    """
    value_type = ValueType(value_type)
    if value_type is ValueType.STRING:
        return text
    if value_type is ValueType.NULL:
        return None
    if value_type in JSON_TYPES:
        return _parse_json(text, value_type)
    stripped = text.strip()
    if value_type is ValueType.BOOLEAN:
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueParseError(f"{_quote(text)} is not a boolean (use true or false)")
    if value_type is ValueType.INTEGER:
        if not _INTEGER.fullmatch(stripped):
            raise ValueParseError(f"{_quote(text)} is not an integer")
        try:
            return int(stripped)
        except ValueError:  # beyond Python's digit limit for int()
            raise ValueParseError(f"the integer has too many digits ({len(stripped)})") from None
    # FLOAT; float() would also take "1_000", which JSON would not
    try:
        if "_" in stripped:
            raise ValueError(stripped)
        number = float(stripped)
    except ValueError:
        raise ValueParseError(f"{_quote(text)} is not a number") from None
    if not math.isfinite(number):
        raise ValueParseError(f"{_quote(text)} is not a finite number")
    return number


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown) if text.strip() else "an empty value"


def value_problem(text: str, value_type: ValueType) -> str | None:
    """Why ``text`` does not fit ``value_type``, or None if it does."""
    try:
        parse_value(text, value_type)
    except ValueParseError as exc:
        return str(exc)
    return None


def _coerce(value: Any, old: ValueType, new: ValueType) -> Any:
    """``value`` (of type ``old``) as a ``new`` value; raises ValueParseError if it cannot be."""
    if new is ValueType.NULL:
        return None
    if new is ValueType.STRING:
        return format_value(value, old)
    if old is ValueType.STRING:
        return parse_value(value, new)
    if new is ValueType.INTEGER:
        if old is ValueType.FLOAT and float(value).is_integer():
            return int(value)
    elif new is ValueType.FLOAT:
        if old is ValueType.INTEGER:
            number = float(value)
            if math.isfinite(number):
                return number
    elif new is ValueType.BOOLEAN:
        if old is ValueType.INTEGER and value in (0, 1):
            return bool(value)
    raise ValueParseError(f"{_article(old)} {old} cannot become {_article(new)} {new}")


def convert_text(text: str, old: ValueType, new: ValueType) -> str:
    """The editor text for a row whose type changes from ``old`` to ``new``.

    The value is converted where that keeps its meaning (string "12" ->
    integer 12, integer 3 -> float 3.0, anything -> string). A blank
    value becoming a boolean is false (a new row's checkbox starts cleared).
    Where it cannot be converted, the text is kept unchanged, so that
    :func:`value_problem` flags it and the user can fix it.
    """
    old, new = ValueType(old), ValueType(new)
    if old is new:
        return text
    if new is ValueType.BOOLEAN and (old is ValueType.NULL or not text.strip()):
        return "false"
    try:
        value = parse_value(text, old)
    except ValueParseError:
        return "" if new is ValueType.NULL else text
    try:
        return format_value(_coerce(value, old, new), new)
    except (ValueParseError, OverflowError):
        return text


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a metadata name, or None if it can (a Python identifier)."""
    return field_name_problem(name)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A problem of one editor row: ``column`` is "name" or "value"."""

    row: int
    column: str
    message: str


def find_problems(
    rows: Sequence[tuple[str, ValueType, str]], accepted_names: frozenset[str] = frozenset()
) -> list[RowProblem]:
    """Every problem of the rows ``(name, type, text)``, in row order.

    ``accepted_names`` are names already stored that may stay although they
    are not identifiers (other tools may have written them); new or renamed
    rows must use identifiers. Duplicate names flag every row that has them.
    """
    counts: dict[str, int] = {}
    for name, _, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    problems = []
    for i, (name, value_type, text) in enumerate(rows):
        problem = None if name in accepted_names and name else name_problem(name)
        if problem is None and counts[name] > 1:
            problem = f"the name {name!r} is used more than once"
        if problem:
            problems.append(RowProblem(i, "name", problem))
        problem = value_problem(text, value_type)
        if problem:
            problems.append(RowProblem(i, "value", problem))
    return problems


def rows_to_metadata(rows: Sequence[tuple[str, ValueType, str]]) -> dict[str, Any]:
    """The metadata dictionary of valid rows, in row order.

    Raises
    ------
    ValueParseError
        If a row's text does not fit its type (check :func:`find_problems` first).
    """
    return {name: parse_value(text, value_type) for name, value_type, text in rows}


def metadata_to_rows(metadata: dict[str, Any]) -> list[tuple[str, ValueType, str]]:
    """Editor rows ``(name, type, text)`` for a metadata dictionary, in its order."""
    rows = []
    for name, value in metadata.items():
        value_type = infer_type(value)
        rows.append((name, value_type, format_value(value, value_type)))
    return rows


__all__ = [
    "JSON_TYPES", "RowProblem", "ValueParseError", "ValueType", "compact_json", "convert_text",
    "find_problems", "format_value", "infer_type", "metadata_to_rows", "name_problem",
    "parse_value", "rows_to_metadata", "value_problem",
]
