"""The system libraries Qt's X11 (xcb) platform plugin needs, checked before Qt starts.

When one of them is missing Qt prints "Could not load the Qt platform plugin
"xcb"" (naming at most one library, often not the missing one) and aborts the
process. :func:`missing_xcb_libraries` finds every missing one first, so the
app can say which packages to install and exit cleanly. No Qt is imported here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping

#: Each library the xcb plugin links to (``ldd`` on PySide6's
#: ``Qt/plugins/platforms/libqxcb.so`` and ``Qt/lib/libQt6XcbQpa.so.6``, leaving out
#: Qt's own and the C/C++ runtime), with its Debian/Ubuntu package.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
}

#: The lines that install all of them (kept the same as the README's "System packages").
APT_LINE = "sudo apt-get install " + " ".join(XCB_LIBRARIES.values())
DNF_LINE = ("sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image "
            "xcb-util-renderutil libxkbcommon-x11 libX11-xcb mesa-libGL")
PACMAN_LINE = ("sudo pacman -S --needed xcb-util-cursor xcb-util-wm xcb-util-keysyms "
               "xcb-util-image xcb-util-renderutil libxkbcommon-x11 libglvnd")


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_xcb_libraries(libraries: Iterable[str] = XCB_LIBRARIES,
                          loads: Callable[[str], bool] = _loads) -> list[str]:
    """The ``libraries`` that the dynamic loader cannot load, in the given order."""
    return [name for name in libraries if not loads(name)]


def uses_xcb(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will open its window through the xcb plugin.

    True on Linux when ``QT_QPA_PLATFORM`` is ``xcb``, or unset with an X
    ``DISPLAY`` and no Wayland one (under Wayland Qt tries its wayland plugin first).
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":", 1)[0] == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def missing_libraries_message(missing: Iterable[str], app_name: str = "storegui") -> str:
    """What to tell the user when the xcb plugin's ``missing`` libraries stop Qt."""
    names = ", ".join(f"{name} ({XCB_LIBRARIES[name]})" if name in XCB_LIBRARIES else name
                      for name in missing)
    return (
        f"{app_name}: cannot open the desktop window: Qt's X11 (xcb) platform plugin needs "
        f"system libraries that are not installed: {names}.\n"
        "Install them with one of:\n"
        f"    {APT_LINE}\n"
        f"    {DNF_LINE}\n"
        f"    {PACMAN_LINE}\n"
        f"The command-line verbs ({app_name} --help) work without them.\n")


def check_xcb_libraries(environ: Mapping[str, str] | None = None,
                        libraries: Iterable[str] = XCB_LIBRARIES,
                        loads: Callable[[str], bool] = _loads) -> str | None:
    """The message to print if Qt would use xcb and cannot load it, else None."""
    if not uses_xcb(environ):
        return None
    missing = missing_xcb_libraries(libraries, loads)
    return missing_libraries_message(missing) if missing else None
