"""What the window's key actions do: push, pull, revert, delete, export, new key.

:class:`KeyCommands` takes the targets the action rules left
(``actions.targets``), asks for confirmation or file names where needed,
and runs the store calls on workers (transfers as jobs of the transfer
queue). It reports through signals; the window shows what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from ..stores.errors import StoreError, TransferCancelled
from . import operations
from .actions import KeyActions
from .dnd.drop import DropImporter
from .transfers.queue import TransferQueue
from .tree.model import KeyTreeModel
from .workers import run_in_thread


def describe(keys: list[str]) -> str:
    """``'a/b'`` or ``3 items`` for messages."""
    return f"'{keys[0]}'" if len(keys) == 1 else f"{len(keys)} items"


def delete_and_check(store: Any, targets: list[str]) -> tuple[list[str], list[str]]:
    """Delete the local copies of ``targets`` (blocking: on a worker).

    Returns the keys deleted and those of the targets (keys, not folders)
    that still exist: their backing version shows again.
    """
    deleted = operations.delete_local_copies(store, targets)
    remaining = [t for t in targets if not t.endswith("/") and store.exists(t)]
    return deleted, remaining


def confirm(parent: QWidget, title: str, text: str) -> bool:
    """Ask a Yes/Cancel question (Cancel is the default); True for Yes."""
    answer = QMessageBox.question(
        parent, title, text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


class KeyCommands(QObject):
    """Push, pull, revert, delete, export and import for the selected keys.

    Parameters
    ----------
    store : callable
        Returns the store the window shows now (None while there is none). A
        command's results are dropped if another store is shown by the time it ends.
    actions : KeyActions
        Whose ``targets`` and ``new_key_prefix`` say what each command acts on.
    model : KeyTreeModel
        Told to read again the keys a command changed.
    transfers : TransferQueue
        Runs the transfers (push, pull, export, import) as jobs.
    importer : DropImporter
        Imports several files as a drop does.
    parent : QWidget
        The parent of the dialogs the commands open (and of this object).

    Signals
    -------
    statusMessage(str)
        A message for the status bar.
    errorRaised(str, object)
        A command failed: a title and the exception (or text), for a dialog.
    keysChanged(list)
        The keys and folders a command wrote to (or tried to).
    keyCreated(str)
        A single new key was stored: the window may show it.
    """

    statusMessage = Signal(str)
    errorRaised = Signal(str, object)
    keysChanged = Signal(list)
    keyCreated = Signal(str)

    def __init__(self, store: Callable[[], Any], actions: KeyActions, model: KeyTreeModel,
                 transfers: TransferQueue, importer: DropImporter, parent: QWidget) -> None:
        super().__init__(parent)
        self._store = store
        self._actions = actions
        self._model = model
        self._transfers = transfers
        self._importer = importer
        self._dialog_parent = parent

    def _targets(self, name: str) -> list[str]:
        return [n.key for n in self._actions.targets.get(name, [])]

    def push_selected(self) -> None:
        """Push the selected keys and folders (a job of the transfer queue)."""
        self._transfer("push", "Push", "Pushed", operations.push_targets)

    def pull_selected(self) -> None:
        """Pull the selected remote keys and folders into the mount store."""
        self._transfer("pull", "Pull", "Pulled", operations.pull_targets)

    def _transfer(self, name: str, verb: str, done: str, fn: Any) -> None:
        targets, store = self._targets(name), self._store()
        if not targets or store is None:
            return
        self._transfers.submit(
            f"{verb} {describe(targets)}",
            lambda progress, cancel: fn(store, targets, progress, cancel), kind=name,
            on_done=lambda keys: self._after(store, targets, f"{done} {len(keys)} key(s)"),
            on_error=lambda exc: self._failed(store, targets, f"{verb} failed", exc))

    def _after(self, store: Any, targets: list[str], message: str) -> None:
        if store is not self._store():  # another workspace was opened meanwhile
            return
        # No tree refresh: the store's set / delete events refresh the folders of every key moved.
        self.keysChanged.emit(targets)
        self.statusMessage.emit(message)

    def _failed(self, store: Any, targets: list[str], title: str, exc: BaseException) -> None:
        if store is not self._store():  # another workspace was opened meanwhile
            return
        self._model.refresh_keys(targets)  # part of it may have happened
        self.keysChanged.emit(targets)
        if isinstance(exc, TransferCancelled):
            self.statusMessage.emit(f"{title}: cancelled")
        else:
            self.errorRaised.emit(title, exc)

    def revert_selected(self) -> None:
        """Drop the local copies of the selected shadowing keys, after asking."""
        targets, store = self._targets("revert"), self._store()
        if not targets or not confirm(
                self._dialog_parent, "Revert local changes",
                f"Discard the local changes of {describe(targets)}? The backing store's "
                "version shows again; the local copy cannot be recovered."):
            return
        run_in_thread(operations.revert_targets, store, targets,
                      on_result=lambda keys: self._after(store, targets,
                                                         f"Reverted {len(keys)} key(s)"),
                      on_error=lambda exc: self._failed(store, targets, "Revert failed", exc))

    def delete_selected(self) -> None:
        """Delete the mount copies of the selected keys and folders, after asking."""
        targets, store = self._targets("delete"), self._store()
        if not targets or not confirm(
                self._dialog_parent, "Delete local copies",
                f"Delete the local copies of {describe(targets)}? Keys only in the mount "
                "store are gone for good; keys also in the backing store show its version "
                "again. The backing store is not changed."):
            return
        run_in_thread(delete_and_check, store, targets,
                      on_result=lambda result: self._after_delete(store, targets, *result),
                      on_error=lambda exc: self._failed(store, targets, "Delete failed", exc))

    def _after_delete(self, store: Any, targets: list[str], deleted: list[str],
                      remaining: list[str]) -> None:
        # Only the keys that still show (their backing version) are read again:
        # a key gone for good leaves the tree, and the panels with it.
        changed = [t for t in targets if t.endswith("/")] + remaining
        if len(deleted) == 1:
            message = f"Deleted {deleted[0]}"
            if remaining:
                message += " (the backing store's version shows again)"
        else:
            message = f"Deleted {len(deleted)} local copies"
        self._after(store, changed, message)

    def export_selected(self) -> None:
        """Save the selected keys' data to a file (one key) or into a folder (several)."""
        keys = self._targets("export")
        if not keys:
            return
        if len(keys) == 1:
            name = keys[0].rsplit("/", 1)[-1]
            path, _ = QFileDialog.getSaveFileName(self._dialog_parent, f"Export {keys[0]}",
                                                  str(Path.home() / name))
            if path:
                self.export_keys([(keys[0], path)])
        else:
            folder = QFileDialog.getExistingDirectory(self._dialog_parent,
                                                      f"Export {len(keys)} keys to")
            if folder:
                self.export_keys(operations.export_names(keys, folder))

    def export_keys(self, pairs: list[tuple[str, Any]]) -> None:
        """Queue the export of each ``(key, file path)``."""
        store = self._store()
        title = f"Export {describe([k for k, _ in pairs])}"

        def done(paths: list[Any]) -> None:
            # The files are written whichever workspace is shown now: say so.
            self.statusMessage.emit(f"Exported {len(paths)} file(s)")

        self._transfers.submit(
            title, lambda progress, cancel: operations.export_keys(store, pairs, progress, cancel),
            kind="export", on_done=done,
            on_error=lambda exc: self._failed(store, [], "Export failed", exc))

    def new_key_from_file(self) -> None:
        """Ask for files and store each as a key under the selected folder."""
        prefix = self._actions.new_key_prefix
        if prefix is None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self._dialog_parent, "New key from file")
        if not paths:
            return
        if len(paths) == 1:
            default = prefix + Path(paths[0]).name
            key, ok = QInputDialog.getText(self._dialog_parent, "New key", "Key:", text=default)
            if not ok or not key.strip():
                return
            self.import_files([(key.strip(), paths[0])])
        else:
            self.import_files_under(prefix, paths)

    def import_files_under(self, prefix: str, paths: list[str]) -> None:
        """Store files (and folders' files) under ``prefix``, named after them.

        As a drop on the tree: name clashes are asked about, small files go
        in batches, and what cannot be read is listed at the end.
        """
        self._importer.import_paths(prefix, [str(p) for p in paths])

    def import_files(self, plan: list[tuple[str, Any]]) -> None:
        """Queue storing each file as its key (with file metadata and sha256)."""
        store = self._store()
        keys = [k for k, _ in plan]
        for key in keys:
            reason = store.write_denied_reason(key)
            if reason is not None:
                self.errorRaised.emit("Cannot create the key", StoreError(reason, key))
                return

        def done(written: list[str]) -> None:
            self._after(store, written, f"Stored {len(written)} new key(s)")
            if len(written) == 1 and store is self._store():
                self.keyCreated.emit(written[0])

        self._transfers.submit(
            f"Import {describe(keys)}",
            lambda progress, cancel: operations.import_files(store, plan, progress, cancel),
            kind="import", on_done=done,
            on_error=lambda exc: self._failed(store, keys, "Import failed", exc))
