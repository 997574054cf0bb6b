"""SqliteStore: a store in one SQLite file (plus its value files)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Loaded on first use: the package's helpers (file formats, rules) are imported
    # by the core without pulling in the store class and what it imports.
    if name == "SqliteStore":
        from .store import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SqliteStore"]
