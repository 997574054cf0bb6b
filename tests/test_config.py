"""The workspace list file (workspaces.json) and workspace names, on real files.

The conftest points the config dir into each test's tmp_path, so every test
starts without a workspace list.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from storegui import config
from storegui.config import ConfigError, Workspace

GOOD = {"name": "proj", "backing_url": "/b", "mount_url": "sqlite:///m.db", "mount_point": ""}

DAMAGED = [
    ('{"workspaces": null}', '"workspaces" is null, not a list'),
    ('"workspaces"', "it is text, not an object"),
    ("[]", "it is a list, not an object"),
    ("42", "it is a number, not an object"),
    ('{"workspaces": "proj"}', '"workspaces" is text, not a list'),
    ('{"workspaces": [], "recent": {}}', '"recent" is an object, not a list'),
    ('{"workspaces": [], "recent": [3]}', "recent entry 1 is a number, not a name"),
    ('{"workspaces": [3]}', "workspace 1 of 1: it is a number, not an object"),
    ('{"workspaces": [null]}', "workspace 1 of 1: it is null, not an object"),
    (json.dumps({"workspaces": [GOOD, {"name": "x", "backing_url": "/b"}]}),
     'workspace 2 of 2: it has no "mount_url"'),
    (json.dumps({"workspaces": [{**GOOD, "backing_url": 7}]}),
     'workspace 1 of 1: its "backing_url" is a number, not text'),
    (json.dumps({"workspaces": [{**GOOD, "name": "a\nb"}]}), "contains U+000A"),
    ('{"workspaces": [', "it is not valid JSON"),
    ("", "it is not valid JSON"),
]


def state_file():
    return config.config_dir() / "workspaces.json"


def write_state(text: str | bytes) -> bytes:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(("text", "problem"), DAMAGED)
def test_a_damaged_list_is_a_clear_error_and_is_left_alone(text, problem):
    before = write_state(text)
    for call in (config.load_workspaces, config.recent_workspaces,
                 lambda: config.find_workspace("proj"),
                 lambda: config.save_workspace(Workspace("new", "/b2", "memory://")),
                 lambda: config.remember_recent(Workspace("new", "/b2", "memory://")),
                 lambda: config.delete_workspace("proj")):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert f"the workspace list {state_file()} is damaged: " in message
        assert problem in message
        assert "Fix it in a text editor, or move it away" in message
        assert info.value.path == state_file()
    assert state_file().read_bytes() == before
    assert os.listdir(state_file().parent) == ["workspaces.json"]  # no temp file left either


def test_a_list_that_is_not_utf8_is_damaged():
    write_state(b'{"workspaces": [], "recent": ["\xff"]}')
    with pytest.raises(ConfigError, match="is damaged: it is not UTF-8 text"):
        config.load_workspaces()


def test_an_unreadable_list_says_so():
    state_file().mkdir(parents=True)  # a folder where the file should be: readable by no one
    with pytest.raises(ConfigError, match="cannot read the workspace list .*: Is a directory; "
                                          "check that it is a file you may read"):
        config.load_workspaces()
    with pytest.raises(ConfigError, match="cannot read"):
        config.save_workspace(Workspace("new", "/b2", "memory://"))
    assert state_file().is_dir()


def test_missing_fields_default_and_a_good_list_round_trips():
    write_state(json.dumps({"workspaces": [{k: GOOD[k] for k in GOOD if k != "mount_point"}]}))
    assert [w.name for w in config.load_workspaces()] == ["default", "proj"]
    write_state("{}")
    assert [w.name for w in config.load_workspaces()] == ["default"]
    config.remember_recent(Workspace("two", "/b", "memory://", "p/"))
    assert [w.name for w in config.recent_workspaces()] == ["two"]
    assert config.find_workspace("two").mount_point == "p/"


@pytest.mark.parametrize(("name", "problem"), [
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("a\nb", "contains U+000A"),
    ("tab\there", "contains U+0009"),
    ("esc\x1b", "contains U+001B"),
    ("line\u2028sep", "contains U+2028"),
    (" lead", "starts or ends with a space"),
    ("trail ", "starts or ends with a space"),
    ("x" * 201, "at most 200 characters"),
    (3, "must be text, not a number"),
])
def test_bad_names_are_refused_and_nothing_is_saved(name, problem):
    assert problem in config.workspace_name_problem(name)
    if isinstance(name, str):
        with pytest.raises(ConfigError, match="cannot save the workspace: .*" + re.escape(problem)):
            config.save_workspace(Workspace(name, "/b", "memory://"))
    assert not state_file().exists()


@pytest.mark.parametrize("name", ["proj", "Projekt Ä/β 2", "a b", "x" * 200, "日本"])
def test_good_names_are_accepted(name):
    assert config.workspace_name_problem(name) is None
    config.save_workspace(Workspace(name, "/b", "memory://"))
    assert config.find_workspace(name).name == name


def test_default_is_reserved_for_the_built_in_workspace():
    other = Workspace(config.DEFAULT_NAME, "/elsewhere", "memory://")
    assert "built-in default workspace" in config.workspace_problem(other)
    with pytest.raises(ConfigError, match="'default' is the name of the built-in default "
                                          "workspace: choose another name"):
        config.save_workspace(other)
    assert not state_file().exists()
    # the default workspace itself is still remembered as recent (the app does that on open)
    default = config.default_workspace()
    assert config.workspace_problem(default) is None
    config.remember_recent(default)
    assert config.recent_workspaces() == [default]


WORKSPACE_MISTAKES = [
    (["--workspace", "w", "--backing", "/b", "--mount", "memory://"],
     "give either --workspace or --backing/--mount, not both"),
    (["--workspace", "w", "--mount-point", "p/"],
     "give either --workspace or --backing/--mount, not both"),
    (["--backing", "/b"], "--backing and --mount go together"),
    (["--mount", "memory://"], "--backing and --mount go together"),
    (["--mount-point", "p/"], "--mount-point needs --backing and --mount"),
]


@pytest.mark.parametrize(("argv", "problem"), WORKSPACE_MISTAKES)
def test_workspace_options_that_do_not_go_together_are_the_same_error_everywhere(
        argv, problem, capsys):
    from storegui.app import workspace_from_args
    from storegui.cli.main import EXIT_USAGE, main

    options = dict(zip(argv[::2], argv[1::2], strict=True))
    with pytest.raises(config.WorkspaceOptionsError, match=re.escape(problem)):
        config.resolve_workspace(options.get("--workspace"), options.get("--backing"),
                                 options.get("--mount"), options.get("--mount-point"))
    assert main([*argv, "ls"]) == EXIT_USAGE  # the command line
    assert problem in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the desktop app's options
        workspace_from_args(argv)
    assert problem in capsys.readouterr().err


def test_workspace_options_name_a_workspace():
    assert config.resolve_workspace() == config.default_workspace()
    made = config.resolve_workspace(backing="/b", mount="memory://", mount_point="p/")
    assert (made.backing_url, made.mount_url, made.mount_point) == ("/b", "memory://", "p/")
    config.save_workspace(Workspace("proj", "/b", "memory://"))
    assert config.resolve_workspace("proj") == config.find_workspace("proj")
    with pytest.raises(config.StoreError, match="no workspace called 'nope'"):
        config.resolve_workspace("nope")
