"""SqliteStore behaviour beyond the contract suite: the file, streaming, orphans, SQL plans."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from storegui.stores import (
    CancelToken,
    ProgressReader,
    ReadOnlyError,
    StoreError,
    StoreSetEvent,
    TransferCancelled,
    open_store,
)
from storegui.stores.sqlite.blobs import CHUNK_SIZE, INLINE_MAX
from storegui.stores.sqlite.index import index_value, prefix_upper_bound, query_page_sql
from storegui.stores.sqlite.schema import SCHEMA_VERSION
from storegui.stores.sqlite.store import SqliteStore

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


class PatternStream(io.RawIOBase):
    """``size`` bytes of a repeating pattern, generated on the fly (never held whole)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.left = size
        self.pos = 0
        self.block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        at = self.pos % len(self.block)
        n = min(len(b), self.left, len(self.block) - at)
        b[:n] = self.block[at:at + n]
        self.left -= n
        self.pos += n
        return n


def pattern_digest(size: int, seed: int = 0) -> str:
    h = hashlib.sha256()
    stream = PatternStream(size, seed)
    while chunk := stream.read(MiB):
        h.update(chunk)
    return h.hexdigest()


def digest_of(stream) -> str:
    h = hashlib.sha256()
    with stream:
        while chunk := stream.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the store's file, to look at what the store wrote."""
    return sqlite3.connect(path, isolation_level=None)


def counts(path: Path) -> tuple[int, int, int]:
    with raw(path) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("keys", "blobs", "chunks"))


@pytest.fixture
def chunked(db):
    """A store that keeps every value inside the database (1 MiB chunk rows)."""
    s = SqliteStore(str(db), external_from=None)
    s.connect()
    yield s
    s.disconnect()


def put(store, key, data=b"", metadata=None):
    store.set(key, (io.BytesIO(data), metadata or {}))


# ---------------------------------------------------------------- the file


def test_reopen_from_file_and_url(db, store):
    put(store, "a/b", b"small", {"n": 1})
    store.set("big", (PatternStream(3 * MiB), {"big": True}))
    store.disconnect()
    again = open_store(f"sqlite://{db}")
    assert isinstance(again, SqliteStore)
    assert again.info()["path"] == str(db)
    assert again.url == f"sqlite://{db}"
    with again:
        assert again.to_bytes("a/b") == b"small"
        assert again.get_metadata("a/b") == {"n": 1}
        assert digest_of(again.get_data("big")) == pattern_digest(3 * MiB)
        assert again.info()["local"] is True


def test_wal_mode_and_schema_markers(db, store):
    put(store, "k", b"v")
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] != 0


def test_small_values_are_inline_and_large_ones_chunked(db, chunked):
    store = chunked
    put(store, "tiny", b"x" * INLINE_MAX)
    store.set("chunked", (PatternStream(2 * CHUNK_SIZE + 5), {}))
    with raw(db) as conn:
        assert conn.execute("SELECT blob_id FROM keys WHERE key = 'tiny'").fetchone()[0] is None
        sizes = [n for (n,) in conn.execute("SELECT length(data) FROM chunks ORDER BY seq")]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 5]
    assert store.stat("chunked").size == 2 * CHUNK_SIZE + 5


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is a text file, not a database\n" * 50, "not a usable SQLite database"),
     (b"short", "not a usable SQLite database")],
    ids=["text", "short"],
)
def test_a_file_that_is_not_a_database(db, content, message):
    db.write_bytes(content)
    with pytest.raises(StoreError) as info:
        SqliteStore(db).connect()
    assert message in str(info.value) and str(db) in str(info.value)
    assert db.read_bytes() == content  # not touched


def test_a_truncated_store_file(db, store):
    for i in range(300):
        put(store, f"k{i:04d}", os.urandom(1000), {"i": i})
    store.disconnect()
    with raw(db) as conn:  # fold the WAL into the file, as a copy would see it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = db.read_bytes()
    db.write_bytes(content[: len(content) // 2])
    with pytest.raises(StoreError) as info:
        SqliteStore(db).connect()
    assert "damaged" in str(info.value) and str(db) in str(info.value)


def test_a_damaged_page_gives_a_store_error_naming_the_file(db, store):
    for i in range(300):
        put(store, f"k{i:04d}", os.urandom(1000), {"i": i})
    store.disconnect()
    with raw(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    content = bytearray(db.read_bytes())
    middle = (pages // 2) * 4096
    content[middle:middle + 4096] = os.urandom(4096)
    db.write_bytes(bytes(content))
    damaged = SqliteStore(db)
    try:
        with pytest.raises(StoreError) as info:
            damaged.connect()
            list(damaged.query())
            for key in list(damaged.keys()):
                damaged.to_bytes(key)
        assert "damaged" in str(info.value) and str(db) in str(info.value)
    finally:
        damaged.disconnect()


def test_another_programs_database(db):
    with raw(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    with pytest.raises(StoreError) as info:
        SqliteStore(db).connect()
    assert "another program" in str(info.value) and "invoices" in str(info.value)
    with raw(db) as conn:  # left as it was, journal mode included
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_newer_schema_version(db, store):
    store.disconnect()
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer storegui"):
        SqliteStore(db).connect()


def test_missing_folder_and_folder_path(tmp_path):
    missing = tmp_path / "no" / "such" / "store.db"
    with pytest.raises(StoreError) as info:
        SqliteStore(missing).connect()
    assert "does not exist" in str(info.value) and str(missing.parent) in str(info.value)
    assert not missing.parent.exists()
    with pytest.raises(StoreError, match="is a folder"):
        SqliteStore(tmp_path).connect()


def test_read_only_store(db, store):
    put(store, "k", b"v", {"a": 1})
    store.disconnect()
    ro = SqliteStore(db, readonly=True)
    with ro:
        assert ro.info()["readonly"] is True
        assert ro.to_bytes("k") == b"v"
        assert list(ro.query_keys(a=1)) == ["k"]
        with pytest.raises(ReadOnlyError):
            put(ro, "k", b"new")
    with pytest.raises(StoreError):
        SqliteStore(db.parent / "absent.db", readonly=True).connect()


def test_a_busy_store_fails_with_a_clear_error(db, store):
    put(store, "k", b"v")
    other = SqliteStore(db, timeout=0.2)
    try:
        with store.transaction("holds the write lock"):
            put(store, "held", b"1")
            with pytest.raises(StoreError, match="busy"):
                put(other, "k", b"blocked")
        put(other, "k", b"free again")
        assert store.to_bytes("k") == b"free again"
    finally:
        other.disconnect()


# ---------------------------------------------------------------- streaming


def test_a_64_mib_value_streams_in_bounded_memory(db, store):
    size = 64 * MiB
    tracemalloc.start()
    try:
        store.set("huge", (PatternStream(size, seed=7), {"size": size}), buffer_size=256 * 1024)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = digest_of(store.get_data("huge"))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == pattern_digest(size, seed=7)
    assert store.stat("huge").size == size
    assert write_peak < 8 * MiB, write_peak
    assert read_peak < 8 * MiB, read_peak


def test_range_reads_start_at_the_right_chunk(chunked):
    store = chunked
    data = os.urandom(3 * CHUNK_SIZE + 100)
    put(store, "r", data)
    fetched = []
    with store._db.use() as conn:  # this thread's connection, to watch its statements
        conn.set_trace_callback(fetched.append)
        try:
            start, end = 2 * CHUNK_SIZE + 10, 3 * CHUNK_SIZE + 50
            with store.get_data_range("r", start, end) as stream:
                assert stream.read() == data[start:end]
        finally:
            conn.set_trace_callback(None)
    chunk_reads = [s for s in fetched if "FROM chunks" in s]
    assert len(chunk_reads) == 2 and "seq = 2" in chunk_reads[0] and "seq = 3" in chunk_reads[1]
    value = store.get("r")
    with value.data as stream:
        stream.seek(CHUNK_SIZE - 3)
        assert stream.read(6) == data[CHUNK_SIZE - 3:CHUNK_SIZE + 3]


@pytest.mark.parametrize("external_from", [None, MiB], ids=["chunks", "files"])
def test_a_cancelled_write_leaves_no_key_and_no_chunks(db, external_from):
    store = SqliteStore(db, external_from=external_from)
    put(store, "keep", b"x" * 10_000)
    token = CancelToken()

    def progress(done, total):
        if done >= 3 * MiB:
            token.cancel()

    reader = ProgressReader(PatternStream(20 * MiB), progress=progress, cancel=token)
    with pytest.raises(TransferCancelled):
        store.set("cancelled", (reader, {"a": 1}), buffer_size=MiB)
    assert not store.exists("cancelled")
    store.disconnect()
    assert counts(db) == (1, 1, 1)  # only "keep" and its single chunk
    values = Path(f"{db}-values")  # no value file, no temp file (nor the writer's lock)
    assert not values.exists() or [p.name for p in values.rglob("*") if p.is_file()] == []


def test_orphans_of_a_killed_writer_are_removed_at_connect(db, chunked):
    store = chunked
    put(store, "keep", b"k" * 5000)
    store.disconnect()
    script = f"""
import io, os, sys
from storegui.stores.sqlite.store import SqliteStore

class Dying(io.RawIOBase):
    sent = 0
    def readable(self):
        return True
    def readinto(self, b):
        if self.sent >= 3 * {MiB}:
            os._exit(3)  # killed mid-write: no cleanup runs
        b[:len(b)] = b"z" * len(b)
        self.sent += len(b)
        return len(b)

store = SqliteStore({str(db)!r}, external_from=None)
store.set("never", (Dying(), {{}}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert done.returncode == 3
    keys, blobs, chunks = counts(db)
    assert (keys, blobs) == (1, 2) and chunks >= 3  # the dead writer's chunks are left over
    with SqliteStore(db, external_from=None) as again:
        assert list(again.keys()) == ["keep"]
    assert counts(db) == (1, 1, 1)


def test_a_live_writer_is_not_taken_for_dead(db, chunked):
    """Connecting a second store while a write streams in must not remove its chunks."""
    store = chunked
    started, go_on = threading.Event(), threading.Event()

    class Slow(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, b):
            if self.sent >= 2 * MiB and not started.is_set():
                started.set()
                go_on.wait(10)
            if self.sent >= 4 * MiB:
                return 0
            b[:len(b)] = b"s" * len(b)
            self.sent += len(b)
            return len(b)

    errors = []

    def write():
        try:
            store.set("slow", (Slow(), {}))
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(10)
        with SqliteStore(db) as second:  # sweeps orphans at connect
            assert not second.exists("slow")
    finally:
        go_on.set()
        thread.join(30)
    assert errors == []
    assert store.stat("slow").size == 4 * MiB


def test_reading_survives_an_overwrite_in_this_process(db, chunked):
    store = chunked
    first = PatternStream(3 * MiB, seed=1)
    store.set("k", (first, {}))
    stream = store.get_data("k")
    head = stream.read(MiB)
    store.set("k", (PatternStream(2 * MiB, seed=2), {}))  # the old chunks are still leased
    rest = stream.read()
    stream.close()
    whole = hashlib.sha256(head + rest).hexdigest()
    assert whole == pattern_digest(3 * MiB, seed=1)
    assert digest_of(store.get_data("k")) == pattern_digest(2 * MiB, seed=2)
    del stream
    put(store, "other", b"o")  # a later write frees the released garbage
    assert counts(db) == (2, 1, 2)


# ---------------------------------------------------------------- transactions


def test_a_transaction_rolls_back_chunks_index_and_keys(db, store):
    put(store, "keep", b"kept", {"tag": "old"})
    store.set("big", (PatternStream(2 * MiB, seed=3), {"tag": "big"}))
    before = counts(db)
    with pytest.raises(RuntimeError), store.transaction("fails"):
        store.set("new-big", (PatternStream(3 * MiB), {"tag": "new"}))
        store.set("big", (PatternStream(MiB + 1, seed=4), {"tag": "changed"}))
        store.update_metadata("keep", {"tag": "updated"})
        store.delete("keep")
        store.multiset(["m1", "m2"], [(io.BytesIO(b"1"), {"tag": "m"}),
                                      (io.BytesIO(b"2"), {"tag": "m"})])
        raise RuntimeError("boom")
    assert counts(db) == before
    assert store.get_metadata("keep") == {"tag": "old"}
    assert digest_of(store.get_data("big")) == pattern_digest(2 * MiB, seed=3)
    assert sorted(store.query_keys(tag="m")) == [] and list(store.query_keys(tag="old")) == ["keep"]


def test_a_transaction_commits_and_frees_replaced_values(db, chunked):
    store = chunked
    store.set("big", (PatternStream(2 * MiB, seed=3), {}))
    events = []
    store.event_dispatcher.connect(events.append, StoreSetEvent)
    with store.transaction("commits"):
        store.set("big", (PatternStream(MiB + 1, seed=4), {"v": 2}))
        store.multiset(["a", "b"], [(io.BytesIO(b"1"), {"v": 1}), (io.BytesIO(b"2"), {})])
        assert events == []
    assert [e.key for e in events] == ["big", "a", "b"]
    assert events[1].metadata == {"v": 1}
    assert counts(db) == (3, 1, 2)
    assert sorted(store.query_keys(v=1)) == ["a"]


def test_a_failing_multiset_item_rolls_back_the_others(db, store):
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise OSError("disk gone")

    with pytest.raises(OSError):
        store.multiset(["a", "b", "c"], [(PatternStream(2 * MiB), {"x": 1}),
                                         (io.BytesIO(b"b"), {}), (Broken(), {})])
    assert counts(db) == (0, 0, 0)


def test_multi_writes_with_repeated_keys_act_in_order(db, store):
    store.multiset(["a", "b", "a"], [(PatternStream(2 * MiB), {"v": 1}),
                                     (io.BytesIO(b"b"), {"v": 2}),
                                     (io.BytesIO(b"last"), {"v": 3})])
    assert store.to_bytes("a") == b"last" and store.get_metadata("a") == {"v": 3}
    assert counts(db) == (2, 0, 0)  # the overwritten 2 MiB value was freed
    store.multiupdate_metadata(["a", "b", "a"], [{"x": 1}, {"y": 2}, {"x": 9, "z": 0}])
    assert store.get_metadata("a") == {"v": 3, "x": 9, "z": 0}
    assert list(store.query_keys(x=9)) == ["a"] and list(store.query_keys(x=1)) == []
    with pytest.raises(KeyError):
        store.multiset_metadata(["a", "missing"], [{"new": 1}, {"new": 2}])
    assert store.get_metadata("a") == {"v": 3, "x": 9, "z": 0}


# ---------------------------------------------------------------- queries and listings


def test_canonical_index_values():
    assert index_value(1) == index_value(1.0) == "1"
    assert index_value(True) != index_value(1)
    assert index_value(None) == "null" and index_value("x") == '"x"'
    assert index_value({"b": [1.0, 2], "a": "é"}) == index_value({"a": "é", "b": [1, 2]})
    assert index_value([1, 2]) != index_value([2, 1])
    assert index_value(2**70) != index_value(float(2**70) + 2**20)
    long_text = "x" * 1000
    assert index_value(long_text).startswith("#") and index_value(long_text) != index_value("x")
    for bad in (float("nan"), {1: 2}, {1, 2}, b"bytes"):
        with pytest.raises((TypeError, ValueError)):
            index_value(bad)


def test_queries_on_structured_and_long_values(store):
    long_text = "y" * 500
    put(store, "a", b"", {"tags": ["x", "y"], "pos": {"x": 1, "y": 2.5}, "text": long_text})
    put(store, "b", b"", {"tags": ["y", "x"], "pos": {"y": 2.5, "x": 1.0}, "text": "short"})
    assert list(store.query_keys(tags=["x", "y"])) == ["a"]
    assert sorted(store.query_keys(pos={"x": 1, "y": 2.5})) == ["a", "b"]
    assert list(store.query_keys(text=long_text)) == ["a"]
    assert list(store.query_keys(text=long_text, tags=("y", "x"))) == []
    assert list(store.query_keys(pos=float("nan"))) == []
    assert list(store.query_keys(pos={1, 2})) == []
    store.update_metadata("a", {"text": "short"})
    assert sorted(store.query_keys(text="short")) == ["a", "b"]
    store.delete("b")
    assert list(store.query_keys(text="short")) == ["a"]


def test_the_query_uses_the_index(db, store):
    store.multiset([f"k{i}" for i in range(200)],
                   [(io.BytesIO(b""), {"g": i % 10, "h": i % 3}) for i in range(200)])
    ran: list[str] = []
    with store._db.use() as conn:  # this thread's connection: record what the store runs
        conn.set_trace_callback(ran.append)
        try:
            found = sorted(store.query_keys(g=3, h=1))
            single = sorted(store.query_keys(g=3))
        finally:
            conn.set_trace_callback(None)
    assert found == sorted(f"k{i}" for i in range(200) if i % 10 == 3 and i % 3 == 1)
    assert len(single) == 20
    queries = [sql for sql in ran if "meta_index" in sql]
    assert any("JOIN keys" in sql for sql in queries)
    with raw(db) as conn:
        for sql in queries:
            plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "USING PRIMARY KEY (name=? AND value=?" in plan, plan
            # No full scan of a table (the count query scans only its own bounded subquery).
            assert not re.search(r"SCAN (k|keys|m|o|meta_index)\b", plan), plan
            assert "TEMP B-TREE" not in plan, plan
            if "JOIN keys" in sql:
                assert "SEARCH k USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    # The SQL text itself drives the key_id range on the index.
    assert "m.key_id > ?" in query_page_sql(2)


def _vm_steps(store, call) -> int:
    """SQLite virtual-machine steps (in units of 100) that ``call`` costs on this thread."""
    steps = [0]

    def tick():
        steps[0] += 1
        return 0

    with store._db.use() as conn:
        conn.set_progress_handler(tick, 100)
        try:
            call()
        finally:
            conn.set_progress_handler(None, 0)
    return steps[0]


def test_list_dir_cost_grows_with_children_not_with_keys_below(store):
    def fill(prefix, n):
        store.multiset([f"{prefix}{i:06d}" for i in range(n)],
                       [(io.BytesIO(b"v"), {}) for _ in range(n)])

    for folder in ("few/a/", "few/b/"):
        fill(folder, 10)
    fill("many/a/", 20_000)
    fill("many/b/", 20_000)
    put(store, "few/z", b"zz")
    put(store, "many/z", b"zz")
    few = _vm_steps(store, lambda: list(store.list_dir("few/")))
    many = _vm_steps(store, lambda: list(store.list_dir("many/")))
    assert many < few * 2 + 10, (few, many)
    entries = [(e.key, e.is_dir, e.size) for e in store.list_dir("many/")]
    assert entries == [("many/a/", True, None), ("many/b/", True, None), ("many/z", False, 2)]
    # Direct children come in key order with their size and modification time.
    listed = list(store.list_dir("many/a/"))
    assert len(listed) == 20_000 and listed[0].key == "many/a/000000"
    assert all(e.size == 1 and e.modified for e in listed[:5])


def test_prefix_bounds_with_unusual_characters(store):
    assert prefix_upper_bound("a/") == "a0"
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\ud7ff") == "\ue000"
    names = ["p\U0010ffff/x", "p\U0010ffffz", "p\ud7ff/y", "p\ue000", "q", "p/", "p/\x01"]
    for name in names:
        put(store, name, b"1")
    assert sorted(store.keys("p\U0010ffff")) == ["p\U0010ffff/x", "p\U0010ffffz"]
    assert list(store.keys("p\ud7ff")) == ["p\ud7ff/y"]
    root = [(e.key, e.is_dir) for e in store.list_dir("")]
    assert root == [("p/", True), ("p\ud7ff/", True), ("p\ue000", False),
                    ("p\U0010ffff/", True), ("p\U0010ffffz", False), ("q", False)]
    assert [e.key for e in store.list_dir("p/")] == ["p/", "p/\x01"]


# ---------------------------------------------------------------- threads and memory stores


def test_concurrent_threads_write_read_and_list(db, store):
    for i in range(20):
        put(store, f"pre/{i}", b"p%d" % i, {"i": i})
    errors: list[BaseException] = []

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # collected and reported by the test
                errors.append(exc)
        return run

    def big_writer():
        store.set("big", (PatternStream(24 * MiB, seed=9), {"big": True}), buffer_size=MiB)

    def small_writer(n):
        def run():
            for i in range(40):
                put(store, f"w{n}/{i}", b"%d" % i, {"w": n})
                store.update_metadata(f"pre/{i % 20}", {f"seen{n}": i})
        return run

    def reader():
        for _ in range(30):
            for i in range(0, 20, 5):
                assert store.to_bytes(f"pre/{i}") == b"p%d" % i
            list(store.list_dir("pre/"))
            list(store.query_keys(i=3))

    threads = [threading.Thread(target=guard(f)) for f in
               (big_writer, small_writer(1), small_writer(2), reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert digest_of(store.get_data("big")) == pattern_digest(24 * MiB, seed=9)
    assert sorted(store.query_keys(w=2)) == sorted(f"w2/{i}" for i in range(40))
    assert store.get_metadata("pre/0")["seen1"] == 20 and store.get_metadata("pre/0")["seen2"] == 20


def test_memory_store_keeps_data_across_disconnect_and_serves_threads():
    store = SqliteStore(":memory:")
    assert store.url == "sqlite://:memory:" and open_store("sqlite://:memory:").memory
    store.set("big", (PatternStream(3 * MiB, seed=5), {"b": 1}))
    errors = []

    def work(n):
        try:
            for i in range(30):
                put(store, f"t{n}/{i}", b"x", {"n": n})
                with store.get_data_range("big", 0, 4) as stream:
                    assert stream.read() == PatternStream(4, seed=5).read(4)
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    with store.transaction("meanwhile"):
        put(store, "in-txn", b"t")
    for t in threads:
        t.join(60)
    assert errors == []
    store.disconnect()
    store.connect()
    assert digest_of(store.get_data("big")) == pattern_digest(3 * MiB, seed=5)
    assert len(list(store.query_keys(n=2))) == 30
    store.disconnect()
