"""FsspecStore: a store under any fsspec filesystem (S3, SFTP, HTTP...)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Loaded on first use: the package's helpers (file formats, rules) are imported
    # by the core without pulling in the store class and what it imports.
    if name == "FsspecStore":
        from .store import FsspecStore

        return FsspecStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FsspecStore"]
