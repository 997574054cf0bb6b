"""The wheel: build it, install it into a fresh virtual environment, and run it from there.

The checkout's own ``storegui/`` and ``resources/`` must play no part: the
wheel is built from a copy of the source files, installed into a new venv
(``--without-pip``; pip installs into it with ``--python``), and run from a
temporary working folder. The new venv borrows this environment's
dependencies (PySide6, platformdirs...) through a ``.pth`` file, which
``site`` appends *after* the venv's own site-packages, so the wheel's copy of
storegui wins over any storegui installed here (``.ci/run`` installs one).

The build runs without build isolation when this environment already has the
setuptools that pyproject.toml's ``[build-system]`` asks for; otherwise pip
builds in isolation and fetches setuptools from the package index (as
``pip install .`` itself does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import storegui
from storegui.stores import open_store

ROOT = Path(__file__).resolve().parent.parent
#: What a wheel is built from (everything else in the checkout stays out).
SOURCES = ("pyproject.toml", "README.md", "storegui", "resources")
DEPENDENCIES = ("PySide6", "shiboken6", "platformdirs", "fsspec", "superqt")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.name == "nt", reason="paths below are POSIX venv paths")]

# Runs inside the new venv, from a temporary folder: reports what it finds as JSON.
CHECK = r'''
import json, os, sys, sysconfig
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"
import storegui
from storegui.app import apply_app_style, workspace_from_args
from storegui.app.desktop_integration import desktop_file, icon_files, launcher_command
from PySide6.QtCore import QSize, QThreadPool
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

res = storegui.resources_path()
facts = {
    "storegui": storegui.__file__,
    "purelib": sysconfig.get_path("purelib"),
    "resources": str(res),
    "files": sorted(str(p.relative_to(res)) for p in res.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts),
    "desktop_file": str(desktop_file()),
    "icon_files": {k: str(v) for k, v in icon_files().items()},
    "launcher": launcher_command(),
}
app = QApplication(["storegui"])
apply_app_style(app)
svg = QIcon(str(res / "icons" / "storegui.svg"))
facts["svg_icon_null"] = svg.isNull() or svg.pixmap(QSize(64, 64), 2.0).isNull()
facts["window_icon_null"] = app.windowIcon().isNull()
facts["stylesheet"] = len(app.styleSheet())
facts["names"] = [app.applicationName(), app.organizationName(), app.applicationVersion(),
                  app.desktopFileName()]

from storegui.app.main_window import MainWindow

work = Path(sys.argv[1])
window = MainWindow(workspace_from_args(["--backing", str(work / "backing"),
                                         "--mount", f"sqlite://{work / 'mount.db'}"]))
window.show()
for _ in range(50):  # bounded: load the top level (the workers run on the pool)
    QThreadPool.globalInstance().waitForDone(200)
    app.processEvents()
    if window.model.rowCount() and not window.model.is_loading():
        break
facts["top_level"] = [window.model.index(r, 0).data() for r in range(window.model.rowCount())]
window.close()
print(json.dumps(facts))
'''


def _pth_dirs() -> list[str]:
    """This environment's package folders (where the wheel's dependencies are)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        dirs.append(site.getusersitepackages())
    for name in DEPENDENCIES:
        module = __import__(name)
        dirs.append(str(Path(module.__file__).resolve().parent.parent))
    out = []
    for d in dirs:
        if Path(d).is_dir() and Path(d).resolve() != ROOT and d not in out:
            out.append(d)
    return out


def _can_build_without_isolation() -> bool:
    """Whether the setuptools here satisfies pyproject.toml's build requirement."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = next((r for r in config["build-system"]["requires"] if r.startswith("setuptools")),
                  "setuptools")
    match = re.search(r">=\s*(\d+)", wanted)
    try:
        import setuptools
    except ImportError:
        return False
    have = int(setuptools.__version__.split(".")[0])
    return match is None or have >= int(match.group(1))


def _run(args: list, env: dict, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of the sources and install it into a fresh venv."""
    base = tmp_path_factory.mktemp("packaging")
    src, dist, venv, home, cwd = (base / n for n in ("src", "dist", "venv", "home", "cwd"))
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "*.egg-info", "build", "dist"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    cwd.mkdir()
    # The module-scoped fixture runs before conftest's per-test dirs: give the
    # subprocesses their own home so nothing touches the real one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", PIP_DISABLE_PIP_VERSION_CHECK="1",
               **{var: str(home / var.lower()) for var in
                  ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")})

    isolated = not _can_build_without_isolation()
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src]
    if not isolated:
        build.insert(4, "--no-build-isolation")
    _run(build, env, cwd)
    wheels = list(dist.glob("storegui-*.whl"))
    assert len(wheels) == 1, wheels

    _run([sys.executable, "-m", "venv", "--without-pip", venv], env, cwd)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
          "--no-index", "-q", wheels[0]], env, cwd)
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   env, cwd).stdout.strip()
    # After the wheel is in: a .pth is read after the folder's own packages are on sys.path.
    Path(purelib, "zz_storegui_test_dependencies.pth").write_text(
        "\n".join(_pth_dirs()) + "\n", encoding="utf-8")
    return {"wheel": wheels[0], "venv": venv, "python": python, "purelib": Path(purelib),
            "env": env, "cwd": cwd, "isolated": isolated}


@pytest.fixture(scope="module")
def facts(installed) -> dict:
    """What the check script finds when run with the venv's python from another folder."""
    work = installed["cwd"] / "work"
    (work / "backing").mkdir(parents=True)
    backing = open_store(str(work / "backing"))
    backing.from_bytes("hello.txt", b"hello")
    backing.disconnect()
    script = installed["cwd"] / "check.py"
    script.write_text(CHECK, encoding="utf-8")
    result = _run([installed["python"], script, work], installed["env"], installed["cwd"],
                  timeout=120)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_wheel_holds_the_package_and_its_resources_but_not_the_tests(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    for name in ("storegui/__init__.py", "storegui/app/main_window.py",
                 "storegui/stores/mounted/store.py", "storegui/stores/sqlite/store.py",
                 "storegui/stores/fsspec/store.py", "storegui/stores/filesystem/store.py",
                 "storegui/stores/transfer/streaming.py", "storegui/cli/main.py",
                 "storegui/app/tree/model.py", "storegui/resources/style.qss",
                 "storegui/resources/storegui.desktop", "storegui/resources/icons/storegui.svg",
                 "storegui/resources/icons/storegui-256.png", "storegui/resources/icons/push.svg"):
        assert name in names, name
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/", "resources/"))
                   for n in names)
    assert "[gui_scripts]\nstoregui = storegui.cli:main" in entry_points
    assert "[console_scripts]\nstoregui-cli = storegui.cli:main" in entry_points


def test_the_installed_copy_is_imported_not_the_checkout(facts, installed):
    package = Path(facts["storegui"]).resolve()
    assert package.is_relative_to(installed["purelib"].resolve()), package
    assert not package.is_relative_to(ROOT)
    assert Path(facts["resources"]) == package.parent / "resources"


def test_the_resources_load_from_the_installed_wheel(facts):
    files = set(facts["files"])
    assert {"style.qss", "storegui.desktop", "icons/storegui.svg", "icons/push.svg"} <= files
    for size in (16, 32, 48, 64, 128, 256):
        assert f"icons/storegui-{size}.png" in files
    assert facts["stylesheet"] > 0
    assert facts["svg_icon_null"] is False and facts["window_icon_null"] is False
    assert facts["names"] == [storegui.APP_NAME, storegui.APP_AUTHOR, storegui.__version__,
                              "storegui"]
    assert Path(facts["desktop_file"]).name == "storegui.desktop"
    assert all(Path(p).is_relative_to(facts["resources"]) for p in facts["icon_files"].values())


def test_the_app_opens_a_workspace_from_the_installed_wheel(facts):
    assert facts["top_level"] == ["hello.txt"]


def test_the_entry_points_run_and_the_desktop_entry_names_them(installed, facts, tmp_path):
    bin_dir = installed["venv"] / "bin"
    for name in ("storegui", "storegui-cli"):
        script = bin_dir / name
        assert script.is_file() and os.access(script, os.X_OK), script
        assert script.read_text().startswith(f"#!{installed['python']}")
        version = _run([script, "--version"], installed["env"], installed["cwd"]).stdout
        assert version.strip() == f"storegui {storegui.__version__}"
    assert facts["launcher"] == [str(bin_dir / "storegui")]

    # A verb through the gui-script: on POSIX it is an ordinary console script.
    data = tmp_path / "data.txt"
    data.write_bytes(b"packaged")
    where = ["--backing", tmp_path / "backing", "--mount", f"sqlite://{tmp_path / 'm.db'}"]
    (tmp_path / "backing").mkdir()
    _run([bin_dir / "storegui-cli", "put", "docs/data.txt", data, *where],
         installed["env"], installed["cwd"])
    listing = _run([bin_dir / "storegui", "ls", "docs/", *where], installed["env"],
                   installed["cwd"]).stdout
    columns = listing.split()
    assert columns[:2] == ["local", "8"] and columns[-1] == "data.txt", listing
