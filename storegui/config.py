"""Workspaces and the app's own paths (platformdirs); no Qt here.

A workspace is (name, backing store URL, mount store URL, mount point).
Workspaces and the recent list are kept as JSON in the user config dir.
The default workspace lives in the user data dir and is created on first use:
an SQLite mount store over a directory backing store.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from . import APP_AUTHOR, APP_NAME
from .stores.errors import StoreError

DEFAULT_NAME = "default"
MAX_RECENT = 10


def data_dir() -> Path:
    """The user data dir (default workspace's stores live here)."""
    return platformdirs.user_data_path(APP_NAME, APP_AUTHOR)


def config_dir() -> Path:
    """The user config dir (workspaces.json lives here)."""
    return platformdirs.user_config_path(APP_NAME, APP_AUTHOR)


@dataclass(frozen=True)
class Workspace:
    """A backing store URL, a mount store URL and the mount point joining them."""

    name: str
    backing_url: str
    mount_url: str
    mount_point: str = ""

    def open(self) -> Any:
        """Build (not connect) the workspace's MountedStore.

        Raises
        ------
        StoreError
            If a URL names no known store kind.
        """
        from .stores import MountedStore, open_store

        return MountedStore(self.mount_point, open_store(self.mount_url),
                            open_store(self.backing_url))

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Workspace:
        """The inverse of :meth:`to_dict`; raises StoreError for a malformed entry."""
        try:
            return cls(str(d["name"]), str(d["backing_url"]), str(d["mount_url"]),
                       str(d.get("mount_point", "")))
        except (KeyError, TypeError) as exc:
            raise StoreError(f"malformed workspace entry {d!r}: missing {exc}") from None

    @property
    def title(self) -> str:
        """A short label for window titles and menus."""
        where = f" at {self.mount_point!r}" if self.mount_point else ""
        return f"{self.name} — {self.mount_url} over {self.backing_url}{where}"


def default_workspace() -> Workspace:
    """The default workspace, creating its folders on first use."""
    root = data_dir() / "default"
    backing = root / "backing"
    backing.mkdir(parents=True, exist_ok=True)
    return Workspace(DEFAULT_NAME, str(backing), f"sqlite://{root / 'mount.db'}", "")


def _state_file() -> Path:
    return config_dir() / "workspaces.json"


def _load_state() -> dict:
    path = _state_file()
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {"workspaces": [], "recent": []}
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the workspace list {path}: {exc}") from None
    if not isinstance(state, dict):
        raise StoreError(f"the workspace list {path} is not a JSON object")
    state.setdefault("workspaces", [])
    state.setdefault("recent", [])
    return state


def _save_state(state: dict) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".workspaces-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_workspaces() -> list[Workspace]:
    """Every saved workspace, the default one first."""
    out = [default_workspace()]
    for entry in _load_state()["workspaces"]:
        ws = Workspace.from_dict(entry)
        if ws.name != DEFAULT_NAME:
            out.append(ws)
    return out


def find_workspace(name: str) -> Workspace:
    """The saved workspace called ``name``.

    Raises
    ------
    StoreError
        If there is none; the message lists the known names.
    """
    workspaces = load_workspaces()
    for ws in workspaces:
        if ws.name == name:
            return ws
    names = ", ".join(w.name for w in workspaces)
    raise StoreError(f"no workspace called {name!r} (known: {names})")


def save_workspace(ws: Workspace) -> None:
    """Save ``ws`` (replacing a saved one of the same name)."""
    if ws.name == DEFAULT_NAME and ws == default_workspace():
        return
    state = _load_state()
    state["workspaces"] = [w for w in state["workspaces"] if w.get("name") != ws.name]
    state["workspaces"].append(ws.to_dict())
    _save_state(state)


def delete_workspace(name: str) -> None:
    """Forget the saved workspace called ``name`` (and drop it from the recent list).

    Raises
    ------
    StoreError
        If ``name`` is the default workspace (it cannot be deleted) or no saved
        workspace has that name. The stores themselves are not touched.
    """
    if name == DEFAULT_NAME:
        raise StoreError(f"the {DEFAULT_NAME!r} workspace cannot be deleted")
    state = _load_state()
    kept = [w for w in state["workspaces"] if w.get("name") != name]
    if len(kept) == len(state["workspaces"]):
        names = ", ".join(w.name for w in load_workspaces())
        raise StoreError(f"no workspace called {name!r} (known: {names})")
    state["workspaces"] = kept
    state["recent"] = [n for n in state["recent"] if n != name]
    _save_state(state)


def remember_recent(ws: Workspace) -> None:
    """Save ``ws`` and put it first in the recent list."""
    save_workspace(ws)
    state = _load_state()
    recent = [n for n in state["recent"] if n != ws.name]
    state["recent"] = [ws.name, *recent][:MAX_RECENT]
    _save_state(state)


def recent_workspaces() -> list[Workspace]:
    """Recently opened workspaces, newest first (unknown names skipped)."""
    by_name = {w.name: w for w in load_workspaces()}
    return [by_name[n] for n in _load_state()["recent"] if n in by_name]


def workspace_from_urls(backing: str, mount: str, mount_point: str = "",
                        name: str | None = None) -> Workspace:
    """A workspace for the given URLs, named after them unless ``name`` is given."""
    if name is None:
        name = f"{Path(backing.rstrip('/')).name or backing}@{mount_point or '/'}"
    return Workspace(name, backing, mount, mount_point)


def absolute_url(url: str) -> str:
    """``url`` with a relative local path made absolute (other URLs unchanged).

    A saved workspace must name the same stores from any working folder:
    ``data`` -> ``/home/ann/data``, ``sqlite://x.db`` -> ``sqlite:///home/ann/x.db``,
    ``file://d`` -> ``file:///home/ann/d``; ``~`` is expanded.
    """
    for scheme in ("sqlite://", "file://"):
        if url.startswith(scheme):
            path = url[len(scheme):]
            if not path or path == ":memory:":
                return url
            return scheme + os.path.abspath(os.path.expanduser(path))
    if "://" in url:
        return url
    return os.path.abspath(os.path.expanduser(url))
