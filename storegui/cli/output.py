"""How the command line shows things: tables, metadata lines, JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from ..stores.errors import StoreError, StoreKeyError
from ..stores.value import Entry


class CommandError(Exception):
    """A command cannot do what was asked; the message says why (exit code 1).

    ``key`` names the key concerned, if any (``--json`` errors report it).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def error_kind(exc: BaseException) -> str:
    """The ``kind`` of a ``--json`` error: a store error's class name (``StoreKeyError``,
    ``InvalidKeyError``, ``ReadOnlyError``...), ``file`` for a local file's error,
    ``failed`` for any other refusal of a command."""
    if isinstance(exc, StoreError):
        return type(exc).__name__
    if isinstance(exc, KeyError):
        return "StoreKeyError"
    if isinstance(exc, OSError):
        return "file"
    return "failed"


def error_json(message: str, kind: str, key: Any = None) -> dict:
    """An error as ``--json`` reports it (one line on stderr):
    ``{"error": message, "kind": kind, "key": key or null}``."""
    return {"error": message, "kind": kind, "key": key}


def report_error(message: str, as_json: bool = False, kind: str = "failed", key: Any = None,
                **extra: Any) -> None:
    """One error line on stderr: ``storegui: error: message``, or with ``as_json``
    the :func:`error_json` object (plus ``extra`` fields) on one line."""
    if as_json:
        line = json.dumps({**error_json(message, kind, key), **extra}, ensure_ascii=False)
    else:
        line = f"storegui: error: {message}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def error_key(exc: BaseException) -> Any:
    """The key an error concerns, or None."""
    key = getattr(exc, "key", None)
    if key is None and isinstance(exc, KeyError) and not isinstance(exc, StoreError) and exc.args:
        key = exc.args[0]
    return key if isinstance(key, str) else None


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, for stderr."""
    if isinstance(exc, StoreKeyError):
        # The default message also names the store ("... in MountedStore(...)"): too long
        # for a terminal line; messages that explain more are kept whole.
        plain = f"no such key {exc.key!r}"
        text = plain if exc.message.startswith(plain + " in ") else exc.message
    elif isinstance(exc, KeyError):
        text = f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    elif isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        text = f"{exc.filename}: {what}" if exc.filename is not None else what
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.splitlines())


def write_json(obj: Any, stream: TextIO | None = None) -> None:
    """Write ``obj`` as indented JSON (non-ASCII kept as is) and a newline."""
    stream = stream if stream is not None else sys.stdout
    stream.write(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def json_value(value: Any) -> str:
    """One metadata value as compact JSON text, the form ``--set name=VALUE`` reads back."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def format_time(epoch: float | None) -> str:
    """Local time ``YYYY-MM-DD HH:MM`` (``-`` if unknown)."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def table(rows: Iterable[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Lines of ``rows`` in aligned columns; column numbers in ``right`` align right.

    The last column is never padded, so names with spaces stay intact.
    """
    rows = [list(r) for r in rows]
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(ncols)]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i == len(row) - 1:
                cells.append(cell.rjust(widths[i]) if i in right else cell)
            else:
                cells.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return lines


def entry_row(entry: Entry, name: str) -> list[str]:
    """``origin, size, modified, name`` of a listing entry (folders end with ``/``)."""
    size = "-" if entry.is_dir or entry.size is None else str(entry.size)
    return [entry.origin or "-", size, format_time(entry.modified), name]


def entry_json(entry: Entry) -> dict:
    """A listing entry as a JSON-ready dict."""
    return {
        "key": entry.key,
        "name": entry.name,
        "is_dir": entry.is_dir,
        "origin": entry.origin,
        "size": entry.size,
        "modified": entry.modified,
    }


def metadata_lines(metadata: Mapping[str, Any]) -> list[str]:
    """``name = value`` lines, names sorted, values as JSON."""
    return [f"{name} = {json_value(metadata[name])}" for name in sorted(metadata)]
