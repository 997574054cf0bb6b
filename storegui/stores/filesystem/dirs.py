"""Folders of a :class:`FileSystemStore`'s key tree: missing paths, pruning, removal.

Like everything in the store, these never follow a symbolic link: paths are
resolved one component at a time from an open folder (see
:mod:`..localfiles.descriptors`).
"""

from __future__ import annotations

import contextlib
import errno
import os

from ..localfiles.descriptors import DIR_FLAGS, open_dir

#: Errors that mean "this path does not lead to what we look for".
MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def prune_dirs(root_fd: int, names: list[str]) -> None:
    """Remove the directories ``names`` (a path below the root) bottom-up while empty.

    Climbs with ``..`` so only two descriptors are open however deep the path
    is; stops at the first directory that is not empty (or already gone).
    """
    if not names:
        return
    try:
        fd = open_dir(root_fd, names)
    except OSError:
        return
    try:
        for name in reversed(names):
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                return
    finally:
        os.close(fd)


def remove_flat_dir(parent_fd: int, name: str) -> None:
    """Remove the directory ``name`` and the files directly in it."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries]
        for entry in names:
            with contextlib.suppress(OSError):
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=parent_fd)
