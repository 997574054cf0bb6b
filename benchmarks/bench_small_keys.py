"""Many small keys: multiset and an indexed query (issue 6, target 3).

- ``multiset`` of ``--keys`` keys (``--value-size``-byte values, metadata
  ``{"index": i, "group": i % G, "label": "sample"}``) into a new
  MemoryStore, and into a new SqliteStore file (one transaction). Targets:
  100,000 and 50,000 keys/s. References, interleaved with ours: the same
  keys put in a plain dict (with ``json.dumps`` of the metadata), and
  inserted by raw ``sqlite3`` ``executemany`` into a bare key/metadata/data
  table (no metadata index), the floor of each kind of store.
- an equality query on one metadata field (``group``) over a SqliteStore of
  ``--query-keys`` keys, each group holding ``query-keys / groups`` keys:
  ``query_keys`` (keys only) and ``query`` (keys and metadata). Target 100 ms.
  Reference: the same indexed lookup in raw SQL on the same file. The first
  query after connecting (cold SQLite page cache, warm OS cache) is reported
  too.

Run alone: ``python -m benchmarks.bench_small_keys --keys 100000 --query-keys 1000000``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import (
    Row,
    add_common_arguments,
    add_round_arguments,
    interleave,
    limit_row,
    median_seconds,
    parse_size,
    quiesce,
    rate_row,
    scratch_dir,
    standalone,
)

NAME = "small_keys"
SMOKE_ARGS = ["--keys", "1000", "--query-keys", "10000", "--rounds", "1", "--warmup", "0",
              "--queries", "2", "--no-flush"]

MEMORY_TARGET = 100_000  # keys/s
SQLITE_TARGET = 50_000  # keys/s
QUERY_LIMIT_MS = 100.0
BUILD_BATCH = 100_000


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments: counts, rounds, where the SQLite files go."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_small_keys",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=100_000,
                   help="keys per multiset (default 100000)")
    p.add_argument("--value-size", type=parse_size, default=64, help="bytes per value (64)")
    p.add_argument("--query-keys", type=int, default=1_000_000,
                   help="keys in the store queried (default 1000000)")
    p.add_argument("--groups", type=int, default=100,
                   help="distinct values of the queried field (default 100: 1%% match)")
    p.add_argument("--queries", type=int, default=5,
                   help="timed queries of each kind, on different values (median; default 5)")
    add_round_arguments(p, "multiset rounds", "timed multiset")
    p.add_argument("--dir", default=None, help="folder for the SQLite files (default: temp)")
    add_common_arguments(p)
    return p


def _key(i: int) -> str:
    return f"batch-{i // 10_000:03d}/item-{i:07d}"


def _metadata(i: int, groups: int) -> dict[str, Any]:
    return {"index": i, "group": i % groups, "label": "sample"}


def _values(start: int, count: int, payload: bytes, groups: int) -> tuple[list[str], list[tuple]]:
    """Keys and fresh ``(stream, metadata)`` values (streams are consumed by a write)."""
    keys = [_key(i) for i in range(start, start + count)]
    values = [(io.BytesIO(payload), _metadata(i, groups)) for i in range(start, start + count)]
    return keys, values


# ---------------------------------------------------------------------- multiset


def _multiset_sides(args: argparse.Namespace, root: str, kind: str
                    ) -> dict[str, Callable[[int], Any]]:
    """The timed calls of one round (ours, reference); inputs are prepared untimed."""
    from storegui.stores.memory import MemoryStore
    from storegui.stores.sqlite.store import SqliteStore

    payload = os.urandom(args.value_size)
    n, groups = args.keys, args.groups
    prepared: dict[str, Any] = {}

    def finish() -> None:
        old = prepared.pop("store", None)
        if old is not None:
            old.disconnect()

    def prepare() -> None:  # fresh streams and stores, untimed (see interleave's before_each)
        finish()
        if args.flush:
            quiesce()
        prepared["input"] = _values(0, n, payload, groups)
        prepared["count"] = prepared.get("count", 0) + 1
        if kind == "sqlite":
            path = os.path.join(root, f"multiset-{prepared['count']}.sqlite")
            store = SqliteStore(path)
            store.connect()
            prepared["store"] = store
            prepared["raw"] = os.path.join(root, f"raw-{prepared['count']}.sqlite")
        else:
            prepared["store"] = MemoryStore()

    def ours(_round: int) -> None:
        keys, values = prepared["input"]
        prepared["store"].multiset(keys, values)  # committed when it returns

    def reference(_round: int) -> None:
        keys, values = prepared["input"]
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        if kind == "memory":
            table = {}
            for key, (stream, md) in zip(keys, values, strict=True):
                table[key] = (stream.read(), dumps(md))
            return
        conn = sqlite3.connect(prepared["raw"], isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, metadata TEXT NOT NULL,"
                         " data BLOB)")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO kv VALUES (?, ?, ?)",
                             [(key, dumps(md), stream.read())
                              for key, (stream, md) in zip(keys, values, strict=True)])
            conn.execute("COMMIT")
        finally:
            conn.close()

    return {"prepare": prepare, "finish": finish, "ours": ours,  # type: ignore[dict-item]
            "reference": reference}


def _run_multiset(args: argparse.Namespace, root: str, kind: str) -> Row:
    sides = _multiset_sides(args, root, kind)
    prepare, finish = sides.pop("prepare"), sides.pop("finish")
    try:
        results = interleave(sides, args.rounds, args.warmup, before_each=prepare)  # type: ignore
    finally:
        finish()  # type: ignore[call-arg]
    n = args.keys
    ours = n / median_seconds(results["ours"])
    ref = n / median_seconds(results["reference"])
    if kind == "memory":
        return rate_row(f"multiset {n:,} keys ({args.value_size} B values, 3 fields) into "
                        "MemoryStore", ours, "keys/s", MEMORY_TARGET,
                        reference=f"{ref:,.0f} keys/s (dict + json.dumps)", ratio=ours / ref)
    return rate_row(f"multiset {n:,} keys ({args.value_size} B values, 3 fields) into "
                    "SqliteStore, one transaction", ours, "keys/s", SQLITE_TARGET,
                    reference=f"{ref:,.0f} keys/s (raw sqlite3, no index)", ratio=ours / ref)


# ---------------------------------------------------------------------- query


def _build(path: str, args: argparse.Namespace) -> float:
    """Fill a SqliteStore with ``--query-keys`` keys; returns keys/s of the build."""
    from storegui.stores.sqlite.store import SqliteStore

    payload = os.urandom(args.value_size)
    store = SqliteStore(path)
    started = time.perf_counter()
    try:
        for start in range(0, args.query_keys, BUILD_BATCH):
            keys, values = _values(start, min(BUILD_BATCH, args.query_keys - start), payload,
                                   args.groups)
            store.multiset(keys, values)
    finally:
        store.disconnect()
    return args.query_keys / (time.perf_counter() - started)


def _raw_query(conn: sqlite3.Connection, group: int) -> list[str]:
    return [k for (k,) in conn.execute(
        "SELECT k.key FROM meta_index AS m CROSS JOIN keys AS k ON k.id = m.key_id"
        " WHERE m.name = 'group' AND m.value = ?", (str(group),))]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _run_query(args: argparse.Namespace, root: str) -> list[Row]:
    from storegui.stores.sqlite.store import SqliteStore

    path = os.path.join(root, "query.sqlite")
    build_rate = _build(path, args)
    if args.flush:
        quiesce()
    expected = len(range(0, args.query_keys, args.groups))
    store = SqliteStore(path)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA cache_size = -65536")  # the store's cache size: a like-for-like floor
    try:
        # First query after connecting: SQLite's page cache is empty.
        cold_s, first = _timed(lambda: list(store.query_keys(group=1)))
        if len(first) != expected:
            raise AssertionError(f"query returned {len(first)} keys, expected {expected}")
        times: dict[str, list[float]] = {"keys": [], "items": [], "raw": []}
        groups = [2 + q % max(1, args.groups - 2) for q in range(args.queries + 1)]
        for n, group in enumerate(groups):  # the first one warms up
            calls = [("keys", lambda g=group: list(store.query_keys(group=g))),
                     ("items", lambda g=group: list(store.query(group=g))),
                     ("raw", lambda g=group: _raw_query(raw, g))]
            for name, call in (calls if n % 2 == 0 else calls[::-1]):
                seconds, result = _timed(call)
                if len(result) != expected:
                    raise AssertionError(f"{name} query returned {len(result)} keys")
                if n:
                    times[name].append(seconds)
    finally:
        raw.close()
        store.disconnect()
    raw_ms = statistics.median(times["raw"]) * 1000
    what = f"over {args.query_keys:,} keys in SqliteStore -> {expected:,}"
    rows = []
    for name, label in (("keys", "query_keys(group=g)"), ("items", "query(group=g)")):
        ms = statistics.median(times[name]) * 1000
        rows.append(limit_row(f"{label} {what} {'keys' if name == 'keys' else 'items'}", ms,
                              "ms", QUERY_LIMIT_MS, reference=f"{raw_ms:.1f} ms (raw SQL)",
                              ratio=raw_ms / ms))
    rows.append(limit_row(f"first query_keys after connect {what} keys", cold_s * 1000, "ms",
                          None, note="informational: SQLite's page cache starts empty"))
    rows.append(rate_row(f"building the {args.query_keys:,}-key store (multiset of "
                         f"{BUILD_BATCH:,} at a time)", build_rate, "keys/s", None))
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    """Run the multiset rounds and the queries; the table rows."""
    # A 1,000,000-key store is about 100 MB on disk; the multiset files are small.
    with scratch_dir(args.dir, 400 * args.query_keys + 1000 * args.keys * 8) as root:
        rows = [_run_multiset(args, root, "memory"), _run_multiset(args, root, "sqlite")]
        rows += _run_query(args, root)
    return rows


if __name__ == "__main__":
    sys.exit(standalone(sys.modules[__name__]))
