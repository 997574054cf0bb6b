"""Exceptions raised by stores.

Every error a store raises on purpose is a :class:`StoreError`; each carries
the key and the store it concerns, so that the app and the command line can
show a message a user can act on.
"""

from __future__ import annotations

import errno
from typing import Any

#: What each "no room to write" errno means to a user: a full disk, a used-up
#: quota, a file size limit. A read never fails with these.
NO_ROOM = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than the file system or a file size limit allows",
}
_NO_ROOM_ADVICE = {
    errno.ENOSPC: "free some space and try again",
    errno.EDQUOT: "free some space (or have the quota raised) and try again",
    errno.EFBIG: "store it where larger files are allowed",
}


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
            # The store by its URL (or its stores' URLs), never its repr.
            where = f" in {store_label(store)}" if store is not None else ""
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


class DiskFullError(StoreError):
    """A write found no room (full disk, quota, size limit); the key is as it was."""


def store_label(store: Any) -> str:
    """How a message names ``store``: its URL (never a password), else its kind.

    A mounted store, which has no URL of its own, is named by its two stores' URLs.
    """
    url = getattr(store, "url", "")
    if isinstance(url, str) and url:
        return f"the store {url}"
    mount, backing = getattr(store, "mount_store", None), getattr(store, "backing_store", None)
    if mount is not None and backing is not None:
        return f"the mount store {_url_or_kind(mount)} or the backing store {_url_or_kind(backing)}"
    return f"the {type(store).__name__}" if store is not None else "the store"


def _url_or_kind(store: Any) -> str:
    url = getattr(store, "url", "")
    return url if isinstance(url, str) and url else f"({type(store).__name__})"


def no_room_reason(exc: BaseException) -> str | None:
    """What a "no room" OSError (see :data:`NO_ROOM`) means, or None for any other error."""
    return NO_ROOM.get(exc.errno) if isinstance(exc, OSError) else None


def write_error(exc: OSError, key: str, store: Any) -> StoreError:
    """A StoreError for ``exc``, raised while writing ``key`` to ``store``.

    The message names the key and the store and says what happened; a full
    disk (or quota, or size limit) gives a :class:`DiskFullError` that also
    says nothing was written, since a failed write leaves the key as it was
    (the contract of every store's ``put``).
    """
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f"cannot write {key!r} to {store_label(store)}"
    reason = no_room_reason(exc)
    if reason is not None:
        return DiskFullError(f"{where}: {reason} ({what}); nothing was written: {key!r} is as "
                             f"it was. {_NO_ROOM_ADVICE[exc.errno].capitalize()}", key, store)
    return StoreError(f"{where}: {what}", key, store)
