"""Child process of the crash-safety harness: runs one push, pull, import or writer until killed.

The parent (:mod:`crash_trials`) starts ``python crash_child.py`` with
``PYTHONPATH`` pointing at the storegui it tests. The child imports the
stores, prints ``ready``, then reads one JSON command line from stdin, opens
the stores it names, prints ``start`` and runs the operation; at the end it
prints ``done <seconds>``. The parent kills it with SIGKILL at a random
moment after ``start``. (Importing before the command arrives lets the
parent start the next child while it checks the last trial.)

Command fields:

``op``           "push", "pull", "import" or "write-keys"
``mount``        ``[kind, path]`` of the mount store (push / pull); kind "fs" or "sqlite"
``backing``      ``[kind, path]`` of the backing store (push / pull)
``mount_point``  the MountedStore's mount point
``target``       what to push / pull (a key or a prefix)
``overwrite``    pull: replace existing mount copies
``store``        ``[kind, path]`` of the store to import into (import)
``key``          import: the key; ``source``: the file
``buffer_size``  bytes per chunk
``crash_at``     optional: a point where the child kills itself (see :data:`CRASH_POINTS`)
``db``           write-keys: the SQLite store file; ``name`` the writer's key prefix;
                 ``count`` keys per thread; ``mode`` "long" (one store open throughout,
                 ``threads`` writer threads) or "short" (a store opened and closed for each
                 operation); each acknowledged operation is printed as ``ack KEY VERSION``
                 (see :mod:`sharing_worker`)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

# This script's folder is on sys.path: the writers of the sharing tests.
from sharing_worker import Output, long_lived, short_lived

from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.importing import import_file
from storegui.stores.mounted.store import MountedStore
from storegui.stores.sqlite.store import SqliteStore

#: Deterministic crash points: where each one kills the child, and in which store it applies.
CRASH_POINTS = {
    # push: the backing copy is written and verified, the mount copy not yet deleted
    "before-mount-delete": "mount",
    # import: the value is written inside the import's transaction, its sha256 not yet added
    "before-digest": "store",
    # FileSystemStore: the blob file is in blobs/, the record naming it not yet renamed in
    "before-record-install": "backing",
}


def open_kind(spec: list[str]) -> Any:
    """The store ``[kind, path]`` names ("fs": FileSystemStore, "sqlite": SqliteStore)."""
    kind, path = spec
    if kind == "fs":
        return FileSystemStore(path, create=False)
    if kind == "sqlite":
        return SqliteStore(path)
    raise ValueError(f"unknown store kind {kind!r}")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _die_before(obj: Any, name: str) -> None:
    """Make ``obj.name(...)`` kill this process instead of running."""
    def killer(*args: Any, **kwargs: Any) -> Any:
        _die()

    setattr(obj, name, killer)


def _arm(point: str | None, stores: dict[str, Any]) -> None:
    if point is None:
        return
    store = stores[CRASH_POINTS[point]]
    if point == "before-mount-delete":
        _die_before(store, "delete")
    elif point == "before-digest":
        _die_before(store, "update_metadata")
    elif point == "before-record-install":
        _die_before(store, "_install")


def run(command: dict) -> None:
    """Open the stores of ``command`` and run its operation (printing ``start`` first)."""
    size = int(command.get("buffer_size", 64 * 1024))
    if command["op"] == "write-keys":
        out = Output()
        out.line("start")
        if command["mode"] == "long":
            long_lived(command["db"], command["name"], int(command["threads"]),
                       int(command["count"]), 0.0, out)
        else:
            short_lived(command["db"], command["name"], int(command["count"]), out)
        return
    if command["op"] == "import":
        store = open_kind(command["store"])
        store.connect()
        _arm(command.get("crash_at"), {"store": store})
        print("start", flush=True)
        import_file(store, command["key"], command["source"], buffer_size=size)
        return
    mount, backing = open_kind(command["mount"]), open_kind(command["backing"])
    mounted = MountedStore(command["mount_point"], mount, backing)
    mounted.connect()
    _arm(command.get("crash_at"), {"mount": mount, "backing": backing})
    print("start", flush=True)
    if command["op"] == "push":
        mounted.push(command["target"], buffer_size=size)
    else:
        mounted.pull(command["target"], buffer_size=size,
                     overwrite=bool(command.get("overwrite")))


def main() -> int:
    print("ready", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the parent closed stdin: not needed after all
    start = time.perf_counter()
    run(json.loads(line))
    print(f"done {time.perf_counter() - start:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
