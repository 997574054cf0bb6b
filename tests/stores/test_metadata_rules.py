"""Metadata and key rules shared by every store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storegui.stores import InvalidKeyError, InvalidMetadataError
from storegui.stores.keys import check_key, glob_literal_prefix, split_child
from storegui.stores.metadata import (
    copy_metadata,
    decode_metadata,
    encode_metadata,
    json_equal,
    matches,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_metadata_round_trips(md):
    assert decode_metadata(encode_metadata(md)) == md


def test_copy_metadata_is_deep():
    md = {"a": {"b": [1, 2]}}
    copy = copy_metadata(md)
    copy["a"]["b"].append(3)
    assert md == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(
    ("md", "fragment"),
    [({"x": float("inf")}, "finite"), ({"x": {"y": [1, object()]}}, "object"),
     ({("t",): 1}, "non-string name"), ({"a": {2: 3}}, "non-string name"), ([1], "dictionary")],
)
def test_bad_metadata_messages_say_where(md, fragment):
    with pytest.raises(InvalidMetadataError) as info:
        encode_metadata(md)
    assert fragment in str(info.value)


def test_matching_keeps_booleans_apart_from_numbers():
    assert matches({"a": 1}, {"a": 1.0})
    assert not matches({"a": True}, {"a": 1})
    assert not matches({"a": 0}, {"a": False})
    assert not matches({}, {"a": None})
    assert json_equal([1, {"x": True}], [1.0, {"x": True}])
    assert not json_equal([1, {"x": True}], [1, {"x": 1}])


@pytest.mark.parametrize("key", ["a", "a/b", "..", "/lead", "ünï", "x" * 4096, "tab\t"])
def test_good_keys(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", None, 3, b"b", "a\x00b", "x" * 4097, "\udcff"])
def test_bad_keys(key):
    with pytest.raises(InvalidKeyError):
        check_key(key)


def test_glob_prefix_and_split_child():
    assert glob_literal_prefix("a/b*/c") == "a/b"
    assert glob_literal_prefix("plain") == "plain"
    assert split_child("a/b/c", "a/", "/") == ("a/b/", True)
    assert split_child("a/b", "a/", "/") == ("a/b", False)
