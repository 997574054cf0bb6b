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
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from . import APP_AUTHOR, APP_NAME
from .stores.errors import StoreError

DEFAULT_NAME = "default"
MAX_RECENT = 10
#: Longest workspace name (it shows in window titles and menus).
MAX_NAME_LENGTH = 200
# Line and paragraph separators and control characters (newline, tab, escape...)
# would break the one-line listings of `storegui workspaces` and the menus.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
_FIELDS = ("name", "backing_url", "mount_url", "mount_point")


class ConfigError(StoreError):
    """The workspace list cannot be read, is damaged, or cannot take a workspace.

    ``path`` is the workspace list file concerned (None for a refused name).
    The message names the file, what is wrong and what the user can do.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


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
    def from_dict(cls, d: Any) -> Workspace:
        """The inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            If ``d`` is not a dict of text fields ``name``, ``backing_url``,
            ``mount_url`` (and optionally ``mount_point``), or the name is not
            one :func:`workspace_name_problem` accepts; the message says which.
        """
        if not isinstance(d, dict):
            raise ValueError(f"it is {_json_kind(d)}, not an object with a name and store URLs")
        for field in _FIELDS:
            if field not in d:
                if field == "mount_point":
                    continue
                raise ValueError(f'it has no "{field}"')
            if not isinstance(d[field], str):
                raise ValueError(f'its "{field}" is {_json_kind(d[field])}, not text')
        problem = workspace_name_problem(d["name"])
        if problem:
            raise ValueError(problem)
        return cls(d["name"], d["backing_url"], d["mount_url"], d.get("mount_point", ""))

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


def workspace_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a workspace, or None if it can.

    A name is non-empty text of at most :data:`MAX_NAME_LENGTH` characters,
    without leading or trailing spaces and without control characters
    (newline, tab...) or line separators. The command line and the app's
    workspace dialog both check names with this function.
    """
    if not isinstance(name, str):
        return f"a workspace name must be text, not {_json_kind(name)}"
    if not name.strip():
        return "a workspace name must not be empty"
    for ch in name:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            return (f"the workspace name {name!r} contains U+{ord(ch):04X}, a line break or "
                    "control character: use letters, digits, spaces and punctuation")
    if name != name.strip():
        return f"the workspace name {name!r} starts or ends with a space: remove it"
    if len(name) > MAX_NAME_LENGTH:
        return f"a workspace name must be at most {MAX_NAME_LENGTH} characters, not {len(name)}"
    return None


def workspace_problem(ws: Workspace) -> str | None:
    """Why ``ws`` cannot be saved under its name, or None if it can.

    Besides :func:`workspace_name_problem`: the name ``default`` is reserved
    for the built-in default workspace (saving it unchanged is allowed).
    """
    problem = workspace_name_problem(ws.name)
    if problem is None and ws.name == DEFAULT_NAME and ws != default_workspace():
        problem = (f"{DEFAULT_NAME!r} is the name of the built-in default workspace: "
                   "choose another name")
    return problem


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = ((bool, "true/false"), (str, "text"), ((int, float), "a number"),
             (list, "a list"), (dict, "an object"))
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def _state_file() -> Path:
    return config_dir() / "workspaces.json"


def _damaged(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"the workspace list {path} is damaged: {problem}. Fix it in a text editor, or move it "
        "away (for example to workspaces.json.damaged) to start a new list; until then "
        "workspaces cannot be saved or opened by name", path)


def _load_state() -> dict:
    """The workspace list file as ``{"workspaces": [entry dicts], "recent": [names]}``.

    Raises
    ------
    ConfigError
        If the file cannot be read or is damaged (the file is left as it is).
    """
    path = _state_file()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {"workspaces": [], "recent": []}
    except UnicodeDecodeError:
        raise _damaged(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the workspace list {path}: {exc.strerror or exc}; check "
                          "that it is a file you may read", path) from None
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise _damaged(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(state, dict):
        raise _damaged(path, f'it is {_json_kind(state)}, not an object with "workspaces" '
                             'and "recent"')
    workspaces = state.setdefault("workspaces", [])
    recent = state.setdefault("recent", [])
    if not isinstance(workspaces, list):
        raise _damaged(path, f'"workspaces" is {_json_kind(workspaces)}, not a list')
    if not isinstance(recent, list):
        raise _damaged(path, f'"recent" is {_json_kind(recent)}, not a list')
    for i, entry in enumerate(workspaces, 1):
        try:
            Workspace.from_dict(entry)
        except ValueError as exc:
            raise _damaged(path, f"workspace {i} of {len(workspaces)}: {exc}") from None
    for i, name in enumerate(recent, 1):
        if not isinstance(name, str):
            raise _damaged(path, f'recent entry {i} is {_json_kind(name)}, not a name')
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
    """Save ``ws`` (replacing a saved one of the same name).

    Saving the default workspace unchanged does nothing (it is built in).

    Raises
    ------
    ConfigError
        If :func:`workspace_problem` refuses ``ws`` (a bad name, or another
        workspace called ``default``), or the workspace list cannot be read
        or is damaged: a damaged list is never overwritten.
    """
    problem = workspace_problem(ws)
    if problem:
        raise ConfigError(f"cannot save the workspace: {problem}")
    if ws.name == DEFAULT_NAME:
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


class WorkspaceOptionsError(ValueError):
    """The workspace options of a command line do not go together (a usage mistake)."""


def add_workspace_options(group: Any) -> None:
    """Add ``--workspace``, ``--backing``, ``--mount`` and ``--mount-point`` to ``group``.

    ``group`` is an argparse parser or argument group; the options get its
    default (None unless it sets ``argument_default``). :func:`resolve_workspace`
    reads them, for the ``storegui`` verbs and the desktop app alike.
    """
    group.add_argument("--workspace", metavar="NAME", help="a saved workspace (see `workspaces`)")
    group.add_argument("--backing", metavar="URL", help="backing store URL or path")
    group.add_argument("--mount", metavar="URL", help="mount store URL or path")
    group.add_argument("--mount-point", metavar="PREFIX",
                       help="key prefix where the mount store is mounted (default '')")


def resolve_workspace(workspace: str | None = None, backing: str | None = None,
                      mount: str | None = None, mount_point: str | None = None) -> Workspace:
    """The workspace the command-line options name (None: not given).

    ``--workspace NAME`` a saved one; ``--backing URL --mount URL
    [--mount-point PREFIX]`` one made from the URLs; nothing the default one.

    Raises
    ------
    WorkspaceOptionsError
        The options do not go together (the message says how to fix them).
    StoreError
        ``workspace`` names no saved workspace.
    """
    if workspace is not None and (backing is not None or mount is not None
                                  or mount_point is not None):
        raise WorkspaceOptionsError("give either --workspace or --backing/--mount, not both")
    if (backing is None) != (mount is None):
        raise WorkspaceOptionsError("--backing and --mount go together")
    if backing is not None:
        return workspace_from_urls(backing, mount or "", mount_point or "")
    if mount_point is not None:
        raise WorkspaceOptionsError("--mount-point needs --backing and --mount")
    if workspace is not None:
        return find_workspace(workspace)
    return default_workspace()


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
