"""The app as a desktop citizen: the .desktop file and icons, and light or dark palettes.

Freedesktop menus and launchers find an app through its ``.desktop`` file in
``$XDG_DATA_HOME/applications`` and its icon, by name, in the ``hicolor``
icon theme (``$XDG_DATA_HOME/icons/hicolor/<size>/apps``). The wheel carries
both in ``storegui.resources``; :func:`install_desktop_entry` copies them
there for the current user, with ``Exec`` naming this installation's
``storegui`` command (a virtual environment's ``bin`` is rarely on the
launcher's ``PATH``). Only QtCore is used, so it runs without a display::

    python3 -m storegui.app.desktop_integration install     # or: uninstall, show

:func:`follow_palette_changes` keeps the app's stylesheet in step with the
palette when the desktop switches between light and dark while it runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject

from .. import APP_NAME, resources_path

#: The .desktop file's name; the app's ``desktopFileName`` (Wayland app id) must match it.
DESKTOP_FILE_NAME = f"{APP_NAME}.desktop"
#: The rendered PNG sizes of the app icon (``resources/icons/storegui-<size>.png``).
ICON_SIZES = (16, 32, 48, 64, 128, 256)

# Characters that force quoting of an Exec argument (Desktop Entry Spec, "The Exec key").
_RESERVED = re.compile(r"""[\s"'\\><~|&;$*?#()`]""")


class DesktopIntegrationError(Exception):
    """Installing or removing the desktop entry is not possible here (the message says why)."""


def desktop_file() -> Path:
    """The packaged ``storegui.desktop`` (``Exec=storegui``, found through ``PATH``)."""
    return resources_path() / DESKTOP_FILE_NAME


def icon_files() -> dict[str, Path]:
    """The packaged app icons by hicolor size folder: ``scalable`` (SVG) and ``16x16``...

    Raises
    ------
    DesktopIntegrationError
        If one of them is missing from the installation.
    """
    folder = resources_path() / "icons"
    icons = {"scalable": folder / f"{APP_NAME}.svg"}
    icons.update({f"{n}x{n}": folder / f"{APP_NAME}-{n}.png" for n in ICON_SIZES})
    missing = [str(p) for p in icons.values() if not p.is_file()]
    if missing:
        raise DesktopIntegrationError(f"the installation lacks its icons: {', '.join(missing)}")
    return icons


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that starts this installation's app.

    Its ``storegui`` script (from the environment's scripts folder, the user
    scripts folder, then ``PATH``), or else ``python -m storegui`` with this
    interpreter.
    """
    folders = [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user")]
    for folder in folders:
        candidate = Path(folder) / APP_NAME
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which(APP_NAME)
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", APP_NAME]


def _escape(value: str) -> str:
    # The string-value escape of the file format: a backslash is written twice.
    return value.replace("\\", "\\\\")


def exec_value(command: list[str]) -> str:
    """``command`` written as a .desktop ``Exec`` value (quoted and escaped per the spec)."""
    parts = []
    for arg in command:
        if _RESERVED.search(arg):
            inner = re.sub(r'(["`$\\])', r"\\\1", arg)
            arg = f'"{inner}"'
        # Then the file format's own escapes, and %% for a literal % (not a field code).
        parts.append(_escape(arg).replace("%", "%%"))
    return " ".join(parts)


def desktop_entry_text(command: list[str] | None = None) -> str:
    """The packaged .desktop file with ``Exec`` and ``TryExec`` set to ``command``.

    ``command`` defaults to :func:`launcher_command`.
    """
    command = launcher_command() if command is None else command
    lines = []
    for line in desktop_file().read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + exec_value(command)
            if command[1:3] == ["-m", APP_NAME]:
                # Not installed with its scripts (a source checkout): `-m` finds the
                # package in the working folder.
                lines.append("Path=" + _escape(str(Path(__file__).resolve().parents[2])))
        elif line.startswith("TryExec="):
            line = "TryExec=" + _escape(command[0])
        lines.append(line)
    return "\n".join(lines) + "\n"


def installed_paths(home: Path | None = None) -> list[Path]:
    """Where :func:`install_desktop_entry` puts the .desktop file and each icon."""
    home = data_home() if home is None else home
    icons = home / "icons" / "hicolor"
    return [home / "applications" / DESKTOP_FILE_NAME,
            icons / "scalable" / "apps" / f"{APP_NAME}.svg",
            *(icons / f"{n}x{n}" / "apps" / f"{APP_NAME}.png" for n in ICON_SIZES)]


def _write_atomically(path: Path, data: bytes) -> None:
    # Menus watch these folders: never let them read a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_platform() -> None:
    if sys.platform.startswith(("win", "darwin")):
        raise DesktopIntegrationError(
            "desktop entries are for Linux and BSD desktops (freedesktop.org); "
            f"on this system start the app with the `{APP_NAME}` command")


def install_desktop_entry(home: Path | None = None,
                          command: list[str] | None = None) -> list[Path]:
    """Add the app to the user's application menu; returns the files written.

    Writes the .desktop file (``Exec`` = ``command``, default
    :func:`launcher_command`) and the icons under ``home`` (default
    :func:`data_home`), replacing earlier copies.

    Raises
    ------
    DesktopIntegrationError
        On Windows and macOS, or if the installation lacks its icons.
    OSError
        If a file cannot be written.
    """
    _check_platform()
    icons = icon_files()
    targets = installed_paths(home)
    _write_atomically(targets[0], desktop_entry_text(command).encode("utf-8"))
    for source, target in zip(icons.values(), targets[1:], strict=True):
        _write_atomically(target, source.read_bytes())
    return targets


def uninstall_desktop_entry(home: Path | None = None) -> list[Path]:
    """Remove what :func:`install_desktop_entry` wrote; returns the files removed.

    Raises
    ------
    OSError
        If a file exists but cannot be removed.
    """
    removed = []
    for path in installed_paths(home):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


class _PaletteFollower(QObject):
    # Under an application stylesheet Qt does not pass a new application palette
    # on to widgets already polished: a live light/dark switch would leave them in
    # the old colours. Setting the stylesheet again re-polishes them.
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.ApplicationPaletteChange and watched is self.parent():
            sheet = watched.styleSheet()
            if sheet:
                watched.setStyleSheet(sheet)
        return False


def follow_palette_changes(app: QCoreApplication) -> None:
    """Make ``app`` (a QApplication with a stylesheet) redraw in a new palette at once.

    Safe to call more than once: one follower per application.
    """
    if app.findChild(_PaletteFollower, "paletteFollower") is None:
        follower = _PaletteFollower(app)
        follower.setObjectName("paletteFollower")
        app.installEventFilter(follower)


def _shown(path: Path) -> str:
    """``path`` for messages, with the home folder written as ``~``."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _report(action: str) -> list[str]:
    if action == "install":
        return [f"wrote {_shown(p)}" for p in install_desktop_entry()]
    if action == "uninstall":
        return [f"removed {_shown(p)}" for p in uninstall_desktop_entry()] or ["nothing to remove"]
    return [f"packaged desktop file: {desktop_file()}",
            *(f"packaged icon ({size}): {path}" for size, path in icon_files().items()),
            f"launcher command: {exec_value(launcher_command())}",
            *(f"installs to: {_shown(p)}" for p in installed_paths())]


def main(argv: list[str] | None = None) -> int:
    """``python -m storegui.app.desktop_integration install|uninstall|show``; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python3 -m storegui.app.desktop_integration",
        description="Add storegui to (or remove it from) your desktop's application menu.")
    parser.add_argument("action", choices=["install", "uninstall", "show"],
                        help="install or uninstall the launcher and icons under "
                             "$XDG_DATA_HOME (~/.local/share); show: print the packaged "
                             "files and where they would go")
    args = parser.parse_args(argv)
    try:
        lines = _report(args.action)
    except (DesktopIntegrationError, OSError) as exc:
        print(f"{APP_NAME}: error: {exc}", file=sys.stderr)
        return 1
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        # The reader stopped early (`| head`): nothing went wrong here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
