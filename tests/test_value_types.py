"""The metadata editor's value rules, without Qt."""

from __future__ import annotations

import json

import pytest

from storegui.app.panels.value_types import (
    RowProblem,
    ValueParseError,
    ValueType,
    compact_json,
    convert_text,
    find_problems,
    format_value,
    infer_type,
    metadata_to_rows,
    name_problem,
    parse_value,
    rows_to_metadata,
    value_problem,
)
from storegui.stores.metadata import encode_metadata

STR, INT, FLT, BOOL = ValueType.STRING, ValueType.INTEGER, ValueType.FLOAT, ValueType.BOOLEAN
NUL, LST, OBJ = ValueType.NULL, ValueType.LIST, ValueType.OBJECT


@pytest.mark.parametrize(
    ("value", "expected"),
    [("x", STR), (3, INT), (2**80, INT), (1.5, FLT), (True, BOOL), (False, BOOL), (None, NUL),
     ([1], LST), ((1, 2), LST), ({"a": 1}, OBJ)],
)
def test_infer_type(value, expected):
    assert infer_type(value) is expected


def test_infer_type_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="set"):
        infer_type({1, 2})


@pytest.mark.parametrize(
    ("value", "value_type"),
    [("", STR), ("  spaced  ", STR), ("multi\nline", STR), (0, INT), (-7, INT), (10**30, INT),
     (0.1, FLT), (-2.5e-300, FLT), (3.0, FLT), (1e22, FLT), (True, BOOL), (False, BOOL),
     (None, NUL), ([], LST),
     ([1, "a", None, [2.5]], LST), ({}, OBJ), ({"a": {"b": [True]}, "ü": "ß"}, OBJ)],
)
def test_format_then_parse_round_trips(value, value_type):
    text = format_value(value, value_type)
    parsed = parse_value(text, value_type)
    assert parsed == value and type(parsed) is type(value)


def test_floats_keep_a_decimal_point_so_they_read_back_as_floats():
    assert format_value(3.0) == "3.0"
    assert value_problem(format_value(3.0), FLT) is None


@pytest.mark.parametrize(
    ("text", "value_type", "fragment"),
    [("12x", INT, "not an integer"), ("1.5", INT, "not an integer"), ("", INT, "empty value"),
     ("1_000", INT, "not an integer"), ("abc", FLT, "not a number"), ("1_0.5", FLT, "not a number"),
     ("nan", FLT, "finite"), ("inf", FLT, "finite"), ("-Infinity", FLT, "finite"),
     ("maybe", BOOL, "not a boolean"), ("", LST, "needs JSON text"), ("[1,", LST, "not valid JSON"),
     ('{"a": 1}', LST, "an object, not a list"), ("[1]", OBJ, "a list, not an object"),
     ("{'a': 1}", OBJ, "not valid JSON"), ("[NaN]", LST, "NaN is not allowed"),
     ('{"x": Infinity}', OBJ, "Infinity is not allowed"), ("3", OBJ, "an integer, not an object")],
)
def test_text_that_does_not_fit_its_type_is_refused_with_a_reason(text, value_type, fragment):
    with pytest.raises(ValueParseError, match=fragment):
        parse_value(text, value_type)
    assert fragment in value_problem(text, value_type)


def test_json_errors_say_where():
    assert "line 2, column" in value_problem('[1,\n  oops]', LST)


def test_parsing_is_lenient_where_it_is_unambiguous():
    assert parse_value(" 42 ", INT) == 42
    assert parse_value("+5", INT) == 5
    assert parse_value("1e3", FLT) == 1000.0
    assert parse_value("7", FLT) == 7.0 and isinstance(parse_value("7", FLT), float)
    assert [parse_value(t, BOOL) for t in ("TRUE", "yes", "1", "off", "False", "0")] == [
        True, True, True, False, False, False]
    assert parse_value("anything", NUL) is None


def test_huge_integers_are_kept_exactly():
    big = "123456789012345678901234567890"
    assert parse_value(big, INT) == int(big)
    assert "too many digits" in value_problem("9" * 5000, INT)


@pytest.mark.parametrize(
    ("text", "old", "new", "expected"),
    [("12", STR, INT, "12"), (" 12 ", STR, INT, "12"), ("12", STR, FLT, "12.0"),
     ("yes", STR, BOOL, "true"), ('["a", 1]', STR, LST, '[\n  "a",\n  1\n]'),
     ('{"k": 1}', STR, OBJ, '{\n  "k": 1\n}'), ("3", INT, FLT, "3.0"), ("3.0", FLT, INT, "3"),
     ("1", INT, BOOL, "true"), ("0", INT, BOOL, "false"), ("12", INT, STR, "12"),
     ("true", BOOL, STR, "true"), ("", NUL, STR, ""), ("[\n  1\n]", LST, STR, "[\n  1\n]"),
     ("anything", STR, NUL, ""), ("[1]", LST, NUL, ""), ("", STR, BOOL, "false"),
     ("  ", STR, BOOL, "false"), ("", NUL, BOOL, "false")],
)
def test_changing_the_type_converts_the_value_where_it_can(text, old, new, expected):
    converted = convert_text(text, old, new)
    assert converted == expected
    assert value_problem(converted, new) is None


@pytest.mark.parametrize(
    ("text", "old", "new"),
    [("hello", STR, INT), ("2.5", FLT, INT), ("5", INT, BOOL), ("[1]", LST, OBJ),
     ("true", BOOL, INT), ("", NUL, INT), ("{oops", OBJ, LST)],
)
def test_a_value_that_cannot_be_converted_is_kept_and_flagged(text, old, new):
    assert convert_text(text, old, new) == text
    assert value_problem(text, new) is not None


def test_names_must_be_identifiers():
    assert name_problem("ok_name2") is None
    assert name_problem("ünïcode") is None
    assert "required" in name_problem("")
    for bad in ("2bad", "has space", "dash-ed", "dot.ted"):
        assert "not a valid name" in name_problem(bad)


def test_find_problems_flags_every_duplicate_and_each_bad_cell():
    rows = [("a", INT, "1"), ("a", STR, "x"), ("b", INT, "zz"), ("9c", LST, "[1"), ("", STR, "")]
    problems = find_problems(rows)
    where = {(p.row, p.column) for p in problems}
    assert where == {(0, "name"), (1, "name"), (2, "value"), (3, "name"), (3, "value"),
                     (4, "name")}
    assert all(isinstance(p, RowProblem) and p.message for p in problems)
    assert [p.row for p in problems] == sorted(p.row for p in problems)
    assert "more than once" in next(p.message for p in problems if p.row == 1)


def test_names_already_stored_may_stay_although_not_identifiers():
    rows = [("content-type", STR, "text/plain"), ("new-name", STR, "x")]
    problems = find_problems(rows, accepted_names=frozenset({"content-type"}))
    assert [(p.row, p.column) for p in problems] == [(1, "name")]


def test_rows_and_metadata_convert_both_ways_in_order():
    metadata = {"z": 1, "a": "x", "m": [1, {"n": None}], "f": 0.5, "b": False, "n": None,
                "o": {"deep": [1, 2]}}
    rows = metadata_to_rows(metadata)
    assert [r[0] for r in rows] == list(metadata)
    assert [r[1] for r in rows] == [INT, STR, LST, FLT, BOOL, NUL, OBJ]
    back = rows_to_metadata(rows)
    assert back == metadata and list(back) == list(metadata)
    encode_metadata(back)  # what the editor produces is storable


def test_rows_to_metadata_refuses_invalid_rows():
    with pytest.raises(ValueParseError):
        rows_to_metadata([("a", INT, "one")])


def test_compact_json_is_one_line():
    text = compact_json({"a": [1, 2], "b": "ü"})
    assert "\n" not in text and json.loads(text) == {"a": [1, 2], "b": "ü"}
