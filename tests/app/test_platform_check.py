"""The app names the missing system libraries (and the packages) before Qt's xcb plugin aborts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storegui.app.desktop_libs import (
    APT_LINE,
    XCB_LIBRARIES,
    check_xcb_libraries,
    missing_xcb_libraries,
    uses_xcb,
)

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_library_gives_the_message_with_the_install_lines():
    libraries = ["libc.so.6", "libstoregui-no-such-lib.so.7", "libm.so.6"]
    message = check_xcb_libraries({"DISPLAY": ":0"}, libraries)
    assert message is not None
    assert "libstoregui-no-such-lib.so.7" in message
    assert "libc.so.6" not in message  # loads: not named
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message
    assert "sudo dnf install" in message and "sudo pacman -S" in message


def test_the_message_names_the_debian_package_of_each_missing_library():
    message = check_xcb_libraries({"DISPLAY": ":0"}, XCB_LIBRARIES,
                                  loads=lambda name: "keysyms" not in name)
    assert "libxcb-keysyms.so.1 (libxcb-keysyms1)" in message
    assert "icccm.so.4 (" not in message


def test_nothing_to_say_when_every_library_loads():
    assert check_xcb_libraries({"DISPLAY": ":0"}, ["libc.so.6", "libm.so.6"]) is None


@pytest.mark.parametrize("environ, expected", [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "xcb:display=:1"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False),  # Qt tries wayland first
    ({}, False),
])
def test_the_check_applies_only_where_qt_uses_xcb(environ, expected):
    assert uses_xcb(environ, "linux") is expected
    assert uses_xcb(environ, "darwin") is False
    if not expected:  # not even a missing library is reported then
        assert check_xcb_libraries(environ, ["libstoregui-no-such-lib.so.7"]) is None


def _xcb_plugin_files() -> list[Path]:
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    return [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"),
                    reason="ldd on Linux only")
def test_the_real_list_is_what_the_plugin_links_to_and_the_check_agrees_with_ldd():
    plugins = [path for path in _xcb_plugin_files() if path.exists()]
    if not plugins:
        pytest.skip("this PySide6 has no xcb plugin")
    needed: set[str] = set()
    not_found: set[str] = set()
    for path in plugins:
        for line in subprocess.run(["ldd", str(path)], capture_output=True, text=True,
                                   check=True).stdout.splitlines():
            name = line.strip().split(" ", 1)[0]
            if "=>" in line:
                needed.add(name)
                if "not found" in line:
                    not_found.add(name)
    system = {name for name in needed if "Qt6" not in name and "libicu" not in name}
    assert set(XCB_LIBRARIES) <= system  # no name in the list that the plugin does not use
    # each library the plugin links directly (readelf NEEDED) is checked
    direct: set[str] = set()
    if shutil.which("readelf"):
        for path in plugins:
            out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                                 check=True).stdout
            direct |= {line.split("[", 1)[1].split("]", 1)[0]
                       for line in out.splitlines() if "(NEEDED)" in line}
        runtime = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1",
                   "libglib-2.0.so.0", "libgthread-2.0.so.0"}
        assert {n for n in direct if "Qt6" not in n} - runtime <= set(XCB_LIBRARIES)
    # what ctypes finds missing is exactly what the loader cannot find for the plugin
    assert set(missing_xcb_libraries()) == not_found & set(XCB_LIBRARIES)
    assert not_found <= set(XCB_LIBRARIES)


def test_the_app_prints_the_line_and_exits_1_instead_of_qts_abort(tmp_path):
    # A real process: QApplication is never created, so this needs no display.
    env = {**os.environ, "DISPLAY": ":97", "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    missing = missing_xcb_libraries()
    if not missing:
        pytest.skip("every xcb library is installed here: Qt would try the (absent) display")
    done = subprocess.run([sys.executable, "-m", "storegui"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert APT_LINE in done.stderr
    for name in missing:
        assert name in done.stderr
    assert "Could not load the Qt platform plugin" not in done.stderr
