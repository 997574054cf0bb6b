"""Crash safety: push, pull, import and writers killed with SIGKILL at random moments lose nothing.

A short run of the harness in :mod:`crash_trials` (a few trials per
scenario); ``tools/crash_harness.py --trials N`` runs the long version. The
kill delays come from a seed printed in every failure message; set
``STOREGUI_CRASH_SEED`` to reuse one.
"""

from __future__ import annotations

import os
import random

import pytest

from storegui.stores.filesystem.store import FileSystemStore
from storegui.stores.sqlite.store import SqliteStore

from .child_processes import ChildPool
from .crash_checks import Seen, fs_temp_files_before_connect
from .crash_trials import (
    CRASH_POINT_CASES,
    IMPORT_KEY,
    MOUNT_POINT,
    SCENARIOS,
    Payloads,
    Trial,
    new_trial,
    run_child,
    run_crash_point,
    run_scenario,
    run_trial,
    scenario_named,
)

TRIALS = 3
SEED = int(os.environ.get("STOREGUI_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))


@pytest.fixture(scope="module")
def pool():
    children = ChildPool()
    yield children
    children.close()


@pytest.fixture(scope="module")
def payloads():
    return Payloads()


def _report(problems: list[str], seed: int) -> str:
    return f"seed {seed} (STOREGUI_CRASH_SEED to rerun):\n" + "\n".join(problems)


ONE_PROCESS = [s for s in SCENARIOS if s.op != "share"]  # the two-writer one: see below


@pytest.mark.parametrize("scenario", ONE_PROCESS, ids=lambda s: s.name)
def test_an_operation_killed_at_random_moments_loses_nothing(scenario, tmp_path, pool, payloads):
    seed = SEED + SCENARIOS.index(scenario)
    summary = run_scenario(scenario, TRIALS, seed, str(tmp_path), payloads, pool)
    problems = [f"trial killed after {r.delay:.3f} s: {p}" if r.delay is not None
                else f"uninterrupted run: {p}" for r in summary.failures for p in r.problems]
    assert not problems, _report(problems, seed)
    assert len(summary.results) == TRIALS
    assert summary.duration > 0


@pytest.mark.parametrize(("name", "crash_at"), CRASH_POINT_CASES)
def test_a_crash_at_a_known_point_loses_nothing(name, crash_at, tmp_path, pool, payloads):
    # The moments between two steps, where a random kill rarely lands.
    result = run_crash_point(scenario_named(name), crash_at, str(tmp_path), pool, payloads)
    assert result.killed
    assert not result.problems, _report(result.problems, 0)
    if crash_at == "before-record-install":
        # the blob was moved in, its record never: space only, removed by collect_garbage
        assert result.orphan_blobs == 1


def test_two_writers_on_one_sqlite_store_one_killed_mid_way_lose_nothing(tmp_path, pool,
                                                                         payloads):
    """One quick trial of ``two-writers-sqlite``: timed uninterrupted, then killed half-way.

    Every operation the survivor acknowledged, and every one the killed writer
    acknowledged before the kill, is there; the store opens and passes its checks.
    """
    scenario = scenario_named("two-writers-sqlite")
    timed_trial = new_trial(scenario, str(tmp_path / "timed"), payloads, random.Random(SEED))
    os.makedirs(timed_trial.folder)
    timed = run_trial(timed_trial, pool, None)
    assert not timed.problems, _report(timed.problems, SEED)
    assert timed.elapsed is not None
    trial = new_trial(scenario, str(tmp_path / "killed"), payloads, random.Random(SEED))
    os.makedirs(trial.folder)
    assert trial.modes == timed_trial.modes  # the same seed: the same writer is killed
    result = run_trial(trial, pool, timed.elapsed / 2)
    assert not result.problems, _report(result.problems, SEED) + f" ({trial.modes})"
    if result.killed:
        every = len(trial.keys("victim"))
        assert 0 < len(trial.acks["victim"]) < every, "killed before any write, or after all"
    assert len(trial.acks["survivor"]) == len(trial.keys("survivor"))


def test_a_dead_import_is_rolled_back_at_the_next_connect(tmp_path, pool, payloads):
    """FileSystemStore: the value written without its digest vanishes at the next connect."""
    trial = Trial(scenario_named("import-into-fs"), str(tmp_path), payloads,
                  random.Random(0), "before-digest")
    trial.older = set()  # the key is new
    result = run_child(trial, pool, None)
    assert result.killed
    trash = os.path.join(trial.mount_path, ".storegui", "trash")
    assert len(os.listdir(trash)) == 1, "the dead transaction's undo folder is there"
    store = FileSystemStore(trial.mount_path, create=False)
    with store:  # no minute to wait: the journal says the transaction never committed
        assert not store.exists(IMPORT_KEY)
    assert os.listdir(trash) == []


def test_recovery_never_undoes_a_later_write_by_another_process(tmp_path, pool, payloads):
    trial = Trial(scenario_named("import-into-fs"), str(tmp_path), payloads,
                  random.Random(0), "before-digest")
    trial.older = {"data/a.bin"}
    trial.prepare()
    live = FileSystemStore(trial.mount_path, create=False)
    live.connect()  # connected before the crash, so it does not recover anything
    assert run_child(trial, pool, None).killed
    live.from_bytes(IMPORT_KEY, b"written after the crash", {"by": "live"})
    live.disconnect()
    store = FileSystemStore(trial.mount_path, create=False)
    with store:
        assert store.to_bytes(IMPORT_KEY) == b"written after the crash"
        assert store.get_metadata(IMPORT_KEY) == {"by": "live"}
    assert os.listdir(os.path.join(trial.mount_path, ".storegui", "trash")) == []


# ------------------------------------------------------------------ the checks catch damage


def test_the_checks_catch_a_partial_value(tmp_path, payloads):
    """A store that left half a value behind would fail the harness."""
    trial = Trial(scenario_named("push-sqlite-mount-fs-backing"), str(tmp_path), payloads,
                  random.Random(0))
    trial.older = set()
    trial.prepare()
    data, metadata = payloads.new["data/a.bin"]
    with FileSystemStore(trial.backing_path) as backing:
        backing.from_bytes(MOUNT_POINT + "data/a.bin", data[: len(data) // 2], metadata)
    problems, _, _ = trial.check(completed=False)
    assert any("data/a.bin" in p and "expected" in p for p in problems)


def test_the_checks_catch_a_lost_key_and_stray_keys(tmp_path, payloads):
    trial = Trial(scenario_named("push-fs-mount-sqlite-backing"), str(tmp_path), payloads,
                  random.Random(0))
    trial.older = set()
    trial.prepare()
    with FileSystemStore(trial.mount_path) as mount:
        mount.delete("data/b.bin")
    with SqliteStore(trial.backing_path) as backing:
        backing.from_bytes(MOUNT_POINT + "data/stray", b"x")
    problems, _, _ = trial.check(completed=False)
    assert any("intact in neither store" in p for p in problems)
    assert any("unexpected keys" in p for p in problems)


def test_the_checks_catch_a_temp_file_still_locked(tmp_path):
    import fcntl

    store = FileSystemStore(tmp_path / "s")
    store.connect()
    store.disconnect()
    tmp = tmp_path / "s" / ".storegui" / "tmp" / "blob-0.tmp"
    tmp.write_bytes(b"partial")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        count, problems = fs_temp_files_before_connect(str(tmp_path / "s"), "mount")
    finally:
        os.close(fd)
    assert count == 1 and problems


def test_values_compare_by_data_and_metadata():
    assert Seen.of(b"abc", {"a": 1}) == Seen.of(b"abc", {"a": 1})
    assert Seen.of(b"abc", {"a": 1}) != Seen.of(b"abd", {"a": 1})
    assert Seen.of(b"abc", {"a": 1}) != Seen.of(b"abc", {"a": 2})
