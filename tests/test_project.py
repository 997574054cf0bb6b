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


def _sh_blocks(text: str) -> list[str]:
    import re
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_the_readme_starts_with_the_two_venv_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install, test = _sh_blocks(readme)[:2]
    # a virtual environment: pip into python3 itself fails under PEP 668 (Debian 12, Ubuntu)
    assert install == "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/storegui"
    assert test == ("python3 -m venv .venv && .venv/bin/pip install '.[test]' "
                    "&& .venv/bin/python -m pytest")
    assert readme.index(install) < readme.index("## ")  # before any section
    ci = " ".join((ROOT / ".ci" / "run").read_text().replace("\\\n", " ").split())
    assert ("python3 -m venv .venv && .venv/bin/pip install --quiet "
            "--disable-pip-version-check '.[test]' && .venv/bin/python -m pytest -q") in ci
    assert "pipx install ." in readme


def test_the_readme_gives_the_system_packages_the_app_checks_for():
    from storegui.app.desktop_libs import APT_LINE, DNF_LINE, PACMAN_LINE

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert APT_LINE in _sh_blocks(readme)
    flat = " ".join(readme.split())
    assert DNF_LINE in flat and PACMAN_LINE in flat


def test_test_dependencies_are_bounded_on_both_sides():
    # Unbounded boto3 made pip backtrack through ~25 releases (issue #18).
    import tomllib

    from packaging.requirements import Requirement

    test = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    bounded = {Requirement(r).name: Requirement(r).specifier for r in test}
    for name in ("s3fs", "aiobotocore", "botocore", "boto3", "moto"):
        operators = {spec.operator for spec in bounded[name]}
        assert operators & {">=", ">", "=="} and operators & {"<", "<=", "=="}, name


def test_a_deprecation_warning_from_storegui_fails_the_tests():
    # pyproject.toml's filterwarnings: what a newer Python or library deprecates in
    # storegui's own calls (SQLite's numbered bindings, ...) fails instead of scrolling by.
    import warnings

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "storegui/stores/x.py", 1,
                               module="storegui.stores.x")
    with pytest.warns(DeprecationWarning):  # a library's own deprecations only warn
        warnings.warn_explicit("old API", DeprecationWarning, "somelib/x.py", 1,
                               module="somelib.x")
