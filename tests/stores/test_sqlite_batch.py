"""SqliteStore's bulk writes: ``multiset`` of many keys, and the batch metadata encoder.

The bulk path (new keys, small values in memory, nobody listening) writes
rows without a Python step per key; these tests hold it to exactly what
key-by-key writes store, through every way out of it (existing keys, large
values, bad input, rollback).
"""

from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import FailingReader, store_content

from storegui.stores import (
    InvalidDataError,
    InvalidKeyError,
    InvalidMetadataError,
    StoreSetEvent,
)
from storegui.stores.metadata import encode_metadata
from storegui.stores.sqlite.blobs import INLINE_MAX
from storegui.stores.sqlite.index import (
    MAX_INDEXED_TEXT,
    _flat_batch,
    encode_batch,
    index_value,
)
from storegui.stores.sqlite.store import SqliteStore

# Names and strings built to look like the separators the batch encoder cuts at.
TRICKY = [",", ":", '"', "\\", "{", "}", "}{", ",\"a\":", "}{\"a\":", "\x00", "\n", "é", "😀", "a"]
NAMES = ["a", "b", "index", "", ",\"a\":", "}{\"a\":", "x\"y", "é", "k\x00", "\\"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, -0.0, 1e16, 2.5e-7, 3e22]),
    st.lists(st.sampled_from(TRICKY), max_size=5).map("".join),
    st.text(max_size=8),
    st.text(alphabet="xy,\"", min_size=MAX_INDEXED_TEXT - 4, max_size=MAX_INDEXED_TEXT + 4),
)


@st.composite
def batches(draw) -> list[dict]:
    """Flat metadata of a batch: one to three shapes (names in an order) of scalar fields."""
    shapes = draw(st.lists(st.lists(st.one_of(st.sampled_from(NAMES), st.text(max_size=4)),
                                    unique=True, max_size=4), min_size=1, max_size=3))
    n = draw(st.integers(min_value=1, max_value=30))
    picks = draw(st.lists(st.integers(0, len(shapes) - 1), min_size=n, max_size=n))
    return [{name: draw(scalars) for name in shapes[pick]} for pick in picks]


def db_state(path: Path) -> tuple[list[tuple], list[tuple], int]:
    """Rows of the keys (no times) and of the metadata index, and index rows of no key."""
    conn = sqlite3.connect(path)
    try:
        keys = conn.execute("SELECT key, size, metadata, data, blob_id IS NOT NULL FROM keys"
                            " ORDER BY key").fetchall()
        index = sorted(conn.execute("SELECT m.name, m.value, k.key FROM meta_index AS m"
                                    " JOIN keys AS k ON k.id = m.key_id").fetchall())
        stray = conn.execute("SELECT count(*) FROM meta_index"
                             " WHERE key_id NOT IN (SELECT id FROM keys)").fetchone()[0]
    finally:
        conn.close()
    return keys, index, stray


def one_by_one(path: Path, keys: list[str], values: list[tuple[bytes, dict]]) -> tuple:
    """What key-by-key ``set`` stores for the same writes: the oracle of the bulk path."""
    store = SqliteStore(str(path))
    try:
        for key, (data, metadata) in zip(keys, values, strict=True):
            store.set(key, (io.BytesIO(data), metadata))
    finally:
        store.disconnect()
    return db_state(path)


def streams(values: list[tuple[bytes, dict]]) -> list[tuple[io.BytesIO, dict]]:
    return [(io.BytesIO(data), metadata) for data, metadata in values]


def statements(store: SqliteStore) -> list[str]:
    """The SQL statements the store's connection on this thread runs from now on."""
    seen: list[str] = []
    with store._db.use() as conn:
        conn.set_trace_callback(seen.append)
    return seen


# ---------------------------------------------------------------- the batch encoder


@settings(max_examples=300, deadline=None)
@given(batches())
def test_batch_encoding_is_key_by_key_encoding(metadatas):
    keys = [f"k{i}" for i in range(len(metadatas))]
    batch = encode_batch(metadatas, keys)
    assert batch.texts == [encode_metadata(md) for md in metadatas]
    pairs = batch.pairs(range(len(metadatas)))
    for position, metadata in enumerate(metadatas):
        assert sorted(pairs[position]) == sorted(
            (name, index_value(value)) for name, value in metadata.items())


def test_uniform_flat_batches_take_the_fast_path():
    metadatas = [{"i": i, "f": i / 2, "s": f'a,"b":{i}', "n": None, "t": i % 2 == 0}
                 for i in range(1000)]
    batch = _flat_batch(metadatas)
    assert batch is not None
    assert batch.fields["i"] == (range(1000), [str(i) for i in range(1000)])
    assert batch.fields["f"][1][:3] == ["0", "0.5", "1"]  # 1.0 is indexed as 1
    assert batch.fields["s"][1][7] == index_value('a,"b":7')


def test_an_integral_float_can_have_a_long_index_text():
    batch = _flat_batch([{"f": 1e205, "g": 2.5}] * 20)  # 1e+205 is indexed as 206 digits
    assert batch is not None
    assert batch.fields["f"][1] == [index_value(1e205)] * 20
    assert index_value(1e205).startswith("#")


def test_subset_renumbers_positions():
    batch = encode_batch([{"a": 1}, {"b": 2}, {"a": 3, "b": 4}], ["x", "y", "z"])
    part = batch.subset([2, 0])
    assert part.texts == ['{"a":3,"b":4}', '{"a":1}']
    assert part.pairs([0, 1]) == {0: (("a", "3"), ("b", "4")), 1: (("a", "1"),)}


@pytest.mark.parametrize("metadata, message", [
    ({"x": math.nan}, "finite"),
    ({"x": 10 ** 5000}, "cannot be stored"),
    ({1: "a"}, "non-string name"),
    ({"x": {1, 2}}, "set"),
    ({"x": "\ud800"}, "not valid text"),
    (["x"], "must be a dictionary"),
])
def test_batch_encoding_refuses_what_encode_metadata_refuses(metadata, message):
    metadatas = [{"ok": i} for i in range(50)] + [metadata]
    with pytest.raises(InvalidMetadataError, match=message) as caught:
        encode_batch(metadatas, [f"k{i}" for i in range(51)])
    assert caught.value.key == "k50"


# ---------------------------------------------------------------- multiset


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadatas=batches(), existing=st.sets(st.integers(0, 29), max_size=8),
       large=st.sets(st.integers(0, 29), max_size=2))
def test_multiset_stores_what_set_stores(tmp_path_factory, metadatas, existing, large):
    folder = tmp_path_factory.mktemp("bulk")
    keys = [f"dir/{i:03d}" for i in range(len(metadatas))]
    values = [(b"v" * (INLINE_MAX + 5 if i in large else i), md)
              for i, md in enumerate(metadatas)]
    before = [(key, (b"old", {"a": "old", "index": i})) for i, key in enumerate(keys)
              if i in existing]
    stores = []
    for name in ("bulk.db", "oracle.db"):
        store = SqliteStore(str(folder / name))
        if before:
            store.multiset(*zip(*[(k, (io.BytesIO(d), md)) for k, (d, md) in before],
                                strict=True))
        stores.append(store)
    stores[0].multiset(keys, streams(values))
    for store in stores:
        store.disconnect()
    bulk = db_state(folder / "bulk.db")
    assert bulk == one_by_one(folder / "oracle.db", keys, values)
    assert bulk[2] == 0


def test_multiset_of_new_keys_runs_a_few_statements(store):
    seen = statements(store)
    n = 2000
    store.multiset([f"k{i:05d}" for i in range(n)],
                   [(io.BytesIO(b"x" * 64), {"index": i, "group": i % 7, "label": "s"})
                    for i in range(n)])
    inserts = [s for s in seen if s.startswith("INSERT")]
    assert len(inserts) == n // 100 + 3 * n // 250
    assert not [s for s in seen if " IN (" in s]  # no look-up: the inserts check uniqueness
    assert sorted(store.query_keys(group=3)) == [f"k{i:05d}" for i in range(3, n, 7)]
    assert store.get_metadata("k01999") == {"index": 1999, "group": 4, "label": "s"}
    assert store.to_bytes("k00000") == b"x" * 64


def test_existing_keys_found_late_are_written_over(store, db):
    n = 600
    keys = [f"k{i:04d}" for i in range(n)]
    store.set(keys[-1], (io.BytesIO(b"old"), {"group": "old", "gone": True}))
    store.multiset(keys, [(io.BytesIO(b"%d" % i), {"group": i % 3}) for i in range(n)])
    assert store.get_metadata(keys[-1]) == {"group": 2}
    assert list(store.query_keys(group="old")) == [] and list(store.query_keys(gone=True)) == []
    assert len(list(store.query_keys(group=2))) == n // 3
    assert store.to_bytes(keys[-1]) == b"%d" % (n - 1)
    keys_rows, _, stray = db_state(db)
    assert len(keys_rows) == n and stray == 0


def test_multiset_rolls_back_with_the_outer_transaction(store, db):
    store.set("keep", (io.BytesIO(b"k"), {"group": 1}))
    before = db_state(db)
    with pytest.raises(RuntimeError), store.transaction("fails"):
        store.multiset([f"n{i}" for i in range(300)],
                       [(io.BytesIO(b"x"), {"group": 1}) for _ in range(300)])
        assert len(list(store.query_keys(group=1))) == 301  # visible inside the transaction
        raise RuntimeError("boom")
    assert db_state(db) == before
    assert list(store.query_keys(group=1)) == ["keep"]


def test_other_connections_see_the_old_state_until_the_commit(store, db):
    store.set("old", (io.BytesIO(b"o"), {"group": 0}))
    reader = sqlite3.connect(db)
    seen: list[tuple[int, int]] = []

    def look(sql: str) -> None:  # runs inside each statement of the writer
        if sql.startswith("INSERT"):
            seen.append(reader.execute("SELECT (SELECT count(*) FROM keys),"
                                       " (SELECT count(*) FROM meta_index)").fetchone())

    try:
        with store._db.use() as conn:
            conn.set_trace_callback(look)
        store.multiset([f"n{i}" for i in range(500)],
                       [(io.BytesIO(b"x"), {"group": i, "more": 1}) for i in range(500)])
        with store._db.use() as conn:
            conn.set_trace_callback(None)
        after = reader.execute("SELECT (SELECT count(*) FROM keys),"
                               " (SELECT count(*) FROM meta_index)").fetchone()
    finally:
        reader.close()
    assert seen and set(seen) == {(1, 1)}
    assert after == (501, 1001)


BAD_INPUTS = [
    pytest.param("k\x00", (io.BytesIO(b""), {}), InvalidKeyError, id="nul-in-key"),
    pytest.param("", (io.BytesIO(b""), {}), InvalidKeyError, id="empty-key"),
    pytest.param(7, (io.BytesIO(b""), {}), InvalidKeyError, id="key-not-str"),
    pytest.param("k\udc00", (io.BytesIO(b""), {}), InvalidKeyError, id="surrogate-key"),
    pytest.param("k" * 5000, (io.BytesIO(b""), {}), InvalidKeyError, id="long-key"),
    pytest.param("z", (io.BytesIO(b""), {"x": math.inf}), InvalidMetadataError, id="inf"),
    pytest.param("z", (io.BytesIO(b""), {"x": "\ud800"}), InvalidMetadataError,
                 id="surrogate-value"),
    pytest.param("z", (io.BytesIO(b""), {2: 1}), InvalidMetadataError, id="int-name"),
    pytest.param("z", (b"bytes", {}), InvalidDataError, id="bytes-data"),
    pytest.param("z", (io.StringIO("t"), {}), InvalidDataError, id="text-stream"),
    pytest.param("z", "not a pair", InvalidDataError, id="not-a-pair"),
]


@pytest.mark.parametrize("key, value, error", BAD_INPUTS)
def test_one_bad_item_fails_the_whole_multiset(store, db, key, value, error):
    store.set("keep", (io.BytesIO(b"k"), {"group": 1}))
    before, state = store_content(store), db_state(db)
    keys = [f"n{i}" for i in range(200)] + [key]
    values = [(io.BytesIO(b"x"), {"group": i}) for i in range(200)] + [value]
    with pytest.raises(error):
        store.multiset(keys, values)
    assert store_content(store) == before and db_state(db) == state


def test_a_closed_stream_fails_the_whole_multiset(store):
    closed = io.BytesIO(b"x")
    closed.close()
    with pytest.raises(InvalidDataError, match="cannot be read"):
        store.multiset(["a", "b"], [(io.BytesIO(b"1"), {}), (closed, {})])
    assert list(store.keys()) == []


def test_mismatched_lengths(store):
    with pytest.raises(ValueError, match="2 keys but 1 values"):
        store.multiset(["a", "b"], [(io.BytesIO(b""), {})])
    assert list(store.keys()) == []


def test_listeners_get_set_events_after_the_commit(store):
    events = []
    store.event_dispatcher.connect(events.append, StoreSetEvent)
    with store.transaction("outer"):
        store.multiset(["a", "b"], [(io.BytesIO(b"1"), {"v": 1}), (io.BytesIO(b"2"), {})])
        assert events == []
    assert [(e.key, e.metadata) for e in events] == [("a", {"v": 1}), ("b", {})]


def test_in_memory_store_and_unusual_keys():
    store = SqliteStore(":memory:")
    keys = ["é/ü", "日本/語", "emoji/😀", "a b/c", "'quote'", 'dq"', "\U0010ffff"]
    store.multiset(keys, [(io.BytesIO(k.encode()), {"k": k, "f": 2.0}) for k in keys])
    assert sorted(store.query_keys(f=2)) == sorted(keys)
    assert [store.to_bytes(k) for k in keys] == [k.encode() for k in keys]
    store.disconnect()


def test_multiset_metadata_in_bulk(store):
    store.multiset(["a", "b"], [(io.BytesIO(b"1"), {"v": 1}), (io.BytesIO(b"2"), {"v": 2})])
    with pytest.raises(KeyError):
        store.multiset_metadata(["a", "missing"], [{"v": 9}, {"v": 9}])
    assert store.get_metadata("a") == {"v": 1}
    store.multiset_metadata(["a", "b"], [{"w": 1.0}, {"v": 1}])
    assert sorted(store.query_keys(v=1)) == ["b"] and list(store.query_keys(w=1)) == ["a"]
    assert store.to_bytes("a") == b"1"


def test_a_failed_multiset_inside_a_transaction_leaves_the_rest_of_it(store):
    with store.transaction("outer"):
        store.set("before", (io.BytesIO(b"b"), {"group": 1}))
        with pytest.raises(Exception, match="simulated read failure"):
            store.multiset(["n1", "n2"], [(io.BytesIO(b"x"), {"group": 1}),
                                          (FailingReader(3 * INLINE_MAX), {"group": 1})])
        store.multiupdate_metadata(["before"], [{"more": True}])
        store.set("after", (io.BytesIO(b"a"), {"group": 1}))
    assert sorted(store.query_keys(group=1)) == ["after", "before"]
    assert store.get_metadata("before") == {"group": 1, "more": True}
