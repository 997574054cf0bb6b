"""FsspecStore when the S3 server misbehaves: it dies mid-push or mid-read, cannot be
reached, refuses the credentials, has no such bucket, or accepts connections and
never answers. Each failure must be a StoreError naming the store URL (and the key)
that arrives in bounded time and leaves nothing partial behind.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time

import pytest
import s3fixtures
from s3server import REGION, S3Server, free_port

from storegui.stores import MemoryStore, StoreError
from storegui.stores.fsspec.store import FsspecStore

MiB = 1 << 20
pytestmark = pytest.mark.s3

s3_server = s3fixtures.s3_server
s3_env = s3fixtures.s3_env


@pytest.fixture
def dying_server(s3_env):
    """A server of this test's own, which the test may kill and restart."""
    server = S3Server().start()
    yield server
    server.stop()


def remote_store(server: S3Server, bucket: str, **options) -> FsspecStore:
    options = {"block_size": 5 * MiB, "connect_timeout": 1.0, "read_timeout": 5.0, **options}
    return FsspecStore(f"s3://{bucket}/store", endpoint_url=server.endpoint_url, **options)


def mounted_over(backing):
    from storegui.stores import MountedStore

    return MountedStore("", MemoryStore(), backing)


def start_push_that_kills(server: S3Server, mounted, key: str) -> tuple[StoreError, float]:
    """Push ``key`` and kill the server once 7 MiB went out; return the error and the time."""
    killed = []

    def progress(done, total):
        if done >= 7 * MiB and not killed:
            server.kill()
            killed.append(done)

    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        mounted.push(key, progress=progress)
    assert killed, "the push finished before the server could be killed"
    return err.value, time.monotonic() - start


def test_a_server_dying_mid_push_keeps_the_mount_copy(dying_server):
    bucket = dying_server.new_bucket()
    backing = remote_store(dying_server, bucket)
    mounted = mounted_over(backing)
    data = os.urandom(20 * MiB)
    mounted.set("big/blob.bin", (io.BytesIO(data), {"kind": "blob"}))
    error, elapsed = start_push_that_kills(dying_server, mounted, "big/blob.bin")
    message = str(error)
    assert "big/blob.bin" in message
    assert f"s3://{bucket}/store" in message and dying_server.endpoint_url in message
    assert elapsed < 30
    assert mounted.mount_store.to_bytes("big/blob.bin") == data
    assert mounted.mount_store.get_metadata("big/blob.bin") == {"kind": "blob"}
    dying_server.start()  # to look at what the backing store holds now
    assert mounted.origin("big/blob.bin") == "local"
    client = dying_server.client()
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix="store/big/")
        assert listed.get("KeyCount", 0) == 0  # no partial object under the key
    finally:
        client.close()
    assert not backing.exists("big/blob.bin")
    assert list(backing.list_dir("big/")) == []
    assert list(backing.query_keys(kind="blob")) == []
    backing.disconnect()


def test_a_push_retried_after_the_server_restarts_succeeds(dying_server):
    bucket = dying_server.new_bucket()
    backing = remote_store(dying_server, bucket)
    mounted = mounted_over(backing)
    data = os.urandom(12 * MiB)
    mounted.set("big/blob.bin", (io.BytesIO(data), {"kind": "blob"}))
    start_push_that_kills(dying_server, mounted, "big/blob.bin")
    dying_server.restart()  # same port; the bucket is still there
    assert mounted.push("big/blob.bin") == ["big/blob.bin"]
    assert mounted.origin("big/blob.bin") == "remote"
    assert not mounted.mount_store.exists("big/blob.bin")
    assert backing.to_bytes("big/blob.bin") == data
    assert backing.get_metadata("big/blob.bin") == {"kind": "blob"}
    assert list(backing.query_keys(kind="blob")) == ["big/blob.bin"]
    backing.disconnect()


def test_a_server_dying_mid_read_is_a_store_error(dying_server):
    bucket = dying_server.new_bucket()
    store = remote_store(dying_server, bucket)
    data = os.urandom(16 * MiB)
    store.set("k", (io.BytesIO(data), {}))
    stream = store.get_data("k")
    assert stream.read(MiB) == data[:MiB]
    dying_server.kill()
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        while stream.read(MiB):
            pass
    assert time.monotonic() - start < 30
    assert "'k'" in str(err.value) and dying_server.endpoint_url in str(err.value)
    stream.close()
    dying_server.start()
    assert store.to_bytes("k") == data
    store.disconnect()


def test_an_unreachable_endpoint(s3_env):
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = FsspecStore("s3://some-bucket/data", endpoint_url=endpoint, connect_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.get("k")  # connects on first use
    assert time.monotonic() - start < 15
    assert f"cannot reach {endpoint}" in str(err.value)
    assert "s3://some-bucket/data" in str(err.value)


def test_a_missing_bucket(s3_server, s3_env):
    store = FsspecStore("s3://no-such-bucket-here/data", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(StoreError) as err:
        store.connect()
    assert "bucket 'no-such-bucket-here' does not exist" in str(err.value)
    assert s3_server.endpoint_url in str(err.value)
    assert not store.is_connected()


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out(silent_server, s3_env):
    store = FsspecStore("s3://bucket/data", endpoint_url=silent_server, connect_timeout=1.0,
                        read_timeout=1.0, attempts=1)
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.connect()
    assert time.monotonic() - start < 10
    assert f"{silent_server} did not answer within 1 s" in str(err.value)


@pytest.fixture
def auth_server(dying_server):
    """The server enforcing credentials: (server, bucket, access key id, secret)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    bucket = dying_server.new_bucket()
    iam = dying_server.client_for("iam")
    iam.create_user(UserName="storegui")
    iam.put_user_policy(UserName="storegui", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="storegui")["AccessKey"]
    iam.close()
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield dying_server, bucket, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_wrong_credentials_are_refused_without_showing_them(auth_server):
    server, bucket, key_id, secret = auth_server

    def store():
        return FsspecStore(f"s3://{bucket}/data", endpoint_url=server.endpoint_url,
                           client_kwargs={"region_name": REGION})

    for credentials in [(key_id, "wrong-secret-for-sure"),
                        ("AKIAUNKNOWNKEY000000", "another-wrong-secret")]:
        with pytest.raises(StoreError) as err:
            store().connect(credentials)
        message = str(err.value)
        assert f"{server.endpoint_url} denied access" in message
        assert "check the credentials" in message and f"s3://{bucket}/data" in message
        assert credentials[1] not in message
    good = store()
    good.connect({"key": key_id, "secret": secret})
    good.set("k", (io.BytesIO(b"allowed"), {"who": "me"}))
    assert good.to_bytes("k") == b"allowed"
    good.disconnect()
    wrong = FsspecStore(f"s3://{bucket}/data", endpoint_url=server.endpoint_url,
                        client_kwargs={"region_name": REGION}, key=key_id,
                        secret="a-wrong-secret-option")
    with pytest.raises(StoreError) as err:
        wrong.get_metadata("k")
    assert "denied access" in str(err.value)
    assert "a-wrong-secret-option" not in str(err.value)
