"""The sample key set the app's tests use, and a store that can hang on purpose."""

from __future__ import annotations

import threading
from typing import Any

from storegui.stores import MemoryStore

MOUNT_POINT = "work/"

#: Keys of the sample backing store (full keys) and mount store (relative to MOUNT_POINT).
BACKING_KEYS = {
    "README.md": b"# readme\n",
    "archive/2023/a.csv": b"x,y\n1,2\n",
    "archive/b.csv": b"x\n",
    "work/remote.txt": b"remote text\n",
    "work/shadow.txt": b"backing version\n",
    "work/sub/deep.txt": b"deep\n",
}
MOUNT_KEYS = {
    "shadow.txt": b"local version, longer\n",
    "local.txt": b"only here\n",
    "new/fresh.txt": b"fresh\n",
}

#: The merged tree: top level and work/, with each row's origin.
TOP = {"archive/": "remote", "work/": "shadowing", "README.md": "remote"}
WORK = {"work/new/": "local", "work/sub/": "remote", "work/local.txt": "local",
        "work/remote.txt": "remote", "work/shadow.txt": "shadowing"}


def fill(backing: Any, mount: Any) -> None:
    """Write the sample keys (each with a little metadata) into the two stores."""
    for key, data in BACKING_KEYS.items():
        backing.from_bytes(key, data, {"kind": "backing", "name": key})
    for key, data in MOUNT_KEYS.items():
        mount.from_bytes(key, data, {"kind": "mount", "name": key})


class GatedMemoryStore(MemoryStore):
    """A real MemoryStore whose listings and reads wait for ``release()`` once ``hold()`` is on.

    Stands in for a hung remote store; waits are bounded so a failing test
    cannot hang the run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def _wait(self) -> None:
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(10)

    def list_dir(self, prefix: str = "", delimiter: str = "/"):
        self._wait()
        return super().list_dir(prefix, delimiter)

    def _get(self, key: str):
        self._wait()
        return super()._get(key)
