"""What a writer killed mid-push leaves in an S3 bucket is cleaned up by the next connect,
and a live writer's upload is left alone.

The dead writer is a real child process, killed with SIGKILL while its multipart upload
waits for more data; the server is moto's, on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest
import s3fixtures

from storegui.stores.fsspec.store import FsspecStore

MiB = 1 << 20
pytestmark = pytest.mark.s3

s3_server = s3fixtures.s3_server
s3_bucket = s3fixtures.s3_bucket

CHILD = r"""
import io, json, sys
from storegui.stores.fsspec.store import FsspecStore

options = json.loads(sys.argv[2])
store = FsspecStore(sys.argv[1], block_size=5 << 20, **options)
store.connect()
store.set("old", (io.BytesIO(b"previous"), {"v": 1}))

class Stalls(io.RawIOBase):
    # 6 MiB, then waits for stdin (which never comes): the upload stays incomplete.
    left = 6 << 20
    def readable(self):
        return True
    def readinto(self, b):
        if self.left <= 0:
            print("stalled", flush=True)
            sys.stdin.read()
            return 0
        n = min(len(b), self.left)
        b[:n] = b"x" * n
        self.left -= n
        return n

store.set("old", (Stalls(), {"v": 2}))
"""


def wait_for(predicate, seconds=20.0):
    """Poll the server until ``predicate()`` holds (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def uploads(client, bucket):
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def names(client, bucket, prefix):
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket,
                                                     Prefix=prefix).get("Contents", [])]


def parts_uploaded(client, bucket):
    found = uploads(client, bucket)
    return bool(found) and bool(client.list_parts(Bucket=bucket, Key=found[0]["Key"],
                                                  UploadId=found[0]["UploadId"]).get("Parts"))


@pytest.fixture
def client(s3_server):
    c = s3_server.client()
    yield c
    c.close()


def test_a_killed_writers_upload_and_marker_are_cleaned_up(s3_server, s3_bucket, client):
    url = f"s3://{s3_bucket}/store"
    options = s3_server.store_options()
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, json.dumps(options)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready and child.stdout.readline().strip() == b"stalled"
        wait_for(lambda: parts_uploaded(client, s3_bucket))
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdin.close()
        child.stdout.close()
    pending = "store/.storegui/index/pending/"
    assert len(uploads(client, s3_bucket)) == 1
    assert len(names(client, s3_bucket, pending)) == 1
    assert len(names(client, s3_bucket, "store/.storegui/tmp/")) == 1  # the kept old data
    store = FsspecStore(url, **options)
    store.connect()
    try:
        assert uploads(client, s3_bucket) == []
        assert names(client, s3_bucket, pending) == []
        assert names(client, s3_bucket, "store/.storegui/tmp/") == []
        assert store.to_bytes("old") == b"previous"
        assert store.get_metadata("old") == {"v": 1}
        assert list(store.query_keys(v=1)) == ["old"]
    finally:
        store.disconnect()


def test_a_live_writers_upload_is_left_alone(s3_server, s3_bucket, client):
    url = f"s3://{s3_bucket}/store"
    writer = FsspecStore(url, block_size=5 * MiB, **s3_server.store_options())
    writer.connect()
    release, stalled = threading.Event(), threading.Event()
    errors = []

    class Stalls(io.RawIOBase):
        left = 6 * MiB

        def readable(self):
            return True

        def readinto(self, b):
            if self.left <= 0:
                stalled.set()
                release.wait(30)
                return 0
            n = min(len(b), self.left)
            b[:n] = b"y" * n
            self.left -= n
            return n

    def write():
        try:
            writer.set("big", (Stalls(), {"v": "big"}))
        except Exception as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert stalled.wait(30)
        wait_for(lambda: parts_uploaded(client, s3_bucket))
        other = FsspecStore(url, **s3_server.store_options())
        other.connect()  # its sweep must not touch the live upload
        assert len(uploads(client, s3_bucket)) == 1
        assert len(names(client, s3_bucket, "store/.storegui/index/pending/")) == 1
    finally:
        release.set()
        thread.join(30)
    assert errors == []
    assert other.to_bytes("big") == b"y" * (6 * MiB)
    assert other.get_metadata("big") == {"v": "big"}
    other.disconnect()
    writer.disconnect()
