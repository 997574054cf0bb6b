"""The Qt-free store core of storegui.

Every store implements the contract of :class:`Store`; :func:`open_store`
builds one from a URL, and :class:`MountedStore` mounts a writable store at a
key prefix over a backing store.
"""

from .contract import Store, Transaction
from .errors import (
    InvalidDataError,
    InvalidKeyError,
    InvalidMetadataError,
    NotConnectedError,
    ReadOnlyError,
    StoreError,
    StoreKeyError,
    TransferCancelled,
    VerificationError,
)
from .events import (
    EventDispatcher,
    StoreDeleteEvent,
    StoreEvent,
    StoreProgressEndEvent,
    StoreProgressStartEvent,
    StoreProgressStepEvent,
    StoreSetEvent,
    StoreTransactionEndEvent,
    StoreTransactionStartEvent,
    StoreUpdateEvent,
)
from .memory import MemoryStore
from .registry import open_store
from .transfer.streaming import CancelToken, CopyResult, ProgressReader, copy_stream, copy_value
from .value import Entry, Value


def __getattr__(name: str):
    # Heavier stores load on first use, so `import storegui.stores` stays cheap.
    if name == "FileSystemStore":
        from .filesystem.store import FileSystemStore

        return FileSystemStore
    if name == "SqliteStore":
        from .sqlite.store import SqliteStore

        return SqliteStore
    if name == "MountedStore":
        from .mounted.store import MountedStore

        return MountedStore
    if name == "FsspecStore":
        from .fsspec.store import FsspecStore

        return FsspecStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CancelToken", "CopyResult", "Entry", "EventDispatcher", "FileSystemStore", "FsspecStore",
    "InvalidDataError", "InvalidKeyError", "InvalidMetadataError", "MemoryStore",
    "MountedStore", "NotConnectedError", "ProgressReader", "ReadOnlyError", "SqliteStore",
    "Store", "StoreDeleteEvent", "StoreError", "StoreEvent", "StoreKeyError",
    "StoreProgressEndEvent", "StoreProgressStartEvent", "StoreProgressStepEvent",
    "StoreSetEvent", "StoreTransactionEndEvent", "StoreTransactionStartEvent",
    "StoreUpdateEvent", "Transaction", "TransferCancelled", "Value", "VerificationError",
    "copy_stream", "copy_value", "open_store",
]
