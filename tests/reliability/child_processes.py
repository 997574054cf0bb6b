"""Helper processes of the reliability tests: the same storegui, a pool kept warm.

:func:`child_env` makes a child import the storegui this process tests;
:class:`Child` starts ``crash_child.py`` and reads its lines with a deadline;
:class:`ChildPool` keeps the next child started while a trial is checked.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import storegui

CHILD = str(Path(__file__).with_name("crash_child.py"))
#: Seconds a child may take to start or finish before the trial fails.
CHILD_DEADLINE = 60.0


def child_env() -> dict:
    """The environment of a child: it imports the same storegui as this process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(storegui.__file__).resolve().parent.parent)
    return env


class Child:
    """One started :mod:`crash_child` process."""

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, bufsize=0,
                                     env=child_env())

    def read_line(self, deadline: float) -> str:
        """The next line the child prints ("" if it exits or the deadline passes first)."""
        out = self.proc.stdout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                return ""
            byte = out.read(1)
            if not byte:
                break
            line += byte
        return line.decode().strip()

    def errors(self) -> str:
        """What the child wrote to stderr."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-2000:]

    def close(self) -> None:
        """Make sure the process is gone and its pipes closed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        self.stderr.close()


class ChildPool:
    """Keeps the next child started (and done importing) while a trial is checked."""

    def __init__(self) -> None:
        self._next: Child | None = None

    def take(self) -> Child:
        """A child that printed ``ready``; the next one starts in the background."""
        child = self._next or Child()
        self._next = Child()
        ready = child.read_line(time.monotonic() + CHILD_DEADLINE)
        if ready != "ready":
            problem = f"the child did not start: {ready!r} {child.errors()}"
            child.close()
            raise RuntimeError(problem)
        return child

    def close(self) -> None:
        """Stop the child kept in reserve."""
        if self._next is not None:
            self._next.close()
            self._next = None
