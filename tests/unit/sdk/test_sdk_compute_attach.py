"""Attached compute in Azure's shape: ``ComputeTarget.attach``, ``ComputeTarget(ws, name)``, ``ws.compute_targets``,
``detach``; records in the workspace's store, no credentials; the registry turns a name into a target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiln import ComputeTarget, RayCompute, Workspace
from kiln.errors import DefinitionError, NotFoundError
from kiln.runs.targets.ray import RayTarget
from kiln.runs.targets.registry import get_target, target_name
from kiln.sdk.compute import LocalCompute

ADDRESS = "http://127.0.0.1:8265"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("compute", path=tmp_path / "ws")


def test_attach_get_list_and_detach(ws: Workspace) -> None:
    attached = ComputeTarget.attach(ws, "ray-dev", RayCompute.attach_configuration(address=ADDRESS + "/"))
    assert isinstance(attached, RayCompute)
    assert (attached.name, attached.type, attached.address) == ("ray-dev", "Ray", ADDRESS)
    assert attached.provisioning_state == "Succeeded" and attached.get_status() == "Succeeded"
    attached.wait_for_completion(show_output=True)

    got = ComputeTarget(ws, "ray-dev")  # the class of its kind, as Azure's constructor gives
    assert type(got) is RayCompute and got == attached and RayCompute(ws, "ray-dev") == attached
    assert got.serialize()["address"] == ADDRESS
    targets = ws.compute_targets
    assert list(targets) == ["local", "container", "ray-dev"]
    assert type(targets["local"]) is LocalCompute and targets["ray-dev"] == attached
    record = ws.store.get_compute("ray-dev")
    assert record is not None and record.type == "ray" and record.config == '{"address": "http://127.0.0.1:8265"}'

    got.detach()
    assert list(ws.compute_targets) == ["local", "container"]
    with pytest.raises(NotFoundError,
                       match=r"no compute target 'ray-dev' in workspace 'compute' \(there is local, container\)"):
        ComputeTarget(ws, "ray-dev")
    with pytest.raises(NotFoundError, match="not attached"):
        got.detach()


def test_a_name_is_attached_once_and_local_is_built_in(ws: Workspace) -> None:
    config = RayCompute.attach_configuration(address=ADDRESS)
    ComputeTarget.attach(ws, "ray-dev", config)
    with pytest.raises(DefinitionError, match=r"'ray-dev' is attached to workspace 'compute' already \(ray, "):
        ComputeTarget.attach(ws, "ray-dev", RayCompute.attach_configuration(address="http://10.0.0.2:8265"))
    assert ComputeTarget(ws, "ray-dev").address == ADDRESS  # the first one kept
    with pytest.raises(DefinitionError, match="a built-in target has that name"):
        ComputeTarget.attach(ws, "local", config)
    with pytest.raises(DefinitionError, match="can't be detached"):
        ComputeTarget(ws, "local").detach()
    for builtin in ("container", "docker"):
        with pytest.raises(DefinitionError, match="a built-in target has that name"):
            ComputeTarget.attach(ws, builtin, config)


@pytest.mark.parametrize("name", ["", "../up", "with space", "a/b", "-dash"])
def test_names_are_checked_like_other_names(ws: Workspace, name: str) -> None:
    with pytest.raises(DefinitionError, match="compute target name"):
        ComputeTarget.attach(ws, name, RayCompute.attach_configuration(address=ADDRESS))
    assert ws.store.list_computes() == []


@pytest.mark.parametrize(("address", "says"), [
    ("", "expected the dashboard's URL"),
    ("127.0.0.1:8265", "expected the dashboard's URL"),
    ("ftp://host:21", "expected the dashboard's URL"),
    ("http://host:8265/api?x=1", "expected only http://HOST:PORT"),
    ("http://host:99999", "Port out of range"),
])
def test_a_bad_address_is_refused(address: str, says: str) -> None:
    with pytest.raises(DefinitionError, match=says):
        RayCompute.attach_configuration(address=address)


def test_credentials_in_the_address_are_refused_and_masked() -> None:
    with pytest.raises(DefinitionError) as e:
        RayCompute.attach_configuration(address="http://kiln:s3cret@head:8265")
    assert "s3cret" not in str(e.value) and "credentials are not stored" in str(e.value)


def test_the_submitting_side_needs_no_ray(tmp_path: Path) -> None:
    """Attaching and the Ray target speak the Jobs API over HTTP: Ray (seconds to import) is never imported."""
    code = ("import sys; from kiln import ComputeTarget, RayCompute, Workspace; "
            f"ws = Workspace.create('w', path={str(tmp_path / 'ws')!r}); "
            "ComputeTarget.attach(ws, 'ray-dev', RayCompute.attach_configuration(address='http://127.0.0.1:8265')); "
            "from kiln.runs.targets.registry import get_target; get_target('ray-dev', workspace=ws); "
            "import kiln.runs.targets.ray_job; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


def test_the_registry_gives_the_attached_target_by_name(ws: Workspace) -> None:
    ComputeTarget.attach(ws, "ray-dev", RayCompute.attach_configuration(address=ADDRESS))
    assert target_name("ray-dev", workspace=ws) == "ray-dev"
    assert target_name(ComputeTarget(ws, "ray-dev"), workspace=ws) == "ray-dev"
    target = get_target("ray-dev", workspace=ws)
    assert isinstance(target, RayTarget) and (target.name, target.address) == ("ray-dev", ADDRESS)
    assert target.builds_elsewhere and target.remote
    with pytest.raises(DefinitionError) as e:
        get_target("ray-dev")  # without the workspace: not a built-in name
    assert str(e.value) == "compute_target 'ray-dev': Kiln runs on local, container for now"
    with pytest.raises(DefinitionError) as e:
        get_target("ray-prod", workspace=ws)
    assert str(e.value) == ("compute_target 'ray-prod': Kiln runs on local, container, ray-dev for now "
                            "(attach a Ray cluster: kiln compute attach ray NAME --address URL)")
