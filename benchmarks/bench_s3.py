"""FsspecStore against moto's S3 server on 127.0.0.1: push throughput and query cost (issue 3).

1. Push: a large key (256 MiB) in a local FileSystemStore, pushed through a
   MountedStore into an FsspecStore on the S3 server (streamed multipart
   upload, metadata object, index shard, size check, then the local copy is
   dropped), next to a plain ``s3fs`` ``put`` of the same file. One run of
   each; ratio = put time / push time (above 1: the push is faster).
2. Queries over N keys (10,000): the keys are laid out in the bucket as
   FsspecStore writes them (data, metadata objects and index shards; with
   ``--rebuild`` the index is built by ``rebuild_index()`` instead, which
   reads every metadata object: slow on moto, about 100 requests/s). Then a
   query from a fresh store instance (cold: one listing of the index folder
   plus every shard), the same store's next query (warm: the listing only), a
   query without criteria (a walk of the keys), and as the reference the
   naive way: reading every metadata object, concurrently.

Requests are counted at the server and given in the notes. The server runs
in this process, so its work and the client's share the machine.

Run alone (needs the test extra: moto, s3fs, boto3)::

    python -m benchmarks.bench_s3 --size 256MiB --keys 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    MiB,
    Row,
    add_common_arguments,
    format_size,
    limit_row,
    parse_size,
    scratch_dir,
    standalone,
    throughput_row,
    write_random_file,
)

NAME = "s3"
SMOKE_ARGS = ["--size", "6MiB", "--keys", "300"]
COLD_QUERY_LIMIT_S = 5.0

# s3server.py lives with the tests; it wraps moto's server so requests can be counted.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's arguments."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_s3",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=256 * MiB,
                        help="size of the pushed value (default 256MiB)")
    parser.add_argument("--keys", type=int, default=10_000, help="keys to query (10000)")
    parser.add_argument("--rebuild", action="store_true",
                        help="build the index with rebuild_index() (slow on moto)")
    parser.add_argument("--dir", help="scratch folder for the pushed file")
    add_common_arguments(parser)
    return parser


def _timed(server: Any, fn: Any) -> tuple[Any, float, int]:
    before = len(server.requests)
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, len(server.requests) - before


def _store(server: Any, bucket: str) -> Any:
    from s3server import ACCESS_KEY, REGION, SECRET_KEY

    from storegui.stores.fsspec.store import FsspecStore

    store = FsspecStore(f"s3://{bucket}/store", endpoint_url=server.endpoint_url,
                        key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"region_name": REGION})
    store.connect()
    return store


def bench_push(server: Any, size: int, scratch: str) -> list[Row]:
    """The push next to a plain s3fs put of the same file."""
    import s3fs
    from s3server import ACCESS_KEY, REGION, SECRET_KEY

    from storegui.stores import FileSystemStore, MountedStore

    source = os.path.join(scratch, "big.bin")
    write_random_file(source, size)
    local = FileSystemStore(os.path.join(scratch, "mount"))
    local.from_file("big.bin", source, metadata={"kind": "benchmark"})
    bucket = server.new_bucket("bench")
    backing = _store(server, bucket)
    mounted = MountedStore("", local, backing)
    _, push_s, push_requests = _timed(server, lambda: mounted.push("big.bin"))
    if backing.stat("big.bin").size != size:
        raise SystemExit("the pushed copy has the wrong size")
    backing.disconnect()
    fs = s3fs.S3FileSystem(endpoint_url=server.endpoint_url, key=ACCESS_KEY, secret=SECRET_KEY,
                           client_kwargs={"region_name": REGION}, skip_instance_cache=True)
    _, put_s, put_requests = _timed(server, lambda: fs.put(source, f"{bucket}/plain.bin"))
    return [throughput_row(
        f"push of {format_size(size)} to S3 (moto)", size, push_s, put_s, "s3fs put", None,
        f"{push_requests} requests for the push, {put_requests} for the put; one run each")]


def _lay_out(server: Any, bucket: str, count: int, with_index: bool) -> None:
    """``count`` keys as FsspecStore lays them out (data, metadata objects, index shards)."""
    from storegui.stores.fsspec.index import shard_of
    from storegui.stores.fsspec.keys import encode_key

    objects: dict[str, bytes] = {}
    shards: dict[str, dict] = {}
    now = time.time()
    for i in range(count):
        key = f"data/{i % 100:02d}/item-{i:06d}.bin"
        rel = encode_key(key)
        metadata = {"kind": f"k{i % 50}", "i": i, "tags": ["a"]}
        objects[f"store/{rel}"] = b"x" * 16
        objects[f"store/.storegui/meta/{rel}.json"] = json.dumps(
            {"v": 1, "key": key, "metadata": metadata, "size": 16, "created": now,
             "modified": now}).encode()
        shards.setdefault(shard_of(key), {})[key] = {"metadata": metadata, "created": now}
    if with_index:
        for shard, keys in shards.items():
            objects[f"store/.storegui/index/{shard}.json"] = json.dumps(
                {"v": 1, "keys": keys}).encode()
    server.put_directly(bucket, objects)


def bench_queries(server: Any, count: int, rebuild: bool) -> list[Row]:
    """Cold, warm and criteria-less queries over ``count`` keys, and the naive reads."""
    rows = []
    bucket = server.new_bucket("query")
    _lay_out(server, bucket, count, with_index=not rebuild)
    if rebuild:
        builder = _store(server, bucket)
        n, seconds, requests = _timed(server, builder.rebuild_index)
        builder.disconnect()
        rows.append(limit_row(f"rebuild_index over {n:,} keys", seconds, "s", None,
                              note=f"{requests} requests"))
    store = _store(server, bucket)
    hits, cold_s, cold_requests = _timed(server, lambda: list(store.query_keys(kind="k7")))
    if len(hits) != len(range(7, count, 50)):
        raise SystemExit(f"the query found {len(hits)} keys")
    _, warm_s, warm_requests = _timed(server, lambda: list(store.query_keys(kind="k8")))
    everything, all_s, all_requests = _timed(server, lambda: dict(store.query()))
    rfs = store._rfs
    paths = [store._meta_path(k) for k in everything]
    _, naive_s, naive_requests = _timed(server, lambda: rfs.run(*(rfs.read(p) for p in paths)))
    store.disconnect()
    naive = f"{naive_s:.2f} s (read every metadata object, {naive_requests} requests)"
    rows += [
        limit_row(f"query over {count:,} keys, fresh store", cold_s, "s", COLD_QUERY_LIMIT_S,
                  naive, naive_s / cold_s, f"{cold_requests} requests: the index listing and "
                  f"each shard; {len(hits)} hits", digits=2),
        limit_row(f"query over {count:,} keys, repeated", warm_s, "s", None, naive,
                  naive_s / warm_s, f"{warm_requests} request(s): the index listing",
                  digits=2),
        limit_row(f"query() of all {count:,} keys", all_s, "s", None, naive, naive_s / all_s,
                  f"{all_requests} requests: a walk of the keys (1,000 per listing)", digits=2),
    ]
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    """Start the server, run both parts, stop it."""
    from s3server import REGION, S3Server

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    server = S3Server().start()
    try:
        with scratch_dir(args.dir, args.size) as scratch:
            rows = bench_push(server, args.size, scratch)
        return rows + bench_queries(server, args.keys, args.rebuild)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(standalone(sys.modules[__name__]))
