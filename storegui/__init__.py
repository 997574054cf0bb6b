"""storegui: a desktop manager for key-value stores.

The Qt-free core is :mod:`storegui.stores`; the desktop app is
:mod:`storegui.app`; :mod:`storegui.cli` is the command line.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

APP_NAME = "storegui"
APP_AUTHOR = "storegui"
ORG_DOMAIN = "storegui.example.org"


def resources_path() -> Path:
    """The folder of icons, stylesheet and .desktop file.

    In a source checkout that is the top-level ``resources/``; in an
    installed wheel it is the packaged ``storegui.resources``.
    """
    checkout = Path(__file__).resolve().parent.parent / "resources"
    if (checkout / "style.qss").is_file():
        return checkout
    return Path(str(files("storegui.resources")))
