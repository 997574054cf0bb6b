"""Tiny runs of the benchmarks (issue 6): they run, their rows are well formed, the harness works.

The real benchmarks run with ``python -m benchmarks.run_all`` (minutes, not
part of the test suite); these use each module's SMOKE_ARGS (seconds).
"""

from __future__ import annotations

import argparse
import math

import pytest

from benchmarks import bench_small_keys, bench_streaming, harness, run_all


def _run(module, tmp_path, *extra):
    args = module.build_parser().parse_args([*module.SMOKE_ARGS, "--dir", str(tmp_path), *extra])
    return module.run(args)


def _check_rows(rows):
    assert rows
    for row in rows:
        assert row.figure and row.ours and row.reference and row.target
        assert row.ratio is None or (row.ratio > 0 and math.isfinite(row.ratio))
        assert row.passed in (True, False, None)
        assert (row.passed is None) == (row.target == "-")
    table = harness.format_table(rows)
    assert all(row.figure in table for row in rows)


def test_streaming_smoke(tmp_path):
    rows = _run(bench_streaming, tmp_path)
    _check_rows(rows)
    figures = [r.figure for r in rows]
    for op in bench_streaming.OPS:
        assert any(f.startswith(f"{op} 3 MiB: file") or f.startswith(f"{op} 3 MiB: ")
                   for f in figures), op
    memory = [r for r in rows if r.figure.startswith("peak memory growth")]
    assert len(memory) == 2 and all(r.passed for r in memory)  # 3 MiB can never need 100 MB
    assert list(tmp_path.iterdir()) == []  # its scratch folder is gone


def test_small_keys_smoke(tmp_path):
    rows = _run(bench_small_keys, tmp_path)
    _check_rows(rows)
    by_figure = {r.figure.split(" ")[0]: r for r in rows}
    assert {"multiset", "query_keys(group=g)", "query(group=g)", "first", "building"} \
        <= set(by_figure)
    assert "100 keys" in by_figure["query_keys(group=g)"].figure  # 10,000 keys, 100 groups
    assert list(tmp_path.iterdir()) == []


def test_the_runner_finds_every_benchmark_and_passes_arguments():
    modules = run_all.discover()
    names = [m.NAME for m in modules]
    assert names[:2] == ["small_keys", "streaming"]
    assert len(set(names)) == len(names)
    options = run_all.build_parser().parse_args(
        ["--smoke", "--dir", "/somewhere", "--args", "streaming=--rounds 2 --kinds fs"])
    args = run_all.module_args(bench_streaming, options)
    assert args == [*bench_streaming.SMOKE_ARGS, "--rounds", "2", "--kinds", "fs",
                    "--dir", "/somewhere"]
    parsed = bench_streaming.build_parser().parse_args(args)
    assert parsed.rounds == 2 and parsed.kinds == "fs" and parsed.dir == "/somewhere"
    assert run_all.module_args(bench_small_keys, options) == [*bench_small_keys.SMOKE_ARGS,
                                                               "--dir", "/somewhere"]


def test_the_runner_runs_a_module_in_its_own_process(tmp_path, capsys):
    args = [*bench_small_keys.SMOKE_ARGS, "--keys", "200", "--query-keys", "1000",
            "--dir", str(tmp_path)]
    rows = run_all.run_module(bench_small_keys, args, in_process=False)
    _check_rows(rows)
    assert not any("failed" in r.figure for r in rows)


def test_sizes_and_rows():
    assert harness.parse_size("1GiB") == 1 << 30
    assert harness.parse_size("64 MiB") == 64 << 20
    assert harness.parse_size("1.5k") == 1536
    assert harness.parse_size("4096") == 4096
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        harness.parse_size("lots")
    assert harness.format_size(1 << 30) == "1 GiB" and harness.format_size(3 << 20) == "3 MiB"
    fast = harness.throughput_row("copy", 1 << 30, 1.0, 2.0, "ref", 0.9)
    assert fast.ratio == 2.0 and fast.passed and fast.target == ">= 0.9x"
    slow = harness.throughput_row("copy", 1 << 30, 4.0, 2.0, "ref", 0.9)
    assert slow.ratio == 0.5 and slow.passed is False
    assert harness.limit_row("t", 120.0, "ms", 100).passed is False
    assert harness.rate_row("r", 60_000, "keys/s", 50_000).passed is True
    assert harness.rows_from_json(harness.rows_to_json([fast, slow])) == [fast, slow]
    table = harness.format_table([fast, slow])
    assert "| pass |" in table and "FAIL" in table and "2.00x" in table


def test_peak_memory_growth_is_measured_per_call():
    held = []
    m = harness.measure(lambda: held.append(bytearray(64 << 20)))
    assert m.peak_growth is None or m.peak_growth >= 60 << 20
    del held[:]
    # The peak is reset per call: a small call after a big one shows little growth.
    small = harness.measure(lambda: bytearray(1 << 20))
    if small.peak_growth is not None and m.peak_growth is not None:
        assert small.peak_growth < 32 << 20


def test_interleave_alternates_and_skips_the_warmup():
    order = []
    result = harness.interleave({"a": lambda n: order.append(("a", n)),
                                 "b": lambda n: order.append(("b", n))}, rounds=2, warmup=1)
    assert order == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert len(result["a"]) == len(result["b"]) == 2


def test_machine_info_names_the_facts_the_docs_report(tmp_path):
    info = harness.machine_info(str(tmp_path))
    for key in ("cpus", "cpu", "memory", "disk", "python", "sqlite"):
        assert info[key]
