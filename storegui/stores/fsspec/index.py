"""The metadata index that makes FsspecStore queries cheap on a remote store.

Layout (version 1) under ``<root>/.storegui/index/``:

``<xx>.json``
    Shard ``xx`` (two hex digits: the first byte of the SHA-1 of the key's
    UTF-8 bytes), ``{"v": 1, "keys": {"<key>": {"metadata": {...},
    "created": <epoch seconds>}, ...}}``. 256 shards: at 100,000 keys each
    holds about 400 entries.
``pending/<uuid>.json``
    ``{"v": 1, "key": "<key>", "started": <epoch seconds>, "host": "...",
    "pid": <int>, "pid_start": "...", "backup": "<path>" | null}``: a write
    of that key in progress, or one that died (server gone, process killed)
    before it finished. ``host``/``pid``/``pid_start`` name the writing
    process (see :func:`marker_alive`); ``backup`` is where the write keeps
    the key's previous data while it replaces it.

Every write of a key rewrites its shard (read, change, write back with
``If-Match`` on S3 so two writers never lose each other's entries; elsewhere
writers in this process take turns). A query lists this folder (one request
for up to 1,000 objects), fetches only the shards whose ETag changed since
this store last saw them (all of them concurrently the first time), and
re-reads the keys named by pending markers. The per-key metadata objects stay
the truth: :meth:`MetadataIndex.rebuild` recreates the index from them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

from ..errors import StoreError
from .remotefs import RemoteFS, object_info

LAYOUT_VERSION = 1
SHARDS = 256
#: A pending marker older than this (seconds) belongs to a write that died; a
#: query then repairs the key's shard entry and removes the marker.
STALE_PENDING = 600.0
_MAX_TRIES = 12

#: A marker of another machine's write is taken for dead after this many
#: seconds (its owner cannot be asked); its multipart upload is then aborted.
STALE_UPLOAD = 24 * 3600.0

Entry = dict  # {"metadata": {...}, "created": float | None}
Resolver = Callable[[list[str]], dict[str, Entry | None]]


class DamagedShard(StoreError):
    """An index shard that cannot be read: a cache problem, the metadata objects are the truth."""


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot; Linux), telling reused pids apart."""
    stat = _read_text(f"/proc/{pid}/stat")
    if not stat or ")" not in stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


#: This machine: host name plus boot id (containers may share a host name).
HOST = f"{socket.gethostname()}/{_read_text('/proc/sys/kernel/random/boot_id') or ''}"
_PID_START = _process_start(os.getpid())
#: Pending markers of writes running in this process now.
_LIVE_MARKERS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def marker_alive(marker: Any, path: str, age: float | None, limit: float) -> bool:
    """Whether the write that left pending marker ``marker`` may still be running.

    The rule: a marker written on this machine (same ``host``) is alive
    while its process runs (same pid and process start time; for this
    process, while the write is in progress). A marker of another machine,
    or of unknown owner, is alive until it is ``limit`` seconds old.
    """
    if isinstance(marker, dict) and marker.get("host") == HOST \
            and isinstance(marker.get("pid"), int):
        pid = marker["pid"]
        if pid == os.getpid() and marker.get("pid_start") == _PID_START:
            with _LIVE_LOCK:
                return path in _LIVE_MARKERS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        started = marker.get("pid_start")
        return started is None or _process_start(pid) in (None, started)
    return age is None or age < limit


def shard_of(key: str) -> str:
    """The shard (two hex digits) that holds ``key``."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:2]


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _raise_first(results: Iterable[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


class MetadataIndex:
    """The sharded index of one store root, with an in-memory copy of the shards.

    Parameters
    ----------
    rfs : RemoteFS
    base : str
        The index folder, ``<root>/.storegui/index``.
    listable : bool
        Whether the filesystem can list the folder (not plain HTTP); if not,
        every shard is fetched by name on each load.
    """

    def __init__(self, rfs: RemoteFS, base: str, listable: bool = True) -> None:
        self._rfs = rfs
        self._base = base
        self._listable = listable
        self._cache: dict[str, tuple[Any, dict[str, Entry]]] = {}
        self._cache_lock = threading.Lock()
        self._shard_locks = [threading.Lock() for _ in range(SHARDS)]

    # ------------------------------------------------------------------ paths

    def shard_path(self, shard: str) -> str:
        """The object holding ``shard``."""
        return f"{self._base}/{shard}.json"

    def new_pending_path(self) -> str:
        """A fresh name for a pending marker."""
        return f"{self._base}/pending/{uuid.uuid4().hex}.json"

    # ------------------------------------------------------------------ pending markers

    async def mark_pending(self, path: str, key: str, backup: str | None = None) -> None:
        """Write the pending marker ``path`` for ``key`` (before the key is written)."""
        with _LIVE_LOCK:
            _LIVE_MARKERS.add(path)
        await self._rfs.write(path, _dump({"v": LAYOUT_VERSION, "key": key,
                                           "started": time.time(), "host": HOST,
                                           "pid": os.getpid(), "pid_start": _PID_START,
                                           "backup": backup}))

    async def clear_pending(self, path: str) -> None:
        """Remove the pending marker ``path`` (after the key's shard is written)."""
        self.let_go(path)
        await self._rfs.remove(path)

    @staticmethod
    def let_go(path: str) -> None:
        """This process no longer works on the write of marker ``path`` (it stays if left)."""
        with _LIVE_LOCK:
            _LIVE_MARKERS.discard(path)

    def read_shard(self, key: str) -> Coroutine:
        """``(raw bytes or None, tag)`` of ``key``'s shard, for :meth:`apply`'s ``prefetched``."""
        return self._rfs.read_tagged(self.shard_path(shard_of(key)))

    # ------------------------------------------------------------------ writes

    def parse(self, key: str, raw: bytes | None) -> dict[str, Entry]:
        """The entries of ``key``'s shard read as ``raw``.

        Raises
        ------
        DamagedShard
            ``raw`` is not a shard of this layout.
        """
        return self._parse(shard_of(key), raw)

    def _parse(self, shard: str, raw: bytes | None) -> dict[str, Entry]:
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
            version = doc.get("v")
            keys = doc["keys"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DamagedShard(f"the metadata index shard {self.shard_path(shard)} is damaged "
                             f"({exc}); FsspecStore.rebuild_index() recreates it") from None
        if version != LAYOUT_VERSION or not isinstance(keys, dict):
            raise DamagedShard(f"the metadata index shard {self.shard_path(shard)} has layout "
                             f"version {version!r}; this storegui reads version {LAYOUT_VERSION}")
        return keys

    def apply(
        self,
        key: str,
        change: Callable[[Entry | None], Entry | None],
        alongside: Callable[[Entry | None], list[Coroutine]] | None = None,
        prefetched: tuple[bytes | None, Any] | None = None,
    ) -> Entry | None:
        """Replace ``key``'s entry in its shard by ``change(old entry)`` (None removes it).

        ``alongside(new entry)`` gives operations to run together with the
        shard write (the key's metadata object); if one of them fails its
        exception is raised. On a conflict with another writer the shard is
        read again and ``change`` called again. ``prefetched`` is the shard
        as :meth:`read_shard` read it, used for the first try. Returns the new
        entry.

        Raises
        ------
        DamagedShard
            The shard cannot be parsed (:meth:`rebuild` recreates it).
        """
        shard = shard_of(key)
        path = self.shard_path(shard)
        with self._shard_locks[int(shard, 16)]:
            for _ in range(_MAX_TRIES):
                if prefetched is not None:
                    (raw, tag), prefetched = prefetched, None
                else:
                    raw, tag = self._rfs.run1(self._rfs.read_tagged(path))
                keys = self._parse(shard, raw)
                entry = change(keys.get(key))
                if entry is None:
                    keys.pop(key, None)
                else:
                    keys[key] = entry
                body = _dump({"v": LAYOUT_VERSION, "keys": keys})
                extra = alongside(entry) if alongside is not None else []
                results = self._rfs.run(self._rfs.write_if(path, body, tag, raw is not None),
                                        *extra)
                _raise_first(results)
                written, new_tag = results[0]
                if written:
                    with self._cache_lock:
                        self._cache[shard] = (new_tag, keys)
                    return entry
        raise StoreError(f"the metadata index shard {path} kept changing under concurrent "
                         f"writers; try again")

    def rebuild(self, entries: dict[str, Entry]) -> None:
        """Replace the shards by ones built from ``entries``; drop every pending marker."""
        listed = list(self._rfs.files_under(self._base)) if self._listable else []
        shards: dict[str, dict[str, Entry]] = {}
        for key, entry in entries.items():
            shards.setdefault(shard_of(key), {})[key] = entry
        with self._all_shards_locked():
            results = self._rfs.run(*(
                self._rfs.write(self.shard_path(s), _dump({"v": LAYOUT_VERSION, "keys": keys}))
                for s, keys in shards.items()))
            _raise_first(results)
            with self._cache_lock:
                self._cache = {s: (tag, shards[s]) for s, tag in zip(shards, results,
                                                                      strict=True)}
            keep = {self.shard_path(s) for s in shards}
            _raise_first(self._rfs.run(*(self._rfs.remove(p) for p in listed if p not in keep)))

    @contextlib.contextmanager
    def _all_shards_locked(self) -> Iterator[None]:
        for lock in self._shard_locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in self._shard_locks:
                lock.release()

    # ------------------------------------------------------------------ reads

    def load(self, resolve: Resolver, repair: bool) -> dict[str, Entry]:
        """Every indexed key's entry, as of now.

        ``resolve(keys)`` reads the truth for keys named by pending markers
        (None for a key that does not exist). With ``repair``, markers older
        than :data:`STALE_PENDING` are settled: the shard entry is corrected
        and the marker removed.
        """
        tags, pending = self._list()
        with self._cache_lock:
            stale = [s for s, tag in tags.items()
                     if tag is None or s not in self._cache or self._cache[s][0] != tag]
        results = self._rfs.run(*(self._rfs.read(self.shard_path(s)) for s in stale))
        _raise_first(results)
        fresh = {s: self._parse(s, raw) for s, raw in zip(stale, results, strict=True)
                 if raw is not None}
        view: dict[str, Entry] = {}
        with self._cache_lock:
            for s in stale:
                if s in fresh:
                    self._cache[s] = (tags[s], fresh[s])
                else:
                    self._cache.pop(s, None)
            for s in list(self._cache):
                if s not in tags:
                    del self._cache[s]
            for s in sorted(self._cache):
                view.update(self._cache[s][1])
        if pending:
            self._settle(pending, view, resolve, repair)
        return view

    def _list(self) -> tuple[dict[str, Any], list[tuple[str, float | None]]]:
        """(shard -> tag, [(pending marker path, modified)]) from one listing."""
        if not self._listable:
            return {f"{i:02x}": None for i in range(SHARDS)}, []
        tags: dict[str, Any] = {}
        pending = []
        for name, info in self._rfs.files_under(self._base).items():
            rel = name[len(self._base) + 1:]
            if rel.startswith("pending/"):
                pending.append((name, object_info(info).modified))
            elif len(rel) == 7 and rel.endswith(".json"):
                tags[rel[:2]] = object_info(info).tag
        return tags, pending

    def _settle(self, pending: list[tuple[str, float | None]], view: dict[str, Entry],
                resolve: Resolver, repair: bool) -> None:
        raws = self._rfs.run(*(self._rfs.read(path) for path, _ in pending))
        _raise_first(raws)
        keys: dict[str, list[tuple[str, bool]]] = {}
        now = time.time()
        for (path, modified), raw in zip(pending, raws, strict=True):
            try:
                marker = json.loads(raw) if raw is not None else None
                key = marker["key"] if marker is not None else None
            except (ValueError, KeyError, TypeError):
                marker = key = None
            age = None if modified is None else now - modified
            # A marker keeping a backup is the connect sweep's (it may have to restore it).
            old = (modified is not None and not (isinstance(marker, dict) and marker.get("backup"))
                   and not marker_alive(marker, path, age, STALE_PENDING))
            if isinstance(key, str):
                keys.setdefault(key, []).append((path, old))
        truth = resolve(sorted(keys))
        for key, entry in truth.items():
            if entry is None:
                view.pop(key, None)
            else:
                view[key] = entry
            markers = keys[key]
            if repair and all(old for _, old in markers):
                self.apply(key, lambda _old, entry=entry: entry)
                self._rfs.run(*(self.clear_pending(p) for p, _ in markers))
