#!/usr/bin/env python3
"""Long run of the crash-safety harness: many SIGKILLed pushes, pulls, imports and writers.

Runs the trials of ``tests/reliability/crash_trials.py`` (the same logic as
``tests/reliability/test_crash_safety.py``, which runs only a few) and prints,
per scenario, the trials, how many were killed mid-way, the failures, the
files the killed children left (all removed again at the next connect) and
the orphaned blobs (removed by ``collect_garbage``)::

    python tools/crash_harness.py --trials 30
    python tools/crash_harness.py --trials 100 --scenario import-into-fs --seed 42
    python tools/crash_harness.py --trials 50 --scenario two-writers-sqlite

``two-writers-sqlite`` runs two writers on one SQLite store file at once (one
keeping the store open, one opening and closing it per operation) and kills
one of them: everything either acknowledged before the kill must be there.

Exit status 1 if any trial failed; failed trial folders are kept with
``--keep-failed``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
if not (ROOT / "storegui").is_dir():  # pragma: no cover - run from an odd place
    raise SystemExit(f"{ROOT} is not a storegui checkout")
sys.path.insert(0, str(ROOT))

from reliability.child_processes import ChildPool  # noqa: E402
from reliability.crash_trials import (  # noqa: E402
    CRASH_POINT_CASES,
    SCENARIOS,
    Payloads,
    run_crash_point,
    run_scenario,
    scenario_named,
)


def main(argv: list[str] | None = None) -> int:
    """Run the harness; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20,
                        help="killed trials per scenario (default 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the kill delays (default: random, printed)")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="run only this scenario (repeatable)")
    parser.add_argument("--crash-points", type=int, default=1, metavar="N",
                        help="trials per deterministic crash point (default 1; 0: none)")
    parser.add_argument("--workdir", default=None, help="folder for the trial stores")
    parser.add_argument("--keep-failed", action="store_true",
                        help="keep the folders of failed trials for inspection")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    scenarios = [scenario_named(n) for n in args.scenario] if args.scenario else SCENARIOS
    workdir = args.workdir or tempfile.mkdtemp(prefix="storegui-crash-")
    os.makedirs(workdir, exist_ok=True)
    print(f"seed {seed}, {args.trials} trials per scenario (+1 uninterrupted run per 10), "
          f"stores under {workdir}", flush=True)
    payloads = Payloads()
    pool = ChildPool()
    failures = trials = killed = finished = 0
    began = time.monotonic()
    try:
        for index, scenario in enumerate(scenarios):
            summary = run_scenario(scenario, args.trials, seed + index, workdir, payloads, pool,
                                   keep_failed=args.keep_failed)
            print(summary.line(), flush=True)
            for result in summary.failures:
                when = "uninterrupted" if result.delay is None else f"kill at {result.delay:.3f} s"
                for problem in result.problems:
                    print(f"    FAILED ({when}, {result.folder}): {problem}", flush=True)
            trials += len(summary.results)
            killed += summary.killed
            finished += summary.finished
            failures += len(summary.failures)
        names = {s.name for s in scenarios}
        for name, point in CRASH_POINT_CASES:
            if name not in names:
                continue
            bad = 0
            for n in range(args.crash_points):
                result = run_crash_point(scenario_named(name), point, workdir, pool, payloads, n)
                trials += 1
                killed += result.killed
                if result.problems or not result.killed:
                    bad += 1
                    for problem in result.problems:
                        print(f"    FAILED ({result.folder}): {problem}", flush=True)
                else:
                    shutil.rmtree(result.folder, ignore_errors=True)
            failures += bad
            if args.crash_points:
                print(f"{name + ' @ ' + point:58} trials {args.crash_points:4}  "
                      f"failures {bad:3}", flush=True)
    finally:
        pool.close()
        if not args.workdir and not (args.keep_failed and failures):
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"total: {trials} trials ({killed} killed mid-way or at a crash point, {finished} "
          f"finished before the kill), {failures} failures, {time.monotonic() - began:.0f} s",
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
