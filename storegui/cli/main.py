"""The ``storegui`` command: with no verb it opens the app; verbs script the stores.

``storegui`` alone (or with only workspace options) imports the Qt app lazily
and opens its window. Every verb (``ls``, ``get``, ``put``, ``meta``, ``push``,
``pull``, ``revert``, ``query``, ``workspaces``) runs without a display and
never imports Qt. Exit codes: 0 success, 1 the operation failed, 2 usage
error; an error is one line on stderr (``--debug`` adds the traceback), with
``--json`` a JSON object on one line (:func:`~storegui.cli.output.error_json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .. import APP_NAME, __version__
from ..config import (
    Workspace,
    WorkspaceOptionsError,
    add_workspace_options,
    resolve_workspace,
)
from ..stores.errors import StoreError
from .commands import COMMANDS
from .output import (
    CommandError,
    describe_error,
    error_key,
    error_kind,
    report_error,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

VALUE_HELP = (
    "VALUE is read as JSON when it parses as JSON (3, 2.5, true, null, [1,2], {\"a\":1}, "
    "\"quoted text\") and as plain text otherwise (hello, 2024-05-01, NaN)."
)


def parse_value(text: str) -> Any:
    """A metadata value typed on the command line: JSON if it parses, else the text itself."""

    def reject(constant: str) -> Any:
        # NaN and Infinity parse as JSON here but no store can hold them.
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=reject)
    except ValueError:
        return text


def assignment(text: str) -> tuple[str, Any]:
    """An argparse type: ``name=value`` -> ``(name, parsed value)``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, parse_value(value)


JSON_ERRORS_HELP = (
    'With --json an error is one JSON line on stderr instead: {"error": MESSAGE, '
    '"kind": KIND, "key": KEY or null}; KIND is "usage" (exit 2), "StoreKeyError", '
    '"InvalidKeyError", "InvalidMetadataError", "ReadOnlyError" or another store error\'s '
    'class name, "file" (a local file), "failed", "interrupted" or "internal".'
)


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are a JSON line when ``--json`` was given."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            _json_error(message, "usage")
            raise SystemExit(EXIT_USAGE)
        super().error(message)


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS keeps a subparser from overwriting what the main parser read
    # (`storegui --workspace w ls` and `storegui ls --workspace w` both work).
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    add_workspace_options(common.add_argument_group("workspace (default: the default workspace)"))
    common.add_argument("--json", action="store_true", help="output JSON for scripts")
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return common


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The argument parser, and each verb's sub-parser by name."""
    common = _common_options()
    parser = _Parser(
        prog=APP_NAME, parents=[common],
        description="Manage key-value stores: a writable mount store over a backing store. "
                    "Without a command, open the desktop app.",
        epilog="Exit status: 0 success, 1 the operation failed, 2 usage error. "
               + JSON_ERRORS_HELP,
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    verbs: dict[str, argparse.ArgumentParser] = {}

    def verb(name: str, help: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=description or help,
                           epilog=VALUE_HELP if name in ("put", "meta", "query") else None)
        verbs[name] = p
        return p

    p = verb("ls", "list a folder: origin, size, modified, name",
             "List the keys and folders directly under PREFIX (a folder, or a single key). "
             "origin is local (mount store only), shadowing (mount copy hides a backing "
             "copy) or remote (backing store only).")
    p.add_argument("prefix", nargs="?", default="", metavar="PREFIX")
    p.add_argument("-r", "--recursive", action="store_true", help="list every key under PREFIX")

    p = verb("get", "save a key's data to a file (or '-' for stdout)")
    p.add_argument("key", metavar="KEY")
    p.add_argument("file", nargs="?", metavar="FILE|-",
                   help="where to save (default: the key's last path part, in the current folder)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing file")

    p = verb("put", "store a file as a key",
             "Store FILE (or '-' for stdin) as KEY, with metadata filename, size, mtime, "
             "media_type and sha256 (stdin: no filename, mtime is the time of the write and "
             "media_type is guessed from the first bytes). A KEY ending with '/' is a "
             "folder: the file's name is appended. A KEY with an empty, '.' or '..' part "
             "is refused.")
    p.add_argument("key", metavar="KEY")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("--meta", action="append", type=assignment, default=[],
                   metavar="NAME=VALUE", help="extra metadata (repeatable)")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="FILE is a folder: store every file in it under KEY/FOLDER/... "
                        "(as a drop on the app does: links to folders, special files and "
                        "unreadable ones are skipped, listed, and the exit status is 1)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing key")

    p = verb("meta", "show or change a key's metadata")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--set", action="append", type=assignment, default=[], metavar="NAME=VALUE",
                   help="set a field (repeatable)")
    p.add_argument("--unset", action="append", default=[], metavar="NAME",
                   help="remove a field (repeatable)")

    for name, help_text in (
        ("push", "move local copies to the backing store (verified before the local copy goes)"),
        ("pull", "copy backing keys inside the mount point into the mount store"),
        ("revert", "drop local copies of shadowing keys so the backing version shows again"),
    ):
        p = verb(name, help_text,
                 f"{help_text[0].upper()}{help_text[1:]}. A KEY pushes, pulls or reverts that "
                 "key; a PREFIX ending with '/' every key under it.")
        p.add_argument("targets", nargs="+", metavar="KEY_OR_PREFIX")
        if name == "pull":
            p.add_argument("--overwrite", action="store_true",
                           help="replace local copies that already exist")

    p = verb("query", "find keys whose metadata has the given values")
    p.add_argument("criteria", nargs="*", type=assignment, metavar="NAME=VALUE")
    p.add_argument("-l", "--long", action="store_true", help="show each key's metadata too")

    p = verb("workspaces", "list saved workspaces (* marks the default)",
             "List saved workspaces; --save NAME saves the --backing/--mount/--mount-point "
             "given; --delete NAME forgets one.")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--save", metavar="NAME", help="save the given store URLs as NAME")
    group.add_argument("--delete", metavar="NAME", help="forget the saved workspace NAME")
    return parser, verbs


def workspace_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Workspace:
    """The workspace the options name (:func:`~storegui.config.resolve_workspace`).

    Usage mistakes exit through ``parser.error``.
    """
    try:
        return resolve_workspace(*(getattr(args, name, None)
                                   for name in ("workspace", "backing", "mount", "mount_point")))
    except WorkspaceOptionsError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps type checkers sure nothing is returned


def _error(message: str) -> None:
    report_error(message)


def _json_error(message: str, kind: str, key: Any = None) -> None:
    report_error(message, True, kind, key)


@contextlib.contextmanager
def _connected(ws: Workspace) -> Iterator[Any]:
    store = ws.open()
    store.connect()
    try:
        yield store
    finally:
        with contextlib.suppress(Exception):
            store.disconnect()


def _no_display() -> bool:
    # Qt aborts the whole process (no exception) when it finds no display:
    # on Linux say so first. QT_QPA_PLATFORM (offscreen, vnc...) needs none.
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch_app(argv: list[str]) -> int:
    """Open the desktop window (imports Qt only now).

    Raises
    ------
    CommandError
        If the app cannot be imported (PySide6 missing or broken).
    """
    if _no_display():
        raise CommandError("no display to open the desktop app on (run a COMMAND instead; "
                           "see storegui --help)")
    try:
        from ..app import run
    except ImportError as exc:
        raise CommandError(f"cannot start the desktop app: {exc}") from exc
    return int(run(argv) or 0)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return EXIT_FAILED


def _guarded(debug: bool, call: Callable[[], int], json_errors: bool = False) -> int:
    try:
        return call()
    except KeyboardInterrupt:
        if json_errors:
            _json_error("interrupted", "interrupted")
        else:
            sys.stderr.write(f"\n{APP_NAME}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`storegui ls | head`): stop quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except (StoreError, CommandError, KeyError, OSError, ValueError) as exc:
        if debug:
            traceback.print_exc()
        if json_errors:
            _json_error(describe_error(exc), error_kind(exc), error_key(exc))
        else:
            _error(describe_error(exc))
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, unless --debug asks for more
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {describe_error(exc)}"
        if json_errors:
            _json_error(message, "internal")
        else:
            _error(message + ("" if debug else " (--debug shows the traceback)"))
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, verbs = build_parser()
    # Known before parsing, so that a usage error found while parsing is JSON too.
    json_errors = "--json" in (argv[:argv.index("--")] if "--" in argv else argv)
    for p in (parser, *verbs.values()):
        p.json_errors = json_errors
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:
        return _exit_code(exc)
    debug = bool(getattr(args, "debug", False))
    if args.command is None:
        # The app reads its own options (and Qt's) from argv.
        return _guarded(debug, lambda: launch_app(argv), json_errors)
    verb_parser = verbs[args.command]
    command = COMMANDS[args.command]

    def run_verb() -> int:
        if extra:
            verb_parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "workspaces":
            return command(None, args, verb_parser)
        ws = workspace_of(args, verb_parser)
        with _connected(ws) as store:
            return command(store, args, verb_parser)

    try:
        return _guarded(debug, run_verb, json_errors)
    except SystemExit as exc:  # usage errors found after parsing
        return _exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
