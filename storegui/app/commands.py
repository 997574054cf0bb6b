"""What the window's key actions do: push, pull, revert, delete, export, new key.

A mixin of :class:`~storegui.app.main_window.MainWindow`: each command takes
the targets the action rules left (``actions.targets``), asks for
confirmation or file names where needed, and runs the store calls on
workers (transfers as jobs of the transfer queue).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from ..stores.errors import StoreError, TransferCancelled
from . import operations
from .workers import run_in_thread


def describe(keys: list[str]) -> str:
    """``'a/b'`` or ``3 items`` for messages."""
    return f"'{keys[0]}'" if len(keys) == 1 else f"{len(keys)} items"


class KeyCommandsMixin:
    """Push, pull, revert, delete, export and import for the selected keys.

    Needs of the window: ``store``, ``model``, ``actions``, ``transfers`` (the
    TransferQueue), ``drop_importer``, ``show_status``, ``show_error``,
    ``reveal_key`` and ``refresh_shown_key``.
    """

    store: Any
    model: Any
    actions: Any
    transfers: Any
    drop_importer: Any

    def _targets(self, name: str) -> list[str]:
        return [n.key for n in self.actions.targets.get(name, [])]

    def push_selected(self) -> None:
        """Push the selected keys and folders (a job of the transfer queue)."""
        self._transfer("push", "Push", "Pushed", operations.push_targets)

    def pull_selected(self) -> None:
        """Pull the selected remote keys and folders into the mount store."""
        self._transfer("pull", "Pull", "Pulled", operations.pull_targets)

    def _transfer(self, name: str, verb: str, done: str, fn: Any) -> None:
        targets, store = self._targets(name), self.store
        if not targets or store is None:
            return
        self.transfers.submit(
            f"{verb} {describe(targets)}",
            lambda progress, cancel: fn(store, targets, progress, cancel), kind=name,
            on_done=lambda keys: self._after(targets, f"{done} {len(keys)} key(s)"),
            on_error=lambda exc: self._failed(targets, f"{verb} failed", exc))

    def _after(self, targets: list[str], message: str) -> None:
        self.model.refresh_keys(targets)
        self.refresh_shown_key(targets)
        self.show_status(message)

    def _failed(self, targets: list[str], title: str, exc: BaseException) -> None:
        self.model.refresh_keys(targets)  # part of it may have happened
        self.refresh_shown_key(targets)
        if isinstance(exc, TransferCancelled):
            self.show_status(f"{title}: cancelled")
        else:
            self.show_error(title, exc)

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def revert_selected(self) -> None:
        """Drop the local copies of the selected shadowing keys, after asking."""
        targets, store = self._targets("revert"), self.store
        if not targets or not self._confirm(
                "Revert local changes",
                f"Discard the local changes of {describe(targets)}? The backing store's "
                "version shows again; the local copy cannot be recovered."):
            return
        run_in_thread(operations.revert_targets, store, targets,
                      on_result=lambda keys: self._after(targets, f"Reverted {len(keys)} key(s)"),
                      on_error=lambda exc: self._failed(targets, "Revert failed", exc))

    def delete_selected(self) -> None:
        """Delete the mount copies of the selected keys and folders, after asking."""
        targets, store = self._targets("delete"), self.store
        if not targets or not self._confirm(
                "Delete local copies",
                f"Delete the local copies of {describe(targets)}? Keys only in the mount "
                "store are gone for good; keys also in the backing store show its version "
                "again. The backing store is not changed."):
            return
        run_in_thread(operations.delete_local_copies, store, targets,
                      on_result=lambda keys: self._after(targets, f"Deleted {len(keys)} local "
                                                                  "copy(ies)"),
                      on_error=lambda exc: self._failed(targets, "Delete failed", exc))

    def export_selected(self) -> None:
        """Save the selected keys' data to a file (one key) or into a folder (several)."""
        keys = self._targets("export")
        if not keys:
            return
        if len(keys) == 1:
            name = keys[0].rsplit("/", 1)[-1]
            path, _ = QFileDialog.getSaveFileName(self, f"Export {keys[0]}",
                                                  str(Path.home() / name))
            if path:
                self.export_keys([(keys[0], path)])
        else:
            folder = QFileDialog.getExistingDirectory(self, f"Export {len(keys)} keys to")
            if folder:
                self.export_keys(operations.export_names(keys, folder))

    def export_keys(self, pairs: list[tuple[str, Any]]) -> None:
        """Queue the export of each ``(key, file path)``."""
        store = self.store
        title = f"Export {describe([k for k, _ in pairs])}"
        self.transfers.submit(
            title, lambda progress, cancel: operations.export_keys(store, pairs, progress, cancel),
            kind="export", on_done=lambda paths: self.show_status(f"Exported {len(paths)} file(s)"),
            on_error=lambda exc: self._failed([], "Export failed", exc))

    def new_key_from_file(self) -> None:
        """Ask for files and store each as a key under the selected folder."""
        prefix = self.actions.new_key_prefix
        if prefix is None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self, "New key from file")
        if not paths:
            return
        if len(paths) == 1:
            default = prefix + Path(paths[0]).name
            key, ok = QInputDialog.getText(self, "New key", "Key:", text=default)
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
        self.drop_importer.import_paths(prefix, [str(p) for p in paths])

    def import_files(self, plan: list[tuple[str, Any]]) -> None:
        """Queue storing each file as its key (with file metadata and sha256)."""
        store = self.store
        keys = [k for k, _ in plan]
        for key in keys:
            reason = store.write_denied_reason(key)
            if reason is not None:
                self.show_error("Cannot create the key", StoreError(reason, key))
                return

        def done(written: list[str]) -> None:
            self._after(written, f"Stored {len(written)} new key(s)")
            if len(written) == 1:
                self.reveal_key(written[0])

        self.transfers.submit(
            f"Import {describe(keys)}",
            lambda progress, cancel: operations.import_files(store, plan, progress, cancel),
            kind="import", on_done=done,
            on_error=lambda exc: self._failed(keys, "Import failed", exc))

