"""The clean-up of SqliteStore's value-file folder (see :mod:`.files`).

At each writable connect (:meth:`.files.ValueFiles.sweep`) it removes temp
files that no process holds an ``flock`` on (at any age once named ``*.held``,
else unchanged for a minute: FileSystemStore's rule,
:func:`..localfiles.tempfiles.remove_abandoned`); and value
files no ``blobs`` row names whose writer is gone: its lock file is missing
or not locked. A writer's files are known by its lock rather than by a lock
on each file, since a transaction may hold thousands of new files,
uncommitted, for any time; and the lock file gets its name only once
locked, so an unlocked one means a dead writer whatever its age.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3

try:
    from ..localfiles.descriptors import open_dir
    from ..localfiles.tempfiles import STALE_AFTER, is_locked, remove_abandoned
except ImportError:  # pragma: no cover - no flock (Windows): every value stays in the database
    pass

#: The name of a value file: ``<writer>-<token>``, 32 hex digits each.
VALUE_NAME = re.compile(r"[0-9a-f]{32}-[0-9a-f]{32}")
#: The name of a connected writer's lock file in ``tmp/``.
WRITER_LOCK = re.compile(r"writer-([0-9a-f]{32})\.tmp")


def remove_leftovers(dir_fd: int, conn: sqlite3.Connection) -> int:
    """Remove what dead writers left in the value-file folder ``dir_fd``; how many files.

    ``conn`` reads which files the ``blobs`` table names.

    Raises
    ------
    OSError, sqlite3.OperationalError
        The folder or the database cannot be read.
    """
    with os.scandir(dir_fd) as entries:
        values = [e.name for e in entries
                  if VALUE_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    removed = 0
    live: set[str] = set()
    try:
        tmp = open_dir(dir_fd, ["tmp"])
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
    else:
        try:
            with os.scandir(tmp) as entries:
                names = [e.name for e in entries]
            temps = []
            for name in names:
                match = WRITER_LOCK.fullmatch(name)
                if match is None:
                    temps.append(name)
                elif is_locked(tmp, name):
                    live.add(match.group(1))
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=tmp)
                        removed += 1
            removed += remove_abandoned(tmp, STALE_AFTER, temps)
        finally:
            os.close(tmp)
    # Which rows name files is read only now: a writer found dead above can
    # commit nothing more, so a file it left unnamed stays unnamed.
    candidates = [name for name in values if name[:32] not in live]
    if candidates:
        named = {f for (f,) in conn.execute("SELECT file FROM blobs WHERE file IS NOT NULL")}
        for name in candidates:
            if name not in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                    removed += 1
    return removed
