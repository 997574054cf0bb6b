"""Fixtures shared by the store tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from storegui.stores.sqlite.store import SqliteStore


@pytest.fixture
def db(tmp_path) -> Path:
    """Where an SQLite store's database file goes (not created yet)."""
    return tmp_path / "store.db"


@pytest.fixture
def store(db):
    """A connected SqliteStore on ``db`` with the default settings (a test file may override)."""
    s = SqliteStore(str(db))
    s.connect()
    yield s
    s.disconnect()
