"""Push for MountedStore: stream, verify, then drop the mount copy; shared transfer helpers.

A push streams the mount copy into the backing store's atomic write with
:func:`~.verified_copy.copy_checked` (sizes checked), then
:func:`~.verified_copy.verify_copy` compares sha256 digests where the backing
store is local. Errors are re-raised naming the full key and saying what
state was left behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from . import events as ev
from .errors import ReadOnlyError, StoreError, StoreKeyError, TransferCancelled, VerificationError
from .keys import check_key, check_prefix
from .streaming import DEFAULT_BUFFER_SIZE, CancelToken, Progress
from .verified_copy import TransferMeter, copy_checked, restate, verify_copy

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


class PushMixin:
    """Push of :class:`~storegui.stores.mounted.MountedStore`.

    Uses the MountedStore's ``mount_store``, ``backing_store``, ``local_keys``,
    key mapping (``_short``), per-key locks and events.
    """

    mount_point: str
    mount_store: Any
    backing_store: Any

    # ------------------------------------------------------------------ refusals (no I/O)

    def _push_refusal(self, key: str | None) -> StoreError | None:
        if key is not None and self._short(key) is None:
            return StoreKeyError(key, self, self._outside(key) + "; it has no local copy to push")
        reason = self._readonly_reason()
        if reason is not None:
            return ReadOnlyError(reason + "; a push could not remove the local copy", key, self)
        if is_readonly(self.backing_store):
            return ReadOnlyError(f"the backing store {self.backing_store!r} is read-only; "
                                 "nothing can be pushed to it", key, self)
        return None

    # ------------------------------------------------------------------ push

    def push_denied_reason(self, key_or_prefix: str) -> str | None:
        """None if ``push(key_or_prefix)`` may run, else a sentence saying why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._push_refusal(key)
        if refusal is not None:
            return refusal.message
        if key is None:
            if next(iter(self.local_keys(prefix)), None) is None:
                return f"nothing under {prefix!r} has a local copy to push"
        elif not self.mount_store.exists(self._short(key)):
            return no_local(key, "push")
        return None

    def push(self, key_or_prefix: str, *, progress: Progress | None = None,
             cancel: CancelToken | None = None,
             buffer_size: int = DEFAULT_BUFFER_SIZE) -> list[str]:
        """Move mount copies to the backing store: stream, verify, then delete the mount copy.

        A key (no trailing "/") pushes that key; a prefix ending with "/" (or
        "") pushes every key under it that has a mount copy, in key order,
        stopping at the first failure (keys pushed before it stay pushed).
        Each key is streamed from the mount copy into an atomic write in the
        backing store; then the backing copy's size is checked, and if the
        backing store is local (``info()["local"]``) its data is read back and
        its sha256 compared with the mount copy's (hashed while streaming, or
        when both stores are local, read again next to the backing copy: the
        copy itself can then run in the kernel).
        Only then is the mount copy deleted and a StoreSetEvent emitted (the
        key is now remote).

        On any failure or cancel the mount copy is untouched and the error
        names the key. A write that fails or is cancelled leaves the backing
        store as it was. A copy that fails verification has already replaced
        any older backing version; it is deleted from the backing store (best
        effort; the message says whether that worked), so the key is then
        local-only. A cancel or failure while the backing copy is being read
        back leaves that copy in place, unverified (the key is then
        shadowing). A mount copy changed directly in the mount store during
        the push is kept too. Each error message says which of these happened.

        Parameters
        ----------
        key_or_prefix : str
        progress : callable, optional
            ``progress(done, total)`` in bytes over all the keys.
        cancel : CancelToken, optional
            Stops the transfer at its next chunk.
        buffer_size : int

        Returns
        -------
        list of str
            The full keys pushed.

        Raises
        ------
        ReadOnlyError
            The backing store or the mount store is read-only (before any I/O).
        KeyError
            The key is outside the mount point or has no mount copy.
        TransferCancelled, VerificationError, StoreError
            The push of the named key failed; its mount copy is intact.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._push_refusal(key)
        if refusal is not None:
            raise refusal
        self._ensure()
        sizes: dict[str, int | None] = {}
        for k in ([key] if key is not None else sorted(self.local_keys(prefix))):
            try:
                sizes[k] = self.mount_store.stat(self._short(k)).size
            except KeyError:
                if key is not None:
                    raise StoreKeyError(key, self, no_local(key, "push")) from None
        meter = TransferMeter(self, sizes, progress)
        pushed: list[str] = []
        batch: list[_Copied] = []
        # Each key's lock is held from its copy until its mount copy is deleted, so a
        # write through this store meanwhile waits, then lands as a new local copy.
        with contextlib.ExitStack() as held:
            try:
                for k in sizes:
                    held.enter_context(self._key_locks.hold(k))
                    copied = self._push_one(k, meter, cancel, buffer_size,
                                            strict=key is not None)
                    if copied is None:
                        meter.skip(k)
                        continue
                    batch.append(copied)
                    if len(batch) >= PUSH_BATCH_KEYS or \
                            sum(c.before.size or 0 for c in batch) >= PUSH_BATCH_BYTES:
                        pushed += self._finish_push(batch)
                        batch = []
                        held.close()  # releases this batch's locks; the stack is reused
            except BaseException:
                if batch:  # copied and verified before the failure: they stay pushed
                    with contextlib.suppress(StoreError, OSError):
                        self._finish_push(batch)
                raise
            if batch:
                pushed += self._finish_push(batch)
        return pushed

    def _finish_push(self, batch: list[_Copied]) -> list[str]:
        """Write the backing copies of ``batch`` to disk, then delete their mount copies."""
        mount, backing = self.mount_store, self.backing_store
        try:
            # the backing copies must survive a power loss before the local ones go
            backing.flush_to_disk([c.key for c in batch])
        except (StoreError, OSError) as exc:
            what = repr(batch[0].key) if len(batch) == 1 else f"{len(batch)} keys"
            raise StoreError(
                f"pushed {what}, but the backing copy could not be written to disk "
                f"({exc}); the local copy was kept", batch[0].key, self) from exc
        done = []
        for copied in batch:
            key, short, before = copied.key, copied.short, copied.before
            with self._key_locks.hold(key):
                try:
                    after = mount.stat(short)
                except KeyError:  # deleted directly in the mount store meanwhile
                    after = None
                if after is not None:
                    if (after.size, after.modified) != (before.size, before.modified):
                        raise StoreError(
                            f"the local copy of {key!r} changed during its push; it was kept, "
                            "and the backing store holds the version read before the change: "
                            "push again", key, self)
                    try:
                        mount.delete(short)
                    except (StoreError, OSError) as exc:
                        raise StoreError(
                            f"pushed {key!r}, but its local copy could not be removed ({exc}); "
                            "it now shadows an identical backing copy", key, self) from exc
            if copied.metadata is not None:
                self._emit(ev.StoreSetEvent(self, key, copied.metadata))
            done.append(key)
        return done

    def _push_one(self, key: str, meter: TransferMeter, cancel: CancelToken | None,
                  buffer_size: int, strict: bool) -> _Copied | None:
        """Copy and verify one key (None if it has no mount copy and ``strict`` is off)."""
        short = self._short(key)
        mount, backing = self.mount_store, self.backing_store
        with self._key_locks.hold(key):
            try:
                before = mount.stat(short)
                metadata = mount.get_metadata(short) if self._wants_events() else None
            except KeyError:
                if strict:
                    raise StoreKeyError(key, self, no_local(key, "push")) from None
                return None
            meter.start(key)
            ok = False
            try:
                result = copy_checked(mount, short, backing, key, buffer_size=buffer_size,
                                      progress=meter.step, cancel=cancel)
                ok = True
            except VerificationError as exc:
                raise self._failed_verification(key, exc) from exc
            except (StoreError, OSError) as exc:
                # The backing store's own error says what became of its copy.
                raise restate(exc, f"push of {key!r} {what_happened(exc)}; the local copy is "
                              "unchanged", key, self) from exc
            finally:
                meter.end(ok)
            try:
                verify_copy(backing, key, result, buffer_size, cancel)
            except VerificationError as exc:
                raise self._failed_verification(key, exc) from exc
            except (StoreError, OSError) as exc:
                raise restate(exc, f"push of {key!r} wrote the backing copy, but checking it "
                              f"{what_happened(exc)}; the backing copy is unverified and the "
                              "local copy is unchanged", key, self) from exc
        return _Copied(key, short, before, metadata)

    def _failed_verification(self, key: str, exc: VerificationError) -> VerificationError:
        return VerificationError(
            f"push of {key!r} failed verification ({exc}); {_discard(self.backing_store, key)}; "
            "the local copy is unchanged", key, self)
