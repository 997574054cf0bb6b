"""The key tree at scale: a million keys, a folder of 100,000 (issue 6, targets 1 and 5).

A workspace whose backing SqliteStore holds ``--keys`` keys
``projN/runN/sampleN/fileN.bin`` (one folder, ``proj0/run0/sample0/``, with
``--big`` files, the rest 100 files per sample), and whose mount store (an
SqliteStore mounted at the top) holds ``--mount-keys`` more, in the big
folder: half shadow backing keys, half are new. A child process runs the real
MainWindow (offscreen Qt, the app's stylesheet) and measures:

- creating the window until its first level is shown (target 0.3 s);
- expanding the big folder until its first rows are painted (target 0.2 s),
  and until its whole listing is in (no target: the GUI must stay responsive);
- then browsing: paging down and up the big folder, sorting it by size and
  back, filtering the loaded keys, revealing a key near its end, opening a
  small folder, refreshing everything;
- the longest event-loop stall through all that, from a 5 ms timer measuring
  its own lateness (target 50 ms; the window's construction before its event
  loop runs is counted in the first figure instead);
- the peak resident memory of the whole app process (``ru_maxrss``) after
  browsing (target 250 MB).

Our side runs ``--rounds`` times, each in a fresh process (timers on a busy
2-core machine are noisy): times and the stall are the median of the
rounds (each round's figure is in the notes), memory the largest.

Reference, in another child process of the same run: the eager way, a
QStandardItemModel built from every key of the same workspace (one item per
key and folder) and shown in a QTreeView: time until its first level shows
(the same event loop stall), and its peak memory.

The fixture (about 100 MB for 1,000,000 keys) is built once, with
``multiset`` in transactions of 50,000 keys, and cached under ``--cache-dir``
in a folder named by its sizes.

Run alone: ``python -m benchmarks.bench_tree`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.harness import Row, add_common_arguments, limit_row, scratch_dir, standalone

NAME = "tree"
SMOKE_ARGS = ["--keys", "5000", "--big", "2000", "--mount-keys", "200", "--no-cache",
              "--rounds", "1"]

FIRST_LEVEL_LIMIT_S = 0.3
FIRST_ROWS_LIMIT_S = 0.2
STALL_LIMIT_MS = 50.0
MEMORY_LIMIT_MB = 250.0
BUILD_BATCH = 50_000
FIXTURE_VERSION = 1
BIG = "proj0/run0/sample0/"
SMALL = "proj1/run0/sample0/"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments: sizes, where the fixture is cached."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_tree",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=1_000_000,
                   help="keys in the backing store (default 1000000)")
    p.add_argument("--big", type=int, default=100_000,
                   help=f"backing keys directly in {BIG} (default 100000)")
    p.add_argument("--mount-keys", type=int, default=10_000,
                   help="keys in the mount store, all in the big folder (default 10000)")
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(),
                                                       "storegui-bench-cache"),
                   help="where the fixture is kept between runs (default: in the temp folder)")
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="build the fixture in the scratch folder and remove it afterwards")
    p.add_argument("--dir", default=None,
                   help="folder for scratch files (default: the temp folder; removed afterwards)")
    p.add_argument("--rounds", type=int, default=3,
                   help="runs of the app, each in a fresh process (median; default 3)")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the eager QStandardItemModel reference")
    p.add_argument("--profile", metavar="FILE",
                   help="profile the app's browsing with pyinstrument, text report to FILE")
    p.add_argument("--child", choices=["ours", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--fixture", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    add_common_arguments(p)
    return p


# ---------------------------------------------------------------------- the fixture


def fixture_keys(keys: int, big: int) -> list[str]:
    """The backing store's keys: ``big`` in the big folder, the rest 100 per sample."""
    out = [f"{BIG}file{i}.bin" for i in range(min(big, keys))]
    rest = keys - len(out)
    n = 0
    project = 1
    while n < rest:
        for run in range(10):
            for sample in range(100):
                for f in range(100):
                    if n >= rest:
                        return out
                    out.append(f"proj{project}/run{run}/sample{sample}/file{f}.bin")
                    n += 1
        project += 1
    return out


def mount_keys(count: int, big: int) -> list[str]:
    """The mount store's keys: half shadow the big folder's last keys, half are new there."""
    half = count // 2
    return [f"{BIG}file{i}.bin" for i in range(max(0, big - half), big - half + count)]


def _fill(path: str, keys: list[str], payload: bytes) -> None:
    from storegui.stores.sqlite.store import SqliteStore

    store = SqliteStore(path)
    try:
        for start in range(0, len(keys), BUILD_BATCH):
            part = keys[start:start + BUILD_BATCH]
            store.multiset(part, [(io.BytesIO(payload), {}) for _ in part])
    finally:
        store.disconnect()


def fixture(args: argparse.Namespace, scratch: str) -> tuple[str, float | None]:
    """The folder holding ``backing.db`` and ``mount.db``; seconds spent building (None: cached)."""
    name = f"tree-v{FIXTURE_VERSION}-{args.keys}-{args.big}-{args.mount_keys}"
    folder = os.path.join(args.cache_dir if args.cache else scratch, name)
    done = os.path.join(folder, "complete")
    if os.path.exists(done):
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    started = time.perf_counter()
    _fill(os.path.join(folder, "backing.db"), fixture_keys(args.keys, args.big), b"backing data")
    _fill(os.path.join(folder, "mount.db"), mount_keys(args.mount_keys, args.big),
          b"mount data, longer")
    with open(done, "w") as f:
        f.write("built\n")
    return folder, time.perf_counter() - started


# ---------------------------------------------------------------------- child processes


def _child(kind: str, args: argparse.Namespace, folder: str, scratch: str,
           round_: int = 0) -> dict:
    """Run one side in a fresh Python process (its own memory figures); its results."""
    out = os.path.join(scratch, f"{kind}-{round_}.json")
    home = os.path.join(scratch, f"home-{kind}")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")
    env["HOME"] = home
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = os.path.join(home, var.lower())
    command = [sys.executable, "-m", "benchmarks.bench_tree", "--child", kind,
               "--fixture", folder, "--out", out, "--keys", str(args.keys), "--big",
               str(args.big), "--mount-keys", str(args.mount_keys)]
    if args.profile and kind == "ours" and round_ == 0:
        command += ["--profile", os.path.abspath(args.profile)]
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"the {kind} side failed (exit status {done.returncode}):\n"
                           + done.stderr[-3000:])
    with open(out) as f:
        return json.load(f)


def child_main(args: argparse.Namespace) -> int:
    """The body of a child process: run one side, write its results as JSON."""
    from benchmarks import tree_sides  # Qt is imported in the child processes only

    runner = tree_sides.run_ours if args.child == "ours" else tree_sides.run_reference
    result = runner(args.fixture, BIG, SMALL, args.big, args.mount_keys, args.profile)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


# ---------------------------------------------------------------------- the table


def _median_run(runs: list[dict]) -> dict:
    """One run's worth of figures: the median of the rounds (the largest memory)."""
    out = dict(runs[-1])
    for name in ("first_level_s", "first_rows_s", "loaded_s", "max_stall_ms"):
        out[name] = statistics.median(r[name] for r in runs)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["max_view_rows"] = max(r["max_view_rows"] for r in runs)
    out["phase_stalls_ms"] = {step: statistics.median(r["phase_stalls_ms"].get(step, 0.0)
                                                      for r in runs)
                              for step in runs[0]["phase_stalls_ms"]}
    return out


def _rows(args: argparse.Namespace, runs: list[dict], ref: dict | None,
          built: float | None) -> list[Row]:
    ours = _median_run(runs)
    children = ours["big_rows"]
    total = args.keys + args.mount_keys // 2
    ref_level = f"{ref['first_level_s']:.2f} s (eager QStandardItemModel)" if ref else "-"
    ref_mb = f"{ref['peak_rss_mb']:.0f} MB (eager QStandardItemModel)" if ref else "-"
    ref_stall = f"{ref['max_stall_ms']:.0f} ms (eager build)" if ref else "-"
    rounds = f"median of {len(runs)} runs" if len(runs) > 1 else "1 run"

    def each(name: str, scale: float = 1.0, fmt: str = "{:.0f}") -> str:
        return ", ".join(fmt.format(r[name] * scale) for r in runs)

    phases = ", ".join(f"{name} {ms:.0f}" for name, ms in ours["phase_stalls_ms"].items())
    rows = [
        limit_row(f"first level shown after creating the window ({total:,} keys)",
                  ours["first_level_s"], "s", FIRST_LEVEL_LIMIT_S, reference=ref_level,
                  ratio=ref["first_level_s"] / ours["first_level_s"] if ref else None,
                  digits=3, note=f"{rounds}, ms: {each('first_level_s', 1000)}"),
        limit_row(f"first rows of a {children:,}-child folder painted after expanding it",
                  ours["first_rows_s"], "s", FIRST_ROWS_LIMIT_S, digits=3,
                  note=f"{rounds}, ms: {each('first_rows_s', 1000)}; its whole listing was in "
                       f"after {ours['loaded_s']:.2f} s, the GUI running meanwhile"),
        limit_row("longest event-loop stall while opening and browsing (5 ms timer)",
                  ours["max_stall_ms"], "ms", STALL_LIMIT_MS, reference=ref_stall,
                  ratio=ref["max_stall_ms"] / ours["max_stall_ms"] if ref else None,
                  digits=0, note=f"{rounds}, ms: {each('max_stall_ms')}; worst per step "
                                 f"({'median' if len(runs) > 1 else 'ms'}): {phases}"),
        limit_row("peak memory of the app after browsing (ru_maxrss)", ours["peak_rss_mb"],
                  "MB", MEMORY_LIMIT_MB, reference=ref_mb,
                  ratio=ref["peak_rss_mb"] / ours["peak_rss_mb"] if ref else None, digits=0,
                  note=f"largest of {len(runs)}; {ours['loaded_nodes']:,} tree nodes loaded; "
                       f"the view held at most {ours['max_view_rows']:,} rows of the big folder"),
    ]
    if built is not None:
        kept = ", cached for later runs" if args.cache else ""
        rows.append(limit_row(f"building the fixture ({args.keys:,} + {args.mount_keys:,} "
                              f"keys{kept})", built, "s", None))
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    """Build (or reuse) the fixture, run both sides in child processes; the table rows."""
    if args.child:
        raise SystemExit("--child is for the benchmark's own child processes")
    if args.big > args.keys or args.mount_keys > 2 * args.big:
        raise SystemExit("--big must be at most --keys, and --mount-keys at most 2 x --big")
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    with scratch_dir(args.dir, 0 if args.cache else 120 * args.keys) as scratch:
        folder, built = fixture(args, scratch)
        runs = [_child("ours", args, folder, scratch)]
        ref = _child("reference", args, folder, scratch) if args.reference else None
        runs += [_child("ours", args, folder, scratch, n) for n in range(1, args.rounds)]
    return _rows(args, runs, ref, built)


def main(argv: list[str] | None = None) -> int:
    """Run alone (or, with --child, as one side of the benchmark)."""
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args)
    return standalone(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
