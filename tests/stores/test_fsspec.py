"""FsspecStore against moto's S3 server on 127.0.0.1, fsspec's memory filesystem,
local files and a local HTTP server: layout, key encoding, listings, queries,
streaming, credentials, and a MountedStore over it.

(The generic store contract runs in tests/contract/.)
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import threading
import time
import uuid

import pytest
import s3fixtures
from hypothesis import given, settings
from hypothesis import strategies as st
from s3server import ACCESS_KEY, REGION
from store_helpers import FailingReader

from storegui.stores import (
    InvalidKeyError,
    MemoryStore,
    ProgressReader,
    ReadOnlyError,
    StoreError,
    open_store,
)
from storegui.stores.fsspec import index as index_module
from storegui.stores.fsspec.index import shard_of
from storegui.stores.fsspec.keys import decode_path, encode_key
from storegui.stores.fsspec.store import FsspecStore

MiB = 1 << 20

# The S3 fixtures, registered for this module.
s3_server = s3fixtures.s3_server
s3_env = s3fixtures.s3_env
s3_bucket = s3fixtures.s3_bucket
s3_store = s3fixtures.s3_store
memory_fsspec_store = s3fixtures.memory_fsspec_store


def put(store, key, data=b"", metadata=None):
    store.set(key, (io.BytesIO(data), metadata or {}))


def objects(client, bucket, prefix="store/"):
    """Every object name under ``prefix``, as another tool sees the bucket."""
    names = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names += [o["Key"] for o in page.get("Contents", [])]
    return names


def body(client, bucket, name):
    return client.get_object(Bucket=bucket, Key=name)["Body"].read()


@pytest.fixture
def client(s3_server):
    c = s3_server.client()
    yield c
    c.close()


def s3_twin(server, bucket, **options):
    """Another store instance on the same bucket and root (another process, in effect)."""
    store = FsspecStore(f"s3://{bucket}/store", endpoint_url=server.endpoint_url,
                        key=ACCESS_KEY, secret="x" * 8, client_kwargs={"region_name": REGION},
                        **options)
    store.connect()
    return store


# ---------------------------------------------------------------- layout other tools can read


@pytest.mark.s3
def test_data_and_metadata_are_plain_objects_other_tools_can_read(s3_store, s3_bucket, client):
    key = "photos/2024/a.jpg"
    put(s3_store, key, b"jpeg bytes", {"camera": "x100", "iso": 200})
    assert body(client, s3_bucket, "store/photos/2024/a.jpg") == b"jpeg bytes"
    record = json.loads(body(client, s3_bucket, "store/.storegui/meta/photos/2024/a.jpg.json"))
    assert record["v"] == 1 and record["key"] == key and record["size"] == 10
    assert record["metadata"] == {"camera": "x100", "iso": 200}
    assert record["created"] <= record["modified"] <= time.time() + 1
    shard = json.loads(body(client, s3_bucket, f"store/.storegui/index/{shard_of(key)}.json"))
    assert shard["v"] == 1
    assert shard["keys"][key]["metadata"] == {"camera": "x100", "iso": 200}
    assert objects(client, s3_bucket, "store/.storegui/index/pending/") == []
    assert objects(client, s3_bucket, "store/.storegui/tmp/") == []


@pytest.mark.s3
def test_objects_put_by_other_tools_are_keys_with_empty_metadata(s3_store, s3_bucket, client):
    client.put_object(Bucket=s3_bucket, Key="store/external/x.bin", Body=b"ext")
    put(s3_store, "mine", b"m", {"kind": "mine"})
    value = s3_store.get("external/x.bin")
    assert value.data.read() == b"ext" and value.metadata == {} and value.size == 3
    assert sorted(s3_store.keys()) == ["external/x.bin", "mine"]
    assert [(e.key, e.size) for e in s3_store.list_dir("external/")] == [("external/x.bin", 3)]
    assert dict(s3_store.query()) == {"external/x.bin": {}, "mine": {"kind": "mine"}}
    assert list(s3_store.query_keys(kind="mine")) == ["mine"]


ODD_KEYS = {
    "a//b": "a/%~/b",
    "/lead": "%~/lead",
    "trail/": "trail/%~",
    ".": "%~.",
    "x/../y": "x/%~../y",
    ".storegui/k": "%~.storegui/k",
    "deep/.storegui": "deep/.storegui",
    "back\\slash": "%~back%5Cslash",
    "tab\there": "%~tab%09here",
    "%~looks-encoded": "%~%25~looks-encoded",
    "100%": "100%",
    "ünï cødé/ключ": "ünï cødé/ключ",
    "q?*[x]": "q?*[x]",
}


@pytest.mark.s3
def test_odd_keys_are_stored_under_reversible_names(s3_store, s3_bucket, client):
    for i, key in enumerate(ODD_KEYS):
        put(s3_store, key, str(i).encode(), {"i": i})
    stored = {n for n in objects(client, s3_bucket) if not n.startswith("store/.storegui/")}
    assert stored == {"store/" + name for name in ODD_KEYS.values()}
    assert sorted(s3_store.keys()) == sorted(ODD_KEYS)
    for i, key in enumerate(ODD_KEYS):
        assert s3_store.to_bytes(key) == str(i).encode()
        assert s3_store.get_metadata(key) == {"i": i}
    root = [(e.key, e.is_dir) for e in s3_store.list_dir("")]
    assert (".storegui/", True) in root and ("", False) not in root
    assert [e.key for e in s3_store.list_dir("a/")] == ["a//"]
    assert [e.key for e in s3_store.list_dir("trail/")] == ["trail/"]


@pytest.mark.s3
def test_names_that_are_not_any_keys_path_are_skipped(s3_store, s3_bucket, client):
    client.put_object(Bucket=s3_bucket, Key="store/%~%41", Body=b"not canonical")
    client.put_object(Bucket=s3_bucket, Key="store/folder/", Body=b"")  # a console's folder marker
    put(s3_store, "A", b"real")
    assert list(s3_store.keys()) == ["A"]
    assert [e.key for e in s3_store.list_dir("")] == ["A", "folder/"]
    assert list(s3_store.list_dir("folder/")) == []


@given(st.text(min_size=1, max_size=40).filter(lambda k: "\x00" not in k)
       .filter(lambda k: k.encode("utf-8", "surrogatepass") and not any(
           0xD800 <= ord(c) <= 0xDFFF for c in k)))
def test_key_encoding_round_trips_to_safe_paths(key):
    path = encode_key(key)
    assert decode_path(path) == key
    segments = path.split("/")
    assert all(s and s not in (".", "..") for s in segments)
    assert not segments[0].startswith(".storegui")
    assert not any(c in path for c in "\\\x01\x1f\x7f\t\n")
    if all(s and s not in (".", "..") and "\\" not in s and s.isprintable()
           and not s.startswith("%~") for s in key.split("/")) and not key.startswith(
            ".storegui"):
        assert path == key  # ordinary keys are their own path


# ---------------------------------------------------------------- listings


@pytest.mark.s3
def test_list_dir_is_one_delimiter_listing(s3_server, s3_store):
    for name in ["d/a", "d/b", "d/sub/x", "d/sub/deep/y", "d/sub/deep/z", "e/other"]:
        put(s3_store, name, b"12")
    entries = []
    requests = s3_server.count(lambda: entries.extend(s3_store.list_dir("d/")))
    assert [(e.key, e.is_dir, e.size) for e in entries] == [
        ("d/a", False, 2), ("d/b", False, 2), ("d/sub/", True, None)]
    assert all(e.modified and e.modified > time.time() - 60 for e in entries if not e.is_dir)
    assert len(requests) == 1
    assert "list-type=2" in requests[0] and "delimiter=%2F" in requests[0]
    assert "prefix=store%2Fd%2F" in requests[0]


@pytest.mark.s3
def test_list_dir_pages_through_a_large_folder(s3_server, s3_bucket, s3_env):
    names = {f"store/big/item-{i:04d}": b"x" * (i % 7) for i in range(1205)}
    names["store/big/sub/inner"] = b"in"
    s3_server.put_directly(s3_bucket, names)
    store = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url)
    with store:
        entries = []
        requests = s3_server.count(lambda: entries.extend(store.list_dir("big/")))
        assert len(entries) == 1206 and entries[-1].key == "big/sub/"
        assert entries[10].key == "big/item-0010" and entries[10].size == 3
        assert len([r for r in requests if "list-type=2" in r]) == 2  # 1,000 per page
        assert len(list(store.keys("big/"))) == 1206


def test_list_dir_with_a_partial_prefix_and_another_delimiter(remote):
    for name in ["p/ab", "p/abc/x", "p/b", "p/a-z"]:
        put(remote, name)
    assert [(e.key, e.is_dir) for e in remote.list_dir("p/ab")] == [
        ("p/ab", False), ("p/abc/", True)]
    assert [(e.key, e.is_dir) for e in remote.list_dir("p/a", delimiter="-")] == [
        ("p/a-", True), ("p/ab", False), ("p/abc/x", False)]


@pytest.fixture(params=[pytest.param("s3", marks=pytest.mark.s3), "memory"])
def remote(request):
    """An FsspecStore on the S3 server, and one on fsspec's memory filesystem."""
    return request.getfixturevalue("s3_store" if request.param == "s3" else "memory_fsspec_store")


# ---------------------------------------------------------------- queries


@pytest.mark.s3
def test_a_query_reads_the_index_not_every_key(s3_server, s3_bucket, s3_store):
    for i in range(40):
        put(s3_store, f"q/{i:02d}", b"", {"kind": "odd" if i % 2 else "even", "i": i})
    cold = s3_twin(s3_server, s3_bucket)
    result = []
    requests = s3_server.count(lambda: result.extend(cold.query_keys(kind="odd")))
    assert result == [f"q/{i:02d}" for i in range(1, 40, 2)]
    assert not any("/.storegui/meta/" in r for r in requests)
    shards = {shard_of(f"q/{i:02d}") for i in range(40)}
    assert len(requests) == 1 + len(shards)  # one listing, then each shard once
    warm = s3_server.count(lambda: list(cold.query(select=["i"], kind="even")))
    assert len(warm) == 1  # nothing changed: only the listing
    cold.disconnect()


@pytest.mark.s3
def test_queries_see_writes_of_other_instances(s3_server, s3_bucket, s3_store):
    put(s3_store, "a", b"", {"kind": "x"})
    other = s3_twin(s3_server, s3_bucket)
    assert list(other.query_keys(kind="x")) == ["a"]
    put(s3_store, "b", b"", {"kind": "x"})
    s3_store.update_metadata("a", {"kind": "y"})
    assert list(other.query_keys(kind="x")) == ["b"]
    other.delete("b")
    assert list(s3_store.query_keys(kind="x")) == []
    assert list(s3_store.query_keys(kind="y")) == ["a"]
    other.disconnect()


@pytest.mark.s3
def test_concurrent_writers_keep_each_others_index_entries(s3_server, s3_bucket, s3_store):
    names = [f"k{i}" for i in range(2000)]
    same_shard = [n for n in names if shard_of(n) == "00"][:8]
    other = s3_twin(s3_server, s3_bucket)
    errors = []

    def writer(store, keys):
        try:
            for key in keys:
                put(store, key, b"v", {"by": id(store)})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s3_store, same_shard[::2])),
               threading.Thread(target=writer, args=(other, same_shard[1::2]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    fresh = s3_twin(s3_server, s3_bucket)
    assert sorted(fresh.query_keys(by=id(s3_store))) == sorted(same_shard[::2])
    assert sorted(fresh.query_keys(by=id(other))) == sorted(same_shard[1::2])
    other.disconnect()
    fresh.disconnect()


@pytest.mark.s3
def test_a_write_that_died_before_its_index_entry_is_rechecked(
        s3_store, s3_bucket, client, monkeypatch):
    # What a writer leaves when it dies after the metadata object, before the shard.
    client.put_object(Bucket=s3_bucket, Key="store/ghost", Body=b"boo")
    client.put_object(Bucket=s3_bucket, Key="store/.storegui/meta/ghost.json", Body=json.dumps(
        {"v": 1, "key": "ghost", "metadata": {"kind": "ghost"}, "size": 3, "created": 1.0,
         "modified": 1.0}))
    pending = "store/.storegui/index/pending/"
    client.put_object(Bucket=s3_bucket, Key=pending + "a.json",
                      Body=json.dumps({"v": 1, "key": "ghost", "started": 1.0}))
    # ... and one that died before its data was complete.
    client.put_object(Bucket=s3_bucket, Key=pending + "b.json",
                      Body=json.dumps({"v": 1, "key": "never", "started": 1.0}))
    assert list(s3_store.query_keys(kind="ghost")) == ["ghost"]
    assert len(objects(client, s3_bucket, pending)) == 2  # recent: maybe still being written
    monkeypatch.setattr(index_module, "STALE_PENDING", 0.0)
    assert list(s3_store.query_keys(kind="ghost")) == ["ghost"]
    assert objects(client, s3_bucket, pending) == []  # settled
    shard = json.loads(body(client, s3_bucket, f"store/.storegui/index/{shard_of('ghost')}.json"))
    assert shard["keys"]["ghost"]["metadata"] == {"kind": "ghost"}


@pytest.mark.s3
def test_rebuild_index_recreates_it_from_the_metadata_objects(s3_server, s3_store, s3_bucket,
                                                              client):
    for i in range(12):
        put(s3_store, f"r/{i}", b"", {"n": i % 3})
    for name in objects(client, s3_bucket, "store/.storegui/index/"):
        client.delete_object(Bucket=s3_bucket, Key=name)
    fresh = s3_twin(s3_server, s3_bucket)
    assert list(fresh.query_keys(n=1)) == []  # the index is gone
    assert fresh.rebuild_index() == 12
    assert list(fresh.query_keys(n=1)) == ["r/1", "r/10", "r/4", "r/7"]
    assert list(s3_store.query_keys(n=2)) == ["r/11", "r/2", "r/5", "r/8"]
    fresh.disconnect()


@pytest.mark.s3
def test_multiget_metadata_fetches_concurrently(s3_store):
    for i in range(6):
        put(s3_store, f"m/{i}", b"", {"i": i, "j": -i})
    keys = [f"m/{i}" for i in range(6)]
    assert list(s3_store.multiget_metadata(keys, select=["i"])) == [{"i": i} for i in range(6)]
    with pytest.raises(KeyError):
        list(s3_store.multiget_metadata(["m/0", "missing"]))


# ---------------------------------------------------------------- streaming


@pytest.mark.s3
def test_large_values_stream_in_parts_both_ways(s3_server, s3_bucket, s3_env):
    store = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url,
                        block_size=5 * MiB)
    data = os.urandom(12 * MiB + 123)
    with store:
        reader = ProgressReader(io.BytesIO(data), len(data))
        writes = s3_server.count(lambda: store.set("big", (reader, {"kind": "big"})))
        parts = [r for r in writes if r.startswith("PUT ") and "partNumber=" in r]
        assert any(r.startswith("POST ") and r.endswith("?uploads") for r in writes)
        assert len(parts) == 3  # 5 + 5 + 2 MiB
        digest = hashlib.sha256()
        chunks = []

        def read_all():
            with store.get_data("big") as stream:
                while chunk := stream.read(MiB):
                    chunks.append(len(chunk))
                    digest.update(chunk)

        reads = s3_server.count(read_all)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert max(chunks) == MiB
        assert len([r for r in reads if r.startswith("GET ")]) >= 3  # block by block
        with store.get_data_range("big", 11 * MiB, 11 * MiB + 10) as part:
            assert part.read() == data[11 * MiB:11 * MiB + 10]
        with store.get_data_range("big", MiB, None) as rest:
            assert rest.read() == data[MiB:]


@pytest.mark.s3
def test_a_failed_multipart_upload_leaves_nothing_under_the_key(
        s3_server, s3_bucket, s3_env, client):
    store = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url,
                        block_size=5 * MiB)
    with store:
        put(store, "kept", b"old", {"v": 1})
        for key in ("kept", "fresh"):
            with pytest.raises(OSError, match="simulated read failure"):
                store.set(key, (FailingReader(7 * MiB), {"v": 2}))
        assert store.to_bytes("kept") == b"old" and store.get_metadata("kept") == {"v": 1}
        assert not store.exists("fresh")
        assert [n for n in objects(client, s3_bucket) if "fresh" in n] == []
        assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
        assert objects(client, s3_bucket, "store/.storegui/index/pending/") == []


# ---------------------------------------------------------------- credentials and errors


@pytest.mark.s3
def test_credentials_are_never_shown_or_written(s3_server, s3_bucket, tmp_path, _private_dirs):
    secret = "never-show-this-secret-123"
    store = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url,
                        client_kwargs={"region_name": REGION})
    store.connect({"key": ACCESS_KEY, "secret": secret})
    put(store, "k", b"data", {"m": 1})
    store.disconnect()
    assert store.to_bytes("k") == b"data"  # reconnects with the same credentials
    shown = [repr(store), store.url, json.dumps(store.info())]
    dead = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url="http://127.0.0.1:9",
                       key=ACCESS_KEY, secret=secret, connect_timeout=1, attempts=1)
    with pytest.raises(StoreError) as err:
        dead.connect()
    shown.append(str(err.value))
    assert not any(secret in text for text in shown)
    client = s3_server.client()
    everything = [body(client, s3_bucket, n) for n in objects(client, s3_bucket, "")]
    client.close()
    assert not any(secret.encode() in b for b in everything)
    for folder in (tmp_path, _private_dirs):
        for path in folder.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    pair = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url,
                       client_kwargs={"region_name": REGION})
    pair.connect((ACCESS_KEY, secret))
    assert pair.get_metadata("k") == {"m": 1}
    pair.disconnect()


def test_passwords_in_urls_are_not_shown():
    store = FsspecStore("ftp://alice:hunter2-pass@example.invalid:2121/data")
    assert "hunter2" not in store.url and "hunter2" not in repr(store)
    assert store.url == "ftp://alice@example.invalid:2121/data"
    assert "hunter2" not in json.dumps(store.info())


def test_bad_options_and_urls_are_refused_clearly():
    with pytest.raises(StoreError, match="5242880"):
        FsspecStore("s3://bucket/p", block_size=1024)
    with pytest.raises(StoreError, match="nosuchproto"):
        FsspecStore("nosuchproto://x/y")
    store = FsspecStore("memory://refuse/x")
    with pytest.raises(StoreError, match="credentials must be"):
        store.connect(42)


@pytest.mark.s3
def test_a_key_too_long_for_s3_is_refused(s3_store):
    with pytest.raises(InvalidKeyError, match="1024"):
        put(s3_store, "x" * 1100)
    assert list(s3_store.keys()) == []


# ---------------------------------------------------------------- other filesystems


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab/.\\%~\t é", min_size=1, max_size=12), min_size=1,
                max_size=6, unique=True))
def test_any_keys_round_trip_through_memory(keys):
    store = FsspecStore(f"memory://storegui-prop/{uuid.uuid4().hex}")
    with store:
        for i, key in enumerate(keys):
            put(store, key, str(i).encode(), {"i": i})
        assert list(store.keys()) == sorted(keys)
        for i, key in enumerate(keys):
            assert store.to_bytes(key) == str(i).encode()
        children = {e.key for e in store.list_dir("")}
        expected = {k.split("/", 1)[0] + "/" if "/" in k else k for k in keys}
        assert children == expected
        assert sorted(store.query_keys(i=0)) == [keys[0]]


def test_a_read_only_option_refuses_writes():
    writer = FsspecStore("memory://storegui-ro/shared")
    with writer:
        put(writer, "k", b"v", {"m": 1})
    reader = FsspecStore("memory://storegui-ro/shared", readonly=True)
    with reader:
        assert reader.info()["readonly"] is True
        assert reader.get_metadata("k") == {"m": 1}
        with pytest.raises(ReadOnlyError, match="read-only"):
            put(reader, "k", b"x")
        with pytest.raises(ReadOnlyError):
            reader.rebuild_index()


@pytest.mark.s3
def test_open_store_picks_fsspec_store(s3_server, s3_bucket, s3_env):
    store = open_store(f"s3://{s3_bucket}/p", endpoint_url=s3_server.endpoint_url)
    assert isinstance(store, FsspecStore)
    with store:
        info = store.info()
        assert info["local"] is False and info["protocol"] == "s3" and not info["readonly"]
        assert info["endpoint"] == s3_server.endpoint_url
    assert isinstance(open_store("memory://scratch/root"), FsspecStore)
    assert isinstance(open_store("memory://"), MemoryStore)
    assert open_store("memory://scratch/root").info()["local"] is True


def test_local_files_through_fsspec(tmp_path):
    root = tmp_path / "root"
    with FsspecStore(f"file://{root}") as store:
        put(store, "a/b/c.txt", b"text", {"t": 1})
        assert (root / "a" / "b" / "c.txt").read_bytes() == b"text"
        assert [e.key for e in store.list_dir("a/")] == ["a/b/"]
        assert list(store.query_keys(t=1)) == ["a/b/c.txt"]
        store.delete("a/b/c.txt")
        assert not (root / "a").exists()  # emptied folders go too
        put(store, "n", b"file")
        with pytest.raises(StoreError, match="collide"):
            put(store, "n/inside", b"x")
        assert store.to_bytes("n") == b"file"
        assert list(store.keys()) == ["n"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_an_http_site_is_a_read_only_store(tmp_path):
    site = tmp_path / "site"
    with FsspecStore(f"file://{site}/root") as writer:
        put(writer, "docs/readme.txt", b"hello over http", {"kind": "doc"})
        put(writer, "docs/odd key%.txt", b"odd", {"kind": "odd"})
        put(writer, "top.bin", b"\x00\x01", {})
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = FsspecStore(f"http://127.0.0.1:{server.server_address[1]}/root")
        with store:
            info = store.info()
            assert info["readonly"] is True and info["local"] is False
            value = store.get("docs/readme.txt")
            assert value.data.read() == b"hello over http" and value.metadata == {"kind": "doc"}
            assert store.to_bytes("docs/odd key%.txt") == b"odd"
            assert [(e.key, e.is_dir) for e in store.list_dir("")] == [
                ("docs/", True), ("top.bin", False)]
            assert sorted(e.key for e in store.list_dir("docs/")) == [
                "docs/odd key%.txt", "docs/readme.txt"]
            assert list(store.query_keys(kind="doc")) == ["docs/readme.txt"]
            assert not store.exists("nothing/here")
            with pytest.raises(ReadOnlyError):
                put(store, "new", b"x")
            with pytest.raises(ReadOnlyError):
                store.delete("top.bin")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- a mount over a remote store


@pytest.mark.s3
@pytest.mark.parametrize("mount_kind", ["memory", "filesystem"])
def test_a_local_mount_over_s3_pushes_and_pulls(s3_store, tmp_path, mount_kind):
    from storegui.stores import MountedStore

    if mount_kind == "memory":
        mount = MemoryStore()
    else:
        from storegui.stores import FileSystemStore

        mount = FileSystemStore(tmp_path / "mount")
    mounted = MountedStore("work/", mount, s3_store)
    put(s3_store, "work/remote.txt", b"from s3", {"state": "remote"})
    put(mounted, "work/a.txt", b"local a", {"state": "draft"})
    put(mounted, "work/sub/b.txt", b"local b", {"state": "draft"})
    assert mounted.origin("work/a.txt") == "local"
    assert mounted.push("work/a.txt") == ["work/a.txt"]
    assert mounted.origin("work/a.txt") == "remote"
    assert s3_store.to_bytes("work/a.txt") == b"local a"
    assert mounted.push("work/") == ["work/sub/b.txt"]
    assert sorted(s3_store.query_keys(state="draft")) == ["work/a.txt", "work/sub/b.txt"]
    assert mounted.pull("work/remote.txt") == ["work/remote.txt"]
    assert mounted.origin("work/remote.txt") == "shadowing"
    mounted.update_metadata("work/remote.txt", {"state": "edited"})
    assert s3_store.get_metadata("work/remote.txt") == {"state": "remote"}
    assert mounted.push("work/remote.txt") == ["work/remote.txt"]
    assert s3_store.get_metadata("work/remote.txt") == {"state": "edited"}
    assert [(e.key, e.origin) for e in mounted.list_dir("work/")] == [
        ("work/a.txt", "remote"), ("work/remote.txt", "remote"), ("work/sub/", "remote")]
    mounted.disconnect()
    mounted.connect()
    assert mounted.to_bytes("work/sub/b.txt") == b"local b"


def test_rollback_after_two_writes_of_one_key_restores_its_metadata_whole():
    # The restored copy has a new modified time, hence a new (size, time) tag: the record
    # must name it, or the key's derived figures read as stale and sha256 is dropped.
    store = FsspecStore(f"memory://rollback-{uuid.uuid4().hex}")
    store.connect()
    before = {"size": 3, "sha256": "0" * 64, "note": "mine"}
    store.set("k", (io.BytesIO(b"abc"), before))
    with pytest.raises(RuntimeError), store.transaction("t"):
        store.set("k", (io.BytesIO(b"abcdef"), {"x": 1}))
        store.set_metadata("k", {"y": 2})
        raise RuntimeError("roll back")
    assert store.get_metadata("k") == before
    assert store.to_bytes("k") == b"abc"
