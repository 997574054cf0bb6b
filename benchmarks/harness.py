"""Shared parts of the benchmarks: result rows, the table, timing, memory, the machine.

A benchmark module (``benchmarks/bench_*.py``) exposes:

- ``NAME``: a short name (``"streaming"``)
- ``build_parser() -> argparse.ArgumentParser``: its sizes, with defaults that
  finish in a few minutes on a 2-core machine
- ``SMOKE_ARGS``: arguments for a tiny run (seconds; used by the test suite)
- ``run(args) -> list[Row]``

and ends with ``if __name__ == "__main__": sys.exit(standalone(sys.modules[__name__]))``
so that ``python -m benchmarks.bench_x --help`` runs it alone.
``benchmarks/run_all.py`` finds every such module and prints one table.

Rules the helpers here follow (they make figures comparable run to run):
the reference is measured in the same run and the two sides are interleaved
(A B, then B A, ...), the median of several rounds is reported after a
warm-up round, and peak memory growth is the rise of the process's peak
resident set (``VmHWM``, reset before each operation) over its size before.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MiB = 1 << 20
GiB = 1 << 30

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": MiB, "mb": 10**6,
          "mib": MiB, "g": GiB, "gb": 10**9, "gib": GiB}


def parse_size(text: str) -> int:
    """Bytes from ``"1GiB"``, ``"64MiB"``, ``"4096"``, ``"1.5g"`` (binary units for k/m/g).

    Raises
    ------
    argparse.ArgumentTypeError
        If the text is not a size.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1GiB, 64MiB or 4096)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_size(n: float) -> str:
    """``1 GiB``, ``64 MiB``, ``512 B``."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


# ---------------------------------------------------------------------- rows and the table


@dataclass
class Row:
    """One line of the results table.

    ``ours`` and ``reference`` are display texts (value and unit); ``ratio``
    is ours over the reference, oriented so that higher is better (None when
    no ratio makes sense); ``passed`` is None for a figure with no target.
    """

    figure: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    passed: bool | None
    note: str = ""


def throughput_row(figure: str, nbytes: int, ours_s: float, ref_s: float, ref_name: str,
                   min_ratio: float | None, note: str = "") -> Row:
    """A row comparing two transfer times of ``nbytes`` (ratio = reference time / ours)."""
    ratio = ref_s / ours_s if ours_s > 0 else float("inf")
    return Row(
        figure,
        f"{ours_s:.2f} s ({nbytes / MiB / ours_s:.0f} MiB/s)" if ours_s > 0 else "0 s",
        f"{ref_s:.2f} s ({ref_name})",
        ratio,
        f">= {min_ratio:g}x" if min_ratio is not None else "-",
        None if min_ratio is None else ratio >= min_ratio,
        note,
    )


def limit_row(figure: str, value: float, unit: str, limit: float | None, reference: str = "-",
              ratio: float | None = None, note: str = "", digits: int = 1) -> Row:
    """A row for a figure that must stay at or below ``limit`` (time, memory)."""
    return Row(figure, f"{value:.{digits}f} {unit}", reference, ratio,
               f"<= {limit:g} {unit}" if limit is not None else "-",
               None if limit is None else value <= limit, note)


def rate_row(figure: str, rate: float, unit: str, minimum: float | None, reference: str = "-",
             ratio: float | None = None, note: str = "") -> Row:
    """A row for a rate that must reach ``minimum`` (keys/s)."""
    return Row(figure, f"{rate:,.0f} {unit}", reference, ratio,
               f">= {minimum:,.0f} {unit}" if minimum is not None else "-",
               None if minimum is None else rate >= minimum, note)


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else ("pass" if passed else "FAIL")


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (readable as plain text too)."""
    head = ["figure", "ours", "reference", "ratio", "target", "pass"]
    body = [[r.figure, r.ours, r.reference,
             "-" if r.ratio is None else f"{r.ratio:.2f}x", r.target, _verdict(r.passed)]
            for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    notes = [f"- {r.figure}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def rows_to_json(rows: Sequence[Row]) -> list[dict]:
    """Rows as plain dictionaries (for ``--json``)."""
    return [asdict(r) for r in rows]


def rows_from_json(items: Sequence[dict]) -> list[Row]:
    """The inverse of :func:`rows_to_json`."""
    return [Row(**item) for item in items]


# ---------------------------------------------------------------------- timing and memory


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak resident size (Linux: ``/proc/self/clear_refs``); whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measurement:
    """Wall time of one call, and how far its peak resident memory rose above the start."""

    seconds: float
    peak_growth: int | None  # bytes; None where the platform cannot tell
    result: Any = None


def measure(fn: Callable[[], Any]) -> Measurement:
    """Run ``fn()`` once: its wall time and peak memory growth (bytes).

    On Linux the peak (``VmHWM``) is reset first, so the growth is exact
    even after earlier, larger operations; elsewhere it falls back to
    ``ru_maxrss``, which only shows growth beyond the process's earlier peak.
    """
    gc.collect()
    exact = _reset_peak()
    before = _status_kib("VmRSS") if exact else None
    if before is None:
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        exact = False
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if exact:
        peak = _status_kib("VmHWM")
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    growth = None if peak is None else max(0, peak - before) * 1024
    return Measurement(seconds, growth, result)


def interleave(sides: dict[str, Callable[[int], Any]], rounds: int, warmup: int = 1,
               before_each: Callable[[], None] | None = None) -> dict[str, list[Measurement]]:
    """Run each side once per round, alternating which goes first; measurements per side.

    ``sides`` maps a name to ``fn(round_number)``. The ``warmup`` first
    rounds run but are not recorded; ``before_each()`` runs (untimed) before
    every call, e.g. to flush dirty pages to disk.
    """
    names = list(sides)
    out: dict[str, list[Measurement]] = {name: [] for name in names}
    for n in range(warmup + rounds):
        order = names if n % 2 == 0 else names[::-1]
        for name in order:
            if before_each is not None:
                before_each()
            m = measure(lambda name=name, n=n: sides[name](n))
            if n >= warmup:
                out[name].append(m)
    return out


def median_seconds(ms: Sequence[Measurement]) -> float:
    """The median wall time of some measurements."""
    return statistics.median(m.seconds for m in ms)


def max_growth(ms: Sequence[Measurement]) -> int | None:
    """The largest peak memory growth of some measurements (None if unknown)."""
    known = [m.peak_growth for m in ms if m.peak_growth is not None]
    return max(known) if known else None


def flush_disk() -> None:
    """Write dirty pages out (``sync``) so one run's writeback does not slow the next."""
    if hasattr(os, "sync"):
        os.sync()


def _disk_busy() -> tuple[int, int]:
    """(KiB dirty or under writeback, block requests in flight) for the whole machine (Linux)."""
    pending = 0
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(("Dirty:", "Writeback:")):
                    pending += int(line.split()[1])
    in_flight = 0
    with contextlib.suppress(OSError):
        for name in os.listdir("/sys/block"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/sys/block/{name}/stat") as f:
                    in_flight += int(f.read().split()[8])
    return pending, in_flight


def quiesce(timeout: float = 15.0) -> float:
    """``sync``, then wait until the disk is idle (no writeback, nothing in flight).

    Deleting a large file keeps the disk busy after the call returns
    (freeing and discarding its blocks), and writeback of one copy would
    land in the next one's time: a copy timed right after either runs
    slower. Returns the seconds waited (at most ``timeout``).
    """
    start = time.perf_counter()
    flush_disk()
    idle = 0
    while time.perf_counter() - start < timeout:
        pending, in_flight = _disk_busy()
        idle = idle + 1 if pending < 1024 and in_flight == 0 else 0
        if idle >= 3:
            break
        time.sleep(0.05)
    return time.perf_counter() - start


# ---------------------------------------------------------------------- scratch space


@contextlib.contextmanager
def scratch_dir(parent: str | None, need_bytes: int = 0) -> Iterator[str]:
    """A fresh folder for one benchmark's files, removed afterwards.

    Raises
    ------
    SystemExit
        If the filesystem has less than ``need_bytes`` free (plus 1 GiB).
    """
    parent = parent or tempfile.gettempdir()
    free = shutil.disk_usage(parent).free
    if need_bytes and free < need_bytes + GiB:
        raise SystemExit(f"{parent} has {format_size(free)} free; this benchmark needs about "
                         f"{format_size(need_bytes + GiB)} (pass --dir elsewhere, or a smaller "
                         "--size)")
    path = tempfile.mkdtemp(prefix="storegui-bench-", dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_random_file(path: str, size: int) -> None:
    """A file of ``size`` random bytes (incompressible, like most media)."""
    block = 16 * MiB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


# ---------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return format_size(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return "unknown"


def _filesystem(path: str) -> str:
    """Filesystem type and block device of the mount that holds ``path`` (Linux)."""
    try:
        best = ("", "", "")
        real = os.path.realpath(path)
        with open("/proc/mounts") as f:
            for line in f:
                device, mount_point, fstype = line.split()[:3]
                if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) \
                        and len(mount_point) >= len(best[1]):
                    best = (device, mount_point, fstype)
    except OSError:
        return "unknown"
    device, mount_point, fstype = best
    if not device:
        return "unknown"
    kind = ""
    name = os.path.basename(device)
    rotational = f"/sys/block/{re.sub(r'p?[0-9]+$', '', name)}/queue/rotational"
    with contextlib.suppress(OSError):
        with open(rotational) as f:
            kind = ", reports rotational" if f.read().strip() == "1" else ", non-rotational"
    return f"{fstype} on {device} (mounted at {mount_point}{kind})"


def machine_info(path: str | None = None) -> dict[str, str]:
    """The facts docs/benchmarks.md reports about the machine a run was on."""
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpus": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": _memory_total(),
        "disk": _filesystem(path or tempfile.gettempdir()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load average at start": load,
    }


# ---------------------------------------------------------------------- running one module


#: The local store kinds the streaming and drop benchmarks use, by their short names.
KIND_NAMES = {"fs": "FileSystemStore", "sqlite": "SqliteStore"}


def add_round_arguments(parser: argparse.ArgumentParser, what: str = "rounds",
                        timed: str = "timed call") -> None:
    """``--rounds``, ``--warmup`` and ``--no-flush``, as the interleaved benchmarks take them."""
    parser.add_argument("--rounds", type=int, default=3,
                        help=f"measured {what} (median; default 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unrecorded first rounds (default 1)")
    parser.add_argument("--no-flush", dest="flush", action="store_false",
                        help=f"do not sync and wait for an idle disk before each {timed} "
                             "(quicker, noisier)")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json`` (write the rows to a file) for every benchmark module."""
    parser.add_argument("--json", metavar="FILE",
                        help="also write the result rows to FILE as JSON")


def standalone(module: Any, argv: Sequence[str] | None = None) -> int:
    """Run one benchmark module from the command line: print its table; 1 if a target failed."""
    parser = module.build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = module.run(args)
    print(format_table(rows))
    print(f"\n({module.NAME}: {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(rows_to_json(rows), f, indent=1)
    return 1 if any(r.passed is False for r in rows) else 0
