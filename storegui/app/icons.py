"""The app's icons, loaded once from the packaged resources."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from .. import resources_path


@cache
def icon(name: str) -> QIcon:
    """The icon ``resources/icons/<name>.svg`` (an empty icon if there is no such file).

    The app icon ``storegui`` also gets its rendered PNG sizes, so window
    managers that want a bitmap find one.
    """
    folder = resources_path() / "icons"
    path = folder / f"{name}.svg"
    if not path.is_file():
        return QIcon()
    result = QIcon(str(path))
    for png in sorted(folder.glob(f"{name}-*.png")):
        result.addFile(str(png))
    return result


def app_icon() -> QIcon:
    """The application's window icon."""
    return icon("storegui")
