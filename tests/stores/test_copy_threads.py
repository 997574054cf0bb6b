"""Copies that overlap their work on helper threads, and kernel copies between files.

The thresholds are lowered so that a few MiB exercise the paths a large value takes.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from storegui.stores import CancelToken, FileSystemStore, MemoryStore, MountedStore, SqliteStore
from storegui.stores.errors import TransferCancelled, VerificationError
from storegui.stores.transfer import streaming
from storegui.stores.transfer.streaming import ProgressReader, copy_stream
from storegui.stores.transfer.threads import HashWorker, WriteBehind
from storegui.stores.transfer.verify import sha256_side_by_side

MiB = 1 << 20


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(streaming, "INLINE_HASH_BYTES", 64 * 1024)
    monkeypatch.setattr("storegui.stores.transfer.verify.INLINE_HASH_BYTES", 64 * 1024)


def helper_threads():
    return [t for t in threading.enumerate() if t.name.startswith("storegui-")]


def test_hash_worker_hashes_in_order_even_when_the_caller_reuses_its_buffer():
    data = os.urandom(3 * MiB + 17)
    worker = HashWorker(hashlib.sha256())
    buffer = bytearray(100_000)
    for start in range(0, len(data), len(buffer)):
        piece = data[start:start + len(buffer)]
        buffer[:len(piece)] = piece
        worker.feed(memoryview(buffer)[:len(piece)])  # overwritten right after
        worker.feed(b"")
    assert worker.hexdigest() == hashlib.sha256(data).hexdigest()
    worker.close()
    assert helper_threads() == []


def test_a_progress_reader_hashes_a_large_stream_on_a_helper_thread(low_threshold):
    data = os.urandom(2 * MiB + 3)
    reader = ProgressReader(io.BytesIO(data), digest="sha256")
    out = io.BytesIO()
    copy_stream(reader, out, buffer_size=50_000)  # readinto a reused buffer
    assert reader._worker is not None
    assert reader.hexdigest == hashlib.sha256(data).hexdigest()
    assert out.getvalue() == data
    reader.close()
    assert helper_threads() == []


def test_copy_stream_writes_behind_and_reports_the_writers_error(low_threshold):
    data = os.urandom(MiB + 5)
    out = io.BytesIO()
    progress = []
    n = copy_stream(io.BytesIO(data), out, buffer_size=30_000,
                    progress=lambda done, total: progress.append(done))
    assert n == len(data) and out.getvalue() == data and progress[-1] == len(data)

    class Full(io.RawIOBase):
        written = 0

        def writable(self):
            return True

        def write(self, b):
            if self.written > 300_000:
                raise OSError(28, "No space left on device")
            self.written += len(b)
            return len(b)

    with pytest.raises(OSError, match="No space left"):
        copy_stream(io.BytesIO(data), Full(), buffer_size=30_000)
    assert helper_threads() == []


def test_a_cancel_stops_a_write_behind_copy(low_threshold):
    token = CancelToken()

    def progress(done, total):
        if done > 500_000:
            token.cancel()

    with pytest.raises(TransferCancelled):
        copy_stream(io.BytesIO(os.urandom(2 * MiB)), io.BytesIO(), buffer_size=40_000,
                    progress=progress, cancel=token)
    assert helper_threads() == []


def test_write_behind_handles_plain_bytes_from_streams_without_readinto():
    class ReadOnly:
        def __init__(self, data):
            self._stream = io.BytesIO(data)

        def read(self, n=-1):
            return self._stream.read(n)

    data = os.urandom(6 * MiB)
    out = io.BytesIO()
    assert copy_stream(ReadOnly(data), out) == len(data)
    assert out.getvalue() == data
    writer = WriteBehind(out)
    writer.send_copy(bytearray(b"abc"))
    writer.close()
    assert out.getvalue().endswith(b"abc")


def test_copy_stream_between_files_runs_in_the_kernel_from_the_current_positions(tmp_path):
    if not hasattr(os, "copy_file_range"):
        pytest.skip("no copy_file_range on this system")
    data = os.urandom(3 * MiB + 11)
    (tmp_path / "src").write_bytes(data)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "dst", "wb") as dst:
        assert src.read(1000) == data[:1000]  # buffered ahead, and positioned
        dst.write(b"head")  # buffered, not yet on disk
        n = copy_stream(src, dst, buffer_size=MiB)
        dst.write(b"tail")
    assert n == len(data) - 1000
    assert (tmp_path / "dst").read_bytes() == b"head" + data[1000:] + b"tail"


def test_side_by_side_digests_match_hashlib(low_threshold):
    a, b = os.urandom(MiB + 1), os.urandom(MiB // 2)
    digests = sha256_side_by_side([io.BytesIO(a), io.BytesIO(b)], buffer_size=64 * 1024)
    assert digests == [hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()]
    token = CancelToken()
    token.cancel()
    with pytest.raises(TransferCancelled):
        sha256_side_by_side([io.BytesIO(a)], cancel=token)
    assert helper_threads() == []


@pytest.mark.parametrize("mount_kind", ["fs", "sqlite"])
def test_a_local_push_is_checked_against_the_source_version(tmp_path, low_threshold,
                                                            mount_kind):
    mount = (FileSystemStore(tmp_path / "mount") if mount_kind == "fs"
             else SqliteStore(tmp_path / "mount.sqlite"))
    backing = FileSystemStore(tmp_path / "backing")
    store = MountedStore("", mount, backing)
    data = os.urandom(2 * MiB + 1)
    store.from_bytes("k", data, {"v": 1})
    assert store.push("k") == ["k"]
    assert backing.to_bytes("k") == data and not mount.exists("k")

    # A backing store whose copy reads back wrong: the push must fail and keep the mount copy.
    store.from_bytes("j", data, {"v": 2})
    real = backing.get_data

    def corrupted(key):
        stream = real(key)
        return io.BytesIO(b"X" + stream.read()[1:])

    backing.get_data = corrupted
    with pytest.raises(VerificationError, match="sha256"):
        store.push("j")
    assert mount.to_bytes("j") == data and not backing.exists("j")
    store.disconnect()
    assert helper_threads() == []


def test_a_memory_store_push_keeps_working_without_threads():
    mount, backing = MemoryStore(), MemoryStore()
    store = MountedStore("", mount, backing)
    store.from_bytes("k", b"small")
    assert store.push("k") == ["k"] and backing.to_bytes("k") == b"small"
