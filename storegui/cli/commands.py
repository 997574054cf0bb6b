"""What each ``storegui`` verb does, given a connected MountedStore and its arguments.

Every command returns an exit code and reports failures by raising
(:class:`CommandError`, a StoreError, KeyError or OSError); ``storegui.cli.main``
turns those into one line on stderr. Nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import APP_NAME, config
from ..stores.errors import ReadOnlyError, StoreError, no_room_reason, write_error
from ..stores.importing import DERIVED, import_file, import_piped, plan_import, unreadable_reason
from ..stores.keys import check_path_key
from ..stores.metadata import field_name_problem
from ..stores.transfer.streaming import copy_stream
from ..stores.value import Entry
from .output import (
    CommandError,
    describe_error,
    entry_json,
    entry_row,
    error_key,
    error_kind,
    metadata_lines,
    report_error,
    table,
    write_json,
)
from .progress import ProgressBar, TransferBars

Command = Callable[[Any, argparse.Namespace, argparse.ArgumentParser], int]


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _lines(lines: list[str]) -> None:
    for line in lines:
        _out(line)


@contextlib.contextmanager
def _writing(store: Any, key: str) -> Iterator[None]:
    """Errors of writing ``key`` name the key and the store that holds it.

    A "no room" OSError (full disk, quota) becomes a DiskFullError naming
    both; a StoreError that names no key gets the key in front. Other
    OSErrors pass through: they are the source file's own (missing, no
    permission) and name it.
    """
    try:
        yield
    except OSError as exc:
        if no_room_reason(exc) is None:
            raise
        # inside the mount point a MountedStore writes to its mount store
        raise write_error(exc, key, getattr(store, "mount_store", store)) from exc
    except StoreError as exc:
        if exc.key is not None or repr(key) in exc.message:
            raise
        raise StoreError(f"cannot write {key!r}: {exc.message}", key, exc.store) from exc


# ---------------------------------------------------------------------------- ls


def _walk(store: Any, prefix: str) -> Iterator[Entry]:
    """Every key entry under ``prefix``, depth first in key order, via ``list_dir``."""
    stack = [iter(store.list_dir(prefix))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.is_dir:
            stack.append(iter(store.list_dir(entry.key)))
        else:
            yield entry


def cmd_ls(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``ls [PREFIX] [-r]``: one folder level (or every key with -r), or a single key."""
    prefix: str = args.prefix
    if prefix and not prefix.endswith("/") and store.exists(prefix):
        st = store.stat(prefix)
        entries = [Entry(prefix, False, st.size, st.modified, store.origin(prefix))]
        names = [prefix]
    else:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if args.recursive:
            entries = list(_walk(store, prefix))
            names = [e.key for e in entries]
        else:
            entries = list(store.list_dir(prefix))
            names = [e.key[len(prefix):] for e in entries]
        if not entries and prefix:
            raise CommandError(f"no such key or folder {args.prefix!r}")
    if getattr(args, "json", False):
        write_json([entry_json(e) for e in entries])
    else:
        _lines(table((entry_row(e, n) for e, n in zip(entries, names, strict=True)), right=(1,)))
    return 0


# ---------------------------------------------------------------------------- get


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _save_to_file(src: Any, dest: Path, progress: ProgressBar, total: int | None) -> int:
    """Stream ``src`` into ``dest`` through a temp file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            size = copy_stream(src, f, progress=progress, total=total)
        # mkstemp makes the file private (0600); give it the mode a new file gets.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size


def cmd_get(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``get KEY [FILE|-]``: save the key's data (atomically, refusing to overwrite)."""
    key: str = args.key
    to_stdout = args.file == "-"
    json_out = getattr(args, "json", False)
    if to_stdout and json_out:
        parser.error("--json cannot be used with '-': the data itself goes to stdout")
    dest = None
    if not to_stdout:
        name = key.rsplit("/", 1)[-1]
        dest = Path(args.file) if args.file else Path(name)
        if dest.is_dir():
            if not name:
                parser.error(f"{key!r} ends with '/': give a FILE name to save it as")
            dest = dest / name
        elif not name and not args.file:
            parser.error(f"{key!r} ends with '/': give a FILE name to save it as")
        # a symbolic link (even a dangling one) is a file in the way: --force
        # replaces the link itself, never the file it points to
        if dest.is_symlink() and not args.force:
            raise CommandError(f"{str(dest)!r} already exists as a symbolic link (use --force "
                               "to replace the link itself)")
        if dest.exists() and not args.force:
            raise CommandError(f"{str(dest)!r} already exists (use --force to replace it)")
        folder = dest.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise CommandError(f"cannot save {key!r} to {str(dest)!r}: the folder "
                               f"{str(folder)!r} {what}", key)
    value = store.get(key)
    existed = dest is not None and os.path.lexists(dest)
    try:
        with value.data as src, ProgressBar(key) as bar:
            if dest is None:
                out = sys.stdout.buffer
                size = copy_stream(src, out, progress=bar, total=value.size)
                out.flush()
            else:
                size = _save_to_file(src, dest, bar, value.size)
    except OSError as exc:
        reason = no_room_reason(exc)
        if reason is None:
            if dest is None or exc.filename in (None, str(dest)):
                raise
            # the error names the temporary file the data is written to first: name
            # the file asked for instead
            raise CommandError(f"cannot save {key!r} to {str(dest)!r}: "
                               f"{exc.strerror or exc}", key) from exc
        target = "standard output" if dest is None else repr(str(dest))
        if dest is None:
            after = ""  # what reached stdout before the error is out of our hands
        else:
            after = f"; {target} is as it was" if existed else "; nothing was saved"
        raise CommandError(f"cannot save {key!r} to {target}: {reason} "
                           f"({exc.strerror or exc}){after}") from exc
    if json_out:
        write_json({"key": key, "file": str(dest), "size": size})
    return 0


# ---------------------------------------------------------------------------- put


def _check_writable(store: Any, key: str) -> None:
    reason = store.write_denied_reason(key)
    if reason:
        raise ReadOnlyError(reason, key, store)


def _put_one(store: Any, key: str, path: Path, extra: dict, force: bool) -> dict:
    check_path_key(key)
    _check_writable(store, key)
    if not force and store.exists(key):
        raise CommandError(f"key {key!r} already exists (use --force to replace it)")
    with _writing(store, key), ProgressBar(key) as bar:
        return import_file(store, key, path, extra_metadata=extra, progress=bar)


def cmd_put(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``put KEY FILE|- [--meta n=v] [-r]``: import a file, stdin, or (-r) a folder.

    ``-r`` stores what :func:`~storegui.stores.importing.plan_import` plans
    (as a drop on the app does); what it skips is listed on stderr and the
    exit status is then 1.
    """
    key: str = args.key
    extra = dict(args.meta)
    _check_names(extra, parser, "--meta")
    json_out = getattr(args, "json", False)
    failed = False  # put -r skipped a file
    if args.file == "-":
        if not key or key.endswith("/"):
            parser.error(f"{key!r} is a folder: give the full key to store stdin as")
        check_path_key(key)
        _check_writable(store, key)
        if not args.force and store.exists(key):
            raise CommandError(f"key {key!r} already exists (use --force to replace it)")
        with _writing(store, key), ProgressBar(key) as bar:
            md = import_piped(store, key, sys.stdin.buffer, extra, progress=bar)
        results: Any = {"key": key, "metadata": md}
    elif args.recursive:
        path = Path(args.file)
        if not path.is_dir():
            raise CommandError(f"{args.file!r} is not a folder (-r imports a folder)")
        prefix = key if not key or key.endswith("/") else key + "/"
        plan = plan_import(prefix, [path])  # the files, keys and skips of a drop, too
        for planned in plan.files:
            check_path_key(planned.key)
            _check_writable(store, planned.key)
            if not args.force and store.exists(planned.key):
                raise CommandError(f"key {planned.key!r} already exists "
                                   "(use --force to replace it)")
        results, skipped = [], list(plan.skipped)
        for f in plan.files:
            try:
                md = _put_one(store, f.key, Path(f.path), extra, True)
            except OSError as exc:  # unreadable, or gone since planned: skipped, as in a drop
                skipped.append((f.path, unreadable_reason(f.path, exc)))
            else:
                results.append({"key": f.key, "metadata": md})
        for path_skipped, reason in skipped:
            if json_out:
                report_error(f"skipped {path_skipped!r}: {reason}", True, "skipped",
                            path=str(path_skipped))
            else:
                sys.stderr.write(f"{APP_NAME}: skipped {path_skipped!r}: {reason}\n")
        failed = bool(skipped)
    else:
        path = Path(args.file)
        if path.is_dir():
            raise CommandError(f"{args.file!r} is a folder (use -r to store the files in it)")
        if not key or key.endswith("/"):
            key += path.name
        results = {"key": key, "metadata": _put_one(store, key, path, extra, args.force)}
    if json_out:
        write_json(results)
    return 1 if failed else 0


# ---------------------------------------------------------------------------- meta


def _check_names(names: Any, parser: argparse.ArgumentParser, option: str,
                 existing: Any = ()) -> None:
    """Refuse (a usage error) a new field name the app would refuse too."""
    for name in names:
        problem = None if name in existing else field_name_problem(name)
        if problem:
            parser.error(f"{option} {name}=...: {problem}")


def _warn(message: str, json_out: bool, **fields: Any) -> None:
    if json_out:
        sys.stderr.write(json.dumps({"warning": message, **fields}, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"{APP_NAME}: warning: {message}\n")


def cmd_meta(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``meta KEY [--set n=v] [--unset n]``: show, or change, a key's metadata.

    A new field's name must be one :func:`~storegui.stores.metadata.field_name_problem`
    accepts (as in the app); ``--unset`` of a field the key does not have
    fails (nothing is changed); ``--set`` of a derived field (size, sha256,
    mtime) warns that the value no longer comes from the data.
    """
    key: str = args.key
    changes = dict(args.set)
    json_out = getattr(args, "json", False)
    if changes or args.unset:
        _check_writable(store, key)
        with _writing(store, key), store.transaction(f"meta {key}"):
            md = store.get_metadata(key)
            _check_names(changes, parser, "--set", existing=md)
            missing = [name for name in dict.fromkeys(args.unset) if name not in md]
            if missing:
                names = ", ".join(repr(n) for n in missing)
                raise CommandError(f"key {key!r} has no field {names} to unset "
                                   "(nothing was changed)", key)
            for name in changes:
                if name in DERIVED:
                    _warn(f"{name!r} of {key!r} is normally computed from its data "
                          f"({', '.join(DERIVED)}); the value set replaces it until the "
                          "data is written again", json_out, key=key, field=name)
            if args.unset:
                for name in args.unset:
                    md.pop(name, None)
                md.update(changes)
                store.set_metadata(key, md)
            else:
                store.update_metadata(key, changes)
        if not json_out:
            return 0
    md = store.get_metadata(key)
    if json_out:
        write_json(md)
    else:
        _lines(metadata_lines(md))
    return 0


# ---------------------------------------------------------------------------- push / pull / revert


_PAST = {"push": "pushed", "pull": "pulled", "revert": "reverted"}


def cmd_transfer(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``push|pull|revert KEY_OR_PREFIX...``: each target in turn; failures do not stop the rest."""
    action: str = args.command
    json_out = getattr(args, "json", False)
    done: list[str] = []
    errors: list[dict] = []

    def report(target: str, keys: list[str], exc: BaseException | None) -> None:
        done.extend(keys)
        if exc is not None:
            message = describe_error(exc)
            report_error(message, json_out, error_kind(exc), error_key(exc), target=target)
            errors.append({"target": target, "error": message, "kind": error_kind(exc),
                           "key": error_key(exc)})
        elif not json_out:
            _lines([f"{_PAST[action]} {k}" for k in keys])
            if not keys:
                sys.stderr.write(f"storegui: nothing to {action} for {target!r}\n")

    try:
        if action == "revert":
            store.revert_many(args.targets, report=report)
        else:
            options = {"overwrite": True} if getattr(args, "overwrite", False) else {}
            getattr(store, f"{action}_many")(args.targets, report=report,
                                             progress=TransferBars(), **options)
    except (StoreError, KeyError, OSError):
        if not errors:  # not a target's failure (each was reported as it came)
            raise
    if json_out:
        write_json({"action": action, "keys": done, "errors": errors})
    return 1 if errors else 0


# ---------------------------------------------------------------------------- query


def cmd_query(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``query NAME=VALUE...``: keys whose metadata has all those values."""
    criteria = dict(args.criteria)
    json_out = getattr(args, "json", False)
    if json_out or args.long:
        found = sorted(store.query(**criteria))
        if json_out:
            write_json([{"key": k, "metadata": md} for k, md in found])
        else:
            _lines([f"{k}  {json.dumps(md, ensure_ascii=False, sort_keys=True)}"
                    for k, md in found])
    else:
        _lines(sorted(store.query_keys(**criteria)))
    return 0


# ---------------------------------------------------------------------------- workspaces


def cmd_workspaces(store: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``workspaces [--save NAME | --delete NAME]``: list, save or forget workspaces."""
    backing = getattr(args, "backing", None)
    mount = getattr(args, "mount", None)
    mount_point = getattr(args, "mount_point", None)
    if args.save is not None:
        if backing is None or mount is None:
            parser.error("--save needs --backing and --mount (and optionally --mount-point)")
        ws = config.workspace_from_urls(config.absolute_url(backing), config.absolute_url(mount),
                                        mount_point or "", name=args.save)
        problem = config.workspace_problem(ws)
        if problem:
            parser.error(problem)
        config.save_workspace(ws)
    elif args.delete is not None:
        config.delete_workspace(args.delete)
    elif backing is not None or mount is not None or mount_point is not None:
        parser.error("--backing/--mount/--mount-point are only used with --save")
    workspaces = config.load_workspaces()
    if getattr(args, "json", False):
        write_json([{**ws.to_dict(), "default": ws.name == config.DEFAULT_NAME}
                    for ws in workspaces])
        return 0
    rows = [["", "NAME", "BACKING", "MOUNT", "MOUNT POINT"]]
    for ws in workspaces:
        rows.append(["*" if ws.name == config.DEFAULT_NAME else "", ws.name, ws.backing_url,
                     ws.mount_url, ws.mount_point or "''"])
    _lines(table(rows))
    return 0


COMMANDS: dict[str, Command] = {
    "ls": cmd_ls,
    "get": cmd_get,
    "put": cmd_put,
    "meta": cmd_meta,
    "push": cmd_transfer,
    "pull": cmd_transfer,
    "revert": cmd_transfer,
    "query": cmd_query,
    "workspaces": cmd_workspaces,
}

