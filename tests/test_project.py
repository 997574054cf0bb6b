"""Project-level guards: lint, layering, the Qt trap, resources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import storegui

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_is_clean():
    result = run(sys.executable, "-m", "ruff", "check", "storegui", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_core_does_not_import_qt_by_contract():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed")
    result = run(lint, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_core_and_cli_import_without_pyside6():
    code = (
        "import sys\n"
        "for name in ('PySide6', 'shiboken6', 'superqt'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        "import storegui.stores as s\n"
        "import storegui.stores.filesystem, storegui.stores.sqlite, storegui.stores.mounted\n"
        "import storegui.config\n"
        "print(s.MemoryStore, s.FileSystemStore, s.SqliteStore, s.MountedStore)\n"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_pyside6_survives_many_void_calls():
    """PySide6 6.12.0 on CPython 3.11 aborts after a few thousand void calls."""
    code = (
        "from PySide6.QtCore import QObject\n"
        "o = QObject()\n"
        "for i in range(30000):\n"
        "    o.setObjectName('n%d' % i)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_resources_are_found():
    res = storegui.resources_path()
    assert (res / "style.qss").is_file()
    assert (res / "storegui.desktop").is_file()
    for name in ("storegui", "origin-local", "origin-shadowing", "origin-remote", "push"):
        assert (res / "icons" / f"{name}.svg").is_file()


def test_every_package_is_in_the_wheel():
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "storegui").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
