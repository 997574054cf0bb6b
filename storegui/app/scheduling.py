"""Sharing the interpreter between the GUI thread and the workers: pauses and GC tuning.

Workers run Python (listing a folder, sorting it, importing small files) and
hold the GIL meanwhile. The GUI thread needs the GIL for each of its timers
and for every call Qt makes into a model (a layout or a paint is thousands
of them), and a worker computing without a pause makes each of those calls
wait for the interpreter's switch interval. So:

- while work runs, a timer on the GUI thread beats :data:`HEARTBEAT`
  (:class:`HeartbeatTimer`, one per owner of background work);
- tree workers pause after every short burst (:class:`Pacer`), longer while
  the heartbeat is late (the GUI thread is busy);
- transfer jobs call :func:`give_way` between chunks and files, which sleeps
  while the heartbeat is late.

The garbage collector is the other source of stalls: a full collection walks
every live object holding the GIL, on whichever thread allocated last.
:data:`FULL_COLLECTIONS` holds full collections off while transfers run;
:func:`note_new_nodes` and :func:`freeze_alive` move long-lived objects (the
tree's nodes, a drop's plan) out of the collector's sight, and
:func:`release_frozen` gives them back when a tree is let go.

Every sleep, threshold and freeze of the app lives here.
"""

from __future__ import annotations

import gc
import threading
import time

from PySide6.QtCore import QObject, QTimer

#: A worker computes this long (seconds) between pauses...
BURST = 0.001
#: ...and then pauses this long, leaving the GIL to the GUI thread...
PAUSE = 0.001
#: ...or, while the GUI thread's heartbeat is this late (it is busy), until it is back,
#: waiting at most MAX_WAIT at a time. A heartbeat older than GIVE_UP means no
#: timer beats any more (nothing is busy, or the owner is gone).
GUI_LATE = 0.008
MAX_WAIT = 0.1
GIVE_UP = 0.5
#: How often the GUI thread beats the heartbeat while work runs (milliseconds).
BEAT_MS = 4
#: A transfer job gives way once the last beat is this old (seconds): a beat missed by 2 ms.
GIVE_WAY_LATE = 0.006
#: A job waiting for a late GUI thread looks again after this long (seconds).
GIVE_WAY_STEP = 0.001
#: A pacer waiting for a late GUI thread looks again after this long (seconds).
PACER_STEP = 0.002
#: After this many new tree nodes, everything alive moves to the collector's permanent generation.
FREEZE_EVERY = 20_000

# The thread the heartbeat's timers run on (the Qt application's main thread).
_GUI_THREAD = threading.main_thread().ident


# ---------------------------------------------------------------------- the GUI thread's heartbeat

class GuiHeartbeat:
    """When the GUI thread last ran its event loop, as told by a timer there while work runs.

    A worker that sees it late leaves the GIL to the GUI thread until it is
    back: every call Qt makes into a model (thousands per layout or paint)
    needs the GIL, and would otherwise wait for the worker's turn.
    """

    def __init__(self) -> None:
        self.last = 0.0

    def beat(self) -> None:
        """Called from a timer on the GUI thread."""
        self.last = time.perf_counter()

    def stop(self) -> None:
        """No beat now means "nothing to wait for", not "the GUI thread is late"."""
        self.last = 0.0

    def late(self, by: float = GUI_LATE) -> bool:
        """Whether the GUI thread is busy (its timer is ``by`` late, but has beaten lately)."""
        return by < time.perf_counter() - self.last < GIVE_UP


HEARTBEAT = GuiHeartbeat()


class HeartbeatTimer(QObject):
    """Beats :data:`HEARTBEAT` every :data:`BEAT_MS` while its owner has work running.

    The owner calls :meth:`set_running` whenever that may have changed; an
    idle app stays idle (no timer runs).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(BEAT_MS)
        self._timer.timeout.connect(HEARTBEAT.beat)

    def is_running(self) -> bool:
        """Whether the timer beats."""
        return self._timer.isActive()

    def set_running(self, running: bool) -> bool:
        """Start or stop beating; returns whether that changed anything."""
        if running and not self._timer.isActive():
            HEARTBEAT.beat()  # not late from an old beat before the timer's first one
            self._timer.start()
            return True
        if not running and self._timer.isActive():
            self._timer.stop()
            HEARTBEAT.stop()
            return True
        return False


# ---------------------------------------------------------------------- pauses on workers

class Pacer:
    """Call it often from a loop on a worker: it pauses after every ``burst`` seconds of work.

    The pause lasts ``pause`` seconds, or while the GUI thread is busy
    (:data:`HEARTBEAT`), up to :data:`MAX_WAIT`.
    """

    __slots__ = ("burst", "pause", "_since")

    def __init__(self, burst: float = BURST, pause: float = PAUSE) -> None:
        self.burst = burst
        self.pause = pause
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since < self.burst:
            return
        time.sleep(self.pause)  # releases the GIL
        waited = self.pause
        while waited < MAX_WAIT and HEARTBEAT.late():
            time.sleep(PACER_STEP)
            waited += PACER_STEP
        self._since = time.perf_counter()


def no_pause() -> None:
    """The pacer of work done at once on the GUI thread (small folders)."""


def scan_pacer() -> Pacer:
    """Pauses for a worker walking a drop: 2 ms of work, then 0.5 ms for the GUI thread.

    (Walking 10,000 files holds the GIL for 0.1-0.2 s, just as the GUI
    thread queues the jobs: a 56 ms stall measured without pauses.)
    """
    return Pacer(burst=0.002, pause=0.0005)


def give_way() -> None:
    """On a worker: while the GUI thread's heartbeat is late, sleep (leaving it the GIL).

    Waits :data:`MAX_WAIT` at most, so that a GUI thread busy with something
    else slows a transfer down a little, never stops it; a heartbeat older
    than :data:`GIVE_UP` (or stopped) means nothing beats, and nothing
    waits. Does nothing on the GUI thread itself (it would wait for its own
    beat).
    """
    if threading.get_ident() == _GUI_THREAD:
        return
    waited = 0.0
    while waited < MAX_WAIT and HEARTBEAT.late(GIVE_WAY_LATE):
        time.sleep(GIVE_WAY_STEP)
        waited += GIVE_WAY_STEP


# ---------------------------------------------------------------------- the garbage collector

class FullCollections:
    """Holds off the garbage collector's full collections while any queue runs jobs.

    :meth:`defer` and :meth:`resume` nest (one pair per busy spell of each
    queue); the first ``defer`` raises the collector's third threshold (how
    many middle-generation collections a full one waits for), the last
    ``resume`` puts back the value it found.
    """

    #: The third threshold while deferred: no full collection in any transfer's time.
    DEFERRED = 1_000_000

    def __init__(self) -> None:
        self._holders = 0
        self._saved: int | None = None

    def defer(self) -> None:
        """One more busy queue: no full collection until every one is idle."""
        self._holders += 1
        if self._holders == 1:
            first, second, self._saved = gc.get_threshold()
            gc.set_threshold(first, second, self.DEFERRED)

    def resume(self) -> None:
        """One busy queue less: the last one puts the threshold back."""
        if self._holders == 0:
            return
        self._holders -= 1
        if self._holders == 0 and self._saved is not None:
            first, second, third = gc.get_threshold()
            if third == self.DEFERRED:  # not changed by someone else meanwhile
                gc.set_threshold(first, second, self._saved)
            self._saved = None

    @property
    def deferred(self) -> bool:
        """Whether full collections are held off now."""
        return self._holders > 0


#: The one holder of full collections for the app's queues.
FULL_COLLECTIONS = FullCollections()

_new_nodes = [0]


def note_new_nodes(count: int) -> None:
    """Keep full garbage collections short as the key tree grows by ``count`` nodes.

    The tree holds most of the app's long-lived objects. A full collection
    walks every one of them while holding the GIL (a tenth of a second per
    100,000 nodes, on whatever thread it happens: a stall of the GUI), and
    growth of a quarter triggers one. Every :data:`FREEZE_EVERY` nodes,
    :func:`freeze_alive`. Tree nodes dropped later are still freed at once,
    by reference counting, since their cycles are broken when they are
    detached (``KeyNode.dismantle``); anything else that becomes cyclic
    garbage waits for :func:`release_frozen`, when a tree is let go.
    """
    _new_nodes[0] += count
    if _new_nodes[0] >= FREEZE_EVERY:
        _new_nodes[0] = 0
        freeze_alive()


def freeze_alive() -> None:
    """Move everything alive out of the collector's sight (``gc.freeze``)."""
    gc.freeze()


def release_frozen() -> None:
    """Give the garbage collector back everything :func:`freeze_alive` hid from it."""
    if gc.get_freeze_count():
        gc.unfreeze()
