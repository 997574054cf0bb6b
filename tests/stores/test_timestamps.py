"""A value's ``modified`` (and a new key's ``created``) is never earlier than its write call.

File timestamps lag the clock by up to a kernel tick; a FileSystemStore used
to report its record file's mtime, up to a few milliseconds before the write
began (289 of 300 writes in a row). Every local store records the write's own
clock reading instead.
"""

from __future__ import annotations

import io
import time

from contract.conftest import FACTORIES, subject_fixture

subject = subject_fixture(name for name in FACTORIES if "fsspec" not in name)


def _writes(store, key: str, i: int) -> list:
    """Every kind of write of ``key`` (the first one creates it)."""
    small, large = b"s" * (i % 7), b"L" * (70_000 + i)  # inline and blob-sized values
    return [
        lambda: store.set(key, (io.BytesIO(small), {"i": i})),
        lambda: store.set_data(key, io.BytesIO(large)),
        lambda: store.set_metadata(key, {"j": i}),
        lambda: store.update_metadata(key, {"k": i}),
        lambda: store.multiset([key], [(io.BytesIO(large), {"m": i})]),
        lambda: store.from_bytes(key, small),
    ]


def test_modified_and_created_are_never_before_the_write_began(subject):
    store = subject.store
    late = []
    for i in range(12):
        key = subject.key(f"k{i}")
        for n, write in enumerate(_writes(store, key, i)):
            t0 = time.time()
            write()
            with store.get(key) as value:
                stamps = {"modified": value.modified}
                if n == 0:
                    stamps["created"] = value.created
            stamps["stat"] = store.stat(key).modified
            folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
            listed = {e.key: e.modified for e in store.list_dir(folder)}
            stamps["list_dir"] = listed[key]
            late += [(key, n, name, t0 - t) for name, t in stamps.items()
                     if t is not None and t < t0]
    assert late == []


def test_created_is_kept_by_later_writes(subject):
    store, key = subject.store, subject.key("kept")
    t0 = time.time()
    store.from_bytes(key, b"first", {"v": 1})
    with store.get(key) as value:
        created = value.created
    assert created >= t0
    for write in _writes(store, key, 3)[1:]:
        t1 = time.time()
        write()
        with store.get(key) as value:
            assert value.created == created
            assert value.modified >= t1 >= created
