"""MountedStore: a writable store mounted at a key prefix over a backing store."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Loaded on first use: the package's helpers (file formats, rules) are imported
    # by the core without pulling in the store class and what it imports.
    if name == "MountedStore":
        from .store import MountedStore

        return MountedStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MountedStore"]
