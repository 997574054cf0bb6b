"""Run every benchmark and print one table: figure, ours, reference, ratio, target, pass.

Usage (from the repository root, after ``python3 -m pip install .``)::

    python3 -m benchmarks.run_all                      # default sizes: a few minutes
    python3 -m benchmarks.run_all --only streaming --args streaming="--size 4GiB --rounds 1"
    python3 -m benchmarks.run_all --smoke              # tiny sizes, seconds: do they run?
    python3 -m benchmarks.run_all --markdown results.md

The benchmarks are the modules ``benchmarks/bench_*.py`` (see
:mod:`benchmarks.harness` for what one provides); a new one is picked up
without changes here. Each runs in its own Python process, one after the
other, so that one's memory and caches do not colour the next one's figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import ModuleType

from benchmarks import harness

#: Modules run first, in this order; any other bench_* module follows, by name. The
#: small-key figures come first: right after gigabytes were written and deleted, this VM
#: runs them about a third slower (the disk and the memory allocator are still settling).
ORDER = ("bench_small_keys", "bench_streaming")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def discover() -> list[ModuleType]:
    """Every benchmark module in this package, in run order."""
    import benchmarks

    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                   if m.name.startswith("bench_"))
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    modules = [importlib.import_module(f"benchmarks.{n}") for n in names]
    for module in modules:
        for attr in ("NAME", "build_parser", "run", "SMOKE_ARGS"):
            if not hasattr(module, attr):
                raise SystemExit(f"{module.__name__} has no {attr}; see benchmarks/harness.py")
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The command line of run_all."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_all",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="",
                   help="comma-separated benchmark names to run (default: all)")
    p.add_argument("--args", action="append", default=[], metavar='NAME="ARGS"',
                   help='arguments for one benchmark, e.g. streaming="--size 4GiB" (repeatable)')
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes (each benchmark's SMOKE_ARGS): seconds, not minutes")
    p.add_argument("--dir", default=None,
                   help="folder for the benchmarks' files (default: the temp folder)")
    p.add_argument("--in-process", action="store_true",
                   help="run the benchmarks in this process instead of one process each")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the machine, the command and the table to FILE")
    p.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 if any target is missed")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p


def module_args(module: ModuleType, options: argparse.Namespace) -> list[str]:
    """The arguments one benchmark gets from the run_all command line."""
    args: list[str] = list(module.SMOKE_ARGS) if options.smoke else []
    for item in options.args:
        name, _, text = item.partition("=")
        if name.strip() in (module.NAME, module.__name__.rsplit(".", 1)[-1]):
            args += shlex.split(text)
    accepts_dir = "--dir" in module.build_parser()._option_string_actions
    if options.dir and accepts_dir and "--dir" not in args:
        args += ["--dir", options.dir]
    return args


def run_module(module: ModuleType, args: list[str], in_process: bool) -> list[harness.Row]:
    """Run one benchmark; its rows (a row saying it failed, if it crashed)."""
    if in_process:
        return module.run(module.build_parser().parse_args(args))
    fd, out = tempfile.mkstemp(prefix="storegui-bench-", suffix=".json")
    os.close(fd)
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", module.__name__, *args, "--json", out]
        done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        if os.path.getsize(out) == 0:  # no rows written: it failed (its error is on stderr)
            return [harness.Row(f"{module.NAME}: the benchmark failed", "-", "-", None, "runs",
                                False, f"exit status {done.returncode}; run it alone: "
                                + " ".join(shlex.quote(c) for c in command[:-2]))]
        with open(out) as f:
            return harness.rows_from_json(json.load(f))
    finally:
        os.unlink(out)


def markdown_report(rows: Sequence[harness.Row], machine: dict[str, str], command: str,
                    seconds: float) -> str:
    """The machine, the command and the table, as Markdown."""
    lines = ["Command:", "", "```sh", command, "```", "",
             f"Ran on {time.strftime('%Y-%m-%d %H:%M %Z')} in {seconds / 60:.1f} min.", "",
             "| machine | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in machine.items()]
    lines += ["", harness.format_table(rows), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table. Exit status 1 only with --strict and a miss."""
    options = build_parser().parse_args(argv)
    modules = discover()
    if options.list:
        for module in modules:
            print(f"{module.NAME:14} {module.__name__}: {module.__doc__.splitlines()[0]}")
        return 0
    wanted = {n.strip() for n in options.only.split(",") if n.strip()}
    unknown = wanted - {m.NAME for m in modules}
    if unknown:
        raise SystemExit(f"no benchmark named {', '.join(sorted(unknown))}; see --list")
    if wanted:
        modules = [m for m in modules if m.NAME in wanted]
    machine = harness.machine_info(options.dir)
    for key, value in machine.items():
        print(f"{key:>22}: {value}", file=sys.stderr)
    started = time.perf_counter()
    rows: list[harness.Row] = []
    for module in modules:
        args = module_args(module, options)
        print(f"\n== {module.NAME} {' '.join(args)}", file=sys.stderr)
        t = time.perf_counter()
        rows += run_module(module, args, options.in_process)
        print(f"   ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(harness.format_table(rows))
    command = "python3 -m benchmarks.run_all " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if options.markdown:
        with open(options.markdown, "w") as f:
            f.write(markdown_report(rows, machine, command.strip(), seconds))
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"machine": machine, "rows": harness.rows_to_json(rows)}, f, indent=1)
    return 1 if options.strict and any(r.passed is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
