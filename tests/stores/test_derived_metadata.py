"""``size``, ``sha256`` and ``mtime`` in a key's metadata describe its current bytes, or are absent.

See the rule in :mod:`storegui.stores.importing`: ``set_data`` records the new
size and drops the digest and mtime; a MountedStore pull or push writes the
size of the bytes it copied and the digest it computed.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from contract.conftest import FACTORIES, subject_fixture

from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.importing import import_file
from storegui.stores.memory import MemoryStore
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite.store import SqliteStore

subject = subject_fixture(name for name in FACTORIES if "s3" not in name)


@pytest.mark.parametrize("new_size", [5, 100_000])  # inline and blob-sized values
def test_set_data_never_keeps_the_old_bytes_figures(subject, tmp_path, new_size):
    store, key = subject.store, subject.key("imported")
    source = tmp_path / "source.txt"
    source.write_bytes(b"original bytes")
    md = import_file(store, key, source, extra_metadata={"note": "mine"})
    assert md["size"] == 14 and "sha256" in md and "mtime" in md
    store.set_data(key, io.BytesIO(b"n" * new_size))
    assert store.get_metadata(key) == {"filename": "source.txt", "media_type": "text/plain",
                                       "note": "mine", "size": new_size}
    assert store.to_bytes(key) == b"n" * new_size
    # Metadata without such figures is kept exactly.
    store.set_metadata(key, {"tag": 1})
    store.set_data(key, io.BytesIO(b"again"))
    assert store.get_metadata(key) == {"tag": 1}
    # A new key gets {} as before.
    store.set_data(subject.key("fresh"), io.BytesIO(b"x"))
    assert store.get_metadata(subject.key("fresh")) == {}


def test_set_data_in_a_transaction_rolls_back_the_figures_too(subject):
    store, key = subject.store, subject.key("k")
    store.set(key, (io.BytesIO(b"abc"), {"size": 3, "sha256": "0" * 64}))
    with pytest.raises(RuntimeError), store.transaction("t"):
        store.set_data(key, io.BytesIO(b"abcdef"))
        assert store.get_metadata(key) == {"size": 6}
        raise RuntimeError("roll back")
    assert store.get_metadata(key) == {"size": 3, "sha256": "0" * 64}
    assert store.to_bytes(key) == b"abc"


def _stale(data: bytes) -> dict:
    """Figures of other bytes than ``data``, as another tool might have left them."""
    return {"size": len(data) + 7, "sha256": hashlib.sha256(b"other").hexdigest(),
            "mtime": 12.5, "filename": "f.bin"}


def _true(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "mtime": 12.5, "filename": "f.bin"}


MOUNTS = {
    "memory-over-filesystem": lambda tmp: (MemoryStore(), FileSystemStore(tmp / "backing")),
    "sqlite-over-filesystem": lambda tmp: (SqliteStore(str(tmp / "m.db")),
                                           FileSystemStore(tmp / "backing")),
    "filesystem-over-sqlite": lambda tmp: (FileSystemStore(tmp / "mount"),
                                           SqliteStore(str(tmp / "b.db"), external_from=0)),
}


@pytest.mark.parametrize("stores", sorted(MOUNTS))
@pytest.mark.parametrize("data", [b"small value", bytes(range(256)) * 400],
                         ids=["inline", "file-sized"])
def test_pull_and_push_write_the_figures_of_the_bytes_copied(tmp_path, stores, data):
    mount, backing = MOUNTS[stores](tmp_path)
    store = MountedStore("m/", mount, backing)
    store.connect()
    try:
        backing.set("m/k", (io.BytesIO(data), _stale(data)))
        assert store.pull("m/k") == ["m/k"]
        assert mount.get_metadata("k") == _true(data)
        assert mount.to_bytes("k") == data

        mount.set("k", (io.BytesIO(data), _stale(data)))  # stale again, on the mount side
        assert store.push("m/k") == ["m/k"]
        assert backing.get_metadata("m/k") == _true(data)
        assert backing.to_bytes("m/k") == data
        assert not mount.exists("k")
    finally:
        store.disconnect()
