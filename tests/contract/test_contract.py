"""The store contract, written once and run against every store (see conftest.py)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from store_helpers import FailingReader
from store_helpers import store_content as snapshot

from storegui.stores import (
    CancelToken,
    InvalidDataError,
    InvalidKeyError,
    InvalidMetadataError,
    ProgressReader,
    ReadOnlyError,
    StoreDeleteEvent,
    StoreError,
    StoreEvent,
    StoreProgressEndEvent,
    StoreProgressStartEvent,
    StoreProgressStepEvent,
    StoreSetEvent,
    StoreUpdateEvent,
    TransferCancelled,
    Value,
)


def put(subject, name, data=b"", metadata=None):
    key = subject.key(name)
    subject.store.set(key, (io.BytesIO(data), metadata or {}))
    return key


# ---------------------------------------------------------------- basic read / write


def test_set_then_get_returns_data_and_metadata(subject):
    before = time.time()
    key = put(subject, "k1", b"hello world", {"a": 1, "b": "two", "c": [1, 2], "d": None})
    value = subject.store.get(key)
    assert isinstance(value, Value)
    assert value.data.read() == b"hello world"
    assert value.metadata == {"a": 1, "b": "two", "c": [1, 2], "d": None}
    assert value.size == 11
    assert before - 2 <= value.modified <= time.time() + 2
    assert before - 2 <= value.created <= time.time() + 2
    value.close()


def test_value_unpacks_as_data_and_metadata(subject):
    key = put(subject, "k", b"abc", {"x": True})
    data, metadata = subject.store.get(key)
    with data:
        assert data.read() == b"abc"
    assert metadata == {"x": True}


def test_set_accepts_a_value(subject):
    key = subject.key("v")
    subject.store.set(key, Value.from_bytes(b"data", {"m": 1}))
    assert subject.store.to_bytes(key) == b"data"
    assert subject.store.get_metadata(key) == {"m": 1}


def test_value_range_and_open(subject):
    key = put(subject, "r", b"0123456789")
    value = subject.store.get(key)
    assert value.range(2, 5).read() == b"234"
    assert value.open().read() == b"0123456789"
    value.close()


def test_exists(subject):
    key = put(subject, "e")
    assert subject.store.exists(key)
    assert not subject.store.exists(subject.key("nope"))


def test_set_replaces_data_and_metadata(subject):
    key = put(subject, "k", b"one", {"a": 1})
    put(subject, "k", b"two!", {"b": 2})
    assert subject.store.to_bytes(key) == b"two!"
    assert subject.store.get_metadata(key) == {"b": 2}
    assert subject.store.get(key).size == 4


def test_set_data_keeps_metadata(subject):
    key = put(subject, "k", b"one", {"a": 1})
    subject.store.set_data(key, io.BytesIO(b"changed"))
    assert subject.store.to_bytes(key) == b"changed"
    assert subject.store.get_metadata(key) == {"a": 1}


def test_set_data_creates_a_key_with_empty_metadata(subject):
    key = subject.key("new")
    subject.store.set_data(key, io.BytesIO(b"x"))
    assert subject.store.to_bytes(key) == b"x"
    assert subject.store.get_metadata(key) == {}


def test_set_metadata_replaces_and_keeps_data(subject):
    key = put(subject, "k", b"data", {"a": 1, "b": 2})
    subject.store.set_metadata(key, {"c": 3})
    assert subject.store.get_metadata(key) == {"c": 3}
    assert subject.store.to_bytes(key) == b"data"


def test_update_metadata_merges(subject):
    key = put(subject, "k", b"data", {"a": 1, "b": 2})
    subject.store.update_metadata(key, {"b": 20, "c": 30})
    assert subject.store.get_metadata(key) == {"a": 1, "b": 20, "c": 30}
    assert subject.store.to_bytes(key) == b"data"


def test_get_metadata_select(subject):
    key = put(subject, "k", b"", {"a": 1, "b": 2, "c": 3})
    assert subject.store.get_metadata(key, select=["a", "c", "zz"]) == {"a": 1, "c": 3}


def test_delete(subject):
    key = put(subject, "k", b"x")
    subject.store.delete(key)
    assert not subject.store.exists(key)
    with pytest.raises(KeyError):
        subject.store.get(key)


def test_empty_value(subject):
    key = put(subject, "empty", b"")
    assert subject.store.to_bytes(key) == b""
    assert subject.store.get(key).size == 0


def test_unicode_and_odd_keys(subject):
    names = ["ünï cødé/ключ", "with space", "dots/../x", "a/./b", "tab\there", "q?*[x]", "end/"]
    for i, name in enumerate(names):
        put(subject, name, str(i).encode(), {"i": i})
    for i, name in enumerate(names):
        key = subject.key(name)
        assert subject.store.to_bytes(key) == str(i).encode()
        assert subject.store.get_metadata(key) == {"i": i}
    assert {subject.key(n) for n in names} <= set(subject.store.keys())


# ---------------------------------------------------------------- metadata copies


def test_returned_metadata_is_a_copy(subject):
    key = put(subject, "k", b"", {"a": [1, 2], "n": {"x": 1}})
    md = subject.store.get_metadata(key)
    md["a"].append(3)
    md["n"]["x"] = 99
    md["new"] = 1
    value = subject.store.get(key)
    value.metadata["a"].append(4)
    assert subject.store.get_metadata(key) == {"a": [1, 2], "n": {"x": 1}}
    assert value.metadata == {"a": [1, 2], "n": {"x": 1}}
    for _, qmd in subject.store.query():
        qmd.clear()
    assert subject.store.get_metadata(key) == {"a": [1, 2], "n": {"x": 1}}


def test_given_metadata_is_copied(subject):
    given = {"a": [1, 2], "n": {"x": 1}}
    key = put(subject, "k", b"", given)
    given["a"].append(3)
    given["n"]["x"] = 2
    update = {"u": [1]}
    subject.store.update_metadata(key, update)
    update["u"].append(2)
    assert subject.store.get_metadata(key) == {"a": [1, 2], "n": {"x": 1}, "u": [1]}


# ---------------------------------------------------------------- missing keys


@pytest.mark.parametrize(
    "call",
    [
        lambda s, k: s.get(k),
        lambda s, k: s.get_data(k),
        lambda s, k: s.get_data_range(k, 0, 1),
        lambda s, k: s.get_metadata(k),
        lambda s, k: s.stat(k),
        lambda s, k: s.to_bytes(k),
        lambda s, k: s.delete(k),
        lambda s, k: s.set_metadata(k, {"a": 1}),
        lambda s, k: s.update_metadata(k, {"a": 1}),
        lambda s, k: list(s.multiget([k])),
        lambda s, k: list(s.multiget_metadata([k])),
    ],
    ids=["get", "get_data", "get_data_range", "get_metadata", "stat", "to_bytes", "delete",
         "set_metadata", "update_metadata", "multiget", "multiget_metadata"],
)
def test_missing_key_raises_key_error(subject, call):
    put(subject, "present", b"x")
    with pytest.raises(KeyError):
        call(subject.store, subject.key("absent"))
    assert not subject.store.exists(subject.key("absent"))


# ---------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 3, b"012"), (2, 5, b"234"), (5, 5, b""), (8, 100, b"89"), (0, None, b"0123456789"),
     (12, 20, b""), (9, 10, b"9")],
)
def test_get_data_range_is_half_open(subject, start, end, expected):
    key = put(subject, "r", b"0123456789")
    with subject.store.get_data_range(key, start, end) as stream:
        assert stream.read() == expected


def test_range_of_a_large_value(subject):
    data = bytes(range(256)) * 8192  # 2 MiB
    key = put(subject, "big", data)
    start, end = 1_000_003, 1_500_007
    with subject.store.get_data_range(key, start, end) as stream:
        assert stream.read() == data[start:end]


# ---------------------------------------------------------------- multi methods


def test_multiget_variants(subject):
    keys = [put(subject, f"m{i}", bytes([i]) * i, {"i": i, "j": -i}) for i in range(5)]
    values = list(subject.store.multiget(keys))
    assert [v.data.read() for v in values] == [bytes([i]) * i for i in range(5)]
    for v in values:
        v.close()
    expected = [bytes([i]) * i for i in range(5)]
    assert [d.read() for d in subject.store.multiget_data(keys)] == expected
    assert list(subject.store.multiget_metadata(keys)) == [{"i": i, "j": -i} for i in range(5)]
    selected = list(subject.store.multiget_metadata(keys, select=["j"]))
    assert selected == [{"j": -i} for i in range(5)]


def test_multiset_variants(subject):
    keys = [subject.key(f"ms{i}") for i in range(4)]
    subject.store.multiset(keys, [(io.BytesIO(b"v%d" % i), {"i": i}) for i in range(4)])
    assert [subject.store.to_bytes(k) for k in keys] == [b"v0", b"v1", b"v2", b"v3"]
    subject.store.multiset_data(keys, [io.BytesIO(b"d%d" % i) for i in range(4)])
    assert [subject.store.to_bytes(k) for k in keys] == [b"d0", b"d1", b"d2", b"d3"]
    assert [subject.store.get_metadata(k) for k in keys] == [{"i": i} for i in range(4)]
    subject.store.multiset_metadata(keys, [{"s": i} for i in range(4)])
    assert [subject.store.get_metadata(k) for k in keys] == [{"s": i} for i in range(4)]
    subject.store.multiupdate_metadata(keys, [{"u": i} for i in range(4)])
    assert [subject.store.get_metadata(k) for k in keys] == [{"s": i, "u": i} for i in range(4)]


def test_multiset_length_mismatch_changes_nothing(subject):
    with pytest.raises(ValueError):
        subject.store.multiset([subject.key("a"), subject.key("b")], [(io.BytesIO(b""), {})])
    assert list(subject.store.keys()) == []


def test_multiset_is_all_or_nothing(subject):
    put(subject, "keep", b"old", {"v": 1})
    before = snapshot(subject.store)
    keys = [subject.key("keep"), subject.key("x"), subject.key("y")]
    values = [(io.BytesIO(b"new"), {"v": 2}), (io.BytesIO(b"x"), {}), (io.BytesIO(b"y"), {1: 2})]
    with pytest.raises(InvalidMetadataError):
        subject.store.multiset(keys, values)
    assert snapshot(subject.store) == before


# ---------------------------------------------------------------- query and glob


def _query_fixture(subject):
    put(subject, "q/a", b"", {"kind": "image", "n": 1, "flag": True})
    put(subject, "q/b", b"", {"kind": "image", "n": 2, "flag": False})
    put(subject, "q/c", b"", {"kind": "text", "n": 1.0, "flag": 1})
    put(subject, "q/d", b"", {"other": None})


def test_query_matches_exact_values(subject):
    _query_fixture(subject)
    k = subject.key
    assert sorted(subject.store.query_keys(kind="image")) == [k("q/a"), k("q/b")]
    assert sorted(subject.store.query_keys(kind="image", n=1)) == [k("q/a")]
    assert sorted(subject.store.query_keys(n=1)) == [k("q/a"), k("q/c")]
    assert sorted(subject.store.query_keys(flag=True)) == [k("q/a")]
    assert sorted(subject.store.query_keys(flag=1)) == [k("q/c")]
    assert sorted(subject.store.query_keys(other=None)) == [k("q/d")]
    assert list(subject.store.query_keys(kind="video")) == []


def test_query_returns_metadata_and_select(subject):
    _query_fixture(subject)
    k = subject.key
    result = dict(subject.store.query(kind="text"))
    assert result == {k("q/c"): {"kind": "text", "n": 1.0, "flag": 1}}
    result = dict(subject.store.query(select=["n"], kind="image"))
    assert result == {k("q/a"): {"n": 1}, k("q/b"): {"n": 2}}


def test_query_without_criteria_lists_everything(subject):
    _query_fixture(subject)
    assert len(dict(subject.store.query())) == 4
    assert sorted(subject.store.query_keys()) == sorted(subject.key(f"q/{c}") for c in "abcd")


def test_glob(subject):
    for name in ["g/x.txt", "g/y.txt", "g/sub/z.txt", "g/a.bin", "h/x.txt"]:
        put(subject, name)
    k = subject.key
    p = subject.prefix
    txt = [k("g/sub/z.txt"), k("g/x.txt"), k("g/y.txt")]
    assert sorted(subject.store.glob(p + "g/*.txt")) == txt
    assert sorted(subject.store.glob(p + "g/?.bin")) == [k("g/a.bin")]
    assert sorted(subject.store.glob(p + "*/x.txt")) == [k("g/x.txt"), k("h/x.txt")]
    assert list(subject.store.glob(p + "nothing*")) == []


def test_keys_with_prefix(subject):
    for name in ["p/1", "p/2", "p2", "q/1"]:
        put(subject, name)
    assert sorted(subject.store.keys(subject.key("p/"))) == [subject.key("p/1"), subject.key("p/2")]


# ---------------------------------------------------------------- list_dir


def test_list_dir_lists_immediate_children(subject):
    for name, data in [("d/a", b"1"), ("d/b", b"22"), ("d/sub/c", b""), ("d/sub/deep/e", b""),
                       ("d/z", b"333"), ("top", b"")]:
        put(subject, name, data)
    entries = list(subject.store.list_dir(subject.key("d/")))
    assert [(e.key, e.is_dir) for e in entries] == [
        (subject.key("d/a"), False), (subject.key("d/b"), False), (subject.key("d/sub/"), True),
        (subject.key("d/z"), False),
    ]
    sizes = {e.key: e.size for e in entries if not e.is_dir}
    assert sizes == {subject.key("d/a"): 1, subject.key("d/b"): 2, subject.key("d/z"): 3}
    assert all(e.modified is None or e.modified > 0 for e in entries)
    assert entries[2].name == "sub"
    nested = [(e.key, e.is_dir) for e in subject.store.list_dir(subject.key("d/sub/"))]
    assert nested == [(subject.key("d/sub/c"), False), (subject.key("d/sub/deep/"), True)]


def test_list_dir_key_and_folder_of_the_same_name(subject):
    put(subject, "n/a", b"file")
    put(subject, "n/a/b", b"inside")
    entries = [(e.key, e.is_dir) for e in subject.store.list_dir(subject.key("n/"))]
    assert entries == [(subject.key("n/a"), False), (subject.key("n/a/"), True)]


def test_list_dir_of_missing_prefix_is_empty(subject):
    put(subject, "x/y")
    assert list(subject.store.list_dir(subject.key("nothing/"))) == []


def test_list_dir_root(subject):
    put(subject, "r1/a")
    put(subject, "r2")
    root = [(e.key, e.is_dir) for e in subject.store.list_dir("")]
    if subject.prefix:
        assert root == [("a/", True)]
    else:
        assert root == [("r1/", True), ("r2", False)]


# ---------------------------------------------------------------- files and bytes


def test_to_file_and_from_file(subject, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"file contents" * 1000)
    key = subject.key("f")
    subject.store.from_file(key, src)
    assert subject.store.to_bytes(key) == b"file contents" * 1000
    subject.store.from_file(key, src, metadata={"from": "file"})
    assert subject.store.get_metadata(key) == {"from": "file"}
    out = tmp_path / "out.bin"
    subject.store.to_file(key, out)
    assert out.read_bytes() == b"file contents" * 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".storegui")] == []


def test_from_bytes_and_to_bytes(subject):
    key = subject.key("b")
    subject.store.from_bytes(key, b"\x00\x01\xff", {"t": "bin"})
    assert subject.store.to_bytes(key) == b"\x00\x01\xff"
    assert subject.store.get_metadata(key) == {"t": "bin"}


# ---------------------------------------------------------------- streaming, cancel, failure


def test_large_value_streams_with_progress_events(subject):
    data = b"abcdefgh" * (3 * 131072)  # 3 MiB
    events = []
    subject.store.event_dispatcher.connect(events.append)
    key = subject.key("stream")
    subject.store.set(key, (io.BytesIO(data), {"big": True}), buffer_size=65536)
    assert subject.store.to_bytes(key) == data
    kinds = [type(e) for e in events if getattr(e, "key", None) == key]
    assert kinds[0] is StoreProgressStartEvent
    assert kinds.count(StoreProgressStepEvent) >= 2
    ends = [e for e in events if isinstance(e, StoreProgressEndEvent) and e.key == key]
    assert ends and ends[-1].ok and ends[-1].done == len(data)
    assert any(isinstance(e, StoreSetEvent) and e.key == key for e in events)


def test_cancelled_write_leaves_no_key(subject):
    token = CancelToken()
    key = subject.key("cancelled")

    def progress(done, total):
        if done >= 1 << 20:
            token.cancel()

    reader = ProgressReader(io.BytesIO(b"z" * (4 << 20)), progress=progress, cancel=token)
    with pytest.raises(TransferCancelled):
        subject.store.set(key, (reader, {"a": 1}), buffer_size=65536)
    assert not subject.store.exists(key)
    assert list(subject.store.keys()) == []


def test_cancelled_write_keeps_the_old_value(subject):
    key = put(subject, "old", b"old data", {"v": 1})
    token = CancelToken()
    token.cancel()
    reader = ProgressReader(io.BytesIO(b"new" * 1000), cancel=token)
    with pytest.raises(TransferCancelled):
        subject.store.set(key, (reader, {"v": 2}))
    assert subject.store.to_bytes(key) == b"old data"
    assert subject.store.get_metadata(key) == {"v": 1}


def test_failing_stream_leaves_no_partial_key(subject):
    key = put(subject, "exists", b"before", {"v": 1})
    with pytest.raises(OSError):
        subject.store.set(key, (FailingReader(100_000, 4096), {"v": 2}), buffer_size=8192)
    with pytest.raises(OSError):
        subject.store.set(subject.key("fresh"), (FailingReader(50_000, 4096), {}), buffer_size=8192)
    with pytest.raises(OSError):
        subject.store.set_data(key, FailingReader(10, 4096))
    assert subject.store.to_bytes(key) == b"before"
    assert subject.store.get_metadata(key) == {"v": 1}
    assert not subject.store.exists(subject.key("fresh"))


def test_concurrent_reads_during_a_write(subject):
    key = put(subject, "c", b"A" * 500_000)
    errors = []

    def reader():
        for _ in range(20):
            got = subject.store.to_bytes(key)
            if got not in (b"A" * 500_000, b"B" * 600_000):
                errors.append(len(got))

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(5):
        subject.store.set(key, (io.BytesIO(b"B" * 600_000), {}))
        subject.store.set(key, (io.BytesIO(b"A" * 500_000), {}))
    t.join(30)
    assert not t.is_alive()
    assert errors == []


# ---------------------------------------------------------------- transactions


def test_transaction_commits(subject):
    with subject.store.transaction("two keys"):
        put(subject, "t1", b"1")
        put(subject, "t2", b"2")
    assert subject.store.to_bytes(subject.key("t1")) == b"1"
    assert subject.store.to_bytes(subject.key("t2")) == b"2"


def test_transaction_rolls_back_on_error(subject):
    put(subject, "keep", b"kept", {"v": 1})
    put(subject, "gone", b"doomed")
    before = snapshot(subject.store)
    with pytest.raises(RuntimeError), subject.store.transaction("fails"):
        put(subject, "new", b"new")
        put(subject, "keep", b"changed", {"v": 2})
        subject.store.update_metadata(subject.key("keep"), {"w": 3})
        subject.store.delete(subject.key("gone"))
        raise RuntimeError("boom")
    assert snapshot(subject.store) == before


def test_events_wait_for_commit_and_vanish_on_rollback(subject):
    events = []
    subject.store.event_dispatcher.connect(events.append, StoreSetEvent)
    with subject.store.transaction("t"):
        put(subject, "e1", b"1")
        assert events == []
    assert [e.key for e in events] == [subject.key("e1")]
    events.clear()
    with pytest.raises(RuntimeError), subject.store.transaction("t"):
        put(subject, "e2", b"2")
        raise RuntimeError
    assert events == []


# ---------------------------------------------------------------- events


def test_set_update_delete_events(subject):
    events: list[StoreEvent] = []
    subject.store.event_dispatcher.connect(events.append)
    key = put(subject, "ev", b"x", {"a": 1})
    subject.store.update_metadata(key, {"b": 2})
    subject.store.set_metadata(key, {"c": 3})
    subject.store.delete(key)
    mine = [e for e in events if getattr(e, "key", None) == key
            and isinstance(e, StoreSetEvent | StoreUpdateEvent | StoreDeleteEvent)]
    assert [type(e) for e in mine] == [StoreSetEvent, StoreUpdateEvent, StoreSetEvent,
                                       StoreDeleteEvent]
    assert mine[0].metadata == {"a": 1}
    assert mine[1].metadata == {"b": 2}
    assert mine[2].metadata == {"c": 3}


def test_a_failing_listener_does_not_break_writes(subject):
    def bad(event):
        raise RuntimeError("listener bug")

    subject.store.event_dispatcher.connect(bad)
    key = put(subject, "ok", b"fine")
    assert subject.store.to_bytes(key) == b"fine"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad_key", [None, 1, b"bytes", "", "nul\x00char", ["list"], "\ud800"])
def test_bad_keys_are_refused(subject, bad_key):
    put(subject, "keep", b"k")
    before = snapshot(subject.store)
    key = bad_key if not isinstance(bad_key, str) or not bad_key else subject.prefix + bad_key
    for call in (
        lambda: subject.store.set(key, (io.BytesIO(b"x"), {})),
        lambda: subject.store.get(key),
        lambda: subject.store.set_metadata(key, {}),
        lambda: subject.store.delete(key),
    ):
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert isinstance(info.value, StoreError)
        assert str(info.value)
    assert snapshot(subject.store) == before


@pytest.mark.parametrize(
    "bad_metadata",
    [{"x": object()}, {"x": float("nan")}, {1: "int name"}, ["not", "a", "dict"], "text",
     {"deep": {"set": {1, 2}}}, {"b": b"bytes"}],
    ids=["object", "nan", "int-name", "list", "str", "set", "bytes"],
)
def test_bad_metadata_is_refused_and_nothing_changes(subject, bad_metadata):
    key = put(subject, "k", b"old", {"v": 1})
    before = snapshot(subject.store)
    with pytest.raises(InvalidMetadataError) as info:
        subject.store.set(key, (io.BytesIO(b"new"), bad_metadata))
    assert "metadata" in str(info.value)
    with pytest.raises(InvalidMetadataError):
        subject.store.set(subject.key("fresh"), (io.BytesIO(b"new"), bad_metadata))
    with pytest.raises(InvalidMetadataError):
        subject.store.set_metadata(key, bad_metadata)
    if isinstance(bad_metadata, dict):
        with pytest.raises(InvalidMetadataError):
            subject.store.update_metadata(key, bad_metadata)
    assert snapshot(subject.store) == before


@pytest.mark.parametrize(
    "bad_data",
    [b"raw bytes", "text", 42, None, io.StringIO("text stream")],
    ids=["bytes", "str", "int", "none", "text-stream"],
)
def test_bad_data_is_refused_and_nothing_changes(subject, bad_data):
    key = put(subject, "k", b"old", {"v": 1})
    before = snapshot(subject.store)
    with pytest.raises(InvalidDataError):
        subject.store.set(key, (bad_data, {"v": 2}))
    with pytest.raises(InvalidDataError):
        subject.store.set_data(key, bad_data)
    with pytest.raises(InvalidDataError):
        subject.store.set(key, "not a pair")
    assert snapshot(subject.store) == before


def test_closed_stream_is_refused(subject):
    stream = io.BytesIO(b"x")
    stream.close()
    with pytest.raises(InvalidDataError):
        subject.store.set(subject.key("c"), (stream, {}))
    assert list(subject.store.keys()) == []


def test_read_only_store_refuses_writes(subject):
    key = put(subject, "k", b"old", {"v": 1})
    before = snapshot(subject.store)
    subject.store.readonly = True
    try:
        assert subject.store.info()["readonly"] is True
        for call in (
            lambda: subject.store.set(key, (io.BytesIO(b"x"), {})),
            lambda: subject.store.set_data(key, io.BytesIO(b"x")),
            lambda: subject.store.set_metadata(key, {}),
            lambda: subject.store.update_metadata(key, {"a": 1}),
            lambda: subject.store.delete(key),
            lambda: subject.store.from_bytes(subject.key("n"), b"x"),
        ):
            with pytest.raises(ReadOnlyError) as info:
                call()
            assert "read-only" in str(info.value)
    finally:
        subject.store.readonly = False
    assert snapshot(subject.store) == before


# ---------------------------------------------------------------- lifecycle


def test_info_says_writable(subject):
    info = subject.store.info()
    assert info["readonly"] is False


def test_disconnect_and_connect_again(subject):
    key = put(subject, "persist", b"still here", {"v": 1})
    subject.store.disconnect()
    assert not subject.store.is_connected()
    subject.store.connect()
    assert subject.store.is_connected()
    assert subject.store.to_bytes(key) == b"still here"
    subject.store.disconnect()
    subject.store.connect()
    subject.store.disconnect()
    subject.store.connect()
    assert subject.store.get_metadata(key) == {"v": 1}


def test_set_leaves_the_callers_stream_open(subject):
    stream = io.BytesIO(b"shared")
    subject.store.set(subject.key("s1"), (stream, {}))
    import gc

    gc.collect()
    assert not stream.closed
    stream.seek(0)
    subject.store.set(subject.key("s2"), (stream, {}))
    assert subject.store.to_bytes(subject.key("s2")) == b"shared"
