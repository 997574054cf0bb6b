"""Writer and reader processes for the concurrency tests, and the values they agree on.

``python concurrency_worker.py write KIND PATH ROUNDS START READY N`` waits
until N readers have announced themselves in the folder READY, then writes
the values "A" and "B" alternately (starting with START) to every key, ROUNDS
times; ``... read KIND PATH ROUNDS STOPFILE READY`` reads every key (once
through, then announces itself in READY) until the file STOPFILE exists (or
ROUNDS reads), checking that each read is one whole version: data, size and
metadata all of "A" or all of "B". Both print one JSON line: counts, the
versions seen and the problems.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
import time
from typing import Any

from storegui.stores.errors import StoreError

#: The keys both versions are written to: inline, one chunk / blob, several SQLite chunks.
SIZES = {"small": 100, "medium": 100_000, "large": 2_500_000}
VERSIONS = ("A", "B")


def version_data(key: str, version: str) -> bytes:
    """The bytes of ``version`` of ``key`` (the same in every process)."""
    return random.Random(f"{key}-{version}").randbytes(SIZES[key.rsplit("/", 1)[-1]])


def version_metadata(key: str, version: str) -> dict:
    """The metadata of ``version`` of ``key``: names the version and the data's digest."""
    digest = hashlib.sha256(version_data(key, version)).hexdigest()
    return {"which": version, "sha256": digest, "padding": version * 50}


class Expected:
    """The two whole versions of every key, to judge reads against."""

    def __init__(self, keys: list[str]) -> None:
        self.digests = {(k, v): hashlib.sha256(version_data(k, v)).hexdigest()
                        for k in keys for v in VERSIONS}
        self.metadata = {(k, v): version_metadata(k, v) for k in keys for v in VERSIONS}

    def judge(self, key: str, data: bytes, size: int | None, metadata: dict) -> str | None:
        """None if ``data``/``metadata`` are one whole version of ``key``, else what is wrong."""
        which = metadata.get("which")
        if which not in VERSIONS:
            return f"{key}: metadata {str(metadata)[:80]} is neither version"
        if metadata != self.metadata[(key, which)]:
            return f"{key}: metadata of version {which} is not whole"
        if hashlib.sha256(data).hexdigest() != self.digests[(key, which)]:
            other = [v for v in VERSIONS if v != which][0]
            if hashlib.sha256(data).hexdigest() == self.digests[(key, other)]:
                return f"{key}: data of version {other} with metadata of version {which}"
            return f"{key}: {len(data)} bytes that are neither version (torn)"
        if size != len(data):
            return f"{key}: size {size} but {len(data)} bytes"
        return None


def keys_for(prefix: str = "") -> list[str]:
    """The keys the workers use, under ``prefix``."""
    return [prefix + name for name in SIZES]


def write_version(store: Any, key: str, version: str) -> None:
    """Write ``version`` of ``key`` to ``store`` in one ``set``."""
    store.set(key, (io.BytesIO(version_data(key, version)), version_metadata(key, version)),
              buffer_size=64 * 1024)


def read_once(store: Any, key: str, expected: Expected, seen: set | None = None) -> str | None:
    """Read ``key`` once (data and metadata from one ``get``); a problem, or None.

    The version read is added to ``seen``.
    """
    value = store.get(key)
    with value.data as stream:
        data = stream.read()
    metadata = value.metadata
    if seen is not None:
        seen.add(metadata.get("which"))
    return expected.judge(key, data, value.size, metadata)


def open_kind(kind: str, path: str) -> Any:
    """The store of ``kind`` ("fs" or "sqlite") at ``path``."""
    if kind == "fs":
        from storegui.stores.filesystem.store import FileSystemStore

        return FileSystemStore(path, create=False)
    from storegui.stores.sqlite.store import SqliteStore

    return SqliteStore(path)


def main(argv: list[str]) -> int:
    mode, kind, path, rounds = argv[1], argv[2], argv[3], int(argv[4])
    store = open_kind(kind, path)
    keys = keys_for()
    report: dict[str, Any] = {"mode": mode, "ops": 0, "retries": 0, "problems": []}
    seen: set = set()
    if mode == "write":
        version, ready, readers = argv[5], argv[6], int(argv[7])
        deadline = time.monotonic() + 120
        while len(os.listdir(ready)) < readers and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the readers to start, with a deadline
        for _ in range(rounds):
            for key in keys:
                write_version(store, key, version)
                report["ops"] += 1
            version = "B" if version == "A" else "A"
    else:
        stop, ready, expected = argv[5], argv[6], Expected(keys)
        deadline = time.monotonic() + 120
        announced = False
        while report["ops"] < rounds and time.monotonic() < deadline:
            if report["ops"] and not announced:
                with open(os.path.join(ready, f"reader-{os.getpid()}"), "w"):
                    announced = True
            for key in keys:
                try:
                    problem = read_once(store, key, expected, seen)
                except StoreError as exc:
                    # a chunked value replaced by another process mid-read: a clear
                    # error asking to read again, never torn data
                    if "read it again" not in str(exc):
                        report["problems"].append(f"{key}: {exc}")
                    report["retries"] += 1
                    continue
                report["ops"] += 1
                if problem:
                    report["problems"].append(problem)
            if os.path.exists(stop):
                break
    store.disconnect()
    report["seen"] = sorted(v for v in seen if v)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
