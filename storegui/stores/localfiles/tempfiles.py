"""Temp files of the local stores: made, locked, named ``*.held``, and removed when abandoned.

A file being written lives in a temp folder as ``<kind>-<32 hex>.held`` and
is renamed to its final name when complete. Its writer holds an exclusive
``flock`` on it for as long as it works, and the file gets its ``.held``
name only once locked: so an unlocked ``.held`` file was left by a dead
writer whatever its age, and :func:`remove_abandoned` (run at each writable
connect) removes it at once. A temp file without that ending is empty, or
lives where ``flock`` does not work (some network filesystems); it counts as
abandoned once unlocked and unchanged for :data:`STALE_AFTER` seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterable

from .descriptors import NEW_FILE, READ_FLAGS

#: The ending of a temp file's name given only once its writer holds its flock.
HELD = ".held"
#: Seconds a temp file that is not ``*.held`` must be unchanged (and unlocked) to be abandoned.
STALE_AFTER = 60.0


def lock_file(fd: int) -> None:
    """Hold an exclusive ``flock`` on ``fd`` (released when it is closed); OSError if taken."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def new_temp(tmp_fd: int, kind: str) -> tuple[int, str]:
    """A new temp file ``<kind>-<32 hex>.held`` in ``tmp_fd``, ``flock``-ed: (descriptor, name).

    The file is created as ``<kind>-<32 hex>.tmp`` and gets its ``.held`` name
    only once locked (see the module docstring); without ``flock`` it keeps
    its ``.tmp`` name.
    """
    token = secrets.token_hex(16)
    fresh = f"{kind}-{token}.tmp"
    fd = os.open(fresh, NEW_FILE, 0o666, dir_fd=tmp_fd)
    try:
        return fd, hold(tmp_fd, fd, fresh)
    except BaseException:
        os.close(fd)
        raise


def hold(tmp_fd: int, fd: int, fresh: str) -> str:
    """Lock the new temp file ``fresh`` (open at ``fd``), then rename it ``<kind>-<token>.held``.

    Returns its name now: ``fresh`` itself when ``flock`` does not work here
    (the age rule protects it). If the rename fails, the file is removed
    before the error is raised (the caller still closes ``fd``).
    """
    try:
        lock_file(fd)
    except OSError:
        return fresh
    name = fresh.removesuffix(".tmp") + HELD
    try:
        os.rename(fresh, name, src_dir_fd=tmp_fd, dst_dir_fd=tmp_fd)
    except BaseException:
        remove_temp(tmp_fd, fresh)
        raise
    return name


def remove_temp(tmp_fd: int, name: str) -> None:
    """Remove the temp file ``name`` if it is still there (no name: nothing to do)."""
    if name:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=tmp_fd)


def is_locked(dir_fd: int, name: str) -> bool:
    """Whether some process holds an ``flock`` on ``name``; False if it is not there.

    True when that cannot be told (the file cannot be opened, or ``flock``
    does not work here): the holder is then taken for alive.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        lock_file(fd)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def is_abandoned(dir_fd: int, name: str, min_age: float) -> bool:
    """Whether the temp file (or transaction folder's ``lock``) ``name`` was left by a dead writer.

    A live writer holds an exclusive ``flock`` on it for as long as it works;
    ``min_age`` seconds since the last change cover the instant between
    creating the file and locking it. A ``*.held`` file got that name only
    once locked (:func:`hold`), so unlocked it is dead at any age: a killed
    import's whole-size temp file goes at the next connect, not a minute later.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        try:
            lock_file(fd)
        except OSError:
            return False  # somebody holds it: in use
        if name.endswith(HELD):
            return True
        return time.time() - os.fstat(fd).st_mtime > min_age
    finally:
        os.close(fd)


def remove_abandoned(tmp_fd: int, min_age: float = STALE_AFTER,
                     names: Iterable[str] | None = None) -> int:
    """Remove the temp files in ``tmp_fd`` that dead writers left (:func:`is_abandoned`); how many.

    ``names``: the files to consider (every file in the folder if None). A
    file another live process is writing is never removed.
    """
    if names is None:
        with os.scandir(tmp_fd) as entries:
            names = [e.name for e in entries]
    removed = 0
    for name in names:
        if is_abandoned(tmp_fd, name, min_age):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=tmp_fd)
                removed += 1
    return removed
