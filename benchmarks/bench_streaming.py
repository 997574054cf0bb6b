"""Streaming throughput: import, export, push and pull of one large value (issue 6, target 2).

Each round moves one value through a MountedStore the way the app does:
``from_file`` of a file into the mount store (import), ``to_file`` back out
(export), ``push`` to the backing store, ``pull`` back into the mount store.
The mount store is a FileSystemStore or an SqliteStore; the backing store is
a FileSystemStore. Each operation is timed against ``shutil.copyfileobj`` of
the same file on the same filesystem, run right before or after it (the
order alternates by round); after a warm-up round, ours is the median of
the rounds and the reference the median of all the copyfileobj runs of that
store kind. Before every timed call the disk is synced and left to go idle
(untimed), so that one copy's writeback, or the freeing of a deleted value,
does not land in the next one's time.

Targets: FileSystemStore paths at least 0.9x copyfileobj, paths into and out
of SqliteStore at least 0.5x; peak memory growth at most 100 MB per
operation, whatever the size. The stores run with their default
``sync="normal"`` (writes reach the disk through the OS's writeback, as
copyfileobj's do; see storegui/stores/base.py). Push and pull between two
stores on one filesystem share the value's file (a hard link).

Informational rows, each once per round against its own reference:

- ``import_file`` (what ``storegui put`` and a drop run: the metadata gets the
  sha256 of the bytes, computed while they stream) against the sha256 of the
  same file alone (hashlib over the file): hashing is its floor;
- a push across filesystems (a mount store on ``--cross-dir``, a tmpfs by
  default, into the backing store on disk: the bytes are copied and written
  to disk before the local copy goes) against copyfileobj + fsync.

Run alone: ``python -m benchmarks.bench_streaming --size 1GiB --rounds 3``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.harness import (
    KIND_NAMES,
    GiB,
    Measurement,
    MiB,
    Row,
    add_common_arguments,
    add_round_arguments,
    format_size,
    limit_row,
    max_growth,
    measure,
    median_seconds,
    parse_size,
    quiesce,
    scratch_dir,
    standalone,
    throughput_row,
    write_random_file,
)

NAME = "streaming"
SMOKE_ARGS = ["--size", "3MiB", "--rounds", "1", "--warmup", "0", "--no-flush"]

OPS = ("import", "export", "push", "pull")
KINDS = ("fs", "sqlite")
MEMORY_LIMIT_MB = 100.0
TARGETS = {"fs": 0.9, "sqlite": 0.5}
# What each operation moves, per mount store kind ("into"/"out of" SQLite for the sqlite kind).
DIRECTIONS = {
    ("fs", "import"): "file -> FileSystemStore",
    ("fs", "export"): "FileSystemStore -> file",
    ("fs", "push"): "FileSystemStore -> FileSystemStore (MountedStore.push)",
    ("fs", "pull"): "FileSystemStore -> FileSystemStore (MountedStore.pull)",
    ("sqlite", "import"): "file -> SqliteStore",
    ("sqlite", "export"): "SqliteStore -> file",
    ("sqlite", "push"): "SqliteStore -> FileSystemStore (MountedStore.push)",
    ("sqlite", "pull"): "FileSystemStore -> SqliteStore (MountedStore.pull)",
}
DEFAULT_CROSS_DIR = "/dev/shm"


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments: sizes, rounds, which stores and where."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_streaming",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=parse_size, default=GiB,
                   help="bytes in the value (default 1GiB; try 4GiB)")
    add_round_arguments(p)
    p.add_argument("--kinds", default=",".join(KINDS),
                   help="mount stores to test: fs, sqlite (default both)")
    p.add_argument("--dir", default=None,
                   help="folder for the stores and files (default: the temp folder)")
    p.add_argument("--cross-dir", default=DEFAULT_CROSS_DIR,
                   help="a folder on another filesystem for the cross-filesystem push "
                        f"(default {DEFAULT_CROSS_DIR}; '' to skip it)")
    p.add_argument("--buffer-size", type=parse_size, default=MiB,
                   help="buffer size passed to the store calls (default 1MiB)")
    p.add_argument("--verbose", action="store_true",
                   help="print every measurement (to stderr) as it is taken")
    add_common_arguments(p)
    return p


def _sha256_file(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _reference_copy(src: str, dst: str, fsync: bool) -> None:
    with open(src, "rb") as f, open(dst, "wb") as g:
        shutil.copyfileobj(f, g)
        if fsync:
            g.flush()
            os.fsync(g.fileno())


class _Chain:
    """One kind of mount store over a FileSystemStore backing store, and its four operations."""

    def __init__(self, kind: str, root: str, src: str, buffer_size: int) -> None:
        from storegui.stores.filesystem.store import FileSystemStore
        from storegui.stores.mounted.store import MountedStore
        from storegui.stores.sqlite.store import SqliteStore

        self.kind = kind
        self.root = root
        self.src = src
        self.buffer_size = buffer_size
        os.makedirs(os.path.join(root, "out"))
        backing = FileSystemStore(os.path.join(root, "backing"))
        if kind == "fs":
            mount: Any = FileSystemStore(os.path.join(root, "mount"))
        else:
            mount = SqliteStore(os.path.join(root, "mount.sqlite"))
        self.store = MountedStore("", mount, backing)
        self.store.connect()
        self.digest = _sha256_file(src)

    def key(self, n: int) -> str:
        return f"bench/value-{n}"

    def out(self, n: int, what: str) -> str:
        return os.path.join(self.root, "out", f"{what}-{n}")

    def operation(self, op: str) -> Callable[[int], Any]:
        from storegui.stores.importing import import_file

        store, bs = self.store, self.buffer_size
        if op == "import":
            return lambda n: store.from_file(self.key(n), self.src, {"name": "source.bin"},
                                             buffer_size=bs)
        if op == "import_file":
            return lambda n: import_file(store, self.key(n) + ".hashed", self.src,
                                         buffer_size=bs)
        if op == "export":
            return lambda n: store.to_file(self.key(n), self.out(n, "export"), buffer_size=bs)
        if op == "push":
            return lambda n: store.push(self.key(n), buffer_size=bs)
        if op == "pull":
            return lambda n: store.pull(self.key(n), buffer_size=bs)
        raise ValueError(op)

    def check(self, n: int, size: int) -> None:
        """After a round: the value made it through every step intact."""
        key = self.key(n)
        if self.store.origin(key) != "shadowing":
            raise AssertionError(f"{key} should be in both stores after push and pull")
        if os.path.getsize(self.out(n, "export")) != size:
            raise AssertionError("the exported file has the wrong size")
        if self.store.stat(key).size != size:
            raise AssertionError("the stored value has the wrong size")
        md = self.store.get_metadata(key + ".hashed")
        if md.get("size") != size or md.get("sha256") != self.digest:
            raise AssertionError(f"import_file's metadata says {md}")

    def cleanup(self, n: int) -> None:
        key = self.key(n)
        self.store.mount_store.delete(key)
        self.store.mount_store.delete(key + ".hashed")
        self.store.backing_store.delete(key)
        os.unlink(self.out(n, "export"))

    def close(self) -> None:
        self.store.disconnect()


def _run_kind(kind: str, args: argparse.Namespace, root: str, src: str,
              ref_times: dict[str, list[Measurement]],
              peaks: dict[str, list[Measurement]]) -> dict[str, list[Measurement]]:
    """Every round of one kind: ours and the copyfileobj reference, interleaved.

    Fills ``ref_times`` (per operation, recorded rounds) and ``peaks`` (per
    operation, every round); returns our measurements of the recorded rounds.
    """
    chain = _Chain(kind, os.path.join(root, kind), src, args.buffer_size)
    ours: dict[str, list[Measurement]] = {op: [] for op in OPS}
    refs = os.path.join(root, "ref")
    cross = _CrossPush(args, root, src) if kind == "fs" and _cross_ok(args) else None
    try:
        for n in range(args.warmup + args.rounds):
            recorded = n >= args.warmup
            for op in OPS:
                fn = chain.operation(op)
                ref_path = os.path.join(refs, f"{kind}-{op}-{n}")
                sides: list[tuple[str, Callable[[], Any]]] = [
                    ("ours", lambda fn=fn, n=n: fn(n)),
                    ("ref", lambda p=ref_path: _reference_copy(src, p, False)),
                ]
                for side, call in (sides if n % 2 == 0 else sides[::-1]):
                    if args.flush:
                        quiesce()
                    m = measure(call)
                    if args.verbose:
                        print(f"  {kind} {op} round {n} {side}: {m.seconds:.2f} s, "
                              f"{(m.peak_growth or 0) / 1e6:.1f} MB", file=sys.stderr)
                    if side == "ref":
                        os.unlink(ref_path)  # never written back: no disk work left behind
                        if recorded:
                            ref_times.setdefault(op, []).append(m)
                    else:
                        # Memory counts the warm-up round too: it is when caches fill.
                        peaks.setdefault(op, []).append(m)
                        if recorded:
                            ours[op].append(m)
            for what, prepare, call in _extras(chain, n, src, refs, cross):
                prepare()
                if args.flush:
                    quiesce()
                m = measure(call)
                if args.verbose:
                    print(f"  {kind} {what} round {n}: {m.seconds:.2f} s", file=sys.stderr)
                if recorded:
                    ref_times.setdefault(what, []).append(m)
            chain.check(n, args.size)
            chain.cleanup(n)
    finally:
        chain.close()
        if cross is not None:
            cross.close()
    return ours


def _extras(chain: _Chain, n: int, src: str, refs: str, cross: _CrossPush | None,
            ) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """The informational measurements of one round: (name, untimed preparation, timed call)."""
    durable = os.path.join(refs, f"durable-{n}")

    def durable_copy() -> None:
        _reference_copy(src, durable, True)
        os.unlink(durable)

    def nothing() -> None:
        pass

    calls: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("import_file", nothing, lambda: chain.operation("import_file")(n)),
        ("sha256", nothing, lambda: _sha256_file(src)),
    ]
    if cross is not None:
        pair = [("cross push", lambda: cross.prepare(n), lambda: cross.push(n)),
                ("durable", nothing, durable_copy)]
        calls += pair[::-1] if n % 2 else pair
    if n % 2:
        calls[:2] = calls[:2][::-1]
    return calls


def _cross_ok(args: argparse.Namespace) -> bool:
    where = args.cross_dir
    if not where or not os.path.isdir(where):
        return False
    try:
        return shutil.disk_usage(where).free > 2 * args.size + GiB
    except OSError:
        return False


class _CrossPush:
    """A mount FileSystemStore on another filesystem (``--cross-dir``) over a backing on disk."""

    def __init__(self, args: argparse.Namespace, root: str, src: str) -> None:
        import tempfile

        from storegui.stores.filesystem.store import FileSystemStore
        from storegui.stores.mounted.store import MountedStore

        self.tmp = tempfile.mkdtemp(prefix="storegui-bench-", dir=args.cross_dir)
        self.src = src
        self.store = MountedStore("", FileSystemStore(os.path.join(self.tmp, "mount")),
                                  FileSystemStore(os.path.join(root, "cross-backing")))
        self.store.connect()

    def prepare(self, n: int) -> None:
        """Put the value in the mount store (untimed); the previous round's pushed copy goes."""
        for key in self.store.backing_store.keys("cross/"):
            self.store.backing_store.delete(key)
        self.store.from_file(f"cross/value-{n}", self.src)

    def push(self, n: int) -> None:
        self.store.push(f"cross/value-{n}")

    def close(self) -> None:
        self.store.disconnect()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> list[Row]:
    """Run the rounds and return the table rows (see the module docstring)."""
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise SystemExit(f"unknown kind {kind!r}; use fs, sqlite")
    size = args.size
    # the source, a store copy, a backing copy, an export, a reference copy (+ SQLite's WAL)
    need = size * 6
    rows: list[Row] = []
    with scratch_dir(args.dir, need) as root:
        os.makedirs(os.path.join(root, "ref"))
        src = os.path.join(root, "source.bin")
        write_random_file(src, size)
        quiesce()
        label = format_size(size)
        for kind in kinds:
            ref_times: dict[str, list[Measurement]] = {}
            peaks: dict[str, list[Measurement]] = {}
            ours = _run_kind(kind, args, root, src, ref_times, peaks)
            durable_s = median_seconds(ref_times.get("durable") or [Measurement(0.0, None)])
            # One reference for the kind: the median of every copyfileobj run
            # interleaved with its operations (more samples: steadier on a noisy VM).
            ref_s = median_seconds([m for op in OPS for m in ref_times[op]])
            for op in OPS:
                rows.append(throughput_row(
                    f"{op} {label}: {DIRECTIONS[kind, op]}", size, median_seconds(ours[op]),
                    ref_s, "copyfileobj", TARGETS[kind]))
            rows.append(throughput_row(
                f"import_file {label} into {KIND_NAMES[kind]} (+ sha256 in the metadata)", size,
                median_seconds(ref_times["import_file"]), median_seconds(ref_times["sha256"]),
                "sha256 of the file alone", None,
                note="the digest is computed while the bytes stream in; hashing is the floor"))
            if "cross push" in ref_times:
                rows.append(throughput_row(
                    f"push {label} across filesystems (tmpfs mount -> FileSystemStore on disk)",
                    size, median_seconds(ref_times["cross push"]), durable_s,
                    "copyfileobj + fsync", None,
                    note="copied, then written to disk before the local copy is deleted"))
            growth = {op: max_growth(peaks[op]) for op in OPS}
            known = {op: g for op, g in growth.items() if g is not None}
            if known:
                worst = max(known, key=known.get)
                detail = ", ".join(f"{op} {g / 1e6:.1f}" for op, g in known.items())
                ref_growth = max(max_growth(ref_times[op]) or 0 for op in OPS)
                rows.append(limit_row(
                    f"peak memory growth, {label} through {KIND_NAMES[kind]} (worst: {worst})",
                    known[worst] / 1e6, "MB", MEMORY_LIMIT_MB,
                    reference=f"{ref_growth / 1e6:.1f} MB (copyfileobj)",
                    note=f"largest per operation over every round, warm-up included, MB: {detail}"))
    return rows


if __name__ == "__main__":
    sys.exit(standalone(sys.modules[__name__]))
