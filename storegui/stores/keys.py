"""Key rules shared by every store.

A key is any non-empty ``str`` that can be encoded as UTF-8 and holds no NUL
character. Stores that map keys to something else (file paths, object names)
encode them reversibly; see each store.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from .errors import InvalidKeyError

MAX_KEY_LENGTH = 4096


def check_key(key: Any, store: Any = None) -> str:
    """Return ``key`` if it is a valid key, else raise :class:`InvalidKeyError`."""
    if not isinstance(key, str):
        raise InvalidKeyError(
            f"a key must be a string, not {type(key).__name__} ({key!r})", store=store
        )
    if not key:
        raise InvalidKeyError("a key must not be empty", store=store)
    if "\x00" in key:
        raise InvalidKeyError(f"a key must not contain NUL characters: {key!r}", key, store)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"a key must be at most {MAX_KEY_LENGTH} characters (this one has {len(key)})",
            key[:80] + "…",
            store,
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(f"a key must be valid unicode text: {key!r}", key, store) from None
    return key


def path_key_problem(key: str, delimiter: str = "/") -> str | None:
    """Why ``key`` is a poor name for a *new* key in a folder tree, or None if it is fine.

    Stores accept any :func:`check_key` key (the contract keeps ``a/../b`` and
    ``a//b`` round-tripping), but the tree would show such a key under a folder
    named ``..``, ``.`` or with no name at all. Where people make up new keys
    (the command line's ``put``), refuse keys with an empty, ``.`` or ``..``
    part instead (a key that ends with the delimiter is a folder, not a key).
    """
    parts = key.split(delimiter)
    if "" in parts:
        where = ("starts with" if parts[0] == "" else
                 "ends with" if parts[-1] == "" else "has two in a row:")
        return (f"key {key!r} {where} {delimiter!r} (an empty folder name); "
                f"folder names between {delimiter!r} must not be empty")
    for part in (".", ".."):
        if part in parts:
            return (f"key {key!r} has a {part!r} part; keys are not resolved like file "
                    f"paths, so {part!r} would be a folder of that name")
    return None


def check_path_key(key: Any, store: Any = None) -> str:
    """:func:`check_key`, then :func:`path_key_problem` (raised as :class:`InvalidKeyError`)."""
    key = check_key(key, store)
    problem = path_key_problem(key)
    if problem:
        raise InvalidKeyError(problem, key, store)
    return key


def check_prefix(prefix: Any) -> str:
    """Return ``prefix`` if it is a string usable as a key prefix ('' allowed)."""
    if not isinstance(prefix, str):
        raise InvalidKeyError(f"a prefix must be a string, not {type(prefix).__name__}")
    return prefix


def glob_literal_prefix(pattern: str) -> str:
    """The longest prefix of a glob ``pattern`` with no wildcard in it."""
    m = re.search(r"[*?\[]", pattern)
    return pattern if m is None else pattern[: m.start()]


def glob_matcher(pattern: str):
    """A compiled ``fnmatch``-style matcher (case-sensitive; ``*`` also matches ``/``)."""
    return re.compile(fnmatch.translate(pattern), re.DOTALL).match


def split_child(key: str, prefix: str, delimiter: str) -> tuple[str, bool]:
    """For ``key`` under ``prefix``: the immediate child name and whether it is a folder.

    A folder child is returned with its trailing delimiter
    (``split_child("a/b/c", "a/", "/") == ("a/b/", True)``).
    """
    rest = key[len(prefix):]
    if delimiter:
        i = rest.find(delimiter)
        if i >= 0:
            return prefix + rest[: i + len(delimiter)], True
    return key, False
