"""pytest fixtures for tests against moto's S3 server (see s3server.py).

Import the fixtures into a test module (``from s3fixtures import s3_server,
...``) or register the module once with ``pytest_plugins = ["s3fixtures"]``
in a conftest.py. One server runs for the whole session; every test gets a
bucket of its own, so tests never see each other's keys.
"""

from __future__ import annotations

import atexit
import uuid

import pytest
from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

_shared: S3Server | None = None


def shared_s3_server() -> S3Server:
    """The session's S3 server, started on first use (also usable outside fixtures)."""
    global _shared
    if _shared is None:
        _shared = S3Server().start()
        atexit.register(_shared.stop)
    elif not _shared.running:
        _shared.start()
    return _shared


def fsspec_s3_store(server: S3Server, **options):
    """A new FsspecStore on a fresh bucket of ``server`` (not connected)."""
    from storegui.stores.fsspec.store import FsspecStore

    return FsspecStore(f"s3://{server.new_bucket()}/store", **server.store_options(**options))


def fsspec_memory_store(**options):
    """A new FsspecStore on a fresh root of fsspec's in-memory filesystem (not connected)."""
    from storegui.stores.fsspec.store import FsspecStore

    return FsspecStore(f"memory://storegui-tests/{uuid.uuid4().hex}", **options)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1, for the whole session."""
    server = shared_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch):
    """Dummy AWS credentials and region in the environment, and no profile files."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket."""
    return s3_server.new_bucket()


@pytest.fixture
def s3_store(s3_server, s3_bucket, s3_env):
    """A connected FsspecStore on ``s3://<new bucket>/store``, credentials from the environment."""
    from storegui.stores.fsspec.store import FsspecStore

    store = FsspecStore(f"s3://{s3_bucket}/store", endpoint_url=s3_server.endpoint_url,
                        connect_timeout=2.0, read_timeout=10.0)
    store.connect()
    yield store
    store.disconnect()


@pytest.fixture
def memory_fsspec_store():
    """A connected FsspecStore on a fresh ``memory://`` root."""
    store = fsspec_memory_store()
    store.connect()
    yield store
    store.disconnect()
