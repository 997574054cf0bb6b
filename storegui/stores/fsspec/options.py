"""Options of FsspecStore: what goes to the fsspec filesystem, and what must never be shown.

Option names a user may pass to ``open_store(url, **options)`` /
``FsspecStore(url, **options)``:

``endpoint_url``
    An S3-compatible server (MinIO, Ceph, moto): ``http://127.0.0.1:9000``.
``connect_timeout``, ``read_timeout``, ``attempts``
    Network bounds (S3 and HTTP): seconds to connect, seconds to wait for
    each answer, tries per S3 request (default 5, 30, 2).
``block_size``, ``readonly``
    Streaming block size; refuse writes.
anything else
    Passed to the filesystem: ``key``/``secret``/``token``, ``profile``,
    ``anon``, ``client_kwargs``, ``config_kwargs`` (s3fs); ``username``,
    ``password``, ``port`` (sftp); ``client_kwargs`` (http)...

Credentials may also come from the usual places (``AWS_*`` environment
variables, ``~/.aws`` profiles, fsspec's configuration) or be passed to
``connect(credentials)`` as a dict of such options or a ``(user or key,
password or secret)`` pair. They stay in memory; no file of storegui's holds
them, and URLs, ``repr``, ``info()`` and error messages leave them out.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import StoreError

HTTP = {"http", "https"}
S3 = {"s3", "s3a"}
_SECRET_NAMES = {"key", "secret", "token", "password", "passphrase", "aws_access_key_id",
                 "aws_secret_access_key", "aws_session_token", "account_key", "sas_token",
                 "client_secret"}
_SESSION_ENV = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION")
_sessions: dict[Any, Any] = {}
_sessions_lock = threading.Lock()


def safe_url(url: str) -> str:
    """``url`` without a password in it."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    if password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def check_bucket(protocol: str, url: str) -> None:
    """Refuse an object store URL that names no bucket (``s3://``, ``s3:///prefix``).

    Raises
    ------
    StoreError
        The URL is an S3 (or GCS) URL without a bucket name.
    """
    if protocol not in S3 | {"gs", "gcs"}:
        return
    scheme, _, rest = url.partition("://")
    if not rest.split("/", 1)[0].rsplit("@", 1)[-1]:
        what = "an S3" if protocol in S3 else "a GCS"
        raise StoreError(f"{what} URL needs a bucket: {scheme.lower()}://BUCKET[/PREFIX] "
                         f"(not {safe_url(url)!r})")


def endpoint_of(protocol: str, options: Mapping[str, Any], url: str) -> str:
    """Where requests go: the S3 endpoint URL, or the scheme and host of the URL."""
    endpoint = options.get("endpoint_url") or (options.get("client_kwargs") or {}).get(
        "endpoint_url")
    if endpoint:
        return safe_url(str(endpoint))
    if protocol in S3:
        return "the AWS S3 endpoint"
    if protocol in ("memory", "file", "local"):
        return ""
    parts = urlsplit(url)
    if parts.hostname:
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return ""


def credential_options(protocol: str, credentials: Any, options: Mapping[str, Any]) -> dict:
    """Filesystem options from ``connect(credentials)``.

    Raises
    ------
    StoreError
        ``credentials`` is neither a mapping nor a pair.
    """
    if credentials is None:
        return {}
    if isinstance(credentials, Mapping):
        return dict(credentials)
    if isinstance(credentials, tuple | list) and len(credentials) == 2:
        user, secret = credentials
        if protocol in S3 or protocol in ("gs", "gcs"):
            return {"key": user, "secret": secret}
        if protocol in HTTP:
            import aiohttp

            client = dict(options.get("client_kwargs") or {})
            client["auth"] = aiohttp.BasicAuth(user, secret)
            return {"client_kwargs": client}
        return {"username": user, "password": secret}
    raise StoreError("credentials must be a dict of filesystem options or a "
                     "(user or key, password or secret) pair")


def filesystem_options(protocol: str, options: Mapping[str, Any], credentials: Any,
                       connect: float, read: float, attempts: int) -> dict:
    """The keyword arguments for the fsspec filesystem class."""
    opts = dict(options)
    opts.update(credential_options(protocol, credentials, options))
    if protocol in S3:
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("connect_timeout", connect)
        config.setdefault("read_timeout", read)
        config.setdefault("retries", {"total_max_attempts": attempts, "mode": "standard"})
        opts["config_kwargs"] = config
        opts.setdefault("use_listings_cache", False)
        if "session" not in opts:
            opts["session"] = _aio_session(opts.pop("profile", None))
    elif protocol in HTTP:
        import aiohttp

        client = dict(opts.get("client_kwargs") or {})
        client.setdefault("timeout", aiohttp.ClientTimeout(sock_connect=connect, sock_read=read))
        opts["client_kwargs"] = client
        opts.setdefault("use_listings_cache", False)
    elif protocol in ("sftp", "ssh"):
        opts.setdefault("timeout", connect)
    elif protocol in ("file", "local"):
        opts.setdefault("auto_mkdir", True)
    opts["skip_instance_cache"] = True
    return opts


def _aio_session(profile: str | None) -> Any:
    """A botocore session shared by the stores of this process (creating one costs ~0.2 s).

    A session caches the credentials it found in the environment or profile
    files, so there is one per profile and per state of those variables.
    """
    import aiobotocore.session

    env = tuple(os.environ.get(v) for v in _SESSION_ENV)
    with _sessions_lock:
        session = _sessions.get((profile, env))
        if session is None:
            session = aiobotocore.session.AioSession(profile=profile)
            _sessions[(profile, env)] = session
        return session


def secret_values(*sources: Any) -> list[str]:
    """Every credential-like string value in ``sources`` (options, credentials)."""
    found: list[str] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, Mapping):
            for name, value in obj.items():
                if isinstance(value, str) and name in _SECRET_NAMES:
                    found.append(value)
                else:
                    collect(value)
        elif isinstance(obj, tuple | list):
            found.extend(v for v in obj if isinstance(v, str))
        elif hasattr(obj, "password") and isinstance(getattr(obj, "password", None), str):
            found.append(obj.password)  # aiohttp.BasicAuth

    for source in sources:
        collect(source)
    return found
