"""The SQLite file format of SqliteStore: schema, opening connections, errors.

Tables:

- ``keys``: one row per key (size, times, metadata JSON text); a small value
  is held inline in ``data``, a larger one in the blob ``blob_id``.
- ``blobs``: one row per value that is not inline. ``owner`` is NULL for a
  value a key points at, ``"pending <host> <pid> <token>"`` while a writer is
  still streaming it in, ``"garbage"`` once no key points at it (its chunks
  are then freed in short transactions). ``file`` names the value's file in
  the ``<db>-values/`` folder (see :mod:`.files`), or is NULL for a
  value held in chunk rows.
- ``chunks``: the data of a blob, ``chunk_size`` bytes per row (the last one
  shorter).
- ``meta_index``: one row per top-level metadata field, see
  :mod:`storegui.stores.sqlite.index`.

``PRAGMA application_id`` marks the file as ours and ``PRAGMA user_version``
holds the schema version: 1 had no ``blobs.file`` column; a version-1 file
opened writable gets it (an instant ``ALTER TABLE``), one opened read-only is
read as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DiskFullError, NotConnectedError, ReadOnlyError, StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: The first schema version with value files (``blobs.file``).
FILES_VERSION = 2
#: At most 64 MiB of cached pages per connection (a limit, used only as needed).
CACHE_SIZE_PRAGMA = "PRAGMA cache_size = -65536"
#: The WAL is checkpointed into the file once it holds this much (SQLite's
#: default, 1000 pages, is 16 MiB here: a large value streamed in would
#: checkpoint, with two fsyncs, every 16 chunks). Also the size the WAL file
#: is truncated back to.
WAL_CHECKPOINT_BYTES = 64 << 20
APPLICATION_ID = 0x53475549  # "SGUI"
TABLES = ("keys", "blobs", "chunks", "meta_index")

SCHEMA = (
    """CREATE TABLE keys (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        metadata TEXT NOT NULL,
        blob_id INTEGER,
        data BLOB
    )""",
    """CREATE TABLE blobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chunk_size INTEGER NOT NULL,
        owner TEXT,
        started REAL NOT NULL,
        file TEXT
    )""",
    "CREATE INDEX blobs_unowned ON blobs(owner) WHERE owner IS NOT NULL",
    """CREATE TABLE chunks (
        blob_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (blob_id, seq)
    )""",
    # One B-tree: an equality query is a range scan of (name, value) in key_id order.
    """CREATE TABLE meta_index (
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        key_id INTEGER NOT NULL,
        PRIMARY KEY (name, value, key_id)
    ) WITHOUT ROWID""",
)


#: Real paths of the database files this process has open through SQLite. Our own
#: code must never open (and so close) one of them, nor its ``-wal``/``-shm``/
#: ``-journal``: closing any descriptor of a file drops all of the process's
#: ``fcntl`` locks on it, SQLite's included, and another process may then reset
#: a write-ahead log still in use (acknowledged writes lost).
_IN_USE: Counter[str] = Counter()
_IN_USE_LOCK = threading.Lock()
_COMPANIONS = ("-wal", "-shm", "-journal")


def hold_in_use(path: str) -> None:
    """Note that this process has the database file ``path`` open (see :func:`refuse_in_use`)."""
    with _IN_USE_LOCK:
        _IN_USE[os.path.realpath(path)] += 1


def release_in_use(path: str) -> None:
    """Undo one :func:`hold_in_use`."""
    real = os.path.realpath(path)
    with _IN_USE_LOCK:
        _IN_USE[real] -= 1
        if _IN_USE[real] <= 0:
            del _IN_USE[real]


def refuse_in_use(path: str | os.PathLike, what: str = "import") -> None:
    """Raise StoreError if ``path`` is a database file (or companion) this process has open.

    Reading such a file with our own descriptor would drop SQLite's locks on
    it when that descriptor closes.
    """
    real = os.path.realpath(os.fspath(path))
    names = {real} | {real[: -len(s)] for s in _COMPANIONS if real.endswith(s)}
    with _IN_USE_LOCK:
        busy = next((name for name in names if name in _IN_USE), None)
    if busy is not None:
        raise StoreError(f"cannot {what} {os.fspath(path)}: it is (part of) {describe(busy)}, "
                         "open in this program; reading it here would disturb the store. "
                         "Close the store first, or copy the file with another tool")


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the store's registry of connections)."""


def describe(path: str) -> str:
    """How error messages name a store file."""
    return "the in-memory SQLite store" if path == ":memory:" else f"the SQLite store {path}"


def connect(path: str, readonly: bool, timeout: float) -> sqlite3.Connection:
    """A new connection in autocommit mode (transactions are explicit), set up for the store.

    Commits do not wait for the disk (``synchronous = NORMAL``: the WAL
    reaches it at checkpoints); see :func:`full_sync` for the other setting.

    Raises
    ------
    StoreError
        The file is shorter than its header says.
    sqlite3.Error
        Anything else (the caller translates it).
    """
    if path == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False,
                               factory=_Connection)
    else:
        # A URI names the file exactly whatever characters the path holds.
        uri = Path(path).as_uri() + ("?mode=ro" if readonly else "?mode=rwc")
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None,
                               check_same_thread=False, factory=_Connection)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_CHECKPOINT_BYTES}")
        size_pragmas(conn)
        # Some builds (Debian's) zero every freed page: that makes freeing a large
        # value cost as much as writing it again. Space is reused, not scrubbed.
        conn.execute("PRAGMA secure_delete = OFF")
    except sqlite3.Error as exc:
        # The first statements read the header: a truncated file fails here.
        truncated = path != ":memory:" and _corrupt(exc) and _truncated(conn)
        conn.close()
        if truncated:
            raise StoreError(f"{describe(path)} is damaged: the file is shorter than its header "
                             "says (was it truncated by an interrupted copy?)") from None
        raise
    return conn


def full_sync(conn: sqlite3.Connection) -> None:
    """Make every commit of ``conn`` wait for the disk (the store's ``sync="full"``)."""
    conn.execute("PRAGMA synchronous = FULL")


def size_pragmas(conn: sqlite3.Connection) -> None:
    """Set the cache limit and the checkpoint threshold for the file's page size."""
    conn.execute(CACHE_SIZE_PRAGMA)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0] or 4096
    conn.execute(f"PRAGMA wal_autocheckpoint = {max(1000, WAL_CHECKPOINT_BYTES // page_size)}")


def check_path(path: str) -> None:
    """Refuse paths that cannot hold a store before SQLite creates anything.

    Raises
    ------
    StoreError
        If the folder is missing, or the path is a folder.
    """
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise StoreError(f"cannot open {describe(path)}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise StoreError(f"cannot open {describe(path)}: it is a folder, not a file")


#: SQLite's result code for a damaged file ("database disk image is malformed").
SQLITE_CORRUPT = 11


def _truncated(conn: sqlite3.Connection) -> bool:
    """Whether the file is shorter than its header says (and no WAL holds the rest).

    Asked of SQLite, never read through a descriptor of our own: on POSIX,
    closing *any* descriptor of a file drops *every* ``fcntl`` lock this
    process holds on it, SQLite's included; another process would then take
    itself for the file's last user and reset the write-ahead log still in
    use, losing committed writes. SQLite (3.31 on) refuses a file whose
    header counts more pages than the file (and its WAL) holds as
    "malformed", unless ``writable_schema`` is on, when it reads what is
    there: a file that fails the first way and opens the second is
    truncated. (Older SQLite builds read such a file as far as it goes; what
    is missing is reported as damage when it is read.)
    """
    try:
        conn.execute("PRAGMA page_count").fetchone()
        return False
    except sqlite3.DatabaseError as exc:
        if not _corrupt(exc):
            return False  # not a database at all: prepare() says so
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute("PRAGMA page_count").fetchone()
    except sqlite3.DatabaseError:
        return False  # damaged some other way
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    return True


def _corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == SQLITE_CORRUPT
    return "malformed" in str(exc)


def prepare(conn: sqlite3.Connection, path: str, readonly: bool) -> int:
    """Check that ``conn`` holds a store, creating the schema in a new file; its schema version.

    A file of an older version opened writable is brought up to date.

    Raises
    ------
    StoreError
        The file is not an SQLite database, is damaged, is another
        program's database, or was written by a newer storegui.
    """
    where = describe(path)
    try:
        version, app_id, tables = _read_header(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{where} is not a usable SQLite database ({exc})") from None
    if not tables and version == 0 and app_id == 0:
        if readonly:
            raise StoreError(f"{where} is empty; it cannot be opened read-only")
        _create(conn, path)
        return SCHEMA_VERSION
    if app_id != APPLICATION_ID:
        names = ", ".join(sorted(tables)[:8]) or "none"
        raise StoreError(f"{where} is an SQLite database of another program, not a storegui "
                         f"store (its tables: {names})")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} was written by a newer storegui (schema version {version}; "
                         f"this one reads up to {SCHEMA_VERSION})")
    missing = [t for t in TABLES if t not in tables]
    if missing:
        raise StoreError(f"{where} is damaged: table(s) {', '.join(missing)} are missing")
    if readonly:
        return version
    _use_wal(conn, path)
    if version < SCHEMA_VERSION:
        _migrate(conn)
    return SCHEMA_VERSION


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A ``BEGIN IMMEDIATE`` transaction (the write lock now) committed at the end of the block.

    Any exception rolls it back (if SQLite has not already) and passes on.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older schema version up to :data:`SCHEMA_VERSION`."""
    with immediate(conn):
        # Another process may have migrated it while we waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] < FILES_VERSION:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
            if "file" not in columns:
                conn.execute("ALTER TABLE blobs ADD COLUMN file TEXT")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _read_header(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    tables.discard("sqlite_sequence")
    return version, app_id, tables


def _use_wal(conn: sqlite3.Connection, path: str) -> None:
    if path == ":memory:":
        return
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        # Some file systems (network shares) cannot do WAL; the store still works.
        log.warning("%s: WAL journal mode unavailable, using %s", describe(path), mode)


def _create(conn: sqlite3.Connection, path: str) -> None:
    _use_wal(conn, path)
    with immediate(conn):
        # Another process may have created the schema while we waited for the lock.
        version, app_id, tables = _read_header(conn)
        if not tables and version == 0 and app_id == 0:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def translate(exc: Exception, path: str, timeout: float, store: Any = None) -> StoreError:
    """A :class:`StoreError` a user can act on, for an ``sqlite3`` error."""
    where = describe(path)
    text = str(exc)
    low = text.lower()
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in low:
        return NotConnectedError(f"{where} was disconnected while in use", store=store)
    if "locked" in low or "busy" in low:
        return StoreError(f"{where} is busy: another writer kept it locked for more than "
                          f"{timeout:g} s; try again later", store=store)
    if "readonly" in low or "read-only" in low:
        return ReadOnlyError(f"{where} is read-only here: {text}", store=store)
    if "full" in low:
        return DiskFullError(f"{where} cannot grow: the disk is full ({text})", store=store)
    if "not a database" in low:
        return StoreError(f"{where} is not a usable SQLite database ({text})", store=store)
    if "malformed" in low or "corrupt" in low:
        return StoreError(f"{where} is damaged: {text}", store=store)
    return StoreError(f"SQLite error in {where}: {text}", store=store)
