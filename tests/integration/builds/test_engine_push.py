"""Pushing images to a workspace's registry through a real engine: only new layers travel (counted on the
registry's side), the password stays a reference, and the CLI does the same (``kiln image push/export``)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)
from test_cli_build import envelope, register

from engine_support import ContainerEngine
from kiln import Environment, Workspace
from kiln.errors import WorkspaceError

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py

SECRET = "pushing-Passw0rd-not-in-files"


def test_a_second_push_differing_by_one_package_sends_only_its_layers(
        engine_env: ContainerEngine, make_env: Callable[..., Environment], workspace: Workspace,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_TEST_PUSH_PASSWORD", SECRET)
    workspace.set_container_registry(engine_env.registry_address, username="kiln",
                                     password="${KILN_TEST_PUSH_PASSWORD}")
    assert workspace.get_details()["containerRegistry"] == engine_env.registry_address
    assert SECRET not in (workspace.path / "workspace.json").read_text()
    first = make_env("pushed", "six==1.16.0").build_local(workspace, useDocker=True, pushImageToWorkspaceAcr=True)
    assert first["registry"] == engine_env.registry_address
    assert first["registryImage"] == f"{engine_env.registry_address}/{first['reference']}"
    before = engine_env.registry_blobs()
    assert first["registryDigest"] in before  # the manifest the registry got
    second = make_env("pushed", "six==1.16.0", "iniconfig==2.0.0").build_local(workspace, useDocker=True,
                                                                               pushImageToWorkspaceAcr=True)
    after = engine_env.registry_blobs()
    new = {d: n for d, n in after.items() if d not in before}
    old_layers = {x["digest"] for x in first["layers"]}
    changed = [x for x in second["layers"] if x["digest"] not in old_layers]
    assert [x["title"] for x in changed] == ["iniconfig 2.0.0"]  # Kiln's own layers: only the new package's
    # what the registry received: that layer, the config and the manifest (the base and six's layers it had)
    assert len(new) == len(changed) + 2, new
    assert second["registryDigest"] in new
    assert sum(new.values()) < 0.05 * sum(after.values())
    for blob in (engine_env.registry_storage / "docker").rglob("data"):
        assert SECRET.encode() not in blob.read_bytes()


def test_a_workspace_registry_takes_no_literal_password(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError, match=r"\$\{VAR\} reference"):
        workspace.set_container_registry("127.0.0.1:5000", username="kiln", password="plain-text")
    assert workspace.container_registry is None
    with pytest.raises(WorkspaceError, match="without a scheme"):
        workspace.set_container_registry("http://127.0.0.1:5000")


def test_cli_push_and_export(engine_env: ContainerEngine, run_kiln: Any, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    code, _, err = run_kiln("workspace", "create", "reg", "-d", str(ws), "--no-config", "--registry",
                            engine_env.registry_address, "--registry-password", "plain")
    assert code == 1 and "${VAR} reference" in err
    created = envelope(run_kiln, "workspace", "create", "reg", "-d", str(ws), "--no-config", "--registry",
                       engine_env.registry_address, kind="workspace.create")
    assert created["registry"] == {"address": engine_env.registry_address}
    register(run_kiln, tmp_path, "clipushed", "six==1.16.0", workspace=ws)
    pushed = envelope(run_kiln, "-w", str(ws), "image", "push", "clipushed", kind="image.push")
    assert pushed["registry"] == engine_env.registry_address
    assert pushed["pushed"] == f"{engine_env.registry_address}/{pushed['image']}"
    assert pushed["registry_digest"] in engine_env.registry_blobs()
    exported = envelope(run_kiln, "-w", str(ws), "image", "export", pushed["image"], str(tmp_path / "e.tar"),
                        kind="image.export")
    assert exported["digest"] == pushed["digest"]
    with tarfile.open(tmp_path / "e.tar") as tar:
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert docker[0]["RepoTags"] == [pushed["image"]] and len(docker[0]["Layers"]) == 3  # base, environment, six
