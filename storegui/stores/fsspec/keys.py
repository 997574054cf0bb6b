"""How FsspecStore names objects: keys to paths under the root, reversibly.

An ordinary key is its own path (``photos/2024/a.jpg`` is the object
``<root>/photos/2024/a.jpg``), so other tools see the bucket as it is. A
path *segment* (the text between two ``/``) that a filesystem cannot hold,
or that would be ambiguous, is written as ``%~`` followed by the segment with
exactly its offending characters percent-encoded:

========================================  =======================
segment                                   stored as
========================================  =======================
empty (``a//b``, ``/a``, ``a/``)          ``%~``
``.`` or ``..``                           ``%~.`` / ``%~..``
first segment starting with ``.storegui``  ``%~.storegui...``
containing ``\\`` or control characters    ``%~tab%09here``
already starting with ``%~``              ``%~%25~...``
========================================  =======================

Inside an encoded segment ``%`` itself is written ``%25``, so decoding is
exact. A stored name that does not round-trip (made by another tool, such as
``%~%41``) is not a key this store can address and is skipped in listings.

Keys the backend cannot hold at all (longer than an S3 object name allows, or
with a segment longer than a local file name allows) are refused with
:class:`~storegui.stores.errors.InvalidKeyError`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from ..errors import InvalidKeyError

MARK = "%~"
RESERVED = ".storegui"
_OFFENDING = re.compile(r"[\x00-\x1f\x7f\\%]")
_NEEDS_ENCODING = re.compile(r"[\x00-\x1f\x7f\\]")

#: Longest object name (bytes, relative to the bucket) on S3-like stores.
OBJECT_NAME_LIMIT = 1024
#: Longest path segment (bytes) on local and SSH filesystems.
SEGMENT_LIMIT = 255
# Protocols whose object names are limited as a whole (S3 and friends).
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "az", "adl", "oss", "r2"}
_POSIX_LIKE = {"file", "local", "sftp", "ssh", "smb", "ftp"}


def _escape(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def encode_segment(segment: str, top: bool = False) -> str:
    """The stored name of one key segment (``top``: the first segment of the key)."""
    if (
        segment
        and segment not in (".", "..")
        and not segment.startswith(MARK)
        and not (top and segment.startswith(RESERVED))
        and not _NEEDS_ENCODING.search(segment)
    ):
        return segment
    return MARK + _OFFENDING.sub(lambda m: _escape(m.group()), segment)


def decode_segment(name: str) -> str:
    """The key segment a stored name stands for (the inverse of :func:`encode_segment`)."""
    if name.startswith(MARK):
        return unquote(name[len(MARK):], errors="strict")
    return name


def encode_key(key: str) -> str:
    """The path of ``key`` relative to the store root."""
    return "/".join(encode_segment(s, i == 0) for i, s in enumerate(key.split("/")))


def decode_path(relative: str) -> str | None:
    """The key stored at ``relative`` (a path under the root), or None if it is no key's path."""
    try:
        key = "/".join(decode_segment(s) for s in relative.split("/"))
    except UnicodeDecodeError:
        return None
    return key if encode_key(key) == relative else None


def url_quote(relative: str) -> str:
    """``relative`` with each segment percent-quoted for an http(s) URL."""
    return "/".join(quote(s, safe="~") for s in relative.split("/"))


def url_unquote(relative: str) -> str:
    """The inverse of :func:`url_quote`."""
    return "/".join(unquote(s) for s in relative.split("/"))


def check_fits(key: str, encoded_paths: list[str], protocol: str, store: object = None) -> None:
    """Refuse ``key`` if one of its stored paths is too long for the backend.

    ``encoded_paths`` are the paths the key needs (data, metadata), relative
    to the bucket or filesystem root.

    Raises
    ------
    InvalidKeyError
        The backend cannot hold a name that long; the message gives the limit.
    """
    if protocol in _OBJECT_STORES:
        for path in encoded_paths:
            size = len(path.encode("utf-8"))
            if size > OBJECT_NAME_LIMIT:
                raise InvalidKeyError(
                    f"key {key[:60]!r}… is too long for {protocol}://: its object names would "
                    f"be {size} bytes, the limit is {OBJECT_NAME_LIMIT}",
                    key,
                    store,
                )
    elif protocol in _POSIX_LIKE:
        for path in encoded_paths:
            for segment in path.split("/"):
                if len(segment.encode("utf-8")) > SEGMENT_LIMIT:
                    raise InvalidKeyError(
                        f"key {key[:60]!r}… has a path part of more than {SEGMENT_LIMIT} bytes, "
                        f"which a {protocol}:// filesystem cannot hold as a file name",
                        key,
                        store,
                    )
