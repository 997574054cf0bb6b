"""What MountedStore's transfers share: targets, read-only checks, messages, batch sizes.

Push, pull and revert themselves are methods of :class:`~.store.MountedStore`.

A push streams the mount copy into the backing store's atomic write with
:func:`~..transfer.verify.copy_checked` (sizes checked), then
:func:`~..transfer.verify.verify_copy` compares sha256 digests where the backing
store is local. Errors are re-raised naming the full key and saying what
state was left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import StoreError, TransferCancelled
from ..keys import check_key, check_prefix

#: A push of many keys writes the backing copies to disk (``flush_to_disk``) and
#: deletes the mount copies once per this many keys or bytes, not once per key.
PUSH_BATCH_KEYS = 256
PUSH_BATCH_BYTES = 256 << 20


@dataclass
class _Copied:
    """A key whose backing copy is written and verified; its mount copy still to delete."""

    key: str
    short: str
    before: Any  # the mount copy's Entry when the copy started
    metadata: dict | None  # for the event, when anyone listens


def is_readonly(store: Any) -> bool:
    """Whether ``store`` refuses writes (its ``readonly`` flag or ``info()["readonly"]``)."""
    return bool(getattr(store, "readonly", False) or store.info().get("readonly", False))


def is_prefix(target: Any) -> bool:
    """Whether a push / pull / revert target names a prefix ("" or ending with "/")."""
    return isinstance(target, str) and (target == "" or target.endswith("/"))


def what_happened(exc: BaseException) -> str:
    """"was cancelled" or "failed: <reason>", for error messages."""
    return "was cancelled" if isinstance(exc, TransferCancelled) else f"failed: {exc}"


def _discard(store: Any, key: str) -> str:
    """Delete a copy that failed verification; say what became of it."""
    try:
        store.delete(key)
    except (StoreError, OSError, KeyError) as exc:
        return f"the suspect copy could not be removed from the backing store ({exc})"
    return ("the suspect copy was removed from the backing store (an older version there, "
            "if any, had already been replaced by it)")


def no_local(key: str, verb: str) -> str:
    """The sentence for a key with no mount copy to push / revert."""
    return f"{key!r} has no local copy to {verb}"


def parse_target(target: Any, store: Any = None) -> tuple[str | None, str]:
    """``(key, "")`` for a key target, ``(None, prefix)`` for a prefix target.

    Raises
    ------
    InvalidKeyError
        If ``target`` is neither a valid key nor a prefix.
    """
    if is_prefix(target):
        return None, check_prefix(target)
    return check_key(target, store), ""


def mount_region(mount_point: str, prefix: str) -> str | None:
    """The backing prefix of the keys under ``prefix`` that lie inside ``mount_point``."""
    if prefix.startswith(mount_point):
        return prefix
    if mount_point.startswith(prefix):
        return mount_point
    return None


