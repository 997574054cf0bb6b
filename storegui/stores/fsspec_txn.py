"""Transactions of FsspecStore: an undo log of each key's state before its first change.

A snapshot holds whether the key existed and its metadata object. Its data
is copied to ``<root>/.storegui/tmp/`` (server-side on S3) only when the
transaction is about to overwrite or delete it; a rollback moves that copy
back, a commit deletes it.
"""

from __future__ import annotations

from typing import Any

from .base import Transaction
from .errors import StoreError


class Snapshot:
    """A key's state before its first change in a transaction."""

    __slots__ = ("existed", "record", "backup", "tag")

    def __init__(self, existed: bool, record: bytes | None, tag: Any = None) -> None:
        self.existed = existed
        self.record = record
        self.tag = tag  # the data's tag then (its record may name it)
        self.backup: str | None = None


class TransactionMixin:
    """``_snapshot`` / ``_restore`` / ``_commit`` for :class:`~.fsspec_store.FsspecStore`."""

    # FsspecStore provides _live(), _txn, _index, _data_path(), _meta_path(),
    # _tmp_path(), _checked(), _parse_record(), _error(), _quietly().

    def _snapshot(self, key: str) -> Snapshot:
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "writing", key)
        return Snapshot(info is not None, raw if info is not None else None,
                        info.tag if info is not None else None)

    def _back_up(self, key: str) -> None:
        """Inside a transaction, keep the key's data before its first overwrite or delete."""
        txn = self._txn
        snap = txn.undo.get(key) if txn is not None else None
        if isinstance(snap, Snapshot) and snap.existed and snap.backup is None:
            backup = self._tmp_path()
            self._live().copy(self._data_path(key), backup)
            snap.backup = backup

    def _restore(self, key: str, snapshot: Any) -> None:
        if not isinstance(snapshot, Snapshot):
            return
        rfs = self._live()
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        try:
            if not snapshot.existed:
                self._checked(rfs.run(rfs.remove(data_path), rfs.remove(meta_path)),
                              "rolling back", key)
                self._index.apply(key, lambda _old: None)
                return
            raw = snapshot.record
            if snapshot.backup is not None:
                # A copy, not a move: a copy's new tag is known (the record names it).
                _, tag = rfs.run1(rfs.copy_object(snapshot.backup, data_path))
                self._quietly(rfs.remove(snapshot.backup))
                snapshot.backup = None
                raw = self._retagged(raw, snapshot.tag, tag)
            record = self._parse_record(raw, key)
            if record is None:
                rfs.run1(rfs.remove(meta_path))
                self._index.apply(key, lambda _old: None)
            else:
                entry = {"metadata": record["metadata"], "created": record.get("created")}
                self._index.apply(key, lambda _old: entry,
                                  lambda _new: [rfs.write(meta_path, raw)])
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "rolling back", key) from exc

    def _commit(self, txn: Transaction) -> None:
        backups = [s.backup for s in txn.undo.values()
                   if isinstance(s, Snapshot) and s.backup is not None]
        if backups and self._rfs is not None:
            # Best effort: the transaction's writes are done; a leftover copy only costs space.
            self._quietly(*(self._rfs.remove(b) for b in backups))
