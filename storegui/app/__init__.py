"""The storegui desktop app (PySide6).

``run()`` starts it: with no arguments it opens the default workspace
(created on first run under the platformdirs user data dir).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import APP_AUTHOR, APP_NAME, ORG_DOMAIN, __version__, resources_path
from ..config import Workspace, WorkspaceOptionsError, add_workspace_options, resolve_workspace
from ..stores.errors import StoreError

log = logging.getLogger(__name__)

#: After the window closes, wait this long for store calls to end (milliseconds).
EXIT_WAIT_MS = 3000


def __getattr__(name: str):
    # MainWindow pulls in every widget; load it on first use only.
    if name == "MainWindow":
        from .main_window import MainWindow

        return MainWindow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    """The command line of the desktop app."""
    parser = argparse.ArgumentParser(
        prog=APP_NAME, description="Browse a mount store over a backing store.")
    add_workspace_options(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def workspace_from_args(argv: list[str] | None = None) -> Workspace:
    """The workspace the command line asks for (the default one with no arguments).

    Raises
    ------
    SystemExit
        On bad arguments (argparse prints why).
    StoreError
        If ``--workspace`` names no saved workspace.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return resolve_workspace(args.workspace, args.backing, args.mount, args.mount_point)
    except WorkspaceOptionsError as exc:
        parser.error(str(exc))
        raise  # parser.error exits


def apply_app_style(app) -> None:
    """Names, icon and stylesheet of the application object."""
    from .icons import app_icon

    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_AUTHOR)
    app.setOrganizationDomain(ORG_DOMAIN)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    try:
        app.setStyleSheet((resources_path() / "style.qss").read_text(encoding="utf-8"))
    except OSError as exc:
        log.warning("no stylesheet: %s", exc)
    from .desktop_integration import follow_palette_changes

    follow_palette_changes(app)  # a light/dark switch while running redraws every widget


def run(argv: list[str] | None = None) -> int:
    """Start the desktop app; returns the exit code.

    ``argv`` are the arguments after the program name (default: ``sys.argv[1:]``):
    ``--backing URL --mount URL [--mount-point PREFIX]``, ``--workspace NAME``,
    or nothing for the default workspace.
    """
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    try:
        workspace = workspace_from_args(argv)
    except StoreError as exc:
        print(f"{APP_NAME}: {exc}", file=sys.stderr)
        return 2
    if QApplication.instance() is None:
        from .desktop_libs import check_xcb_libraries

        problem = check_xcb_libraries()
        if problem:  # else Qt prints one of the missing names and aborts
            sys.stderr.write(problem)
            return 1
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    apply_app_style(app)
    from .main_window import MainWindow

    window = MainWindow(workspace)
    window.show()
    code = app.exec()
    if not QThreadPool.globalInstance().waitForDone(EXIT_WAIT_MS):
        # A store call stuck in a dead backing store would hold the process open
        # forever (Qt joins its pool threads at exit): leave without it.
        log.warning("store calls still running at exit; not waiting for them")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


__all__ = ["MainWindow", "run", "build_parser", "workspace_from_args"]
