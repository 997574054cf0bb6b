"""Writer processes sharing one SQLite store file, and the values they agree on.

Each writer owns its keys (``<name>/...``): key ``i`` is written (version 1),
overwritten (version 2) when ``i % 5 == 0`` and then deleted when
``i % 7 == 3``. Every operation that returned is printed at once as one line,
``ack KEY VERSION`` (``VERSION`` 0: deleted), so the parent knows what was
acknowledged even if it kills the writer. A write that raised prints
``error KEY MESSAGE`` instead. The last line is ``end``.

``python sharing_worker.py long DB NAME THREADS MAX PAUSE`` keeps one
``SqliteStore`` open (as the app does) with THREADS writer threads (the one
that connected among them) and one reader thread (listings, queries, reads),
until its stdin closes or each thread has handled MAX keys, pausing PAUSE
milliseconds after each key (so that it keeps writing while the other
processes run, without taking all the CPU); it prints ``started`` once the
first write is acknowledged.

``python sharing_worker.py short DB NAME COUNT`` opens a new ``SqliteStore``
for every key, writes it (and its overwrite and delete) and closes it again,
COUNT times (as ``storegui put`` does).
"""

from __future__ import annotations

import io
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

from storegui.stores.errors import StoreError, StoreKeyError
from storegui.stores.sqlite.store import SqliteStore

#: Every 10th key holds a value stored in chunk rows (more than 2 KiB), the others inline.
CHUNKED_EVERY = 10


def data_for(key: str, version: int) -> bytes:
    """The bytes of ``version`` of ``key`` (the same in every process)."""
    size = 20_000 if int(key.rsplit("k", 1)[1]) % CHUNKED_EVERY == 0 else 300
    return random.Random(f"{key}@{version}").randbytes(size)


def metadata_for(key: str, version: int) -> dict:
    """The metadata of ``version`` of ``key``: indexed fields that name the key and the version."""
    return {"tag": key, "v": version, "writer": key.split("/", 1)[0],
            "nested": {"key": key, "list": [version, "x"]}}


def operations(index: int) -> list[int]:
    """The versions key ``index`` goes through (0: deleted)."""
    steps = [1]
    if index % 5 == 0:
        steps.append(2)
    if index % 7 == 3:
        steps.append(0)
    return steps


class Output:
    """Lines to the parent, whole and flushed at once, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def apply(store: Any, key: str, version: int) -> None:
    """One operation of ``key``: write ``version`` of it, or delete it (0)."""
    if version == 0:
        store.delete(key)
    else:
        store.set(key, (io.BytesIO(data_for(key, version)), metadata_for(key, version)))


def run_key(store_for: Callable[[], Any], key: str, index: int, out: Output) -> bool:
    """Every operation of one key; whether all were acknowledged."""
    for version in operations(index):
        try:
            store = store_for()
            try:
                apply(store, key, version)
            finally:
                store.release()
        except StoreError as exc:
            out.line(f"error {key} {str(exc).replace(chr(10), ' ')}")
            return False
        out.line(f"ack {key} {version}")
    return True


class _Shared:
    """The long-lived store, handed to each operation (``release`` does nothing)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __call__(self) -> _Shared:
        return self

    def set(self, key: str, value: Any) -> None:
        self.store.set(key, value)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def release(self) -> None:
        """The store stays open."""


class _OneShot:
    """A store opened for one operation and closed after it."""

    def __init__(self, db: str) -> None:
        self.store = SqliteStore(db)
        self.store.connect()

    def set(self, key: str, value: Any) -> None:
        self.store.set(key, value)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def release(self) -> None:
        self.store.disconnect()


def long_lived(db: str, name: str, threads: int, most: int, pause: float, out: Output,
               stop: threading.Event | None = None) -> None:
    """Keep one store open; ``threads`` writers and a reader until ``stop`` is set.

    Each writer handles at most ``most`` keys.
    """
    store = SqliteStore(db)
    store.connect()
    shared = _Shared(store)
    stop = stop or threading.Event()
    first = threading.Event()
    problems: list[str] = []

    def writer(t: int) -> None:
        for i in range(most):
            if stop.is_set():
                return
            run_key(shared, f"{name}/t{t}/k{i:05d}", i, out)
            first.set()
            stop.wait(pause)  # a rate limit, not a wait for something

    def reader() -> None:
        # What the app's other threads do meanwhile: list, query, read.
        while not stop.is_set():
            try:
                for entry in store.list_dir(f"{name}/t0/"):
                    if not entry.is_dir:
                        store.get_metadata(entry.key)
                list(store.query_keys(writer=name, v=2))
            except StoreKeyError:
                pass  # deleted by its writer between the listing and the read
            except StoreError as exc:
                problems.append(str(exc))
            if stop.wait(0.01):
                return

    # The thread that connected writes too, as the app's does: its connection
    # is the one set up by the connect.
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(1, threads)]
    workers.append(threading.Thread(target=reader))
    for w in workers:
        w.start()

    def announce() -> None:
        first.wait()
        out.line("started")

    threading.Thread(target=announce, daemon=True).start()
    writer(0)
    for w in workers[:-1]:
        w.join()
    stop.set()
    workers[-1].join()
    for problem in problems[:5]:
        out.line(f"error reader {problem}")
    store.disconnect()


def short_lived(db: str, name: str, count: int, out: Output) -> None:
    """Open, write one key, close: ``count`` times."""
    for i in range(count):
        run_key(lambda: _OneShot(db), f"{name}/k{i:05d}", i, out)


def main(argv: list[str]) -> int:
    out = Output()
    mode, db, name = argv[1], argv[2], argv[3]
    if mode == "long":
        stop = threading.Event()

        def watch_stdin() -> None:
            sys.stdin.read()  # returns when the parent closes our stdin
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        long_lived(db, name, int(argv[4]), int(argv[5]), int(argv[6]) / 1000, out, stop)
    else:
        short_lived(db, name, int(argv[4]), out)
    out.line("end")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
