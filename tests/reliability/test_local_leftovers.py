"""A writer killed mid-import leaves no whole-size temp file past the next connect.

A temp file gets its final ``.held`` name only once its writer holds an
``flock`` on it (localfiles.tempfiles.new_temp), so the next connect removes an unlocked
one at any age; before, a file younger than a minute stayed until a later
connect. A live writer's temp file, in another process, is kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.localfiles.tempfiles import HELD
from storegui.stores.sqlite.store import SqliteStore

# Imports a stream into the store; once 1 MiB is in its temp file it says
# "ready" and waits on stdin forever (the parent kills it or closes stdin).
CHILD = textwrap.dedent("""
    import io, sys
    from storegui.stores.importing import import_stream
    from storegui.stores.filesystem.store import FileSystemStore
    from storegui.stores.sqlite.store import SqliteStore

    kind, path = sys.argv[1], sys.argv[2]
    store = FileSystemStore(path) if kind == "fs" else SqliteStore(path, external_from=0)
    store.connect()

    class Slow(io.RawIOBase):
        sent = 0
        def readable(self):
            return True
        def readinto(self, buffer):
            if self.sent >= 4 << 20:
                print("ready", flush=True)
                sys.stdin.read()  # hold here, mid-write
                return 0
            n = min(len(buffer), 1 << 16)
            buffer[:n] = b"x" * n
            self.sent += n
            return n

    import_stream(store, "big", io.BufferedReader(Slow()), {})
""")


def _tmp_folder(kind: str, path: Path) -> Path:
    return path / ".storegui" / "tmp" if kind == "fs" else Path(f"{path}-values") / "tmp"


def _start(kind: str, path: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()  # blocks until the child is mid-write (or died)
    assert line == "ready\n", f"the child ended first (exit {child.poll()})"
    return child


def _held(kind: str, path: Path) -> dict[str, int]:
    folder = _tmp_folder(kind, path)
    return {p.name: p.stat().st_size for p in folder.iterdir() if p.name.endswith(HELD)}


def _open(kind: str, path: Path):
    return FileSystemStore(path) if kind == "fs" else SqliteStore(str(path), external_from=0)


@pytest.mark.parametrize("kind", ["fs", "sqlite"])
def test_a_killed_writers_temp_file_goes_at_the_next_connect_a_live_ones_stays(tmp_path, kind):
    path = tmp_path / ("store" if kind == "fs" else "store.db")
    first = _open(kind, path)
    first.connect()
    first.from_bytes("kept", b"kept value")
    first.disconnect()

    dead = _start(kind, path)
    left = _held(kind, path)
    assert len(left) == 1 and max(left.values()) >= 1 << 20  # most of the 4 MiB sent
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=30)
    dead.stdout.close()
    dead.stdin.close()

    live = _start(kind, path)
    try:
        working = set(_held(kind, path)) - set(left)
        assert len(working) == 1
        store = _open(kind, path)
        store.connect()  # well within a minute of the kill
        try:
            assert set(_held(kind, path)) == working  # the dead one gone, the live one kept
            assert store.to_bytes("kept") == b"kept value"
            assert not store.exists("big")
        finally:
            store.disconnect()
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.wait(timeout=30)
        live.stdout.close()
        live.stdin.close()
