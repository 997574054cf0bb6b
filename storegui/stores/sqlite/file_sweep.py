"""The clean-up of SqliteStore's value-file folder (see :mod:`.files`).

At each writable connect (:meth:`ValueFilesSweep.sweep`) it removes temp
files that no process holds an ``flock`` on (at any age once named ``*.held``,
else unchanged for a minute: FileSystemStore's rule,
:func:`..filesystem.dirs.is_abandoned`); and value
files no ``blobs`` row names whose writer is gone: its lock file is missing
or not locked. A writer's files are known by its lock rather than by a lock
on each file, since a transaction may hold thousands of new files,
uncommitted, for any time; and the lock file gets its name only once
locked, so an unlocked one means a dead writer whatever its age.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3

try:
    import fcntl

    from ..localfiles.descriptors import READ_FLAGS, open_dir
    from ..localfiles.tempfiles import STALE_AFTER, is_abandoned
except ImportError:  # pragma: no cover - no flock (Windows): every value stays in the database
    pass

log = logging.getLogger(__name__)

#: The name of a value file: ``<writer>-<token>``, 32 hex digits each.
VALUE_NAME = re.compile(r"[0-9a-f]{32}-[0-9a-f]{32}")
#: The name of a connected writer's lock file in ``tmp/``.
WRITER_LOCK = re.compile(r"writer-([0-9a-f]{32})\.tmp")


def _locked(dir_fd: int, name: str) -> bool:
    """Whether some process holds an ``flock`` on ``name`` (True when that cannot be told)."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by someone; or no flock here, so no telling: alive
        return True
    finally:
        os.close(fd)
    return False


class ValueFilesSweep:
    """The clean-up of :class:`~.files.ValueFiles`, mixed into it.

    Relies on its ``folder``, ``_lock``, ``_dir`` and ``_open_folder()``.
    """

    def sweep(self, conn: sqlite3.Connection) -> int:
        """Remove what dead writers left (see the module docstring); how many files.

        ``conn`` reads which files the ``blobs`` table names. Disk errors are
        logged: the store works without the clean-up.
        """
        try:
            return self._sweep(conn)
        except (OSError, sqlite3.OperationalError) as exc:
            log.warning("%s: leftover files not removed: %s", self.folder,
                        getattr(exc, "strerror", None) or exc)
            return 0

    def _sweep(self, conn: sqlite3.Connection) -> int:
        with self._lock:
            if not self._open_folder():
                return 0
            dir_fd = self._dir
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
                for name in names:
                    match = WRITER_LOCK.fullmatch(name)
                    if match and _locked(tmp, name):
                        live.add(match.group(1))
                    elif match or is_abandoned(tmp, name, STALE_AFTER):
                        with contextlib.suppress(OSError):
                            os.unlink(name, dir_fd=tmp)
                            removed += 1
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
        if removed:
            log.info("removed %d leftover file(s) of interrupted writes in %s", removed,
                     self.folder)
        return removed
