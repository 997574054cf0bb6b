"""FileSystemStore: a store kept in a folder."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Loaded on first use: the package's helpers (file formats, rules) are imported
    # by the core without pulling in the store class and what it imports.
    if name == "FileSystemStore":
        from .store import FileSystemStore

        return FileSystemStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FileSystemStore"]
