"""Importing files as keys (shared by `storegui put` and drag and drop)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from storegui.stores import (
    CancelToken,
    MemoryStore,
    ReadOnlyError,
    TransferCancelled,
)
from storegui.stores.importing import (
    file_metadata,
    import_file,
    import_stream,
    media_type,
    plan_import,
)


@pytest.mark.parametrize(("name", "expected"), [
    ("notes.txt", "text/plain"),
    ("photo.JPG", "image/jpeg"),
    ("data.json", "application/json"),
    ("archive.tar.gz", "application/gzip"),
    ("no-extension", "application/octet-stream"),
    ("weird.zzqq", "application/octet-stream"),
])
def test_media_type_from_the_name(name, expected):
    assert media_type(name) == expected


def test_file_metadata_describes_the_file(tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    os.utime(path, (1_700_000_000.5, 1_700_000_000.5))
    assert file_metadata(path) == {
        "filename": "report.csv",
        "size": 8,
        "mtime": 1_700_000_000.5,
        "media_type": "text/csv",
    }


def test_import_file_streams_data_and_fills_metadata(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    store = MemoryStore()
    calls = []
    md = import_file(store, "in/blob.bin", path, extra_metadata={"owner": "ann"},
                     progress=lambda done, total: calls.append((done, total)),
                     buffer_size=64 * 1024)
    assert store.to_bytes("in/blob.bin") == data
    stored = store.get_metadata("in/blob.bin")
    assert stored == md
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["size"] == len(data)
    assert stored["filename"] == "blob.bin"
    assert stored["owner"] == "ann"
    assert stored["mtime"] == path.stat().st_mtime
    assert len(calls) >= 5 and calls[-1] == (len(data), len(data))


def test_caller_metadata_overrides_names_but_not_measured_facts(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    store = MemoryStore()
    md = import_file(store, "a", path, extra_metadata={
        "filename": "renamed.txt", "media_type": "text/x-custom", "size": 999, "sha256": "bogus"})
    assert md["filename"] == "renamed.txt"
    assert md["media_type"] == "text/x-custom"
    assert md["size"] == 5
    assert md["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_import_stream_without_a_file():
    store = MemoryStore()
    md = import_stream(store, "k", io.BytesIO(b"abc"), {"note": "piped"})
    assert store.to_bytes("k") == b"abc"
    assert md == {"note": "piped", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert store.get_metadata("k") == md


def test_cancelled_import_keeps_the_previous_value(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 200_000)
    store = MemoryStore()
    store.from_bytes("k", b"before", {"v": 1})
    token = CancelToken()

    def progress(done, total):
        if done >= 50_000:
            token.cancel()

    with pytest.raises(TransferCancelled):
        import_file(store, "k", path, progress=progress, cancel=token, buffer_size=10_000)
    assert store.to_bytes("k") == b"before"
    assert store.get_metadata("k") == {"v": 1}


def test_cancelled_import_of_a_new_key_leaves_nothing(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)
    store = MemoryStore()
    token = CancelToken()
    token.cancel()
    with pytest.raises(TransferCancelled):
        import_file(store, "new", path, cancel=token)
    assert not store.exists("new")


def test_import_into_a_read_only_store_is_refused(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    store = MemoryStore()
    store.readonly = True
    with pytest.raises(ReadOnlyError):
        import_file(store, "a", path)
    assert list(store.keys()) == []


def test_import_of_a_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_file(MemoryStore(), "a", tmp_path / "absent.txt")


def test_plan_import_maps_files_and_folders_to_keys(tmp_path):
    (tmp_path / "photos" / "2024").mkdir(parents=True)
    (tmp_path / "photos" / "a.jpg").write_bytes(b"a")
    (tmp_path / "photos" / "2024" / "b.jpg").write_bytes(b"b")
    (tmp_path / "photos" / ".hidden").write_bytes(b"h")
    (tmp_path / "notes.txt").write_bytes(b"n")
    plan = plan_import("drop/", [tmp_path / "photos", tmp_path / "notes.txt"])
    assert [f.key for f in plan.files] == [
        "drop/photos/.hidden", "drop/photos/a.jpg", "drop/photos/2024/b.jpg", "drop/notes.txt"]
    assert {f.key: f.path for f in plan.files}["drop/photos/2024/b.jpg"] == \
        str(tmp_path / "photos" / "2024" / "b.jpg")
    assert plan.skipped == [] and plan.roots == ["drop/photos/"]


def test_plan_import_skips_missing_paths_and_clashing_keys(tmp_path):
    plan = plan_import("", [tmp_path / "absent"])
    assert plan.files == []
    assert plan.skipped == [(str(tmp_path / "absent"), "vanished: it no longer exists")]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "same.txt").write_bytes(b"1")
    (tmp_path / "two" / "same.txt").write_bytes(b"2")
    plan = plan_import("", [tmp_path / "one" / "same.txt", tmp_path / "two" / "same.txt"])
    assert [f.key for f in plan.files] == ["same.txt"]
    assert plan.skipped == [(str(tmp_path / "two" / "same.txt"), "would become key 'same.txt' "
                             f"like {str(tmp_path / 'one' / 'same.txt')!r}")]


def test_plan_import_names_a_folder_given_as_dot_after_itself(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "f").write_bytes(b"f")
    monkeypatch.chdir(tmp_path / "here")
    assert [f.key for f in plan_import("in/", ["."]).files] == ["in/here/f"]
    assert [f.key for f in plan_import("in/", ["../here/"]).files] == ["in/here/f"]


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="no copy_file_range here")
def test_a_large_file_is_copied_in_the_kernel_and_hashed_from_the_page_cache(tmp_path,
                                                                            monkeypatch):
    from storegui.stores import CancelToken, FileSystemStore, TransferCancelled

    data = os.urandom(9 * 1024 * 1024 + 3)  # past the inline hashing, several chunks
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    store = FileSystemStore(tmp_path / "store")
    copies = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: (copies.append(a[2]), real(*a))[1])
    seen = []
    md = import_file(store, "big", src, progress=lambda done, total: seen.append(done))
    assert md["sha256"] == hashlib.sha256(data).hexdigest()
    assert store.get_metadata("big")["sha256"] == md["sha256"]
    assert store.to_bytes("big") == data
    assert sum(copies) >= len(data) - 65 * 1024  # all but the first bytes went through the kernel
    assert seen[-1] == len(data) and len(seen) > 3
    # cancelled half way: nothing stored, no helper thread left behind (conftest checks)
    token = CancelToken()
    with pytest.raises(TransferCancelled):
        import_file(store, "cancelled", src, cancel=token,
                    progress=lambda done, total: done > len(data) // 2 and token.cancel())
    assert not store.exists("cancelled")
    store.disconnect()
