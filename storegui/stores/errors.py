"""Exceptions raised by stores.

Every error a store raises on purpose is a :class:`StoreError`; each carries
the key and the store it concerns, so that the app and the command line can
show a message a user can act on.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Base class of every error a store raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in words a user can read.
    key : str, optional
        The key concerned, if any.
    store : object, optional
        The store concerned, if any (its ``repr`` names it).
    """

    def __init__(self, message: str, key: str | None = None, store: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.store = store

    def __str__(self) -> str:
        return self.message


class StoreKeyError(StoreError, KeyError):
    """A key that does not exist in the store.

    A subclass of :class:`KeyError`, so ``except KeyError`` catches it.
    """

    def __init__(self, key: Any, store: Any = None, message: str | None = None) -> None:
        if message is None:
            where = f" in {store!r}" if store is not None else ""
            message = f"no such key {key!r}{where}"
        StoreError.__init__(self, message, key=key, store=store)

    # KeyError.__str__ would quote the message; keep it readable.
    __str__ = StoreError.__str__


class ReadOnlyError(StoreError):
    """A write to a store, or a part of a key space, that cannot be written."""


class InvalidKeyError(StoreError, ValueError):
    """A key that is not a non-empty string a store can hold."""


class InvalidMetadataError(StoreError, ValueError):
    """Metadata that is not a JSON-compatible dictionary with string keys."""


class InvalidDataError(StoreError, TypeError):
    """A data object that is not a readable binary file-like object."""


class TransferCancelled(StoreError):
    """A streamed transfer was cancelled before it finished; nothing was written."""


class VerificationError(StoreError):
    """A copy did not match its source (size or digest) and was discarded."""


class NotConnectedError(StoreError):
    """The store is disconnected; call ``connect()`` first."""
