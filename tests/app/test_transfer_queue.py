"""The transfer queue and its panel: jobs a few at a time, bounded progress, cancel, retry."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from sample_stores import MOUNT_POINT, fill
from store_helpers import FullDisk, GatedBacking
from test_main_window import action, open_folder, origin, select

from storegui.app.dnd.dropped_files import ImportItem, import_large_file
from storegui.app.scheduling import FULL_COLLECTIONS, FullCollections, give_way
from storegui.app.transfers.panel import (
    ACTION,
    PROGRESS,
    RATE,
    STATE,
    ProgressRole,
    TransferPanel,
)
from storegui.app.transfers.queue import JobState, TransferQueue
from storegui.stores import FileSystemStore, MemoryStore, MountedStore
from storegui.stores.errors import TransferCancelled
from storegui.stores.transfer.streaming import copy_stream

# ---------------------------------------------------------------------- helpers


def gated(started: threading.Event, release: threading.Event, result=None):
    """A job function that says it started, then waits (bounded) for ``release``."""
    def fn(progress, cancel):
        progress(1, 10)
        started.set()
        release.wait(10)
        cancel.check()
        return result
    return fn


def click_action(qtbot, panel: TransferPanel, job) -> None:
    """Click the row's Cancel / Retry button, as a user does."""
    rect = panel.action_rect(job)
    assert rect.isValid()
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def push_in_window(qtbot, make_window, workspace, mount, backing, key):
    """A window over ``mount`` mounted on ``backing``, with ``key`` pushed: (window, its job)."""
    window = make_window(workspace, MountedStore(MOUNT_POINT, mount, backing))
    open_folder(qtbot, window, key.rsplit("/", 1)[0] + "/")
    select(qtbot, window, key)
    action(window, "push").trigger()
    return window, window.transfers.jobs[-1]


# ---------------------------------------------------------------------- the queue


def test_jobs_run_a_few_at_a_time_in_order_and_end_with_their_result(qtbot):
    queue = TransferQueue(concurrency=2)
    gates = [(threading.Event(), threading.Event()) for _ in range(3)]
    results = []
    jobs = [queue.submit(f"job {n}", gated(*gate, result=n), kind="push",
                         on_done=results.append) for n, gate in enumerate(gates)]
    # The second starts once the first moved bytes (see the in-order test below).
    qtbot.waitUntil(lambda: [j.state for j in jobs] == [JobState.RUNNING, JobState.RUNNING,
                                                        JobState.QUEUED])
    assert queue.is_busy() and queue.queued_jobs() == [jobs[2]]
    qtbot.waitUntil(lambda: gates[0][0].is_set() and gates[1][0].is_set())
    assert not gates[2][0].is_set()  # the third waits for a free slot

    gates[1][1].set()
    qtbot.waitUntil(lambda: jobs[1].state is JobState.DONE)
    qtbot.waitUntil(lambda: gates[2][0].is_set())  # it took the freed slot
    with qtbot.waitSignal(queue.idle):
        gates[0][1].set()
        gates[2][1].set()
    assert results[0] == 1 and sorted(results) == [0, 1, 2]
    assert [j.state for j in jobs] == [JobState.DONE] * 3
    assert not queue.is_busy()
    queue.clear_finished()
    assert queue.jobs == []


def test_progress_reaches_the_gui_at_a_bounded_rate_however_small_the_chunks(qtbot, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(1 << 20))
    queue = TransferQueue(concurrency=2)
    panel = TransferPanel(queue)
    qtbot.addWidget(panel)
    stop = threading.Event()
    calls = [0, 0]

    def tiny_chunks(slot):
        def fn(progress, cancel):
            # The real streaming helper, 64 bytes a chunk, from a file, over and over.
            done = 0

            def report(n, _total):
                calls[slot] += 1
                progress(done + n, 1 << 40)

            while not stop.is_set():
                with open(source, "rb", buffering=0) as src, \
                        open(os.devnull, "wb", buffering=0) as dst:
                    done += copy_stream(src, dst, buffer_size=64, progress=report,
                                        cancel=cancel)
            return done
        return fn

    ticks, changes = [], []
    queue.progressed.connect(lambda: ticks.append(time.monotonic()))
    panel.model.dataChanged.connect(lambda *_: changes.append(1))
    jobs = [queue.submit(f"tiny {n}", tiny_chunks(n)) for n in range(2)]
    start = time.monotonic()
    qtbot.waitUntil(lambda: time.monotonic() - start >= 1.0, timeout=5000)
    stop.set()
    qtbot.waitUntil(lambda: not queue.is_busy())
    elapsed = time.monotonic() - start
    assert sum(calls) > 10_000  # the workers reported thousands of times...
    # ...and the GUI heard about it at most ~20 times a second (30 allowed), for both jobs.
    assert 5 <= len(ticks) <= 30 * elapsed + 2, (len(ticks), elapsed)
    assert len(changes) <= 30 * elapsed + 12  # one update of the running rows a tick
    assert all(j.state is JobState.DONE and j.result > 0 for j in jobs)
    assert jobs[0].rate is None  # finished jobs show no rate


def test_rate_and_remaining_time_come_from_the_counters(qtbot):
    queue = TransferQueue(concurrency=1)
    release = threading.Event()

    def steady(progress, cancel):
        start = time.monotonic()
        while not release.is_set():
            progress(int((time.monotonic() - start) * 10_000_000), 1 << 40)
            release.wait(0.005)
        return None

    job = queue.submit("steady", steady)
    qtbot.waitUntil(lambda: job.rate is not None and job.done > 5_000_000, timeout=5000)
    assert 2_000_000 < job.rate < 50_000_000  # about 10 MB/s
    assert job.remaining > 10_000  # a TiB at 10 MB/s
    release.set()
    qtbot.waitUntil(lambda: job.state is JobState.DONE)


def test_cancelling_a_queued_job_ends_it_at_once_and_tells_its_caller(qtbot):
    queue = TransferQueue(concurrency=1)
    started, release = threading.Event(), threading.Event()
    first = queue.submit("first", gated(started, release))
    errors = []
    second = queue.submit("second", gated(threading.Event(), release), on_error=errors.append)
    queue.cancel(second)
    assert second.state is JobState.CANCELLED and isinstance(errors[0], TransferCancelled)
    release.set()
    qtbot.waitUntil(lambda: first.state is JobState.DONE)
    assert queue.retry(second)
    qtbot.waitUntil(lambda: second.state is JobState.DONE)


# ---------------------------------------------------------------------- the panel, real stores


def test_cancel_a_running_import_leaves_no_partial_key_and_the_source_untouched(qtbot,
                                                                                tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 << 20))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    mount = FileSystemStore(str(tmp_path / "mount"))
    store = MountedStore(MOUNT_POINT, mount, MemoryStore())
    queue = TransferQueue()
    panel = TransferPanel(queue)
    qtbot.addWidget(panel)
    panel.resize(900, 200)
    panel.show()
    started, proceed = threading.Event(), threading.Event()

    def paused(progress):
        def report(done, total):
            progress(done, total)
            if done >= 1 << 20 and not started.is_set():
                started.set()
                proceed.wait(10)  # the import is mid-stream, its key half written
        return report

    item = ImportItem("work/big.bin", str(source), source.stat().st_size)
    job = queue.submit("Import 'big.bin'", lambda p, c: import_large_file(store, item,
                                                                          paused(p), c))
    qtbot.waitUntil(started.is_set)
    qtbot.waitUntil(lambda: job.done >= 1 << 20 and panel.model.index(0, ACTION).data()
                    == "Cancel")
    click_action(qtbot, panel, job)
    assert panel.model.index(0, STATE).data() == "Cancelling…"
    proceed.set()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED)
    assert not store.exists("work/big.bin")
    assert list((tmp_path / "mount" / ".storegui" / "tmp").iterdir()) == []  # no partial blob
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert panel.model.index(0, ACTION).data() == "Retry"
    assert "nothing partial was kept" in panel.model.index(0, PROGRESS).data()

    click_action(qtbot, panel, job)  # retry: this time it runs through
    qtbot.waitUntil(lambda: job.state is JobState.DONE)
    assert store.get_metadata("work/big.bin")["sha256"] == digest


def test_a_failing_backing_store_gives_a_failed_job_with_its_error_and_retry(
        qtbot, make_window, workspace, dialogs):
    backing = FullDisk()
    mount = MemoryStore()
    fill(backing, mount)
    backing.full = True
    window, job = push_in_window(qtbot, make_window, workspace, mount, backing, "work/local.txt")
    qtbot.waitUntil(lambda: job.state is JobState.FAILED)
    panel = window.findChild(QWidget, "transferPanel")
    assert window.transfer_dock.isVisible()  # a failure opens the panel
    row = panel.model.row_of(job)
    _fraction, text, failed = panel.model.index(row, PROGRESS).data(ProgressRole)
    assert failed and "No space left on device" in text
    assert panel.model.index(row, STATE).data() == "Failed"
    assert "No space left" in panel.model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert origin(window, "work/local.txt") == "local"  # the mount copy is intact

    backing.full = False
    click_action(qtbot, panel, job)
    qtbot.waitUntil(lambda: job.state is JobState.DONE)
    qtbot.waitUntil(lambda: origin(window, "work/local.txt") == "remote")
    assert backing.to_bytes("work/local.txt") == b"only here\n"


def test_closing_the_window_while_a_transfer_runs_asks_and_cancels_cleanly(
        qtbot, make_window, workspace, dialogs):
    backing = GatedBacking()
    mount = MemoryStore()
    fill(backing, mount)
    mount.from_bytes("big.bin", os.urandom(3 << 20))
    backing.armed = True
    window, job = push_in_window(qtbot, make_window, workspace, mount, backing, "work/big.bin")
    qtbot.waitUntil(backing.started.is_set)

    dialogs.answer = dialogs.answer.Cancel
    window.close()
    assert window.isVisible() and job.state is JobState.RUNNING
    assert "Push 'work/big.bin' is still running" in dialogs.texts("question")[0]

    dialogs.answer = dialogs.answer.Yes
    window.close()  # cancels: the paused write sees it at once and stops
    assert not window.isVisible()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED)
    assert not backing.exists("work/big.bin")
    assert mount.exists("big.bin")  # the source is untouched


def test_the_gui_import_benchmark_runs_at_its_smoke_size(tmp_path):
    from benchmarks import bench_import_gui, harness

    args = bench_import_gui.build_parser().parse_args(
        [*bench_import_gui.SMOKE_ARGS, "--dir", str(tmp_path)])
    rows = bench_import_gui.run(args)  # drops in child processes: the real window, offscreen
    figures = [r.figure for r in rows]
    assert figures[0].startswith("drop 3 MiB file -> FileSystemStore")
    assert any(f.startswith("longest GUI stall during the 3 MiB drop") for f in figures)
    assert any(f.startswith("drop a folder of 200 files") and f.endswith("SqliteStore")
               for f in figures)
    memory = next(r for r in rows if r.figure.startswith("peak memory"))
    assert 20 < float(memory.ours.split()[0]) < 1000  # a plausible resident size, in MB
    assert all((r.passed is None) == (r.target == "-") for r in rows)
    assert "| figure" in harness.format_table(rows)
    assert list(tmp_path.iterdir()) == []  # its scratch folder is gone


# ---------------------------------------------------------------------- sharing the GIL


def busy(seconds: float) -> tuple[float, float]:
    """Keep the GUI thread busy in Python (as a long slot would) for ``seconds``."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        sum(range(200))
    return start, time.perf_counter()


def test_a_running_job_gives_way_while_the_gui_thread_is_late(qtbot):
    queue = TransferQueue(concurrency=1)
    stamps: list[float] = []
    stop = threading.Event()

    def many_steps(progress, cancel):
        for n in range(10_000_000):  # bounded; stops when told to
            if stop.is_set():
                return n
            stamps.append(time.perf_counter())
            progress(n, None)
        return -1

    job = queue.submit("many steps", many_steps)
    qtbot.waitUntil(lambda: len(stamps) > 1000)  # the event loop runs: the heartbeat beats
    start, end = busy(0.06)
    during = sum(start + 0.02 <= t <= end for t in stamps)
    stop.set()
    qtbot.waitUntil(lambda: job.state is JobState.DONE)
    # 40 ms of a late GUI thread: the job waited for it (without the heartbeat's rule it
    # runs thousands of steps in that time, sharing the GIL every switch interval).
    assert during <= 3
    assert job.result > 1000


def test_giving_way_never_waits_on_the_gui_thread_or_without_a_heartbeat(qtbot):
    queue = TransferQueue(concurrency=1)
    release = threading.Event()
    started = threading.Event()
    job = queue.submit("gated", gated(started, release))
    qtbot.waitUntil(started.is_set)
    busy(0.03)  # the heartbeat is late now
    start = time.perf_counter()
    give_way()  # called on the GUI thread itself: it must not wait for its own beat
    assert time.perf_counter() - start < 0.005
    release.set()
    qtbot.waitUntil(lambda: job.state is JobState.DONE)
    qtbot.waitUntil(lambda: not queue.is_busy())

    waited = []

    def on_a_worker():  # no queue runs a job: nothing beats, nothing to wait for
        start = time.perf_counter()
        give_way()
        waited.append(time.perf_counter() - start)

    worker = threading.Thread(target=on_a_worker)
    worker.start()
    worker.join(5)
    assert waited and waited[0] < 0.005


def test_full_collections_wait_while_jobs_run_and_resume_when_idle(qtbot):
    before = gc.get_threshold()
    first, second = TransferQueue(concurrency=1), TransferQueue(concurrency=1)
    gates = [(threading.Event(), threading.Event()) for _ in range(2)]
    jobs = [queue.submit("gated", gated(*gate))
            for queue, gate in zip((first, second), gates, strict=True)]
    assert gc.get_threshold() == (before[0], before[1], FullCollections.DEFERRED)
    assert FULL_COLLECTIONS.deferred
    gates[0][1].set()
    qtbot.waitUntil(lambda: jobs[0].state is JobState.DONE)
    assert gc.get_threshold()[2] == FullCollections.DEFERRED  # the other queue still runs
    gates[1][1].set()
    qtbot.waitUntil(lambda: jobs[1].state is JobState.DONE)
    assert gc.get_threshold() == before
    assert not FULL_COLLECTIONS.deferred


def test_full_collections_nest_and_leave_a_threshold_set_meanwhile_alone():
    holder = FullCollections()
    before = gc.get_threshold()
    try:
        holder.defer()
        holder.defer()
        holder.resume()
        assert gc.get_threshold()[2] == FullCollections.DEFERRED
        holder.resume()
        assert gc.get_threshold() == before
        holder.resume()  # one resume too many changes nothing
        assert gc.get_threshold() == before
        holder.defer()
        gc.set_threshold(before[0], before[1], 50)  # someone else's choice, meanwhile
        holder.resume()
        assert gc.get_threshold() == (before[0], before[1], 50)
    finally:
        gc.set_threshold(*before)


def test_the_transfers_panel_opens_when_a_transfer_starts_with_its_row_in_view(
        qtbot, window):
    assert not window.transfer_dock.isVisible()
    open_folder(qtbot, window, "work/")
    select(qtbot, window, "work/local.txt")
    action(window, "push").trigger()  # a transfer: the panel opens
    qtbot.waitUntil(window.transfer_dock.isVisible)
    panel = window.transfer_panel
    release = threading.Event()
    started = [threading.Event() for _ in range(40)]
    jobs = [window.transfers.submit(f"Job {i}", gated(started[i], release)) for i in range(40)]
    viewport = panel.view.viewport()

    def row_in_view(job) -> bool:
        rect = panel.view.visualRect(panel.model.index(panel.model.row_of(job), 0))
        return rect.isValid() and viewport.rect().contains(rect)

    qtbot.waitUntil(lambda: row_in_view(jobs[-1]))  # the newest row scrolled into view
    assert not row_in_view(jobs[0])

    window.transfer_dock.close()  # closed by the user while transfers run: it stays closed
    extra = window.transfers.submit("Extra", gated(threading.Event(), release))
    assert not window.transfer_dock.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not window.transfers.is_busy())
    assert extra.state is JobState.DONE
    window.transfers.submit("After", lambda progress, cancel: None)  # the next ones show it
    qtbot.waitUntil(window.transfer_dock.isVisible)


def test_jobs_start_moving_bytes_in_order_and_show_waiting_until_they_do(qtbot, monkeypatch):
    queue = TransferQueue(concurrency=2, interval_ms=10)
    panel = TransferPanel(queue)
    qtbot.addWidget(panel)
    order: list[int] = []
    lock_free = threading.Event()  # the first job waits for a store's lock before moving bytes

    def job(i: int, wait: threading.Event | None = None):
        def fn(progress, cancel):
            progress(0, 10)
            if wait is not None:
                wait.wait(10)
            order.append(i)
            progress(10, 10)
        return fn

    ticks = []
    queue.progressed.connect(lambda: ticks.append(1))
    jobs = [queue.submit("First", job(0, lock_free)), queue.submit("Second", job(1)),
            queue.submit("Third", job(2))]
    qtbot.waitUntil(lambda: len(ticks) >= 10)
    # Started, but no byte moved: "Waiting", no rate; the next job does not overtake it.
    assert jobs[0].state is JobState.RUNNING
    assert panel.model.index(0, STATE).data() == "Waiting"
    assert panel.model.index(0, PROGRESS).data().startswith("Waiting")
    assert panel.model.index(0, RATE).data() == ""
    assert [j.state for j in jobs[1:]] == [JobState.QUEUED, JobState.QUEUED]
    lock_free.set()
    qtbot.waitUntil(lambda: all(j.state is JobState.DONE for j in jobs))
    assert order == [0, 1, 2]


def test_a_job_that_never_moves_bytes_holds_the_next_back_only_a_while(qtbot, monkeypatch):
    monkeypatch.setattr("storegui.app.transfers.queue.START_HOLD_LIMIT", 0.1)
    queue = TransferQueue(concurrency=2, interval_ms=10)
    release = threading.Event()
    silent = queue.submit("Silent", lambda progress, cancel: release.wait(10))
    other = queue.submit("Other", lambda progress, cancel: None)
    qtbot.waitUntil(lambda: other.state is JobState.DONE)
    assert silent.state is JobState.RUNNING
    release.set()
    qtbot.waitUntil(lambda: silent.state is JobState.DONE)


def test_three_large_imports_into_sqlite_end_in_the_order_they_were_queued(qtbot, tmp_path):
    from storegui.stores import open_store
    store = MountedStore("work/", open_store(f"sqlite://{tmp_path / 'm.db'}"),
                         MemoryStore())
    size = 24 << 20
    chunk = os.urandom(1 << 20)
    paths = []
    for i in range(3):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(chunk * (size >> 20))
        paths.append(path)
    queue = TransferQueue(concurrency=2)
    ended: list[str] = []
    queue.transferFinished.connect(lambda title, _result: ended.append(title))
    for i, path in enumerate(paths):
        item = ImportItem(f"work/f{i}.bin", str(path), size)
        queue.submit(f"f{i}", lambda p, c, item=item: import_large_file(store, item, p, c),
                     total=size)
    qtbot.waitUntil(lambda: not queue.is_busy(), timeout=60000)
    assert ended == ["f0", "f1", "f2"]
    store.disconnect()


def test_preparing_to_import_is_cleared_once_the_drop_is_planned(qtbot, window, tmp_path):
    source = tmp_path / "dropped.txt"
    source.write_bytes(b"dropped\n")
    events: list[str] = []
    window.drop_importer.statusMessage.connect(events.append)
    window.transfers.jobAdded.connect(lambda job: events.append(f"job: {job.title}"))
    window.commands.import_files_under("work/", [str(source)])
    qtbot.waitUntil(lambda: any(e.startswith("job: ") for e in events))
    assert events[0].startswith("Preparing to import")
    assert events[1] == "" and events[2].startswith("job: Import 'dropped.txt' into ")
    assert not window.statusBar().currentMessage().startswith("Preparing")
    qtbot.waitUntil(lambda: not window.transfers.is_busy())
