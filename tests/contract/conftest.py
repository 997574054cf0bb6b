"""Every store the contract suite runs against.

Each parameter builds a fresh, empty store on ``tmp_path`` and says under
which prefix the suite may write (a MountedStore with mount point "a/b/" is
only writable there).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Subject:
    """The store under test and the prefix its writable keys live under."""

    store: Any
    prefix: str = ""

    def key(self, name: str) -> str:
        return self.prefix + name


def _cls(module: str, name: str) -> Any:
    # Imported when a parameter runs: a store's import error fails its tests only
    # (never a skip, which would hide a store missing from the suite).
    return getattr(importlib.import_module(f"storegui.stores.{module}"), name)


def memory(tmp: Path) -> Any:
    return _cls("memory", "MemoryStore")()


def filesystem(tmp: Path) -> Any:
    return _cls("filesystem", "FileSystemStore")(tmp / "fs")


def sqlite_file(tmp: Path) -> Any:
    return _cls("sqlite", "SqliteStore")(str(tmp / "store.db"))


def sqlite_values(tmp: Path) -> Any:
    """Every value past the few bytes kept in its row is a file beside the database."""
    return _cls("sqlite", "SqliteStore")(str(tmp / "store.db"), external_from=0)


def filesystem_full_sync(tmp: Path) -> Any:
    return _cls("filesystem", "FileSystemStore")(tmp / "fs", sync="full")


def sqlite_memory(tmp: Path) -> Any:
    return _cls("sqlite", "SqliteStore")(":memory:")


def mounted(mount: Callable, backing: Callable, mount_point: str) -> Callable:
    def build(tmp: Path) -> Subject:
        mount_dir, backing_dir = tmp / "mount", tmp / "backing"
        mount_dir.mkdir()
        backing_dir.mkdir()
        cls = _cls("mounted", "MountedStore")
        return Subject(cls(mount_point, mount(mount_dir), backing(backing_dir)), mount_point)

    return build


FACTORIES: dict[str, Callable[[Path], Any]] = {
    "memory": memory,
    "filesystem": filesystem,
    "sqlite-file": sqlite_file,
    "sqlite-file-values": sqlite_values,
    "filesystem-full-sync": filesystem_full_sync,
    "sqlite-memory": sqlite_memory,
    "mounted-memory-memory-root": mounted(memory, memory, ""),
    "mounted-memory-memory-ab": mounted(memory, memory, "a/b/"),
    "mounted-sqlite-filesystem-root": mounted(sqlite_file, filesystem, ""),
    "mounted-sqlite-filesystem-ab": mounted(sqlite_file, filesystem, "a/b/"),
    "mounted-filesystem-sqlite-ab": mounted(filesystem, sqlite_file, "a/b/"),
    "mounted-sqlitevalues-filesystem-ab": mounted(sqlite_values, filesystem, "a/b/"),
}


def fsspec_memory(tmp: Path) -> Any:
    import uuid

    return _cls("fsspec", "FsspecStore")(f"memory://storegui-contract/{uuid.uuid4().hex}")


def fsspec_s3(tmp: Path) -> Any:
    """An FsspecStore on a fresh bucket of the session's moto S3 server (127.0.0.1)."""
    cls = _cls("fsspec", "FsspecStore")
    from s3fixtures import shared_s3_server  # tests/ is on sys.path

    server = shared_s3_server()
    return cls(f"s3://{server.new_bucket()}/store", **server.store_options())


FACTORIES.update({
    "fsspec-memory": fsspec_memory,
    "fsspec-s3": fsspec_s3,
    "mounted-memory-fsspec-s3-ab": mounted(memory, fsspec_s3, "a/b/"),
})


def _param(name: str) -> Any:
    # The S3 subjects need the moto server and take most of the suite's time
    # (about three minutes): `-m "not s3"` or `-m "not slow"` leaves them out.
    if "s3" in name:
        return pytest.param(name, marks=[pytest.mark.s3, pytest.mark.slow])
    return name


def subject_fixture(names: Iterable[str]) -> Any:
    """A ``subject`` fixture over the setups ``names`` of FACTORIES, each store connected.

    Test modules outside the contract suite take it for their own selection:
    ``subject = subject_fixture(n for n in FACTORIES if "s3" not in n)``.
    """

    @pytest.fixture(params=[_param(name) for name in sorted(names)])
    def subject(request, tmp_path) -> Subject:
        built = FACTORIES[request.param](tmp_path)
        subj = built if isinstance(built, Subject) else Subject(built)
        subj.store.connect()
        yield subj
        subj.store.disconnect()

    return subject


subject = subject_fixture(FACTORIES)


@pytest.fixture
def store(subject):
    return subject.store
