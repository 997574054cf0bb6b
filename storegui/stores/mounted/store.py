"""MountedStore: a small writable store mounted at a key prefix over a large backing store.

A key that starts with the mount point (a pure string prefix, as in the
seed; ``""`` mounts over every key) and is longer than it lives in the mount
store under the rest of the key: ``mounted["a/b/x"]`` is ``mount_store["x"]``
when the mount point is ``"a/b/"``. Every other key is read from the backing
store and is read-only here. A key both stores hold is *shadowing*: reads see
the mount copy. Push, pull and revert move keys between the two stores (see
:mod:`.rules`, :mod:`.store`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from .. import events as ev
from ..contract import Store, Transaction
from ..errors import (
    ReadOnlyError,
    StoreError,
    StoreKeyError,
    TransferCancelled,
    VerificationError,
)
from ..keylocks import KeyLocks
from ..keys import check_key, check_prefix
from ..metadata import decode_metadata, encode_metadata
from ..transfer.progress import TransferProgress, as_progress
from ..transfer.streaming import DEFAULT_BUFFER_SIZE, CancelToken, Progress
from ..transfer.verify import copy_checked, restate, verify_copy
from ..value import Entry, Value
from . import rules
from .merge import merge_listings, merge_query, mount_children
from .rules import (
    PUSH_BATCH_BYTES,
    PUSH_BATCH_KEYS,
    Live,
    MountFacts,
    Refusal,
    _Copied,
    _discard,
    backing_only,
    is_readonly,
    mount_region,
    no_backing,
    no_local,
    parse_target,
    what_happened,
)


class MountedStore(Store):
    """A writable ``mount_store`` mounted at ``mount_point`` over a read-only ``backing_store``.

    Reads see the mount copy of a key if there is one, else the backing one.
    Writes (set, set_data, set_metadata, update_metadata, delete) go to the
    mount store and only for keys inside the mount point; set_data,
    set_metadata and update_metadata of a key that only the backing store
    holds first copy it into the mount store (streamed, all or nothing; a
    failed copy leaves no mount copy). ``set`` is one atomic write of data
    and metadata.

    Errors of writes: :class:`ReadOnlyError`, with a sentence saying why, for
    a key outside the mount point (or the mount point itself), for deleting
    a key only the backing store holds, and for any write while the mount
    store is read-only; ``KeyError`` for set_metadata / update_metadata /
    delete of a key neither store holds. ``write_denied_reason`` and
    ``delete_denied_reason`` give the same sentences without writing.

    Writes made directly to the inner stores, not through this object, are
    not reported by its events and are not covered by its per-key locking.

    Parameters
    ----------
    mount_point : str
        Key prefix of the mounted store (``""``: every key).
    mount_store : Store
        The small writable store.
    backing_store : Store
        The large store it is mounted over; never written except by ``push``.

    Raises
    ------
    InvalidKeyError
        If ``mount_point`` is not a string.
    StoreError
        If either store is not a :class:`Store`, or both are the same object.
    """

    def __init__(self, mount_point: str, mount_store: Store, backing_store: Store) -> None:
        mount_point = check_prefix(mount_point)
        for name, store in (("mount_store", mount_store), ("backing_store", backing_store)):
            if not isinstance(store, Store):
                raise StoreError(f"{name} must be a Store, not {type(store).__name__}")
        if mount_store is backing_store:
            # A push would copy each key onto itself and then delete it.
            raise StoreError("the mount store and the backing store must be two different stores")
        super().__init__()
        self.mount_point = mount_point
        self.mount_store = mount_store
        self.backing_store = backing_store
        self._forced_readonly = False
        self._key_locks = KeyLocks()

    def __repr__(self) -> str:
        return (f"MountedStore({self.mount_point!r}, mount={self.mount_store!r}, "
                f"backing={self.backing_store!r})")

    # ------------------------------------------------------------------ key space

    def _short(self, key: str) -> str | None:
        """The mount store's key for ``key``, or None if ``key`` is outside the mount point."""
        mp = self.mount_point
        if len(key) > len(mp) and key.startswith(mp):
            return key[len(mp):]
        return None

    def _wants_events(self) -> bool:
        return self.event_dispatcher.has_listeners() or self._txn is not None

    def local_keys(self, prefix: str = "") -> Iterator[str]:
        """Full keys under ``prefix`` that have a mount copy (origin local or shadowing)."""
        prefix = check_prefix(prefix)
        self._ensure()
        mp = self.mount_point
        if prefix.startswith(mp):
            short_prefix = prefix[len(mp):]
        elif mp.startswith(prefix):
            short_prefix = ""
        else:
            return iter(())
        return (mp + k for k in self.mount_store.keys(short_prefix))

    def origin(self, key: str) -> str:
        """Where ``key`` lives: ``"local"``, ``"shadowing"`` or ``"remote"``.

        Raises
        ------
        KeyError
            If neither store holds the key.
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        key = self._check_key(key)
        self._ensure()
        short = self._short(key)
        local = short is not None and self.mount_store.exists(short)
        remote = self.backing_store.exists(key)
        if local:
            return "shadowing" if remote else "local"
        if remote:
            return "remote"
        raise StoreKeyError(key, self)

    # ------------------------------------------------------------------ lifecycle

    @property
    def readonly(self) -> bool:  # type: ignore[override]
        """Whether writes are refused: set by hand, or because the mount store is read-only."""
        return self._forced_readonly or is_readonly(self.mount_store)

    @readonly.setter
    def readonly(self, value: bool) -> None:
        """Refuse writes (True) whatever the mount store allows, or stop refusing (False)."""
        self._forced_readonly = bool(value)

    def _open(self, credentials: Any) -> None:
        was_connected = self.mount_store.is_connected()
        self.mount_store.connect(credentials)
        try:
            self.backing_store.connect(credentials)
        except BaseException:
            if not was_connected:
                self.mount_store.disconnect()
            raise

    def _close(self) -> None:
        try:
            self.mount_store.disconnect()
        finally:
            self.backing_store.disconnect()

    def info(self) -> dict:
        """Information about the mounted store and both inner stores.

        ``readonly`` is True only if this store was made read-only or its
        mount store is read-only (the backing store is read-only here anyway);
        ``local`` is True if both inner stores are local; ``mount_point``;
        ``mount`` and ``backing`` are the inner stores' own ``info()``.
        """
        mount, backing = self.mount_store.info(), self.backing_store.info()
        return {
            "readonly": self.readonly,
            "kind": type(self).__name__,
            "url": self.url,
            "local": bool(mount.get("local", False) and backing.get("local", False)),
            "mount_point": self.mount_point,
            "mount": mount,
            "backing": backing,
        }

    # ------------------------------------------------------------------ why a write is refused

    # The rules themselves are in .rules, shared with the app: here they get
    # facts and origins asked of the stores there and then.

    def facts(self) -> MountFacts:
        """What the push / pull / revert / delete rules need to know (asks both stores)."""
        backing = None
        if is_readonly(self.backing_store):
            backing = f"the backing store {self.backing_store!r} is read-only"
        return MountFacts(self.mount_point, self._readonly_reason(), backing)

    def _live(self, key: str | None, prefix: str) -> Live:
        """``key`` (or the folder ``prefix``) with its origin asked of the stores now."""
        if key is not None:
            try:
                return Live(key, False, self.origin(key))
            except KeyError:
                return Live(key, False, None)
        local = _any(self.local_keys(prefix))
        remote = _any(self.backing_store.keys(prefix))
        origin = ("shadowing" if local and remote else "local" if local
                  else "remote" if remote else None)
        return Live(prefix, True, origin)

    def _denied(self, refusal: Any, reason: Any, key_or_prefix: str, **options: Any) -> str | None:
        """``reason(live target, facts)``, after ``refusal(facts, key)``, which needs no I/O."""
        key, prefix = parse_target(key_or_prefix, self)
        facts = self.facts()
        early = refusal(facts, key)
        if early is not None:
            return early.reason
        self._ensure()
        return reason(self._live(key, prefix), facts, **options)

    def _refuse(self, refusal: Refusal | None, key: str | None) -> None:
        """Raise ``refusal`` (KeyError if nothing is there to act on, else ReadOnlyError)."""
        if refusal is None:
            return
        if refusal.missing:
            raise StoreKeyError(key, self, refusal.reason)
        raise ReadOnlyError(refusal.reason, key, self)

    def _readonly_reason(self) -> str | None:
        if self._forced_readonly:
            return f"{self!r} is read-only"
        if is_readonly(self.mount_store):
            return f"the mount store {self.mount_store!r} is read-only"
        return None

    def _check_writable(self, key: str | None = None) -> None:
        reason = self._readonly_reason() if key is None else self.write_denied_reason(key)
        if reason is not None:
            raise ReadOnlyError(reason, key, self)

    def write_denied_reason(self, key: str) -> str | None:
        """None if ``key`` may be written (set, set_data, set_metadata, update_metadata),
        else a sentence saying why not. Does no I/O.

        Raises
        ------
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        key = self._check_key(key)
        if self._short(key) is None:
            return rules.write_reason(MountFacts(self.mount_point), key)
        return self._readonly_reason()

    def delete_denied_reason(self, key: str) -> str | None:
        """None if ``delete(key)`` would succeed, else a sentence saying why not.

        Asks the inner stores whether the key exists.

        Raises
        ------
        InvalidKeyError
            If ``key`` is not a valid key.
        """
        key = self._check_key(key)
        self._ensure()
        return rules.delete_reason(self._live(key, ""), self.facts())

    # ------------------------------------------------------------------ read primitives

    def _lookup(self, key: str, read: Any) -> Any:
        short = self._short(key)
        if short is not None:
            try:
                return read(self.mount_store, short)
            except KeyError:
                pass
        try:
            return read(self.backing_store, key)
        except KeyError:
            raise StoreKeyError(key, self) from None

    def _get(self, key: str) -> Value:
        return self._lookup(key, lambda store, k: store.get(k))

    def _stat(self, key: str) -> Entry:
        return dataclasses.replace(self._lookup(key, lambda store, k: store.stat(k)), key=key)

    def _exists(self, key: str) -> bool:
        short = self._short(key)
        if short is not None and self.mount_store.exists(short):
            return True
        return self.backing_store.exists(key)

    def _get_metadata_text(self, key: str) -> str:
        return encode_metadata(self._lookup(key, lambda store, k: store.get_metadata(k)))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        local = set(self.local_keys(prefix))
        yield from sorted(local)
        for key in self.backing_store.keys(prefix):
            if key not in local:
                yield key

    def get_metadata(self, key: str, select: Iterable[str] | None = None) -> dict:
        """A fresh copy of ``key``'s visible metadata (only the ``select`` fields, if given).

        Raises
        ------
        KeyError
            If neither store holds the key.
        """
        key = self._check_key(key)
        self._ensure()
        fields = list(select) if select is not None else None
        return self._lookup(key, lambda store, k: store.get_metadata(k, fields))

    # ------------------------------------------------------------------ listing and queries

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """The immediate children of ``prefix`` in the merged key space, with ``origin`` set.

        One ``list_dir`` on each inner store (none on the mount store when the
        prefix and the mount point do not overlap), so the cost follows the
        number of children. A key's origin is "local" (mount copy only),
        "shadowing" (both) or "remote" (backing only); a folder's says which
        stores hold keys under it. If the mount point lies deeper than
        ``prefix``, its next segment shows as a folder while the mount store
        holds keys. Both listings stream: entries come out, in key order, as
        the inner stores send them (a folder of 100,000 keys shows its first
        rows without waiting for the rest).
        """
        prefix = check_prefix(prefix)
        self._ensure()
        local = mount_children(self.mount_store, self.mount_point, prefix, delimiter)
        return merge_listings(local, self.backing_store.list_dir(prefix, delimiter))

    def query(
        self, select: Iterable[str] | None = None, **kwargs: Any
    ) -> Iterator[tuple[str, dict]]:
        """``(key, metadata)`` for every key whose *visible* metadata has all ``kwargs``.

        A shadowing key is judged by its mount copy only, so every result
        describes what ``get`` returns. ``select`` limits the returned fields.
        """
        fields = list(select) if select is not None else None
        self._ensure()
        return merge_query(self.mount_point, self.local_keys(),
                           self.mount_store.query(fields, **kwargs),
                           self.backing_store.query(fields, **kwargs))

    def query_keys(self, **kwargs: Any) -> Iterator[str]:
        """Keys whose visible metadata has all ``kwargs`` as values (every key with none)."""
        self._ensure()
        pairs = merge_query(self.mount_point, self.local_keys(),
                            ((k, None) for k in self.mount_store.query_keys(**kwargs)),
                            ((k, None) for k in self.backing_store.query_keys(**kwargs)))
        return (key for key, _ in pairs)

    # ------------------------------------------------------------------ writes

    def _put(
        self, key: str, data: BinaryIO | None, metadata_text: str | None, buffer_size: int
    ) -> None:
        short = self._short(key)
        if short is None:  # _check_writable has refused it already; never write outside
            raise ReadOnlyError(self.write_denied_reason(key) or "", key, self)
        mount = self.mount_store
        with self._key_locks.hold(key):
            if data is not None and metadata_text is not None:
                # One call: the inner store's set is atomic (fault 2 of the seed).
                mount.set(short, (data, decode_metadata(metadata_text)), buffer_size)
            elif data is not None:
                if mount.exists(short):
                    mount.set_data(short, data, buffer_size)
                else:
                    # New data for a backing-only key: no need to copy the old data.
                    try:
                        metadata = self.backing_store.get_metadata(key)
                    except KeyError:
                        metadata = {}
                    mount.set(short, (data, metadata), buffer_size)
            elif metadata_text is not None:
                metadata = decode_metadata(metadata_text)
                if mount.exists(short):
                    mount.set_metadata(short, metadata)
                else:
                    self._copy_in(key, short, metadata, buffer_size)

    def flush_to_disk(self, keys: Iterable[str] | None = None) -> None:
        """``Store.flush_to_disk`` of both stores (a key is looked for in each)."""
        self._ensure()
        if keys is None:
            self.mount_store.flush_to_disk()
            self.backing_store.flush_to_disk()
            return
        keys = [check_key(k, self) for k in keys]
        self.mount_store.flush_to_disk([s for s in map(self._short, keys) if s is not None])
        self.backing_store.flush_to_disk(keys)

    def _update_fields(self, key: str, fields: dict) -> None:
        """The mount rule of ``update_metadata``: the mount store merges a key it holds.

        Its own ``update_metadata`` keeps the merge atomic against its other
        writers; a backing-only key takes the contract's way, whose ``_put``
        copies it in with the merged metadata (``_copy_in``).
        """
        try:
            self.mount_store.update_metadata(self._short(key), fields)
        except KeyError:
            super()._update_fields(key, fields)

    def delete(self, key: str) -> None:
        """Delete ``key``'s mount copy.

        A shadowing key's backing version shows again afterwards (like
        ``revert``); a StoreSetEvent with its metadata is emitted instead of a
        StoreDeleteEvent, since the key still exists.

        Raises
        ------
        KeyError
            If neither store holds the key.
        ReadOnlyError
            ``key`` is outside the mount point or only in the backing store,
            or the mount store is read-only.
        """
        key = self._check_key(key)
        self._check_writable(key)
        self._ensure()
        with self._key_locks.hold(key):
            try:
                self.mount_store.delete(self._short(key))
            except KeyError:
                if self.backing_store.exists(key):
                    raise ReadOnlyError(backing_only(key), key, self) from None
                raise StoreKeyError(key, self) from None
        if self._wants_events():
            try:
                remote = self.backing_store.get_metadata(key)
            except KeyError:
                self._emit(ev.StoreDeleteEvent(self, key))
            else:
                self._emit(ev.StoreSetEvent(self, key, remote))

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self, notes: str = "") -> Iterator[Transaction]:
        """Everything written through this store in the block commits, or on error rolls back.

        Writes only ever reach the mount store, so this runs the mount store's
        transaction; this store's own events wait for its commit and vanish
        on rollback. A nested call joins the outer transaction. Push writes
        to the backing store, which no transaction here can undo.
        """
        if self._txn is not None:
            with super().transaction(notes) as txn:
                yield txn
            return
        self._ensure()
        # The mount transaction is the inner one: it commits (or fails) before
        # this store's events are released.
        with super().transaction(notes) as txn, self.mount_store.transaction(notes):
            yield txn

    def _rollback(self, txn: Transaction) -> None:
        """Nothing to undo here: the mount store's own transaction rolls back the writes."""

    # ------------------------------------------------------------------ push

    def push_denied_reason(self, key_or_prefix: str) -> str | None:
        """None if ``push(key_or_prefix)`` may run, else a sentence saying why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        return self._denied(rules.push_refusal, rules.push_reason, key_or_prefix)

    def push(self, key_or_prefix: str, *, progress: TransferProgress | Progress | None = None,
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
        progress : TransferProgress or callable, optional
            Gets the size in bytes of all the keys, the bytes done, and a
            child per key (``branch``); a callable is called as
            ``progress(done, total)`` over all the keys.
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
        plan = self._plan_push(key_or_prefix)
        progress = as_progress(progress)
        progress.set_size(plan.total)
        return self._run_push(plan, progress, cancel, buffer_size)

    def _plan_push(self, key_or_prefix: str) -> _Plan:
        """The keys a push of ``key_or_prefix`` copies, with their sizes (refusals raised)."""
        key, prefix = parse_target(key_or_prefix, self)
        self._refuse(rules.push_refusal(self.facts(), key), key)
        self._ensure()
        sizes: dict[str, int | None] = {}
        for k in ([key] if key is not None else sorted(self.local_keys(prefix))):
            try:
                sizes[k] = self.mount_store.stat(self._short(k)).size
            except KeyError:
                if key is not None:
                    raise StoreKeyError(key, self, no_local(
                        key, "push", self.backing_store.exists(key))) from None
        return _Plan(key, sizes)

    def _run_push(self, plan: _Plan, progress: TransferProgress, cancel: CancelToken | None,
                  buffer_size: int) -> list[str]:
        """Push the keys of ``plan``; each reports to a child of ``progress``."""
        sizes = plan.sizes
        pushed: list[str] = []
        batch: list[_Copied] = []
        # Each key's lock is held from its copy until its mount copy is deleted, so a
        # write through this store meanwhile waits, then lands as a new local copy.
        with contextlib.ExitStack() as held:
            try:
                for k in sizes:
                    held.enter_context(self._key_locks.hold(k))
                    copied = self._push_one(k, progress, sizes[k], cancel, buffer_size,
                                            strict=plan.key is not None)
                    if copied is None:
                        _skip(progress, sizes[k])
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

    def _push_one(self, key: str, progress: TransferProgress, size: int | None,
                  cancel: CancelToken | None, buffer_size: int, strict: bool) -> _Copied | None:
        """Copy and verify one key (None if it has no mount copy and ``strict`` is off).

        The copy reports to a child of ``progress`` (``size`` bytes expected).
        """
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
            child = progress.branch(key, size)
            ok = False
            try:
                result = copy_checked(mount, short, backing, key, buffer_size=buffer_size,
                                      progress=child, cancel=cancel)
                ok = True
            except VerificationError as exc:
                raise self._failed_verification(key, exc) from exc
            except (StoreError, OSError) as exc:
                # The backing store's own error says what became of its copy.
                raise restate(exc, f"push of {key!r} {what_happened(exc)}; the local copy is "
                              "unchanged", key, self) from exc
            finally:
                child.close(ok)
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

    # ------------------------------------------------------------------ pull and revert

    # Pull and revert for MountedStore: bring backing versions forward in the mount store.
    #
    # Pull copies backing keys into the mount store (verified like a push); revert
    # drops mount copies so the backing versions show again. Set_metadata and
    # update_metadata of a backing-only key use the same copy (``_copy_in``).

    def pull_denied_reason(self, key_or_prefix: str, overwrite: bool = False) -> str | None:
        """None if ``pull(key_or_prefix, overwrite=...)`` has something to do, else why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        return self._denied(rules.pull_refusal, rules.pull_reason, key_or_prefix,
                            overwrite=overwrite)

    def pull(self, key_or_prefix: str, *, progress: TransferProgress | Progress | None = None,
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
        plan = self._plan_pull(key_or_prefix, overwrite)
        progress = as_progress(progress)
        progress.set_size(plan.total)
        return self._run_pull(plan, progress, cancel, buffer_size, overwrite)

    def _plan_pull(self, key_or_prefix: str, overwrite: bool = False) -> _Plan:
        """The keys a pull of ``key_or_prefix`` copies, with their sizes (refusals raised)."""
        key, prefix = parse_target(key_or_prefix, self)
        self._refuse(rules.pull_refusal(self.facts(), key), key)
        self._ensure()
        if key is None:
            region = mount_region(self.mount_point, prefix)
            local = set() if overwrite else set(self.local_keys(prefix))
            candidates = [] if region is None else sorted(
                k for k in self.backing_store.keys(region)
                if self._short(k) is not None and k not in local)
        elif not overwrite and self.mount_store.exists(self._short(key)):
            candidates = []
        else:
            candidates = [key]
        sizes: dict[str, int | None] = {}
        for k in candidates:
            try:
                sizes[k] = self.backing_store.stat(k).size
            except KeyError:
                if key is not None:
                    raise StoreKeyError(key, self, f"{key!r} is not in the backing store") from None
        return _Plan(key, sizes)

    def _run_pull(self, plan: _Plan, progress: TransferProgress, cancel: CancelToken | None,
                  buffer_size: int, overwrite: bool) -> list[str]:
        """Pull the keys of ``plan``; each reports to a child of ``progress``."""
        pulled = []
        for k, size in plan.sizes.items():
            if self._pull_one(k, progress, size, cancel, buffer_size, overwrite,
                              strict=plan.key is not None):
                pulled.append(k)
            else:
                _skip(progress, size)
        return pulled

    def _pull_one(self, key: str, progress: TransferProgress, size: int | None,
                  cancel: CancelToken | None,
                  buffer_size: int, overwrite: bool, strict: bool) -> bool:
        short = self._short(key)
        mount = self.mount_store
        with self._key_locks.hold(key):
            had_local = mount.exists(short)
            if had_local and not overwrite:
                return False
            child = progress.branch(key, size)
            ok = False
            try:
                self._copy_down(f"pull of {key!r}", key, short, had_local=had_local,
                                progress=child, cancel=cancel, buffer_size=buffer_size)
                ok = True
            except KeyError:
                if strict:
                    raise
                return False
            finally:
                child.close(ok)
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

    def revert_denied_reason(self, key_or_prefix: str) -> str | None:
        """None if ``revert(key_or_prefix)`` has something to do, else a sentence saying why not.

        Raises
        ------
        InvalidKeyError
            If the argument is neither a valid key nor a prefix.
        """
        return self._denied(rules.revert_refusal, rules.revert_reason, key_or_prefix)

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
        self._refuse(rules.revert_refusal(self.facts(), key), key)
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
                    raise StoreKeyError(key, self, no_backing(key))
                raise StoreKeyError(key, self, no_local(key, "revert", False))
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

    # ------------------------------------------------------------------ several targets

    def push_many(self, targets: Iterable[str], *,
                  progress: TransferProgress | Progress | None = None,
                  cancel: CancelToken | None = None, buffer_size: int = DEFAULT_BUFFER_SIZE,
                  report: Report | None = None) -> list[str]:
        """:meth:`push` each key or prefix of ``targets`` in turn; a failure stops none.

        Every target's keys are listed first, so ``progress`` gets the size
        of them all, then a child per key (``branch``). A cancel stops them
        all (TransferCancelled is raised at once). ``report(target, keys,
        error)`` is called after each target (``error`` None if it
        succeeded), in the order of ``targets``, for callers that show the
        outcome as it comes.

        Returns
        -------
        list of str
            Every key pushed.

        Raises
        ------
        StoreError, KeyError, OSError
            The error of the only target that failed, after every target was tried.
        TargetsFailed
            Several targets failed (after every target was tried); it lists them.
        TransferCancelled
            ``cancel`` was set.
        """
        return self._each("push", targets, self._plan_push,
                          lambda plan, prog: self._run_push(plan, prog, cancel, buffer_size),
                          progress, report)

    def pull_many(self, targets: Iterable[str], *,
                  progress: TransferProgress | Progress | None = None,
                  cancel: CancelToken | None = None, buffer_size: int = DEFAULT_BUFFER_SIZE,
                  overwrite: bool = False, report: Report | None = None) -> list[str]:
        """:meth:`pull` each target in turn, as :meth:`push_many` pushes them."""
        return self._each("pull", targets, lambda target: self._plan_pull(target, overwrite),
                          lambda plan, prog: self._run_pull(plan, prog, cancel, buffer_size,
                                                            overwrite),
                          progress, report)

    def revert_many(self, targets: Iterable[str], *, report: Report | None = None) -> list[str]:
        """:meth:`revert` each target in turn, as :meth:`push_many` pushes them."""
        return self._each("revert", targets, lambda target: _Plan(target, {}),
                          lambda plan, _prog: self.revert(plan.key), None, report)

    def _each(self, verb: str, targets: Iterable[str], plan: Callable[[str], _Plan],
              run: Callable[[_Plan, TransferProgress], list[str]],
              progress: TransferProgress | Progress | None, report: Report | None) -> list[str]:
        """Plan every target, then run each plan; see :meth:`push_many`."""
        plans: list[tuple[str, _Plan | BaseException]] = []
        for target in targets:
            try:
                plans.append((target, plan(target)))
            except (StoreError, KeyError, OSError) as exc:
                plans.append((target, exc))
        progress = as_progress(progress)
        sizes = [p.total for _, p in plans if isinstance(p, _Plan)]
        progress.set_size(None if None in sizes else sum(sizes))  # type: ignore[arg-type]
        done: list[str] = []
        failures: list[tuple[str, BaseException]] = []
        for target, planned in plans:
            try:
                if isinstance(planned, BaseException):
                    raise planned
                keys = run(planned, progress)
            except TransferCancelled:
                raise
            except (StoreError, KeyError, OSError) as exc:
                failures.append((target, exc))
                if report is not None:
                    report(target, [], exc)
                continue
            done += keys
            if report is not None:
                report(target, keys, None)
        if len(failures) == 1:
            raise failures[0][1]
        if failures:
            raise TargetsFailed(verb, failures, done, self)
        return done


@dataclasses.dataclass
class _Plan:
    """What a push or pull of one target will copy: ``key`` (None: a prefix) and the sizes."""

    key: str | None
    sizes: dict[str, int | None]

    @property
    def total(self) -> int | None:
        """The bytes of every key (None if a size is unknown)."""
        known = list(self.sizes.values())
        return None if None in known else sum(known)  # type: ignore[arg-type]


def _skip(progress: TransferProgress, size: int | None) -> None:
    """A key planned with ``size`` bytes will not be copied after all."""
    if progress.size is not None and size is not None:
        progress.set_size(progress.size - size)


Report = Callable[[str, "list[str]", "BaseException | None"], None]
"""``report(target, keys, error)``: one target of a ``*_many`` call is done."""


class TargetsFailed(StoreError):
    """Several targets of a ``push_many`` / ``pull_many`` / ``revert_many`` failed.

    ``failures`` holds ``(target, error)`` for each; ``done`` the keys the
    other targets moved.
    """

    def __init__(self, verb: str, failures: list[tuple[str, BaseException]], done: list[str],
                 store: Any = None) -> None:
        listed = "; ".join(f"{target!r}: {exc}" for target, exc in failures)
        super().__init__(f"{verb} failed for {len(failures)} targets: {listed}", None, store)
        self.failures = failures
        self.done = done


def _any(keys: Iterable[str]) -> bool:
    """Whether ``keys`` yields anything (a generator is closed: it may hold a cursor)."""
    it = iter(keys)
    try:
        return next(it, None) is not None
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
