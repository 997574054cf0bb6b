"""Pull and revert for MountedStore: bring backing versions forward in the mount store.

Pull copies backing keys into the mount store (verified like a push); revert
drops mount copies so the backing versions show again. Set_metadata and
update_metadata of a backing-only key use the same copy (``_copy_in``).
"""

from __future__ import annotations

from typing import Any

from . import events as ev
from .errors import ReadOnlyError, StoreError, StoreKeyError, VerificationError
from .mounted_transfer import mount_region, no_local, parse_target, what_happened
from .streaming import DEFAULT_BUFFER_SIZE, CancelToken, Progress
from .verified_copy import TransferMeter, copy_checked, restate, verify_copy


def _no_backing(key: str) -> str:
    return f"{key!r} has no backing version to revert to; delete it to remove the local copy"


class PullRevertMixin:
    """Pull and revert of :class:`~storegui.stores.mounted.MountedStore`.

    Uses the MountedStore's ``mount_store``, ``backing_store``, ``local_keys``,
    key mapping (``_short``), per-key locks and events.
    """

    mount_point: str
    mount_store: Any
    backing_store: Any

    # ------------------------------------------------------------------ refusals (no I/O)

    def _pull_refusal(self, key: str | None) -> StoreError | None:
        if key is not None and self._short(key) is None:
            return ReadOnlyError(self._outside(key) + "; the mount store cannot hold it, so it "
                                 "cannot be pulled", key, self)
        reason = self._readonly_reason()
        return ReadOnlyError(reason, key, self) if reason is not None else None

    def _revert_refusal(self, key: str | None) -> StoreError | None:
        if key is not None and self._short(key) is None:
            return StoreKeyError(key, self, self._outside(key) + "; it has no local copy to revert")
        reason = self._readonly_reason()
        return ReadOnlyError(reason, key, self) if reason is not None else None

    # ------------------------------------------------------------------ pull

    def pull_denied_reason(self, key_or_prefix: str, overwrite: bool = False) -> str | None:
        """None if ``pull(key_or_prefix, overwrite=...)`` has something to do, else why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._pull_refusal(key)
        if refusal is not None:
            return refusal.message
        if key is None:
            if mount_region(self.mount_point, prefix) is None:
                return f"nothing under {prefix!r} lies inside the mount point {self.mount_point!r}"
            return None
        if not overwrite and self.mount_store.exists(self._short(key)):
            return f"{key!r} already has a local copy"
        if not self.backing_store.exists(key):
            return f"{key!r} is not in the backing store"
        return None

    def pull(self, key_or_prefix: str, *, progress: Progress | None = None,
             cancel: CancelToken | None = None, buffer_size: int = DEFAULT_BUFFER_SIZE,
             overwrite: bool = False) -> list[str]:
        """Copy backing keys inside the mount point into the mount store (for offline work).

        A key pulls that key; a prefix ending with "/" (or "") pulls every
        backing key under it that lies inside the mount point, in key order,
        stopping at the first failure. A key that already has a mount copy is
        left alone unless ``overwrite`` is true. Each copy streams into an
        atomic write in the mount store (no transaction is held meanwhile, so
        other keys stay writable) and is verified like a push's. A failed or
        cancelled write leaves the mount store as it was; a copy that fails
        its check after being written is deleted again, so with ``overwrite``
        the local copy it replaced is then lost and the backing version shows
        (the error says so).

        Returns
        -------
        list of str
            The full keys pulled.

        Raises
        ------
        ReadOnlyError
            The key is outside the mount point, or the mount store is read-only.
        KeyError
            The key is not in the backing store.
        TransferCancelled, VerificationError, StoreError
            The pull of the named key failed; the mount store is unchanged for it.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._pull_refusal(key)
        if refusal is not None:
            raise refusal
        self._ensure()
        if key is None:
            region = mount_region(self.mount_point, prefix)
            local = set() if overwrite else set(self.local_keys(prefix))
            candidates = [] if region is None else sorted(
                k for k in self.backing_store.keys(region)
                if self._short(k) is not None and k not in local)
        elif not overwrite and self.mount_store.exists(self._short(key)):
            return []
        else:
            candidates = [key]
        sizes: dict[str, int | None] = {}
        for k in candidates:
            try:
                sizes[k] = self.backing_store.stat(k).size
            except KeyError:
                if key is not None:
                    raise StoreKeyError(key, self, f"{key!r} is not in the backing store") from None
        meter = TransferMeter(self, sizes, progress)
        pulled = []
        for k in sizes:
            if self._pull_one(k, meter, cancel, buffer_size, overwrite, strict=key is not None):
                pulled.append(k)
            else:
                meter.skip(k)
        return pulled

    def _pull_one(self, key: str, meter: TransferMeter, cancel: CancelToken | None,
                  buffer_size: int, overwrite: bool, strict: bool) -> bool:
        short = self._short(key)
        mount = self.mount_store
        with self._key_locks.hold(key):
            had_local = mount.exists(short)
            if had_local and not overwrite:
                return False
            meter.start(key)
            ok = False
            try:
                self._copy_down(f"pull of {key!r}", key, short, had_local=had_local,
                                progress=meter.step, cancel=cancel, buffer_size=buffer_size)
                ok = True
            except KeyError:
                if strict:
                    raise
                return False
            finally:
                meter.end(ok)
            metadata = mount.get_metadata(short) if self._wants_events() else None
        if metadata is not None:
            self._emit(ev.StoreSetEvent(self, key, metadata))
        return True

    def _copy_in(self, key: str, short: str, metadata: dict, buffer_size: int) -> None:
        """Copy backing-only ``key`` into the mount store with new ``metadata``, all or nothing."""
        self._copy_down(f"copy of {key!r} into the mount store", key, short, had_local=False,
                        metadata=metadata, buffer_size=buffer_size)

    def _copy_down(self, what: str, key: str, short: str, *, had_local: bool,
                   metadata: dict | None = None, progress: Progress | None = None,
                   cancel: CancelToken | None = None,
                   buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """Copy backing ``key`` into the mount store as ``short``, verified; ``what`` names it.

        No transaction is held while the data streams (SQLite would lock the
        whole mount store): the write itself is atomic, and a copy that fails
        its checks after being written is deleted again.

        Raises
        ------
        KeyError
            The backing store has no ``key``.
        TransferCancelled, VerificationError, StoreError
            The copy failed; the message says what became of the mount store.
        """
        mount = self.mount_store
        try:
            result = copy_checked(self.backing_store, key, mount, short,
                                  buffer_size=buffer_size, progress=progress, cancel=cancel,
                                  metadata=metadata)
        except VerificationError as exc:
            raise self._drop_bad_copy(what, key, short, exc, had_local) from exc
        except KeyError:
            raise StoreKeyError(key, self, f"{key!r} is not in the backing store") from None
        except (StoreError, OSError) as exc:
            raise restate(exc, f"{what} {what_happened(exc)}; the mount store is unchanged",
                          key, self) from exc
        try:
            verify_copy(mount, short, result, buffer_size, cancel)
        except (StoreError, OSError) as exc:
            raise self._drop_bad_copy(what, key, short, exc, had_local) from exc

    def _drop_bad_copy(self, what: str, key: str, short: str, exc: BaseException,
                       had_local: bool) -> StoreError:
        """Delete a mount copy that was written but not verified; the error to raise."""
        try:
            self.mount_store.delete(short)
        except (StoreError, OSError, KeyError) as err:
            fate = f"the copy could not be removed from the mount store ({err})"
        else:
            fate = ("the copy was removed again; the local copy it had replaced is lost, so the "
                    "backing version shows" if had_local
                    else "the copy was removed again, so the mount store is unchanged")
        return restate(exc, f"{what} {what_happened(exc)} after the copy was written; {fate}",
                       key, self)

    # ------------------------------------------------------------------ revert

    def revert_denied_reason(self, key_or_prefix: str) -> str | None:
        """None if ``revert(key_or_prefix)`` has something to do, else a sentence saying why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._revert_refusal(key)
        if refusal is not None:
            return refusal.message
        if key is None:
            if next(iter(self.local_keys(prefix)), None) is None:
                return f"nothing under {prefix!r} has a local copy to revert"
            return None
        if not self.mount_store.exists(self._short(key)):
            return no_local(key, "revert")
        if not self.backing_store.exists(key):
            return _no_backing(key)
        return None

    def revert(self, key_or_prefix: str) -> list[str]:
        """Drop the mount copy of shadowing keys, so their backing version shows again.

        A key reverts that key; a prefix ending with "/" (or "") reverts every
        shadowing key under it. Local-only keys are never deleted by revert
        (they have no backing version; use ``delete``). Emits a StoreSetEvent
        with the backing metadata for each key reverted.

        Returns
        -------
        list of str
            The full keys reverted.

        Raises
        ------
        ReadOnlyError
            The mount store is read-only.
        KeyError
            The key has no mount copy (or is outside the mount point), or has
            no backing version.
        """
        key, prefix = parse_target(key_or_prefix, self)
        refusal = self._revert_refusal(key)
        if refusal is not None:
            raise refusal
        self._ensure()
        reverted = []
        for k in ([key] if key is not None else sorted(self.local_keys(prefix))):
            if self._revert_one(k, strict=key is not None):
                reverted.append(k)
        return reverted

    def _revert_one(self, key: str, strict: bool) -> bool:
        short = self._short(key)
        with self._key_locks.hold(key):
            if not self.backing_store.exists(key):
                if not strict:
                    return False
                if self.mount_store.exists(short):
                    raise StoreKeyError(key, self, _no_backing(key))
                raise StoreKeyError(key, self, no_local(key, "revert"))
            try:
                self.mount_store.delete(short)
            except KeyError:
                if strict:
                    raise StoreKeyError(key, self, no_local(key, "revert")) from None
                return False
        if self._wants_events():
            try:
                self._emit(ev.StoreSetEvent(self, key, self.backing_store.get_metadata(key)))
            except KeyError:
                self._emit(ev.StoreDeleteEvent(self, key))
        return True
