"""Workspace's Azure ML v1 surface with local meanings: details, list/get/delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.environment.environment import Environment
from kiln.errors import NotFoundError, WorkspaceError
from kiln.workspace.workspace import LOCAL, Workspace


def test_cloud_attributes_have_local_meanings(tmp_path: Path) -> None:
    ws = Workspace.create("proj", path=tmp_path / "proj")
    assert (ws.subscription_id, ws.resource_group, ws.location) == (LOCAL, LOCAL, str(tmp_path / "proj"))
    details = ws.get_details()
    assert details["name"] == "proj" and details["location"] == str(ws.path) and details["store"] == ws.store.name
    assert details["subscriptionId"] == details["resourceGroup"] == "local" and details["keyVault"] is None


def test_list_and_get_find_the_workspaces_created(tmp_path: Path) -> None:
    a = Workspace.create("alpha", path=tmp_path / "a")
    Workspace.create("beta", path=tmp_path / "b")
    found = Workspace.list()
    assert sorted(found) == ["alpha", "beta"] and [w.path for w in found["alpha"]] == [a.path]
    assert Workspace.get("alpha").path == a.path
    with pytest.raises(NotFoundError, match=r"no workspace 'gamma' known here \(workspaces: alpha, beta\)"):
        Workspace.get("gamma")
    Workspace.create("alpha", path=tmp_path / "a2")
    with pytest.raises(WorkspaceError, match="2 workspaces are named 'alpha'"):
        Workspace.get("alpha")
    assert Workspace.get("alpha", location=str(tmp_path / "a2")).path == (tmp_path / "a2").resolve()


def test_delete_removes_the_workspace_and_only_its_own_folder(tmp_path: Path) -> None:
    ws = Workspace.create("gone", path=tmp_path / "gone")
    Environment("e").register(ws)
    ws.delete()
    assert not (tmp_path / "gone").exists() and "gone" not in Workspace.list()
    kept = Workspace.create("kept", path=tmp_path / "kept")
    (kept.path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"holds files that aren't the workspace's \(notes.txt\)"):
        kept.delete()
    assert (kept.path / "notes.txt").exists() and (kept.path / "workspace.json").exists()


def test_remembering_a_workspace_doesnt_fix_its_settings_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    ws = Workspace.create("late", path=tmp_path / "late")
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "later-cache"))
    assert ws.settings.cache_dir == (tmp_path / "later-cache").resolve()
