"""The store folder of a :class:`FileSystemStore`: its marker file, internal folders, cleanup.

A store folder holds ``.storegui-store.json`` (the *marker*: format name,
layout version, key-name layout) and ``.storegui/`` with ``tmp/`` (files
being written), ``blobs/`` (data of large values) and ``trash/`` (undo copies
of open transactions). Everything else in it is the key tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass

from ..errors import StoreError
from ..localfiles.descriptors import DIR_FLAGS, NEW_FILE, READ_FLAGS, open_dir, write_all
from ..localfiles.tempfiles import STALE_AFTER, is_abandoned, remove_abandoned
from .dirs import remove_flat_dir
from .undo import recover_abandoned

MARKER = ".storegui-store.json"
INTERNAL = ".storegui"
FORMAT = "storegui-filesystem-store"
LAYOUT_VERSION = 1
_OWN_PREFIX = ".storegui"


@dataclass
class StoreDirs:
    """Open descriptors of a connected store folder (``-1`` where absent)."""

    root: int = -1
    tmp: int = -1
    blobs: int = -1
    trash: int = -1

    def close(self) -> None:
        """Close every descriptor."""
        for name in ("root", "tmp", "blobs", "trash"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


def open_store_dir(path: str, create: bool, adopt: bool, readonly: bool) -> tuple[StoreDirs, bool]:
    """Open (and if allowed create) the store folder ``path``; return its dirs and ``portable``.

    Raises
    ------
    StoreError
        The folder is missing (and may not be created), is not a folder, is a
        non-empty folder that is not a store (unless ``adopt``), or has a
        marker this version cannot read.
    """
    dirs = StoreDirs(root=_open_root(path, create and not readonly))
    try:
        layout = _read_marker(dirs.root, path)
        if layout is None:
            if readonly or not create:
                raise StoreError(f"{path!r} is not a storegui store (no {MARKER})")
            layout = _init_marker(dirs.root, path, adopt)
        if readonly:
            with contextlib.suppress(OSError):
                dirs.blobs = open_dir(dirs.root, [INTERNAL, "blobs"])
        else:
            try:
                dirs.tmp = open_dir(dirs.root, [INTERNAL, "tmp"], create=True)
                dirs.blobs = open_dir(dirs.root, [INTERNAL, "blobs"], create=True)
                dirs.trash = open_dir(dirs.root, [INTERNAL, "trash"], create=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot prepare the store folder {path!r}: {exc.strerror}"
                ) from None
            clean_abandoned(dirs)
    except BaseException:
        dirs.close()
        raise
    return dirs, layout == "portable"


def _open_root(path: str, create: bool) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        if not create:
            raise StoreError(f"the store folder {path!r} does not exist") from None
    except NotADirectoryError:
        raise StoreError(f"{path!r} is not a folder, so it cannot hold a store") from None
    except OSError as exc:
        raise StoreError(f"cannot open the store folder {path!r}: {exc.strerror}") from None
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise StoreError(
            f"cannot create the store folder {path!r}: its parent folder {parent!r} does not exist"
        )
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        return os.open(path, flags)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {path!r}: {exc.strerror}") from None


def _read_marker(root: int, path: str) -> str | None:
    where = os.path.join(path, MARKER)
    try:
        fd = os.open(MARKER, READ_FLAGS, dir_fd=root)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {where!r}: {exc.strerror}") from None
    try:
        text = os.read(fd, 1 << 16)
    except OSError as exc:
        raise StoreError(f"cannot read {where!r}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        doc = json.loads(text)
    except ValueError:
        raise StoreError(f"{where!r} is damaged (not JSON); the store cannot be opened") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StoreError(f"{where!r} does not describe a storegui filesystem store")
    version = doc.get("version")
    if version != LAYOUT_VERSION:
        raise StoreError(
            f"{path!r} has store layout version {version!r}; this storegui reads version "
            f"{LAYOUT_VERSION} (was it written by a newer storegui?)"
        )
    layout = doc.get("layout")
    if layout not in ("posix", "portable"):
        raise StoreError(f"{where!r} is damaged: unknown key layout {layout!r}")
    return layout


def _init_marker(root: int, path: str, adopt: bool) -> str:
    with os.scandir(root) as entries:
        # Our own leftovers (a first connect that was killed) are not foreign.
        foreign = sorted(e.name for e in entries if not e.name.startswith(_OWN_PREFIX))
    if foreign and not adopt:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise StoreError(
            f"{path!r} is not a storegui store (no {MARKER}) and already holds other files "
            f"({shown}); choose an empty or new folder, or pass adopt=True to make a store "
            f"there anyway (the files already there stay, and are not keys)"
        )
    try:
        layout = "portable" if _names_fold(root) else "posix"
        doc = {
            "format": FORMAT,
            "version": LAYOUT_VERSION,
            "layout": layout,
            "about": "storegui key-value store: key a/b is the record file a/b@v "
            "(see storegui.stores.filesystem.store)",
        }
        tmp = f"{MARKER}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, NEW_FILE, 0o666, dir_fd=root)
        try:
            write_all(fd, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, MARKER, src_dir_fd=root, dst_dir_fd=root)
    except OSError as exc:
        raise StoreError(f"cannot make {path!r} a store: {exc.strerror}") from None
    return layout


def _names_fold(root: int) -> bool:
    """Whether the filesystem treats names differing in case or Unicode normal form as equal."""
    stem = f"{_OWN_PREFIX}-probe-{secrets.token_hex(4)}-"
    name = stem + "a\u00e9"
    try:
        os.close(os.open(name, NEW_FILE, 0o666, dir_fd=root))
    except OSError:
        return True  # cannot even hold that name: escape everything non-ASCII
    try:
        for other in (stem + "A\u00e9", stem + "ae\u0301"):
            try:
                os.stat(other, dir_fd=root, follow_symlinks=False)
                return True
            except OSError:
                pass
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=root)


def clean_abandoned(dirs: StoreDirs, min_age: float = STALE_AFTER) -> int:
    """Remove temp files and transaction undo folders that dead writers left; return how many.

    Writers hold an exclusive ``flock`` on their temp file (and on the
    ``lock`` file of their transaction folder) while they work, so a file
    another live process is writing is never removed; ``min_age`` covers the
    moment between creating such a file and locking it. A dead transaction
    that journaled changes is rolled back first, whatever its age.
    """
    removed = remove_abandoned(dirs.tmp, min_age)
    with os.scandir(dirs.trash) as entries:
        names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    for name in names:
        # A journal means a dead transaction's changes are on disk: roll them back now.
        recovered = recover_abandoned(dirs.root, dirs.trash, name)
        if recovered is not None:
            removed += recovered
            continue
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=dirs.trash)
        except OSError:
            continue
        try:
            try:
                os.stat("lock", dir_fd=fd, follow_symlinks=False)
                dead = is_abandoned(fd, "lock", min_age)
            except FileNotFoundError:  # killed before it made its lock
                dead = time.time() - os.fstat(fd).st_mtime > min_age
        finally:
            os.close(fd)
        if dead:
            remove_flat_dir(dirs.trash, name)
            removed += 1
    return removed
