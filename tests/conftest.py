"""Test set-up shared by every test.

Qt runs headless (offscreen) and platformdirs paths point into each test's
``tmp_path``, so no test touches the real home directory.
"""

from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory, monkeypatch):
    """Point platformdirs (data, config, cache, state) at a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        path = home / sub
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("HOME", str(home))
    yield home


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves a (non-daemon) worker thread running."""
    before = set(threading.enumerate())
    yield
    deadline = 5.0
    import time

    start = time.monotonic()
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() - start > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test left threads running: {leaked}"
