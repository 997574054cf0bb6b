"""The streaming helpers shared by push, pull, import and export."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

from storegui.stores import (
    CancelToken,
    InvalidDataError,
    MemoryStore,
    ProgressReader,
    TransferCancelled,
    copy_stream,
    copy_value,
)


def test_copy_stream_copies_in_chunks_with_progress():
    data = bytes(range(256)) * 4000
    out = io.BytesIO()
    calls = []
    n = copy_stream(io.BytesIO(data), out, buffer_size=10_000,
                    progress=lambda done, total: calls.append((done, total)), total=len(data))
    assert n == len(data)
    assert out.getvalue() == data
    assert len(calls) == -(-len(data) // 10_000)
    assert calls[-1] == (len(data), len(data))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_copy_stream_cancelled_from_another_thread():
    token = CancelToken()
    started = threading.Event()

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            started.set()
            b[:] = b"\0" * len(b)
            return len(b)

    errors = []

    def run():
        try:
            copy_stream(Endless(), io.BytesIO(), buffer_size=4096, cancel=token)
        except TransferCancelled as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    token.cancel()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and "cancelled" in str(errors[0])


def test_progress_reader_counts_hashes_and_reports():
    data = b"hello" * 10_000
    seen = []
    reader = ProgressReader(io.BytesIO(data), total=len(data), digest="sha256",
                            progress=lambda d, t: seen.append(d))
    out = io.BytesIO()
    copy_stream(reader, out, buffer_size=7000)
    assert out.getvalue() == data
    assert reader.done == len(data)
    assert reader.hexdigest == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data)


def test_progress_reader_refuses_text():
    reader = ProgressReader(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(InvalidDataError):
        reader.read(10)


def test_copy_value_between_stores_keeps_metadata_and_reports_size():
    src, dst = MemoryStore(), MemoryStore()
    data = b"x" * 3_000_000
    src.from_bytes("a/b", data, {"m": [1, 2]})
    result = copy_value(src, "a/b", dst, "c/d", digest="sha256", buffer_size=65536)
    assert result.size == len(data)
    assert result.digest == hashlib.sha256(data).hexdigest()
    assert dst.to_bytes("c/d") == data
    assert dst.get_metadata("c/d") == {"m": [1, 2]}


def test_cancelled_copy_value_leaves_nothing():
    src, dst = MemoryStore(), MemoryStore()
    src.from_bytes("k", b"y" * 2_000_000)
    token = CancelToken()

    def progress(done, total):
        if done > 500_000:
            token.cancel()

    with pytest.raises(TransferCancelled):
        copy_value(src, "k", dst, "k", progress=progress, cancel=token, buffer_size=65536)
    assert not dst.exists("k")
    assert src.to_bytes("k") == b"y" * 2_000_000


def test_one_progress_object_adds_up_its_children():
    from storegui.stores.transfer.progress import TransferProgress, as_progress

    seen = []
    progress = as_progress(lambda done, total: seen.append((done, total)))
    assert as_progress(progress) is progress
    progress.set_size(15)
    assert seen == []  # a progress(done, total) callable hears of bytes moved only
    first = progress.branch("a", 10)
    copy_stream(io.BytesIO(b"x" * 10), io.BytesIO(), buffer_size=4, progress=first, total=10)
    first.close()
    second = progress.branch("b", 5)
    second.relative_update(2)
    second.close(ok=False)
    assert (first.value, first.ok, second.value, second.ok) == (10, True, 2, False)
    assert seen == [(4, 15), (8, 15), (10, 15), (12, 15)]
    assert isinstance(as_progress(None), TransferProgress)
