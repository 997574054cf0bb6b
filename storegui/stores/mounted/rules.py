"""What MountedStore's transfers share: the rules, targets, read-only checks, messages.

The push / pull / revert / delete rules are here, once, as pure functions of
what they need to know: a :class:`Target` (a key or folder and its origin)
and the :class:`MountFacts` of the store. MountedStore asks them with facts it
gathers from its stores there and then; the app asks them on the GUI thread
with facts gathered once on a worker and the origins its tree already shows;
the store call itself still refuses whatever slipped through.

Push, pull and revert themselves are methods of :class:`~.store.MountedStore`.

A push streams the mount copy into the backing store's atomic write with
:func:`~..transfer.verify.copy_checked` (sizes checked), then
:func:`~..transfer.verify.verify_copy` compares sha256 digests where the backing
store is local. Errors are re-raised naming the full key and saying what
state was left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


def no_local(key: str, verb: str, exists: bool = True) -> str:
    """The sentence for a key with no mount copy to push / revert.

    ``exists`` False: the key is in neither store, and the sentence says so.
    """
    if not exists:
        return f"no such key {key!r} (in neither the mount store nor the backing store)"
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


# ---------------------------------------------------------------------------- the rules

#: Origins of a key (or folder) that has a mount copy (or mount copies under it).
_LOCAL = ("local", "shadowing")


class Target(Protocol):
    """What the rules need of a key or a folder (a tree node has these attributes).

    ``origin`` is "local", "shadowing" or "remote" (for a folder: which stores
    hold keys under it), or None if neither store holds it.
    """

    key: str
    is_dir: bool
    origin: str | None


@dataclass(frozen=True)
class Live:
    """A :class:`Target` whose origin MountedStore has just asked its stores."""

    key: str
    is_dir: bool
    origin: str | None


@dataclass(frozen=True)
class MountFacts:
    """What the rules need to know about a MountedStore's stores.

    ``mount_readonly`` / ``backing_readonly`` say why that store cannot be
    written (None if it can).
    """

    mount_point: str
    mount_readonly: str | None = None
    backing_readonly: str | None = None

    @classmethod
    def probe(cls, store: Any) -> MountFacts:
        """Ask ``store`` (a MountedStore; may do I/O: the app calls this on a worker)."""
        return store.facts()

    def inside(self, key: str) -> bool:
        """Whether ``key`` lies inside the mount point (may have a mount copy)."""
        return len(key) > len(self.mount_point) and key.startswith(self.mount_point)

    def overlaps(self, prefix: str) -> bool:
        """Whether some key under ``prefix`` lies inside the mount point."""
        return mount_region(self.mount_point, prefix) is not None

    def new_key_prefix(self, folder: str) -> str | None:
        """Where new keys dropped on ``folder`` go: the folder, or the mount point above it."""
        return mount_region(self.mount_point, folder)


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused before any I/O.

    ``missing`` is True when there is nothing to act on (MountedStore raises
    KeyError), False when a store cannot be written (ReadOnlyError).
    """

    reason: str
    missing: bool = False


def outside(mount_point: str, key: str) -> str:
    """The sentence for a key the mount store cannot hold."""
    if key == mount_point:
        return f"{key!r} is the mount point itself, not a key under it"
    return f"{key!r} is outside the mount point {mount_point!r}"


def no_backing(key: str) -> str:
    """The sentence for a key with a mount copy only, asked to revert."""
    return f"{key!r} has no backing version to revert to; delete it to remove the local copy"


def backing_only(key: str) -> str:
    """The sentence for a key only the backing store holds, asked to delete."""
    return (f"{key!r} exists only in the backing store, which is read-only here; "
            "it cannot be deleted")


def push_refusal(facts: MountFacts, key: str | None) -> Refusal | None:
    """Why nothing can be pushed for ``key`` (None: a folder), known without I/O."""
    if key is not None and not facts.inside(key):
        return Refusal(outside(facts.mount_point, key) + "; it has no local copy to push", True)
    if facts.mount_readonly:
        return Refusal(facts.mount_readonly + "; a push could not remove the local copy")
    if facts.backing_readonly:
        return Refusal(facts.backing_readonly + "; nothing can be pushed to it")
    return None


def push_reason(target: Target, facts: MountFacts) -> str | None:
    """Why ``target`` cannot be pushed (None if it can)."""
    refusal = push_refusal(facts, None if target.is_dir else target.key)
    if refusal is not None:
        return refusal.reason
    if target.origin not in _LOCAL:
        if target.is_dir:
            return f"nothing under {target.key!r} has a local copy to push"
        return no_local(target.key, "push", target.origin is not None)
    return None


def pull_refusal(facts: MountFacts, key: str | None) -> Refusal | None:
    """Why nothing can be pulled for ``key`` (None: a folder), known without I/O."""
    if key is not None and not facts.inside(key):
        return Refusal(outside(facts.mount_point, key) + "; the mount store cannot hold it, "
                       "so it cannot be pulled")
    if facts.mount_readonly:
        return Refusal(facts.mount_readonly)
    return None


def pull_reason(target: Target, facts: MountFacts, overwrite: bool = False) -> str | None:
    """Why ``target`` cannot be pulled (None if it can); ``overwrite`` replaces local copies."""
    refusal = pull_refusal(facts, None if target.is_dir else target.key)
    if refusal is not None:
        return refusal.reason
    key = target.key
    if target.is_dir:
        if not facts.overlaps(key):
            return f"nothing under {key!r} lies inside the mount point {facts.mount_point!r}"
        if target.origin == "local":
            return f"everything under {key!r} is already local"
        return None
    if not overwrite and target.origin in _LOCAL:
        return f"{key!r} already has a local copy"
    if target.origin not in ("remote", "shadowing"):
        return f"{key!r} is not in the backing store"
    return None


def revert_refusal(facts: MountFacts, key: str | None) -> Refusal | None:
    """Why nothing can be reverted for ``key`` (None: a folder), known without I/O."""
    if key is not None and not facts.inside(key):
        return Refusal(outside(facts.mount_point, key) + "; it has no local copy to revert", True)
    if facts.mount_readonly:
        return Refusal(facts.mount_readonly)
    return None


def revert_reason(target: Target, facts: MountFacts) -> str | None:
    """Why ``target``'s local change cannot be reverted (None if it can)."""
    refusal = revert_refusal(facts, None if target.is_dir else target.key)
    if refusal is not None:
        return refusal.reason
    key = target.key
    if target.is_dir:
        if target.origin not in _LOCAL:
            return f"nothing under {key!r} has a local copy to revert"
        if target.origin == "local":
            return f"nothing under {key!r} has a backing version to revert to"
        return None
    if target.origin == "local":
        return no_backing(key)
    if target.origin != "shadowing":
        return no_local(key, "revert", target.origin is not None)
    return None


def write_reason(facts: MountFacts, key: str) -> str | None:
    """Why ``key`` cannot be written (set, set_data, metadata), known without I/O."""
    if not facts.inside(key):
        return outside(facts.mount_point, key) + "; the backing store is read-only here"
    return facts.mount_readonly


def delete_reason(target: Target, facts: MountFacts) -> str | None:
    """Why ``target``'s mount copy (or the copies under a folder) cannot be deleted."""
    key = target.key
    if target.is_dir:
        if facts.mount_readonly:
            return facts.mount_readonly
        if target.origin not in _LOCAL:
            return f"nothing under {key!r} has a local copy to delete"
        return None
    if not facts.inside(key):
        which = ("it exists only in the backing store, which" if target.origin == "remote"
                 else "the backing store")
        return f"{outside(facts.mount_point, key)}; {which} is read-only here"
    if facts.mount_readonly:
        return facts.mount_readonly
    if target.origin == "remote":
        return backing_only(key)
    if target.origin not in _LOCAL:
        return f"{key!r} does not exist"
    return None
