"""The window's actions and the rules that enable them.

The push / pull / revert / delete rules are MountedStore's own
(:mod:`storegui.stores.mounted.rules`, which ``push_denied_reason`` & co.
ask too). They run here on the GUI thread on every selection change, so they
get only what the tree already knows (each node's key, folder flag and
origin) and facts about the stores gathered once on a worker
(:class:`MountFacts`): never a store call here. The store call itself still
refuses whatever slipped through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from ..stores.mounted.rules import (
    MountFacts,
    Target,
    delete_reason,
    pull_reason,
    push_reason,
    revert_reason,
)
from . import icons

Item = Target  # a selected tree node: key, is_dir, origin
Rule = Callable[[Item, MountFacts], "str | None"]


def export_reason(item: Item, facts: MountFacts) -> str | None:
    """Why ``item`` cannot be exported to a file (folders cannot)."""
    if item.is_dir:
        return f"'{item.key}' is a folder; select keys to export"
    return None


def without_nested(items: Sequence[Item]) -> list[Item]:
    """``items`` minus those inside a selected folder (the folder covers them)."""
    folders = [i.key for i in items if i.is_dir]
    return [i for i in items
            if not any(i.key != f and i.key.startswith(f) for f in folders)]


def applicable(items: Sequence[Item], facts: MountFacts | None,
               rule: Rule, verb: str) -> tuple[list[Item], str | None]:
    """The items ``rule`` allows, and a sentence for the tooltip.

    With nothing allowed the sentence says why not; with some allowed it
    says how many of the selection the action will use.
    """
    if not items:
        return [], f"Select keys or folders to {verb}"
    if facts is None:
        return [], "Checking whether the stores can be written…"
    ok, refused = [], []
    for item in without_nested(items):
        reason = rule(item, facts)
        (refused if reason else ok).append(reason or item)
    if not ok:
        reason = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        return [], reason[0].upper() + reason[1:] + more
    if refused:
        return ok, f"{verb.capitalize()} {len(ok)} of {len(ok) + len(refused)} selected " \
                   f"(skipped: {refused[0]})"
    return ok, None


_KEY_ACTIONS = {
    # name: (text, icon, shortcut, rule, verb, help)
    "push": ("&Push", "push", "Ctrl+P", push_reason, "push",
             "Push: move the selected local keys to the backing store"),
    "pull": ("P&ull", "pull", "Ctrl+Shift+P", pull_reason, "pull",
             "Pull: copy the selected remote keys into the mount store"),
    "revert": ("&Revert Local Change", "revert", "Ctrl+Shift+R", revert_reason, "revert",
               "Revert: drop the local copy so the backing version shows again"),
    "delete": ("&Delete", "delete", QKeySequence.StandardKey.Delete, delete_reason, "delete",
               "Delete the local (mount store) copies of the selected keys"),
    "export": ("&Export to File…", "export", "Ctrl+E", export_reason, "export",
               "Export: save the selected keys' data to files"),
}


def key_sequences(spec: Any) -> list[QKeySequence]:
    """Shortcuts for ``spec``: a QKeySequence.StandardKey (every binding the platform
    has for it), a key string like ``"Ctrl+E"``, or a list of those (duplicates dropped).
    """
    out: list[QKeySequence] = []
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, QKeySequence.StandardKey):
            found = QKeySequence.keyBindings(item)
        else:
            found = [QKeySequence(item)]
        out.extend(s for s in found if not s.isEmpty() and s not in out)
    return out


# Toolbar buttons show these shorter labels (menus show the full text).
_TOOLBAR_TEXT = {"openWorkspace": "Open", "newKey": "New Key", "export": "Export",
                 "revert": "Revert", "search": "Search Store"}


class KeyActions(QObject):
    """Every QAction of the main window, with their enable rules.

    Attributes named after the actions (``push``, ``pull``, ``revert``,
    ``delete``, ``export``, ``refresh``, ``new_key``, ``open_workspace``,
    ``search``, ``find``, ``quit``, ``copy``, ``about``); their objectNames
    are ``pushAction`` etc.
    ``targets[name]`` holds the items the action applies to after the last
    :meth:`update`.
    """

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.targets: dict[str, list[Item]] = {}
        self._help: dict[str, str] = {}
        self._rules: dict[str, tuple[Rule, str]] = {}
        for name, (text, icon, shortcut, rule, verb, help_text) in _KEY_ACTIONS.items():
            action = self._make(name, text, icon, shortcut, help_text)
            self._rules[name] = (rule, verb)
            setattr(self, name, action)
        self.refresh = self._make("refresh", "Re&fresh", "refresh",
                                  [QKeySequence.StandardKey.Refresh, "Ctrl+R"],
                                  "Refresh: list the loaded folders again")
        self.new_key = self._make("newKey", "&New Key from File…", "new-key",
                                  QKeySequence.StandardKey.New,
                                  "New key: store a file as a key in the mount store")
        self.open_workspace = self._make("openWorkspace", "&Open Workspace…", "open-workspace",
                                         QKeySequence.StandardKey.Open,
                                         "Open another workspace (backing store + mount store)")
        self.search = self._make("search", "&Search Store…", "search", "Ctrl+Shift+F",
                                 "Search the whole store: a glob pattern (*.csv) or a "
                                 "metadata query (name=value)")
        self.find = self._make("find", "&Filter Loaded Keys", "", QKeySequence.StandardKey.Find,
                               "Filter the loaded keys by name (wildcards: * ?)")
        # Some platforms (Windows, offscreen) bind nothing to Quit: Ctrl+Q then.
        self.quit = self._make("quit", "&Quit", "", [QKeySequence.StandardKey.Quit, "Ctrl+Q"],
                               "Quit storegui")
        self.copy = self._make("copy", "&Copy Key Names", "", QKeySequence.StandardKey.Copy,
                               "Copy the selected keys' names to the clipboard")
        self.about = self._make("about", "&About storegui", "storegui", "",
                                "Versions of storegui, Qt and the stores in use")
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)
        self.about.setMenuRole(QAction.MenuRole.AboutRole)
        self.new_key_prefix: str | None = None

    def _make(self, name: str, text: str, icon: str, shortcut: Any, help_text: str) -> QAction:
        action = QAction(text, self.parent())
        action.setObjectName(f"{name}Action")
        if name in _TOOLBAR_TEXT:
            action.setIconText(_TOOLBAR_TEXT[name])
        if icon:
            action.setIcon(icons.icon(icon))
        if shortcut:
            action.setShortcuts(key_sequences(shortcut))
        action.setToolTip(help_text)
        action.setStatusTip(help_text)
        self._help[name] = help_text
        return action

    def key_actions(self) -> list[QAction]:
        """The actions that work on the selection, in menu order."""
        return [self.push, self.pull, self.revert, self.delete, self.export]

    def update(self, items: Sequence[Item], target_folder: str,
               facts: MountFacts | None) -> None:
        """Enable each action for ``items`` (the selection) and set its tooltip.

        ``target_folder`` is the prefix a new key would go under (the selected
        folder, the folder of the selected key, or "").
        """
        for name, (rule, verb) in self._rules.items():
            ok, note = applicable(items, facts, rule, verb)
            self.targets[name] = ok
            self._set(getattr(self, name), name, bool(ok), note)
        self.copy.setEnabled(bool(items))
        if facts is None:
            self.new_key_prefix = None
            self._set(self.new_key, "newKey", False, "Checking whether the stores can be written…")
        else:
            prefix = facts.new_key_prefix(target_folder)
            self.new_key_prefix = prefix
            if facts.mount_readonly:
                self._set(self.new_key, "newKey", False, facts.mount_readonly)
            elif prefix is None:
                self._set(self.new_key, "newKey", False,
                          f"'{target_folder}' is outside the mount point "
                          f"'{facts.mount_point}'; new keys can only be created under it")
            else:
                where = f" under '{prefix}'" if prefix else ""
                self._set(self.new_key, "newKey", True,
                          f"New key: store a file as a key{where} in the mount store")

    def _set(self, action: QAction, name: str, enabled: bool, note: str | None) -> None:
        action.setEnabled(enabled)
        if note is None:
            tip = self._help[name]
        elif not enabled or name == "newKey":
            tip = note  # why not (or, for a new key, where it goes)
        else:
            tip = f"{self._help[name]}. {note}"
        action.setToolTip(tip)
        action.setStatusTip(tip)
