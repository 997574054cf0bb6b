"""Data piped in (``put KEY -``) gets media_type from its bytes and the mtime of the write."""

import hashlib
import io
import time

import pytest

from storegui.stores import MemoryStore
from storegui.stores.importing import SNIFF_BYTES, import_piped, sniff_media_type


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"PK\x03\x04\x14\x00", "application/zip"),
    (b"\x1f\x8b\x08\x00", "application/gzip"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (b"x" * 257 + b"ustar\x0000", "application/x-tar"),
    (b"plain words\n", "text/plain"),
    ("ünïcödé ✓".encode() * 3000, "text/plain"),  # cut mid-character at SNIFF_BYTES
    (b"", "text/plain"),
    (b"\x00\x01\x02\x03", "application/octet-stream"),
    (b"\xc3\x28 not utf-8", "application/octet-stream"),
])
def test_sniffing(head, kind):
    assert sniff_media_type(head[:SNIFF_BYTES]) == kind


def test_a_text_key_name_refines_text_only():
    assert sniff_media_type(b'{"a": 1}', "x.json") == "application/json"
    assert sniff_media_type(b"a,b\n1,2\n", "t.csv") == "text/csv"
    assert sniff_media_type(b"\x89PNG\r\n\x1a\n", "x.json") == "image/png"
    assert sniff_media_type(b"text", "x.png") == "text/plain"  # the name is not believed


class Trickle(io.RawIOBase):
    """A pipe that gives a few bytes per read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(3, len(buffer), len(self.data))
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n


@pytest.mark.parametrize("size", [0, 5, SNIFF_BYTES - 1, SNIFF_BYTES, 3 * SNIFF_BYTES + 7])
def test_import_piped_stores_every_byte_with_its_metadata(size):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    store = MemoryStore()
    before = time.time()
    md = import_piped(store, "k", Trickle(data), {"note": "piped"}, buffer_size=1000)
    assert store.to_bytes("k") == data
    assert md["size"] == size and md["sha256"] == hashlib.sha256(data).hexdigest()
    assert before <= md["mtime"] <= time.time()
    assert md["media_type"] == ("image/png" if size >= 8 else
                                sniff_media_type(data))
    assert store.get_metadata("k") == md and md["note"] == "piped"


def test_metadata_given_wins():
    store = MemoryStore()
    md = import_piped(store, "k", io.BytesIO(b"abc"), {"media_type": "text/x-mine", "mtime": 1})
    assert (md["media_type"], md["mtime"]) == ("text/x-mine", 1)
