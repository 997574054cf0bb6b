"""Desktop behaviour: standard shortcuts, Copy, About, app identity, window state,
high-DPI icons, light and dark palettes, and the .desktop file with its icons."""

from __future__ import annotations

import configparser
import platform
import shutil
import sqlite3
import subprocess
from pathlib import Path

import PySide6
import pytest
from PySide6.QtCore import QItemSelectionModel, QObject, QSize, Qt, qVersion
from PySide6.QtGui import QColor, QIcon, QImage, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from storegui import APP_AUTHOR, APP_NAME, ORG_DOMAIN, __version__
from storegui.app import apply_app_style, icons
from storegui.app.desktop_integration import (
    ICON_SIZES,
    desktop_entry_text,
    desktop_file,
    exec_value,
    icon_files,
    install_desktop_entry,
    installed_paths,
    launcher_command,
    main,
    uninstall_desktop_entry,
)
from storegui.app.dialogs.about import AboutDialog
from storegui.config import config_dir
from storegui.stores import StoreError

S = QKeySequence.StandardKey
VALIDATOR = shutil.which("desktop-file-validate")


def select(qtbot, window, *keys: str) -> None:
    selection = window.tree.selectionModel()
    selection.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for key in keys:
        selection.select(window.model.index_for_key(key), flags)
    qtbot.waitUntil(lambda: sorted(n.key for n in window.selected_nodes()) == sorted(keys))
    qtbot.waitUntil(lambda: not window._selection_timer.isActive())


def menu_actions(window) -> dict[str, list[str]]:
    """{menu title: [action objectNames]} of the menu bar."""
    return {m.text(): [a.objectName() for a in m.menu().actions() if a.objectName()]
            for m in window.menuBar().actions() if m.menu() is not None}


def luminance(image: QImage) -> float:
    """Mean lightness (0..1) of ``image``, sampled on a grid."""
    values = [QColor(image.pixel(x, y)).lightnessF()
              for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)]
    return sum(values) / len(values)


@pytest.fixture
def app_style(qapp):
    """Let a test restyle the shared QApplication; put everything back afterwards."""
    saved = (qapp.applicationName(), qapp.applicationDisplayName(), qapp.organizationName(),
             qapp.organizationDomain(), qapp.applicationVersion(), qapp.desktopFileName(),
             qapp.windowIcon(), qapp.styleSheet(), QPalette(qapp.palette()))
    yield qapp
    for follower in qapp.findChildren(QObject, "paletteFollower"):
        qapp.removeEventFilter(follower)
        follower.setParent(None)
    qapp.setApplicationName(saved[0])
    qapp.setApplicationDisplayName(saved[1])
    qapp.setOrganizationName(saved[2])
    qapp.setOrganizationDomain(saved[3])
    qapp.setApplicationVersion(saved[4])
    qapp.setDesktopFileName(saved[5])
    qapp.setWindowIcon(saved[6])
    qapp.setStyleSheet(saved[7])
    qapp.setPalette(saved[8])


# ---------------------------------------------------------------------- shortcuts and Copy


@pytest.mark.parametrize(("name", "key", "menu"), [
    ("copy", S.Copy, "&Edit"), ("delete", S.Delete, "&Edit"), ("refresh", S.Refresh, "&View"),
    ("find", S.Find, "&Edit"), ("quit", S.Quit, "&File")])
def test_the_standard_actions_have_every_platform_key_for_them(window, name, key, menu):
    action = getattr(window.actions, name)
    assert action.shortcuts(), f"{name} has no shortcut"
    for binding in QKeySequence.keyBindings(key):
        assert binding in action.shortcuts(), (name, binding.toString())
    assert action.objectName() in menu_actions(window)[menu]


def test_quit_has_ctrl_q_where_the_platform_binds_nothing_and_help_has_about(window):
    expected = QKeySequence.keyBindings(S.Quit) or [QKeySequence("Ctrl+Q")]
    assert window.actions.quit.shortcuts() == expected
    assert menu_actions(window)["&Help"] == ["aboutAction"]


def test_ctrl_c_in_the_tree_copies_the_selected_key_names(qtbot, window):
    copy = window.actions.copy
    select(qtbot, window)
    assert not copy.isEnabled()
    select(qtbot, window, "README.md", "archive/")
    assert copy.isEnabled()
    QApplication.clipboard().clear()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.tree.setFocus()
    with qtbot.waitSignal(copy.triggered):
        qtbot.keyClick(window.tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert sorted(QApplication.clipboard().text().split("\n")) == ["README.md", "archive/"]
    assert window.statusBar().currentMessage() == "Copied 2 key name(s)"

    # In the filter box Ctrl+C copies its text, not the keys.
    window.filter_box.setText("*.csv")
    window.filter_box.selectAll()
    window.filter_box.setFocus()
    qtbot.waitUntil(window.filter_box.hasFocus)
    qtbot.keyClick(window.filter_box, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "*.csv"


# ---------------------------------------------------------------------- About


def test_about_shows_the_versions_and_the_stores_in_use(qtbot, window, workspace):
    window.actions.about.trigger()
    dialog = window.findChild(AboutDialog)
    assert dialog is not None and dialog.isVisible()
    text = dialog.text()
    for version in (__version__, qVersion(), PySide6.__version__, sqlite3.sqlite_version,
                    platform.python_version()):
        assert version in text
    assert f"Settings: {config_dir()}" in text
    assert f"Mount store: {workspace.mount_url}" in text  # known at once, before any store call
    qtbot.waitUntil(lambda: dialog.stores_loaded)
    text = dialog.text()
    assert f"Mount store: SqliteStore — {workspace.mount_url}" in text
    assert "Backing store: FileSystemStore — file://" in text
    assert "Mount point: 'work/'" in text
    assert "SqliteStore — sqlite://" in dialog.browser.toPlainText()  # what the user sees

    copy = next(b for b in dialog.findChildren(QPushButton) if b.text() == "&Copy")
    copy.click()
    assert QApplication.clipboard().text() == dialog.text()
    dialog.close()


def test_about_says_when_the_store_information_is_unavailable(qtbot, memory_store, workspace):
    def broken_info():
        raise StoreError("the backing store is not answering")

    memory_store.info = broken_info
    dialog = AboutDialog(workspace, memory_store)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.stores_loaded)
    assert "Store information: unavailable: the backing store is not answering" in dialog.text()
    assert f"Backing store: {workspace.backing_url}" in dialog.text()


def test_about_without_a_workspace_still_shows_the_versions(qtbot):
    dialog = AboutDialog(None, None)
    qtbot.addWidget(dialog)
    assert dialog.stores_loaded and "Workspace: none open" in dialog.text()
    assert f"Qt: {qVersion()}" in dialog.text()
    assert not dialog.findChild(QLabel, "aboutIcon").pixmap().isNull()


# ---------------------------------------------------------------------- app identity, window state


def test_apply_app_style_sets_the_names_the_settings_paths_depend_on(app_style):
    apply_app_style(app_style)
    apply_app_style(app_style)  # run() and a test may both call it
    assert len(app_style.findChildren(QObject, "paletteFollower")) == 1
    assert app_style.applicationName() == APP_NAME
    assert app_style.organizationName() == APP_AUTHOR
    assert app_style.organizationDomain() == ORG_DOMAIN
    assert app_style.applicationVersion() == __version__
    # Wayland matches the window to its launcher by this name.
    assert app_style.desktopFileName() + ".desktop" == desktop_file().name
    assert not app_style.windowIcon().isNull()
    assert "QProgressBar" in app_style.styleSheet()
    assert config_dir().name == APP_NAME


def test_window_state_comes_back_after_closing(qtbot, make_window, workspace):
    first = make_window(workspace)
    first.right_splitter.setSizes([150, 450])
    first.search_dock.show()
    first.tree.header().resizeSection(1, 150)
    details, dock_visible = first.right_splitter.sizes(), first.search_dock.isVisible()
    first.close()
    assert (config_dir() / "window.ini").is_file()
    second = make_window(workspace)
    assert second.right_splitter.sizes() == details
    assert dock_visible and second.search_dock.isVisible()
    assert second.tree.header().sectionSize(1) == 150


# ---------------------------------------------------------------------- high DPI and palettes


@pytest.mark.parametrize("name", ["storegui", "push", "origin-shadowing"])
def test_icons_are_drawn_from_the_svg_at_the_screens_pixel_ratio(qapp, name):
    icon = icons.icon(name)
    assert not icon.isNull()
    sharp = icon.pixmap(QSize(16, 16), 4.0)
    assert sharp.devicePixelRatio() == 4.0 and sharp.size() == QSize(64, 64)
    direct = icon.pixmap(QSize(64, 64), 1.0).toImage()
    blown_up = icon.pixmap(QSize(16, 16), 1.0).scaled(64, 64).toImage()
    image = sharp.toImage()
    image.setDevicePixelRatio(1.0)
    assert image == direct  # the vector drawn at 64 device pixels...
    assert image != blown_up  # ...not a 16 px bitmap enlarged


def test_the_app_icon_has_every_packaged_size(qapp):
    for size, path in icon_files().items():
        if size == "scalable":
            assert not QIcon(str(path)).pixmap(QSize(48, 48)).isNull()
        else:
            n = int(size.split("x")[0])
            assert QImage(str(path)).size() == QSize(n, n), path


def test_the_window_follows_a_switch_from_a_light_to_a_dark_palette(qtbot, window, app_style):
    apply_app_style(app_style)  # with the stylesheet, which must not pin the old colours
    light = luminance(window.tree.viewport().grab().toImage())
    dark = QPalette()
    for role, colour in ((QPalette.ColorRole.Base, "#1e1e1e"),
                         (QPalette.ColorRole.Window, "#2b2b2b"),
                         (QPalette.ColorRole.Text, "#e0e0e0"),
                         (QPalette.ColorRole.WindowText, "#e0e0e0")):
        dark.setColor(role, QColor(colour))
    app_style.setPalette(dark)
    qtbot.waitUntil(lambda: window.tree.palette().color(QPalette.ColorRole.Base).name()
                    == "#1e1e1e")
    shade = luminance(window.tree.viewport().grab().toImage())
    assert light > 0.6 and shade < 0.35, (light, shade)
    assert luminance(window.metadata_panel.grab().toImage()) < 0.4


# ---------------------------------------------------------------------- the .desktop file


def read_entry(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(text)
    return parser["Desktop Entry"]


def test_the_packaged_desktop_file_names_the_app_and_its_icon():
    entry = read_entry(desktop_file().read_text(encoding="utf-8"))
    assert entry["Type"] == "Application" and entry["Name"] == APP_NAME
    assert entry["Exec"] == APP_NAME and entry["Icon"] == APP_NAME
    assert entry["StartupWMClass"] == APP_NAME
    assert set(icon_files()) == {"scalable", *(f"{n}x{n}" for n in ICON_SIZES)}
    if VALIDATOR:
        result = subprocess.run([VALIDATOR, str(desktop_file())], capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def test_install_puts_the_launcher_and_icons_in_the_users_data_dir(capsys, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")  # the default: ~/.local/share (HOME is a tmp folder)
    home = Path.home() / ".local" / "share"
    assert main(["install"]) == 0
    written = installed_paths()
    assert written[0] == home / "applications" / "storegui.desktop"
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "wrote ~/.local/share/applications/storegui.desktop"
    assert out[1] == "wrote ~/.local/share/icons/hicolor/scalable/apps/storegui.svg"
    assert len(out) == len(written) == 2 + len(ICON_SIZES)
    entry = read_entry(written[0].read_text(encoding="utf-8"))
    assert entry["Exec"] == exec_value(launcher_command())
    assert entry["Icon"] == APP_NAME
    for n in ICON_SIZES:
        png = home / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "storegui.png"
        assert QImage(str(png)).size() == QSize(n, n)
    assert (home / "icons/hicolor/scalable/apps/storegui.svg").read_bytes() == \
        icon_files()["scalable"].read_bytes()
    if VALIDATOR:
        result = subprocess.run([VALIDATOR, str(written[0])], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr

    assert main(["uninstall"]) == 0
    assert not any(p.exists() for p in written)
    assert uninstall_desktop_entry() == []


def test_a_launcher_path_with_spaces_and_quotes_is_escaped(tmp_path):
    command = ["/opt/my apps/bin/storegui", 'say "hi" $HOME', "50%"]
    assert exec_value(command) == r'"/opt/my apps/bin/storegui" "say \\"hi\\" \\$HOME" 50%%'
    paths = install_desktop_entry(tmp_path, command)
    text = paths[0].read_text(encoding="utf-8")
    assert text == desktop_entry_text(command)
    assert "TryExec=/opt/my apps/bin/storegui\n" in text
    if VALIDATOR:
        result = subprocess.run([VALIDATOR, str(paths[0])], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def test_without_installed_scripts_the_launcher_runs_the_module_from_its_folder(
        tmp_path, monkeypatch):
    monkeypatch.setattr("storegui.app.desktop_integration.launcher_command",
                        lambda: ["/usr/bin/python3", "-m", APP_NAME])
    entry = read_entry(desktop_entry_text())
    assert entry["Exec"] == "/usr/bin/python3 -m storegui"
    assert (Path(entry["Path"]) / "storegui" / "__init__.py").is_file()


def test_show_lists_the_packaged_files_and_other_systems_get_a_clear_error(capsys, monkeypatch):
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert f"packaged desktop file: {desktop_file()}" in out
    assert f"launcher command: {exec_value(launcher_command())}" in out
    # conftest puts XDG_DATA_HOME inside the (temporary) home folder
    assert f"installs to: ~/{installed_paths()[0].relative_to(Path.home())}" in out
    monkeypatch.setattr("sys.platform", "win32")
    assert main(["install"]) == 1
    assert "desktop entries are for Linux and BSD desktops" in capsys.readouterr().err
    assert not installed_paths()[0].exists()
