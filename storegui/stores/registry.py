"""``open_store(url)``: pick and build a store from a URL."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from .contract import Store
from .errors import StoreError


def open_store(url: str | os.PathLike, **options: Any) -> Store:
    """Build the store a URL names (not yet connected).

    ========================  ==================
    ``memory://``             MemoryStore
    a path, ``file://PATH``   FileSystemStore
    ``sqlite://PATH``         SqliteStore (``sqlite://:memory:`` too)
    other fsspec protocols    FsspecStore (``s3://``, ``https://`` read-only, ...)
    ========================  ==================

    ``options`` go to the store's constructor.

    Raises
    ------
    StoreError
        If the URL names no store kind this program knows.
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"a store URL must be a non-empty string, not {url!r}")
    url = url.strip()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "memory" and url.rstrip("/") == "memory:":
        from .memory import MemoryStore

        return MemoryStore(**options)
    if scheme in ("", "file"):
        from .filesystem.store import FileSystemStore

        path = unquote(url[len("file://"):]) if scheme == "file" else url
        return FileSystemStore(os.path.expanduser(path), **options)
    if scheme == "sqlite":
        from .sqlite.store import SqliteStore

        path = unquote(url[len("sqlite://"):])
        if not path:
            raise StoreError(f"{url!r} names no SQLite file (use sqlite:///path/to/file.db)")
        return SqliteStore(os.path.expanduser(path), **options)
    try:
        from .fsspec.store import FsspecStore
    except ImportError as exc:
        raise StoreError(f"cannot open {url!r}: remote stores need fsspec ({exc})") from None
    return FsspecStore(url, **options)
