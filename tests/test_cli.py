"""The command line: every verb on temporary workspaces, in-process and as a real process.

The workspace: a directory backing store, an SQLite mount store mounted at
``data/``. Backing keys: data/remote.txt, data/shared.txt, other/readme.txt;
mount copies: data/shared.txt (shadowing) and data/local.txt (local only).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_helpers import FullDisk

from storegui import __version__
from storegui.cli.main import main, parse_value
from storegui.cli.progress import ProgressBar, format_bytes, format_duration
from storegui.config import Workspace
from storegui.stores import MemoryStore, MountedStore

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def ws(tmp_path) -> Workspace:
    backing = tmp_path / "backing"
    backing.mkdir()
    ws = Workspace("t", str(backing), f"sqlite://{tmp_path / 'mount.db'}", "data/")
    with ws.open() as store:
        remote = store.backing_store
        remote.from_bytes("data/remote.txt", b"remote\n", {"kind": "remote", "n": 1})
        remote.from_bytes("data/shared.txt", b"old\n", {"kind": "remote"})
        remote.from_bytes("other/readme.txt", b"read me\n", {"kind": "doc"})
        store.from_bytes("data/shared.txt", b"new\n", {"kind": "local"})
        store.from_bytes("data/local.txt", b"local\n", {"kind": "local", "n": 3})
    return ws


def where(ws: Workspace) -> list[str]:
    return ["--backing", ws.backing_url, "--mount", ws.mount_url, "--mount-point", ws.mount_point]


@pytest.fixture
def cli(ws, capsys):
    """Run ``main`` in-process on the workspace; return (code, stdout, stderr)."""

    def run(*args: str, workspace: bool = True) -> Result:
        code = main([*args, *(where(ws) if workspace else [])])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def read(ws: Workspace, key: str) -> tuple[bytes, dict, str]:
    with ws.open() as store:
        return store.to_bytes(key), store.get_metadata(key), store.origin(key)


def exists(ws: Workspace, key: str) -> bool:
    with ws.open() as store:
        return store.exists(key)


def one_error_line(result: Result, *fragments: str) -> None:
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("storegui: error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------- values


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("2.5", 2.5), ("true", True), ("null", None), ("[1,2]", [1, 2]),
    ('{"a":1}', {"a": 1}), ('"quoted"', "quoted"), ('"3"', "3"), ("hello", "hello"),
    ("2024-05-01", "2024-05-01"), ("NaN", "NaN"), ("Infinity", "Infinity"), ("", ""),
    ("a=b", "a=b"),
])
def test_values_are_json_if_they_parse_else_text(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


# ---------------------------------------------------------------------------- ls


def test_ls_root_shows_folders_with_their_origin(cli):
    r = cli("ls")
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [("shadowing", "data/"), ("remote", "other/")]


def test_ls_folder_columns_origin_size_modified_name(cli):
    r = cli("ls", "data/")
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    assert [(row[0], row[1], row[-1]) for row in rows] == [
        ("local", "6", "local.txt"), ("remote", "7", "remote.txt"),
        ("shadowing", "4", "shared.txt")]
    assert all(len(row) == 5 for row in rows)  # origin, size, date, time, name


def test_ls_without_trailing_slash_and_of_a_single_key(cli):
    assert cli("ls", "data").out == cli("ls", "data/").out
    r = cli("ls", "data/shared.txt")
    assert r.code == 0
    assert r.out.split()[0] == "shadowing" and r.out.split()[-1] == "data/shared.txt"


def test_ls_json_and_recursive(cli):
    r = cli("ls", "--json")
    entries = json.loads(r.out)
    assert [(e["key"], e["is_dir"], e["origin"]) for e in entries] == [
        ("data/", True, "shadowing"), ("other/", True, "remote")]
    r = cli("ls", "-r", "--json")
    entries = json.loads(r.out)
    assert [(e["key"], e["origin"], e["size"]) for e in entries] == [
        ("data/local.txt", "local", 6), ("data/remote.txt", "remote", 7),
        ("data/shared.txt", "shadowing", 4), ("other/readme.txt", "remote", 8)]
    assert all(isinstance(e["modified"], float) for e in entries)
    assert cli("ls", "--recursive").out.split()[-1] == "other/readme.txt"


def test_ls_of_nothing_fails(cli):
    one_error_line(cli("ls", "nowhere/"), "no such key or folder 'nowhere/'")


# ---------------------------------------------------------------------------- put and get


def test_put_then_get_round_trip_with_metadata(cli, ws, tmp_path, monkeypatch):
    data = os.urandom(200_000)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    r = cli("put", "data/in/blob.bin", str(src), "--meta", "count=3", "--meta", "ok=true",
            "--meta", "tags=[1,2]", "--meta", "note=hello world", "--meta", 'code="7"')
    assert (r.code, r.out, r.err) == (0, "", "")
    stored, md, origin = read(ws, "data/in/blob.bin")
    assert stored == data and origin == "local"
    assert md == {"filename": "blob.bin", "size": len(data), "mtime": src.stat().st_mtime,
                  "media_type": "application/octet-stream",
                  "sha256": hashlib.sha256(data).hexdigest(),
                  "count": 3, "ok": True, "tags": [1, 2], "note": "hello world", "code": "7"}

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    r = cli("get", "data/in/blob.bin", "out/")
    assert r.code == 0, r.err
    assert (tmp_path / "out" / "blob.bin").read_bytes() == data
    # A saved file gets the usual permissions, not a temp file's private ones.
    assert (tmp_path / "out" / "blob.bin").stat().st_mode & 0o644 == 0o644
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    r = cli("get", "data/remote.txt", "--json")
    assert json.loads(r.out) == {"key": "data/remote.txt", "file": "remote.txt", "size": 7}
    assert (tmp_path / "remote.txt").read_bytes() == b"remote\n"


def test_put_into_a_folder_key_appends_the_file_name(cli, ws, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("hi")
    r = cli("put", "data/docs/", str(src), "--json")
    out = json.loads(r.out)
    assert out["key"] == "data/docs/notes.txt"
    assert out["metadata"]["media_type"] == "text/plain"
    assert read(ws, "data/docs/notes.txt")[0] == b"hi"


def test_put_refuses_to_replace_a_key_without_force(cli, ws, tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("replacement")
    one_error_line(cli("put", "data/local.txt", str(src)), "'data/local.txt' already exists",
                   "--force")
    assert read(ws, "data/local.txt")[0] == b"local\n"
    assert cli("put", "data/local.txt", str(src), "--force").code == 0
    assert read(ws, "data/local.txt")[0] == b"replacement"


def test_put_outside_the_mount_point_is_read_only(cli, ws, tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("x")
    one_error_line(cli("put", "other/x.txt", str(src)), "outside the mount point 'data/'",
                   "read-only")
    assert not exists(ws, "other/x.txt")


def test_put_of_a_missing_file_or_a_folder_fails_clearly(cli, tmp_path):
    one_error_line(cli("put", "data/x", str(tmp_path / "absent.txt")), "absent.txt",
                   "No such file")
    one_error_line(cli("put", "data/x", str(tmp_path)), "is a folder", "-r")


def test_put_recursive_imports_a_folder(cli, ws, tmp_path):
    (tmp_path / "pics" / "sub").mkdir(parents=True)
    (tmp_path / "pics" / "a.png").write_bytes(b"A")
    (tmp_path / "pics" / "sub" / "b.png").write_bytes(b"B")
    r = cli("put", "-r", "data/up", str(tmp_path / "pics"), "--json")
    assert r.code == 0, r.err
    assert [e["key"] for e in json.loads(r.out)] == ["data/up/pics/a.png", "data/up/pics/sub/b.png"]
    _, md, _ = read(ws, "data/up/pics/sub/b.png")
    assert md["media_type"] == "image/png" and md["filename"] == "b.png"


@pytest.mark.parametrize(("key", "says"), [
    ("data/../x", "has a '..' part"), ("data/a//b", "has two in a row"),
    ("data/./b", "has a '.' part"),
])
def test_put_refuses_keys_with_empty_dot_or_dot_dot_parts(cli, ws, tmp_path, monkeypatch, key,
                                                          says):
    src = tmp_path / "f.txt"
    src.write_bytes(b"x")
    one_error_line(cli("put", key, str(src)), says)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped")))
    one_error_line(cli("put", key, "-"), says)
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "f.txt").write_bytes(b"y")
    one_error_line(cli("put", key + "/", str(folder), "-r"), says)
    with ws.open() as store:
        assert not [k for k in store.keys() if ".." in k or "//" in k or "/./" in k]


def test_put_from_stdin(cli, ws, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped bytes")))
    r = cli("put", "data/piped", "-", "--meta", "source=pipe")
    assert r.code == 0, r.err
    data, md, _ = read(ws, "data/piped")
    assert data == b"piped bytes"
    mtime = md.pop("mtime")
    assert abs(mtime - time.time()) < 60
    assert md == {"source": "pipe", "size": 11, "sha256": hashlib.sha256(data).hexdigest(),
                  "media_type": "text/plain"}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"%PDF-1.4\n\x00\xff")))
    assert cli("put", "data/piped.bin", "-").code == 0
    assert read(ws, "data/piped.bin")[1]["media_type"] == "application/pdf"


def test_get_refuses_to_overwrite_without_force(cli, tmp_path):
    dest = tmp_path / "mine.txt"
    dest.write_text("precious")
    one_error_line(cli("get", "data/shared.txt", str(dest)), "already exists", "--force")
    assert dest.read_text() == "precious"
    assert cli("get", "data/shared.txt", str(dest), "-f").code == 0
    assert dest.read_bytes() == b"new\n"


def test_get_refuses_a_symlink_and_force_replaces_the_link_itself(cli, tmp_path):
    target = tmp_path / "target.txt"
    dangling, live = tmp_path / "dangling.txt", tmp_path / "live.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    live.symlink_to(target)
    target.write_text("precious")
    for link in (dangling, live):
        one_error_line(cli("get", "data/shared.txt", str(link)),
                       repr(str(link)), "symbolic link", "--force")
        assert link.is_symlink()
    assert not (tmp_path / "nowhere.txt").exists()
    for link in (dangling, live):
        assert cli("get", "data/shared.txt", str(link), "--force").code == 0
        assert not link.is_symlink() and link.read_bytes() == b"new\n"
    # never written through the links
    assert not (tmp_path / "nowhere.txt").exists()
    assert target.read_text() == "precious"


def test_get_into_a_folder_refuses_a_dangling_link_there(cli, tmp_path):
    (tmp_path / "shared.txt").symlink_to(tmp_path / "nowhere")
    one_error_line(cli("get", "data/shared.txt", str(tmp_path)), "symbolic link")
    assert (tmp_path / "shared.txt").is_symlink() and not (tmp_path / "nowhere").exists()


def test_get_into_a_missing_folder_names_the_target_not_a_temporary_file(cli, tmp_path):
    target = tmp_path / "missing" / "dir" / "x.txt"
    r = cli("get", "data/local.txt", str(target))
    one_error_line(r, f"cannot save 'data/local.txt' to '{target}'",
                   f"the folder '{target.parent}' does not exist")
    assert ".part" not in r.err
    (tmp_path / "file").write_text("")
    one_error_line(cli("get", "data/local.txt", str(tmp_path / "file" / "x.txt")),
                   "is not a folder")


def test_get_into_an_unwritable_folder_names_the_target(cli, tmp_path, monkeypatch):
    from storegui.cli import commands

    def refused(src, dest, bar, size):  # as writing the temporary file fails there
        raise PermissionError(13, "Permission denied", str(dest.parent / ".x.txt.or1z.part"))

    monkeypatch.setattr(commands, "_save_to_file", refused)
    target = tmp_path / "x.txt"
    r = cli("get", "data/local.txt", str(target))
    one_error_line(r, f"cannot save 'data/local.txt' to '{target}': Permission denied")
    assert ".part" not in r.err


def test_get_to_a_full_disk_names_the_key(ws):
    with open("/dev/full", "wb") as full:
        r = storegui("get", "data/shared.txt", "-", ws=ws, stdout=full)
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == [
        "storegui: error: cannot save 'data/shared.txt' to standard output: the disk is full "
        "(No space left on device)"]


def test_get_to_stdout_is_binary(ws, capsysbinary):
    assert main(["get", "data/shared.txt", "-", *where(ws)]) == 0
    assert capsysbinary.readouterr().out == b"new\n"


def test_get_of_a_missing_key_is_one_line(cli, tmp_path):
    r = cli("get", "data/absent.txt", str(tmp_path / "a.txt"))
    one_error_line(r, "no such key 'data/absent.txt'")
    assert not (tmp_path / "a.txt").exists()


def test_debug_adds_the_traceback(cli, tmp_path):
    r = cli("get", "data/absent.txt", str(tmp_path / "a.txt"), "--debug")
    assert r.code == 1
    assert r.err.startswith("Traceback")
    assert r.err.strip().splitlines()[-1] == "storegui: error: no such key 'data/absent.txt'"


def full_disk_workspace(monkeypatch, full: FullDisk) -> None:
    """Every workspace the CLI opens gets the FullDisk as its mount store."""
    backing = MemoryStore()
    monkeypatch.setattr(Workspace, "open", lambda self: MountedStore("data/", full, backing))


def test_put_on_a_full_disk_names_the_key_and_the_store(cli, monkeypatch, tmp_path):
    full = FullDisk()
    full_disk_workspace(monkeypatch, full)
    src = tmp_path / "f.txt"
    src.write_bytes(b"old value")
    assert cli("put", "data/k", str(src)).code == 0
    full.full = True
    src.write_bytes(b"new value")
    for args in (["put", "data/k", str(src), "--force"], ["put", "data/new", str(src)]):
        key = args[1]
        r = cli(*args)
        one_error_line(r, f"cannot write {key!r} to the store memory://: the disk is full "
                          f"(No space left on device); nothing was written: {key!r} is as it was. "
                          "Free some space and try again")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"piped")))
    one_error_line(cli("put", "data/piped", "-"), "cannot write 'data/piped'", "the disk is full")
    one_error_line(cli("meta", "data/k", "--set", "n=1"), "cannot write 'data/k'",
                   "the disk is full")
    full.full = False
    # the mount store holds the keys under the mount point, relative to it
    assert full.to_bytes("k") == b"old value"
    assert "n" not in full.get_metadata("k")
    assert sorted(full.keys()) == ["k"]


def test_put_over_a_file_size_limit_as_a_process(ws, tmp_path):
    """A real store, a real process: writes beyond RLIMIT_FSIZE fail with EFBIG."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300_000))
    mount = tmp_path / "mount-folder"
    args = ["put", "k", str(src), "--backing", ws.backing_url, "--mount", str(mount)]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    r = storegui(*args, preexec_fn=limit)
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == [
        f"storegui: error: cannot write 'k' to the store file://{mount}: the file is larger than "
        "the file system or a file size limit allows (File too large); nothing was written: "
        "'k' is as it was. Store it where larger files are allowed"]
    r = storegui("ls", "k", "--backing", ws.backing_url, "--mount", str(mount))
    assert (r.returncode, r.stderr) == (1, b"storegui: error: no such key or folder 'k'\n")


# ---------------------------------------------------------------------------- meta


def test_meta_shows_sets_and_unsets(cli, ws):
    r = cli("meta", "data/local.txt")
    assert r.out == 'kind = "local"\nn = 3\n'
    assert json.loads(cli("meta", "data/local.txt", "--json").out) == {"kind": "local", "n": 3}
    r = cli("meta", "data/local.txt", "--set", "n=4", "--set", "tags=[\"a\"]", "--set", "s=text")
    assert (r.code, r.out) == (0, "")
    assert read(ws, "data/local.txt")[1] == {"kind": "local", "n": 4, "tags": ["a"], "s": "text"}
    r = cli("meta", "data/local.txt", "--unset", "tags", "--json")
    assert json.loads(r.out) == {"kind": "local", "n": 4, "s": "text"}
    assert read(ws, "data/local.txt")[1] == {"kind": "local", "n": 4, "s": "text"}


def test_meta_unset_of_a_missing_field_fails_and_changes_nothing(cli, ws):
    r = cli("meta", "data/local.txt", "--unset", "kind", "--unset", "never-there")
    one_error_line(r, "'data/local.txt' has no field 'never-there'")
    assert read(ws, "data/local.txt")[1] == {"kind": "local", "n": 3}


@pytest.mark.parametrize("name", ["1x", "a-b", "with space", "ä.b"])
def test_meta_and_put_refuse_names_the_app_refuses(cli, ws, tmp_path, name):
    from storegui.app.panels.value_types import name_problem
    from storegui.stores.metadata import field_name_problem

    assert name_problem(name) == field_name_problem(name) is not None  # one rule
    r = cli("meta", "data/local.txt", "--set", f"{name}=3")
    assert r.code == 2 and "is not a valid name" in r.err and name in r.err
    src = tmp_path / "f.txt"
    src.write_bytes(b"x")
    r = cli("put", "data/f.txt", str(src), "--meta", f"{name}=3")
    assert r.code == 2 and "is not a valid name" in r.err
    assert read(ws, "data/local.txt")[1] == {"kind": "local", "n": 3}
    assert not exists(ws, "data/f.txt")


def test_meta_keeps_accepting_a_name_the_key_already_has(cli, ws):
    with ws.open() as store:
        store.update_metadata("data/local.txt", {"odd-name": 1})
    assert cli("meta", "data/local.txt", "--set", "odd-name=2").code == 0
    assert cli("meta", "data/local.txt", "--unset", "odd-name").code == 0
    assert read(ws, "data/local.txt")[1] == {"kind": "local", "n": 3}


def test_meta_set_of_a_derived_field_warns(cli, ws):
    r = cli("meta", "data/local.txt", "--set", "size=5")
    assert r.code == 0
    assert r.err.startswith("storegui: warning: 'size' of 'data/local.txt' is normally computed")
    assert read(ws, "data/local.txt")[1]["size"] == 5
    r = cli("meta", "data/local.txt", "--set", "sha256=x", "--json")
    warning = json.loads(r.err)
    assert (warning["field"], warning["key"]) == ("sha256", "data/local.txt")
    assert cli("meta", "data/local.txt", "--set", "note=1").err == ""


def test_meta_set_on_a_remote_key_makes_a_local_copy(cli, ws):
    assert cli("meta", "data/remote.txt", "--set", "reviewed=true").code == 0
    data, md, origin = read(ws, "data/remote.txt")
    assert (data, md, origin) == (b"remote\n", {"kind": "remote", "n": 1, "reviewed": True},
                                  "shadowing")


def test_meta_errors(cli, ws):
    one_error_line(cli("meta", "data/absent"), "no such key 'data/absent'")
    one_error_line(cli("meta", "data/absent", "--set", "a=1"), "no such key 'data/absent'")
    one_error_line(cli("meta", "other/readme.txt", "--set", "a=1"), "read-only")
    assert read(ws, "other/readme.txt")[1] == {"kind": "doc"}


# ---------------------------------------------------------------------------- push / pull / revert


def test_push_a_key_and_a_prefix(cli, ws, tmp_path):
    r = cli("push", "data/local.txt")
    assert (r.code, r.out) == (0, "pushed data/local.txt\n"), r.err
    assert read(ws, "data/local.txt")[2] == "remote"
    r = cli("push", "data/", "--json")
    assert json.loads(r.out) == {"action": "push", "keys": ["data/shared.txt"], "errors": []}
    data, md, origin = read(ws, "data/shared.txt")
    assert (data, md, origin) == (b"new\n", {"kind": "local"}, "remote")


def test_push_failures_name_the_key_and_do_not_stop_the_rest(cli, ws):
    r = cli("push", "data/remote.txt", "data/local.txt", "--json")
    assert r.code == 1
    out = json.loads(r.out)
    assert out["keys"] == ["data/local.txt"]
    assert [e["target"] for e in out["errors"]] == ["data/remote.txt"]
    assert out["errors"][0]["key"] == "data/remote.txt"
    (line,) = r.err.strip().splitlines()  # with --json, the error line is JSON too
    assert json.loads(line)["target"] == "data/remote.txt"
    one_error_line(cli("push", "data/remote.txt"), "data/remote.txt")


def test_push_of_a_key_that_does_not_exist_says_no_such_key(cli):
    one_error_line(cli("push", "data/nope"), "no such key 'data/nope'")
    one_error_line(cli("revert", "data/nope"), "no such key 'data/nope'")
    one_error_line(cli("push", "data/remote.txt"), "'data/remote.txt' has no local copy to push")


def test_pull_and_revert(cli, ws):
    r = cli("pull", "data/remote.txt")
    assert (r.code, r.out) == (0, "pulled data/remote.txt\n"), r.err
    assert read(ws, "data/remote.txt")[2] == "shadowing"
    # shared.txt already has a local copy: pull leaves it unless --overwrite.
    assert cli("pull", "data/shared.txt").out == ""
    assert read(ws, "data/shared.txt")[0] == b"new\n"
    r = cli("pull", "data/shared.txt", "--overwrite", "--json")
    assert json.loads(r.out)["keys"] == ["data/shared.txt"]
    assert read(ws, "data/shared.txt")[0] == b"old\n"

    r = cli("revert", "data/", "--json")
    assert sorted(json.loads(r.out)["keys"]) == ["data/remote.txt", "data/shared.txt"]
    assert read(ws, "data/shared.txt")[2] == "remote"
    assert read(ws, "data/local.txt")[2] == "local"  # nothing to revert to: kept


def test_pull_outside_the_mount_point_fails(cli):
    one_error_line(cli("pull", "other/readme.txt"), "other/readme.txt")


# ---------------------------------------------------------------------------- query


def test_query(cli):
    r = cli("query", "kind=local")
    assert r.out == "data/local.txt\ndata/shared.txt\n"
    # The shadowed backing copy of shared.txt says kind=remote, but get shows the local one.
    assert cli("query", "kind=remote").out == "data/remote.txt\n"
    assert cli("query", "n=3").out == "data/local.txt\n"
    assert cli("query", 'n="3"').out == ""
    r = cli("query", "kind=doc", "--long")
    assert r.out == 'other/readme.txt  {"kind": "doc"}\n'
    r = cli("query", "kind=local", "--json")
    assert json.loads(r.out) == [
        {"key": "data/local.txt", "metadata": {"kind": "local", "n": 3}},
        {"key": "data/shared.txt", "metadata": {"kind": "local"}}]
    assert len(cli("query").out.splitlines()) == 4


# ---------------------------------------------------------------------------- workspaces


def test_workspaces_list_save_use_delete(cli, ws, tmp_path):
    r = cli("workspaces", workspace=False)
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "BACKING", "MOUNT", "MOUNT", "POINT"]
    assert lines[1].split()[:2] == ["*", "default"]
    r = cli("workspaces", "--save", "proj", *where(ws), workspace=False)
    assert r.code == 0, r.err
    listed = json.loads(cli("workspaces", "--json", workspace=False).out)
    assert [(w["name"], w["default"]) for w in listed] == [("default", True), ("proj", False)]
    assert listed[1]["mount_point"] == "data/"
    assert cli("ls", "data/", "--workspace", "proj", workspace=False).out == cli("ls", "data/").out
    assert cli("workspaces", "--delete", "proj", workspace=False).code == 0
    one_error_line(cli("ls", "--workspace", "proj", workspace=False), "no workspace called 'proj'")
    one_error_line(cli("workspaces", "--delete", "default", workspace=False), "cannot be deleted")


def test_saved_workspaces_keep_absolute_paths(cli, ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("workspaces", "--save", "rel", "--backing", "backing", "--mount", "sqlite://mount.db",
            "--mount-point", "data/", "--json", workspace=False)
    saved = json.loads(r.out)[1]
    assert saved["backing_url"] == str(tmp_path / "backing")
    assert saved["mount_url"] == f"sqlite://{tmp_path / 'mount.db'}"
    monkeypatch.chdir(ROOT)
    assert cli("ls", "data/", "--workspace", "rel", workspace=False).out == cli("ls", "data/").out


# every kind of damage, in-process, is in tests/test_config.py
@pytest.mark.parametrize("text", ['{"workspaces": null}', "[1, 2]", '{"workspaces": ['])
def test_a_damaged_workspace_list_as_a_process(ws, text):
    state = Path(os.environ["XDG_CONFIG_HOME"]) / "storegui" / "workspaces.json"
    state.parent.mkdir(parents=True)
    state.write_text(text)
    for args in (["workspaces"], ["workspaces", "--save", "p2", *where(ws)],
                 ["workspaces", "--delete", "p"], ["ls", "--workspace", "p"]):
        r = storegui(*args)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"storegui: error: the workspace list {state} is damaged: ")
        assert "Fix it in a text editor, or move it away" in lines[0]
        assert "internal error" not in lines[0]
    assert state.read_text() == text
    assert os.listdir(state.parent) == ["workspaces.json"]
    # the default workspace does not need the list
    assert storegui("ls", "--json").returncode == 0


def test_saving_as_default_is_refused(cli, ws):
    r = cli("workspaces", "--save", "default", *where(ws), workspace=False)
    assert r.code == 2
    assert r.err.strip().splitlines()[-1] == (
        "storegui workspaces: error: 'default' is the name of the built-in default workspace: "
        "choose another name")
    listed = json.loads(cli("workspaces", "--json", workspace=False).out)
    assert [w["name"] for w in listed] == ["default"]
    assert listed[0]["backing_url"] != ws.backing_url


@pytest.mark.parametrize(("name", "problem"), [
    ("two\nlines", "the workspace name 'two\\nlines' contains U+000A, a line break or control "
                   "character: use letters, digits, spaces and punctuation"),
    ("tab\t", "contains U+0009"),
    (" padded", "the workspace name ' padded' starts or ends with a space: remove it"),
    ("", "a workspace name must not be empty"),
    ("  ", "a workspace name must not be empty"),
])
def test_bad_workspace_names_are_refused(cli, ws, name, problem):
    r = cli("workspaces", "--save", name, *where(ws), workspace=False)
    assert r.code == 2
    assert problem in r.err.strip().splitlines()[-1]
    assert [w["name"] for w in json.loads(cli("workspaces", "--json", workspace=False).out)] \
        == ["default"]


def test_the_default_workspace_is_used_without_options(cli):
    r = cli("ls", "--json", workspace=False)
    assert (r.code, json.loads(r.out)) == (0, [])


# ---------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["ls", "--no-such-option"],
    ["put", "data/k"],
    ["put", "data/k", "f", "--meta", "novalue"],
    ["meta", "data/k", "--set", "=3"],
    ["query", "kind"],
    ["get", "data/shared.txt", "-", "--json"],
    ["push"],
])
def test_usage_errors_exit_2(cli, args):
    r = cli(*args)
    assert r.code == 2
    if "--json" in args:
        assert json.loads(r.err)["kind"] == "usage"
    else:
        assert "usage: storegui" in r.err
    assert "Traceback" not in r.err


def json_error(result: Result, code: int = 1) -> dict:
    """The one JSON error line of a ``--json`` run that failed (nothing on stdout)."""
    assert result.code == code, result
    assert result.out == ""
    (line,) = result.err.strip().splitlines()
    error = json.loads(line)
    assert set(error) >= {"error", "kind", "key"}, error
    return error


def test_json_errors_are_a_json_object_on_stderr(cli, tmp_path):
    assert json_error(cli("get", "data/absent", "--json")) == {
        "error": "no such key 'data/absent'", "kind": "StoreKeyError", "key": "data/absent"}
    error = json_error(cli("meta", "other/readme.txt", "--set", "a=1", "--json"))
    assert (error["kind"], error["key"]) == ("ReadOnlyError", "other/readme.txt")
    error = json_error(cli("put", "data/x", str(tmp_path / "nope"), "--json"))
    assert error["kind"] == "file" and "nope" in error["error"]
    error = json_error(cli("--json", "ls", "--no-such-option"), code=2)
    assert error["kind"] == "usage" and "--no-such-option" in error["error"]
    error = json_error(cli("meta", "data/k", "--set", "=3", "--json"), code=2)
    assert error["kind"] == "usage" and error["key"] is None
    # without --json, still the plain line
    one_error_line(cli("get", "data/absent"), "no such key 'data/absent'")
    assert "--json an error is one JSON line" in cli("--help", workspace=False).out.replace(
        "\n", " ")


@pytest.mark.parametrize("args", [
    ["ls", "--workspace", "w", "--backing", "b", "--mount", "m"],
    ["ls", "--backing", "b"],
    ["ls", "--mount-point", "x/"],
    ["workspaces", "--save", "x"],
])
def test_conflicting_workspace_options_exit_2(cli, args):
    r = cli(*args, workspace=False)
    assert r.code == 2 and "usage:" in r.err


def test_version_and_help(cli):
    r = cli("--version", workspace=False)
    assert (r.code, r.out.strip()) == (0, f"storegui {__version__}")
    r = cli("put", "--help", workspace=False)
    assert r.code == 0 and "read as JSON" in r.out


def test_no_command_launches_the_app_with_the_arguments(cli, ws, monkeypatch):
    seen = []
    app = types.ModuleType("storegui.app")
    app.run = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "storegui.app", app)
    assert cli(workspace=False).code == 0
    assert cli("--workspace", "w", workspace=False).code == 0
    assert seen == [[], ["--workspace", "w"]]


def test_no_display_is_one_line_not_a_qt_abort(cli, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "storegui.app", None)  # importing it would fail
    one_error_line(cli(workspace=False), "no display")


# ---------------------------------------------------------------------------- progress bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    with ProgressBar("k", stream=stream) as bar:
        for i in range(100):
            bar(i * 10, 1000)
    assert stream.getvalue() == ""


def test_progress_bar_draws_at_most_ten_times_a_second():
    now = [0.0]
    stream = FakeTerminal()
    with ProgressBar("data/big.bin", stream=stream, clock=lambda: now[0]) as bar:
        for i in range(1, 1001):
            now[0] = i * 0.001  # one second, a thousand chunks
            bar(i * 1024, 1000 * 1024)
    assert 9 <= bar.redraws <= 12
    final = stream.getvalue().rsplit("\r", 1)[-1]
    assert "100%" in final and "1000.0 KiB / 1000.0 KiB" in final and "data/big.bin" in final
    assert stream.getvalue().endswith("\n")


def test_progress_line_shows_rate_and_eta():
    now = [0.0]
    bar = ProgressBar("key", stream=FakeTerminal(), clock=lambda: now[0])
    now[0] = 2.0
    bar.update(10 * 2**20, 40 * 2**20)
    line = bar.line(2.0, 100)
    assert "25%" in line and "10.0 MiB / 40.0 MiB" in line and "5.0 MiB/s" in line
    assert "ETA 0:06" in line and "[" in line
    assert len(bar.line(2.0, 40)) < 40
    assert format_bytes(512) == "512 bytes" and format_bytes(2 << 30) == "2.0 GiB"
    assert format_duration(3725) == "1:02:05"


# ---------------------------------------------------------------------------- real processes


def storegui(*args: str, ws: Workspace | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "storegui", *args, *(where(ws) if ws else [])]
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, timeout=60, cwd=ROOT, **kw)


def test_every_verb_as_a_process(ws, tmp_path):
    src = tmp_path / "up.txt"
    src.write_bytes(b"uploaded")
    steps = [
        (["ls", "data/", "--json"], 0),
        (["put", "data/up.txt", str(src), "--meta", "n=5"], 0),
        (["get", "data/up.txt", str(tmp_path / "down.txt")], 0),
        (["meta", "data/up.txt", "--set", "m=1", "--json"], 0),
        (["query", "n=5"], 0),
        (["push", "data/up.txt"], 0),
        (["pull", "data/up.txt"], 0),
        (["revert", "data/up.txt"], 0),
        (["workspaces", "--json"], 0),
        (["get", "data/absent.txt", "-"], 1),
        (["put", "other/x.txt", str(src)], 1),
        (["meta"], 2),
    ]
    for args, code in steps:
        r = storegui(*args, ws=None if args[0] == "workspaces" else ws)
        assert r.returncode == code, (args, r.stderr)
        assert b"Traceback" not in r.stderr
        if code:
            assert len(r.stderr.strip().splitlines()) == 1 or code == 2, r.stderr
        else:
            assert r.stderr == b"", (args, r.stderr)
    assert (tmp_path / "down.txt").read_bytes() == b"uploaded"
    assert read(ws, "data/up.txt")[1]["m"] == 1


def test_verbs_never_import_qt(ws, tmp_path):
    src = tmp_path / "q.txt"
    src.write_bytes(b"q")
    w = where(ws)
    code = (
        "import sys\n"
        "from storegui.cli.main import main\n"
        f"w = {w!r}\n"
        "runs = [['ls', '-r'], ['put', 'data/q.txt', sys.argv[1]], ['get', 'data/q.txt', '-'],\n"
        "        ['meta', 'data/q.txt'], ['query', 'kind=local'], ['push', 'data/q.txt'],\n"
        "        ['pull', 'data/q.txt'], ['revert', 'data/q.txt'], ['workspaces']]\n"
        "codes = [main(r + (w if r[0] != 'workspaces' else [])) for r in runs]\n"
        "assert codes == [0] * len(runs), codes\n"
        "qt = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'superqt')]\n"
        "assert not qt, qt\n"
        "assert 'storegui.app' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, timeout=60,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr.decode()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal_only(ws, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 2**20))
    master, slave = os.openpty()
    try:
        r = storegui("put", "data/big.bin", str(src), ws=ws, stderr=slave)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert r.returncode == 0
    shown = b"".join(chunks).decode()
    assert "data/big.bin" in shown and "100%" in shown and "3.0 MiB / 3.0 MiB" in shown
    # The same transfer with stderr on a pipe prints nothing.
    r = storegui("put", "data/big2.bin", str(src), ws=ws)
    assert (r.returncode, r.stderr) == (0, b"")
