"""FsspecStore writes on S3 are all or nothing, and report honest times and derived metadata.

Faults are injected at each request of a write against moto's real S3 server (the
store's S3 calls are wrapped to fail the chosen request); afterwards the bucket is
read with plain boto3 as another tool would, and through the store.
"""

from __future__ import annotations

import errno
import io
import json
import time

import pytest
import s3fixtures

from storegui.stores import MemoryStore, MountedStore, StoreError
from storegui.stores.fsspec.index import shard_of
from storegui.stores.fsspec.store import FsspecStore

MiB = 1 << 20
pytestmark = pytest.mark.s3

s3_server = s3fixtures.s3_server
s3_bucket = s3fixtures.s3_bucket

OLD, NEW = b"old bytes", b"new bytes, longer"
BIG_NEW = bytes(range(256)) * (6 * MiB // 256)  # two parts of a multipart upload


@pytest.fixture
def client(s3_server):
    c = s3_server.client()
    yield c
    c.close()


@pytest.fixture
def store(s3_server, s3_bucket):
    s = FsspecStore(f"s3://{s3_bucket}/store", block_size=5 * MiB,
                    **s3_server.store_options())
    s.connect()
    yield s
    s.disconnect()


def fail_at(monkeypatch, store, method: str, part: str = "", times: int = 1) -> list:
    """Make the store's next ``times`` S3 ``method`` calls whose Key contains ``part`` fail."""
    fs = store._rfs.fs
    real = fs._call_s3
    hits = []

    async def call(name, *args, **kwargs):
        if name == method and part in kwargs.get("Key", "") and len(hits) < times:
            hits.append(kwargs.get("Key"))
            raise OSError(errno.EIO, f"injected failure of {method}")
        return await real(name, *args, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", call)
    return hits


def names(client, bucket, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def as_other_tools_see_it(client, bucket, key):
    """(data bytes or None, metadata or None) read with boto3."""
    try:
        data = client.get_object(Bucket=bucket, Key=f"store/{key}")["Body"].read()
    except client.exceptions.NoSuchKey:
        data = None
    try:
        raw = client.get_object(Bucket=bucket, Key=f"store/.storegui/meta/{key}.json")
        metadata = json.loads(raw["Body"].read())["metadata"]
    except client.exceptions.NoSuchKey:
        metadata = None
    return data, metadata


def assert_nothing_left(client, bucket):
    assert names(client, bucket, "store/.storegui/tmp/") == []
    assert names(client, bucket, "store/.storegui/index/pending/") == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# (S3 method, part of the object name, the new value is large): every request of a write
# before its metadata object is written.
BEFORE_COMMIT = [
    ("put_object", "index/pending/", False),        # mark pending
    ("head_object", "store/k", False),              # the data's HEAD
    ("get_object", ".storegui/meta/", False),       # the record being replaced
    ("get_object", f"index/{shard_of('k')}", False),  # the key's shard
    ("put_object", "store/k", False),               # a one-request upload
    ("create_multipart_upload", "store/k", True),
    ("upload_part", "store/k", True),
    ("complete_multipart_upload", "store/k", True),
    ("put_object", ".storegui/meta/", False),       # the record: the commit point
    ("put_object", ".storegui/meta/", True),
]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("method,part,big", BEFORE_COMMIT,
                         ids=[f"{m}-{p.strip('/')}-{'big' if b else 'small'}"
                              for m, p, b in BEFORE_COMMIT])
def test_a_write_failing_before_it_commits_leaves_the_key_as_it_was(
        store, s3_bucket, client, monkeypatch, method, part, big, existing):
    if existing:
        store.set("k", (io.BytesIO(OLD), {"v": "old", "sha256": "x"}))
    hits = fail_at(monkeypatch, store, method, part)
    with pytest.raises(StoreError) as err:
        store.set("k", (io.BytesIO(BIG_NEW if big else NEW), {"v": "new"}))
    assert hits, f"the write never called {method}"
    message = str(err.value)
    assert "'k'" in message and store.url in message and "injected failure" in message
    if part in ("store/k", ".storegui/meta/") and method != "get_object" \
            and method != "head_object":  # failures once data or metadata was being written
        assert "unchanged" in message or "put back as it was" in message
    if existing:
        assert as_other_tools_see_it(client, s3_bucket, "k") == (OLD, {"v": "old",
                                                                       "sha256": "x"})
        assert store.to_bytes("k") == OLD
        assert store.get_metadata("k") == {"v": "old", "sha256": "x"}
        assert list(store.query_keys(v="old")) == ["k"]
    else:
        assert as_other_tools_see_it(client, s3_bucket, "k") == (None, None)
        assert not store.exists("k")
        assert list(store.query_keys(v="new")) == []
    assert_nothing_left(client, s3_bucket)


def test_a_failed_backup_copy_changes_nothing(store, s3_bucket, client, monkeypatch):
    store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    fail_at(monkeypatch, store, "copy_object", "store/.storegui/tmp/")
    with pytest.raises(StoreError, match="keeping its previous data failed.*unchanged"):
        store.set("k", (io.BytesIO(NEW), {"v": "new"}))
    assert as_other_tools_see_it(client, s3_bucket, "k") == (OLD, {"v": "old"})
    assert_nothing_left(client, s3_bucket)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("method,part", [("put_object", "index/" + shard_of("k")),
                                         ("delete_object", "index/pending/")],
                         ids=["shard-write", "clear-pending"])
def test_a_write_failing_after_it_committed_has_happened(
        store, s3_bucket, client, monkeypatch, method, part, existing):
    if existing:
        store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    hits = fail_at(monkeypatch, store, method, part)
    store.set("k", (io.BytesIO(NEW), {"v": "new"}))  # the index is a cache: no error
    assert hits
    assert as_other_tools_see_it(client, s3_bucket, "k") == (NEW, {"v": "new"})
    assert store.get_metadata("k") == {"v": "new"}
    # The pending marker left behind makes queries re-read the key.
    assert len(names(client, s3_bucket, "store/.storegui/index/pending/")) == 1
    assert list(store.query_keys(v="new")) == ["k"]
    assert list(store.query_keys(v="old")) == []
    assert names(client, s3_bucket, "store/.storegui/tmp/") == []


def test_a_damaged_shard_does_not_fail_the_write(store, s3_bucket, client):
    store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    client.put_object(Bucket=s3_bucket, Key=f"store/.storegui/index/{shard_of('k')}.json",
                      Body=b"{not json")
    store.set("k", (io.BytesIO(NEW), {"v": "new"}))
    assert as_other_tools_see_it(client, s3_bucket, "k") == (NEW, {"v": "new"})
    with pytest.raises(StoreError, match="damaged.*rebuild_index"):
        list(store.query_keys(v="new"))
    store.rebuild_index()
    assert list(store.query_keys(v="new")) == ["k"]
    assert_nothing_left(client, s3_bucket)


def test_a_failed_restore_says_so(store, s3_bucket, client, monkeypatch):
    store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    fail_at(monkeypatch, store, "put_object", ".storegui/meta/")
    fail_at(monkeypatch, store, "copy_object", "store/k")  # copying the backup back
    with pytest.raises(StoreError) as err:
        store.set("k", (io.BytesIO(NEW), {"v": "new"}))
    message = str(err.value)
    assert "putting its previous state back failed too" in message
    assert "may hold the new data with its previous metadata" in message
    assert "unchanged" not in message and "as it was" not in message


def test_a_push_whose_backing_write_fails_says_what_happened(
        store, s3_bucket, client, monkeypatch):
    store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    mounted = MountedStore("", MemoryStore(), store)
    mounted.set("k", (io.BytesIO(NEW), {"v": "new"}))
    fail_at(monkeypatch, store, "put_object", ".storegui/meta/")
    with pytest.raises(StoreError) as err:
        mounted.push("k")
    assert "put back as it was" in str(err.value)
    assert "local copy is unchanged" in str(err.value)
    assert as_other_tools_see_it(client, s3_bucket, "k") == (OLD, {"v": "old"})
    assert mounted.mount_store.to_bytes("k") == NEW


def test_a_failed_metadata_write_keeps_the_old_metadata(store, s3_bucket, client, monkeypatch):
    store.set("k", (io.BytesIO(OLD), {"v": "old"}))
    fail_at(monkeypatch, store, "put_object", ".storegui/meta/")
    with pytest.raises(StoreError, match="put back as it was"):
        store.update_metadata("k", {"v": "new"})
    assert as_other_tools_see_it(client, s3_bucket, "k") == (OLD, {"v": "old"})
    assert_nothing_left(client, s3_bucket)


def test_write_costs_in_requests(s3_server, store):
    new = s3_server.count(lambda: store.set("n", (io.BytesIO(NEW), {"a": 1})))
    again = s3_server.count(lambda: store.set("n", (io.BytesIO(OLD), {"a": 2})))
    meta = s3_server.count(lambda: store.update_metadata("n", {"a": 3}))
    # marker, HEAD, record, shard | data | record | shard | clear marker
    assert len(new) == 8
    assert len(again) == 10  # + the copy of the previous data, + its removal
    assert len(meta) == 9  # its read (HEAD, record) + the 7 of a write without data


# ---------------------------------------------------------------- times


def test_times_are_never_earlier_than_the_write(store):
    for i in range(5):
        before = time.time()
        store.set("t", (io.BytesIO(b"%d" % i), {"i": i}))
        value = store.get("t")
        assert value.modified >= before
        assert store.stat("t").modified >= before
        if i == 0:
            first = before
            assert value.created >= before
        assert value.created >= first
        value.close()
    before = time.time()
    store.update_metadata("t", {"i": 9})
    assert store.get("t").modified >= before


# ---------------------------------------------------------------- derived metadata


def test_data_rewritten_by_another_tool_drops_stale_derived_metadata(
        store, s3_bucket, client):
    store.set("d", (io.BytesIO(OLD), {"size": len(OLD), "sha256": "0" * 64, "mtime": 1.0,
                                      "kind": "doc"}))
    assert store.get_metadata("d")["sha256"] == "0" * 64
    client.put_object(Bucket=s3_bucket, Key="store/d", Body=NEW)
    head = client.head_object(Bucket=s3_bucket, Key="store/d")
    metadata = store.get_metadata("d")
    assert metadata["size"] == len(NEW) and "sha256" not in metadata
    assert metadata["mtime"] == head["LastModified"].timestamp()
    assert metadata["kind"] == "doc"
    value = store.get("d")
    assert value.size == len(NEW) and value.modified == head["LastModified"].timestamp()
    assert value.metadata == metadata
    value.close()
    assert list(store.multiget_metadata(["d"])) == [metadata]
    mounted = MountedStore("", MemoryStore(), store)
    mounted.pull("d")
    assert mounted.mount_store.to_bytes("d") == NEW
    assert "sha256" not in mounted.mount_store.get_metadata("d")
    assert mounted.mount_store.get_metadata("d")["size"] == len(NEW)


def test_data_as_written_keeps_its_derived_metadata(store):
    big = bytes(6 * MiB)
    store.set("d", (io.BytesIO(big), {"size": len(big), "sha256": "f" * 64}))
    assert store.get_metadata("d") == {"size": len(big), "sha256": "f" * 64}
    store.update_metadata("d", {"x": 1})
    assert store.get_metadata("d")["sha256"] == "f" * 64
    with pytest.raises(RuntimeError), store.transaction():
        store.set("d", (io.BytesIO(b"other"), {"size": 5}))
        raise RuntimeError("roll back")
    assert store.get_metadata("d") == {"size": len(big), "sha256": "f" * 64, "x": 1}
    assert store.to_bytes("d") == big
