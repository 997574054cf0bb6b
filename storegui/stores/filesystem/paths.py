"""Reversible mapping between store keys and file names, for :class:`FileSystemStore`.

A key is split on ``/`` into segments. Each segment becomes one or more
directory-entry names:

- the segment is *encoded*: every UTF-8 byte of a character in
  ``% / \\ : * ? " < > | @``, of a control character (U+0000-U+001F, U+007F),
  of a leading ``.`` and of a trailing ``.`` or space is written ``%XX``
  (upper-case hex). So no name is ``.``/``..``, none is hidden, none starts
  with the store's own ``.storegui`` entries, and ``@`` only ever appears in
  the tags below. The empty segment (keys like ``/a``, ``a//b``, ``a/``) is
  ``%00`` (NUL is never in a key).
- in the *portable* layout (chosen for case-insensitive or
  Unicode-normalising filesystems) upper-case ASCII letters and every
  non-ASCII character are escaped too, so two different keys never map to
  names the filesystem considers equal.
- an encoded segment longer than :data:`PIECE_BYTES` bytes is cut into
  pieces (never inside an escape or a character); every piece but the last
  names a *continuation* directory ``<piece>@+`` that holds the rest.
- the last piece of a folder segment names a directory as is; the last piece
  of a key's final segment names its record file ``<piece>@v``.

So ``images/cat.png`` is ``images/cat.png@v``, and the keys ``a`` and ``a/b``
live side by side as the file ``a@v`` and the folder ``a``. Decoding checks
that a name is exactly what encoding would produce; anything else (files
other programs left in the folder) is not a key.
"""

from __future__ import annotations

import re

KEY_TAG = "@v"
CONT_TAG = "@+"
EMPTY_SEGMENT = "%00"
#: Longest encoded piece (bytes), well under the usual 255-byte name limit.
PIECE_BYTES = 200

_ALWAYS = frozenset('%/\\:*?"<>|@') | frozenset(chr(c) for c in range(32)) | {"\x7f"}
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _units(segment: str, portable: bool) -> list[str]:
    """The encoded segment as a list of indivisible units (a character or its escapes)."""
    last = len(segment) - 1
    units = []
    for i, ch in enumerate(segment):
        if (
            ch in _ALWAYS
            or (i == 0 and ch == ".")
            or (i == last and ch in ". ")
            or (portable and ("A" <= ch <= "Z" or ord(ch) > 127))
        ):
            units.append(_escape(ch))
        else:
            units.append(ch)
    return units


def encode_segment(segment: str, portable: bool = False) -> str:
    """One key segment as a file-name-safe string (before cutting into pieces)."""
    if not segment:
        return EMPTY_SEGMENT
    return "".join(_units(segment, portable))


def segment_names(segment: str, is_key: bool, portable: bool = False) -> list[str]:
    """The directory-entry names one segment occupies (continuations first)."""
    if not segment:
        units = [EMPTY_SEGMENT]
    else:
        units = _units(segment, portable)
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    total = sum(len(u.encode("utf-8")) for u in units)
    if total > PIECE_BYTES:
        for unit in units:
            n = len(unit.encode("utf-8"))
            if size + n > PIECE_BYTES:
                pieces.append("".join(current))
                current, size = [], 0
            if not current and unit == ".":
                # a piece must not start with "." either (hidden, or "."/"..")
                unit = _escape(unit)
                n = len(unit)
            current.append(unit)
            size += n
        names = [p + CONT_TAG for p in pieces]
        last = "".join(current)
    else:
        names = []
        last = "".join(units)
    names.append(last + KEY_TAG if is_key else last)
    return names


def key_names(key: str, portable: bool = False) -> list[str]:
    """Path components (relative to the store root) of ``key``'s record file."""
    segments = key.split("/")
    names: list[str] = []
    for seg in segments[:-1]:
        names.extend(segment_names(seg, False, portable))
    names.extend(segment_names(segments[-1], True, portable))
    return names


def folder_names(folder: str, portable: bool = False) -> list[str]:
    """Path components of the directory holding the children of ``folder``.

    ``folder`` is '' (the root) or a prefix ending with ``/``.
    """
    if not folder:
        return []
    names: list[str] = []
    for seg in folder[:-1].split("/"):
        names.extend(segment_names(seg, False, portable))
    return names


def decode_segment(encoded: str) -> str | None:
    """The segment an encoded string stands for, or None if it is not a valid encoding."""
    if encoded == EMPTY_SEGMENT:
        return ""
    out = bytearray()
    i = 0
    n = len(encoded)
    while i < n:
        ch = encoded[i]
        if ch == "%":
            m = _ESCAPE.match(encoded, i)
            if m is None:
                return None
            out.append(int(m.group(1), 16))
            i += 3
        else:
            out.extend(ch.encode("utf-8", "surrogatepass"))
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_chain(names: list[str], portable: bool = False) -> tuple[str, bool] | None:
    """``(segment, is_key)`` for a chain of entry names, or None if not canonical.

    ``names`` are continuation names (``...@+``) followed by one final name
    (a key record ``...@v`` or a plain folder name).
    """
    *conts, last = names
    if not all(name.endswith(CONT_TAG) for name in conts):
        return None
    is_key = last.endswith(KEY_TAG)
    final = last[: -len(KEY_TAG)] if is_key else last
    encoded = "".join(name[: -len(CONT_TAG)] for name in conts) + final
    segment = decode_segment(encoded)
    if segment is None or segment_names(segment, is_key, portable) != names:
        return None
    return segment, is_key
