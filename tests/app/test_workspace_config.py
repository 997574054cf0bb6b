"""A damaged workspace list and bad workspace names in the app: shown, never a crash."""

from __future__ import annotations

from storegui.app.dialogs.workspace import WorkspaceDialog
from storegui.config import DEFAULT_NAME, config_dir, find_workspace

DAMAGED = '{"workspaces": null, "recent": ["x"]}'


def test_the_window_opens_and_says_the_list_is_damaged(make_window, workspace, qtbot):
    state = config_dir() / "workspaces.json"
    state.parent.mkdir(parents=True)
    state.write_text(DAMAGED)
    window = make_window(workspace)
    message = window.statusBar().currentMessage()
    assert message.startswith(f"Could not remember the workspace: the workspace list {state} "
                              'is damaged: "workspaces" is null, not a list')
    recent = [a.text() for a in window.recent_menu.actions()]
    assert len(recent) == 1 and recent[0].startswith("(cannot read: the workspace list")
    dialog = WorkspaceDialog(window, workspace)
    qtbot.addWidget(dialog)
    first = dialog.list.item(0).text()
    assert first.startswith(f"(cannot read the saved workspaces: the workspace list {state}")
    assert window.model.rowCount() > 0  # the store itself works
    assert state.read_text() == DAMAGED


def test_the_dialog_refuses_bad_names_beside_the_field(make_window, workspace, qtbot):
    window = make_window(workspace)
    dialog = WorkspaceDialog(window, workspace)
    qtbot.addWidget(dialog)
    for name, problem in (("two\nlines", "contains U+000A"),
                          ("tab\there", "contains U+0009"),
                          (DEFAULT_NAME, "is the name of the built-in default workspace")):
        dialog.name_edit.setText(name)
        dialog.accept()
        assert dialog.workspace() is None
        assert not dialog.name_error.isHidden()
        assert problem in dialog.name_error.text()
    dialog.name_edit.setText("  fine name  ")  # the field's edge spaces are trimmed
    dialog.accept()
    assert dialog.name_error.isHidden()
    assert dialog.workspace().name == "fine name"
    window.open_workspace(dialog.workspace())
    assert find_workspace("fine name").mount_url == workspace.mount_url
