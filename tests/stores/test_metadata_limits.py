"""The metadata limits are the same on every store and are checked before anything is written.

Metadata nested past :data:`MAX_DEPTH` levels used to be accepted by every
store and then, past about 990 levels, reported "damaged" on reading (Python's
JSON decoder gives up near its recursion limit). Every store now refuses it at
the write with InvalidMetadataError and keeps what it had.
"""

from __future__ import annotations

import io
import sys

import pytest
from contract.conftest import FACTORIES, subject_fixture

from storegui.stores import InvalidMetadataError, StoreKeyError
from storegui.stores.metadata import MAX_DEPTH, MAX_INT_DIGITS, decode_metadata, encode_metadata

subject = subject_fixture(FACTORIES)


def nested(levels: int, kind: type = list) -> dict:
    """Metadata ``levels`` deep, the metadata dict being level 1."""
    value: object = "leaf"
    for _ in range(levels - 1):
        value = [value] if kind is list else {"k": value}
    return {"a": value}


def test_the_limits_are_stated_on_the_encoder():
    for kind in (list, dict):
        assert decode_metadata(encode_metadata(nested(MAX_DEPTH, kind))) == nested(MAX_DEPTH, kind)
        with pytest.raises(InvalidMetadataError, match=f"more than {MAX_DEPTH} levels"):
            encode_metadata(nested(MAX_DEPTH + 1, kind))
    cycle: dict = {}
    cycle["self"] = cycle
    with pytest.raises(InvalidMetadataError, match=r"metadata\['self'\] is nested more"):
        encode_metadata(cycle)
    big = 10**MAX_INT_DIGITS - 1
    assert decode_metadata(encode_metadata({"n": [big, -big]})) == {"n": [big, -big]}


def test_an_integer_past_the_limit_is_refused_even_where_python_would_print_it():
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # a writer with no limit: its readers keep theirs
    try:
        for md in ({"n": 10**MAX_INT_DIGITS}, {"n": [-(10**MAX_INT_DIGITS)]}):
            with pytest.raises(InvalidMetadataError, match=f"more than {MAX_INT_DIGITS} digits"):
                encode_metadata(md)
    finally:
        sys.set_int_max_str_digits(old)


@pytest.mark.parametrize("kind", [list, dict])
def test_metadata_at_the_limit_is_stored_and_read_back(subject, kind):
    store, key = subject.store, subject.key("deep")
    md = nested(MAX_DEPTH, kind)
    store.set(key, (io.BytesIO(b"data"), md))
    assert store.get_metadata(key) == md
    assert dict(store.query())[key] == md
    with store.get(key) as value:
        assert value.metadata == md
    store.set_metadata(key, {"b": 1})
    store.update_metadata(key, md)
    assert store.get_metadata(key) == {"b": 1, **md}


@pytest.mark.parametrize("kind", [list, dict])
def test_metadata_past_the_limit_is_refused_and_nothing_is_written(subject, kind):
    store, key, old = subject.store, subject.key("deep"), subject.key("old")
    md = nested(MAX_DEPTH + 1, kind)
    with pytest.raises(InvalidMetadataError, match=f"more than {MAX_DEPTH} levels"):
        store.set(key, (io.BytesIO(b"new"), md))
    with pytest.raises(StoreKeyError):
        store.get_metadata(key)
    assert key not in set(store.keys())

    store.set(old, (io.BytesIO(b"old data"), {"v": 1}))
    attempts = [
        lambda: store.set(old, (io.BytesIO(b"new data"), md)),
        lambda: store.set_metadata(old, md),
        lambda: store.update_metadata(old, md),
        lambda: store.multiset([key, old], [(io.BytesIO(b"x"), {}), (io.BytesIO(b"y"), md)]),
        lambda: store.multiset_metadata([old], [md]),
        lambda: store.multiupdate_metadata([old], [md]),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidMetadataError) as info:
            attempt()
        assert old in str(info.value)  # the message names the key
        assert store.get_metadata(old) == {"v": 1}
        assert store.to_bytes(old) == b"old data"
        assert not store.exists(key)
    # Not reported damaged afterwards, and the store still writes.
    assert dict(store.query()) == {old: {"v": 1}}
    store.set(key, (io.BytesIO(b"new"), nested(MAX_DEPTH)))
    assert store.get_metadata(key) == nested(MAX_DEPTH)
