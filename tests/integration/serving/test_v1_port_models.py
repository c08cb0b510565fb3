"""Azure ML SDK v1's ``Model`` API as notebooks use it, ported by changing the imports: register with tags,
properties and a framework; look up by tags; ``add_tags``, ``remove_tags``, ``add_properties``, ``update``,
``delete``; ``url``, ``experiment_name``, ``run_id``. Real workspaces (SQLite, blob store) in temp folders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln import Model, Workspace
from kiln.errors import DefinitionError, NotFoundError
from kiln.workspace.store import RunRecord, ServiceRecord

pytestmark = pytest.mark.integration


@pytest.fixture
def ws() -> Iterator[Workspace]:
    workspace = Workspace.create("models-ws")
    yield workspace
    workspace.close()


@pytest.fixture
def model_file() -> Path:
    path = Path.cwd() / "model.pkl"
    path.write_bytes(b"\x80\x04weights")
    return path


def test_tags_properties_and_framework_are_kept_and_read_back(ws: Workspace, model_file: Path) -> None:
    model = Model.register(workspace=ws, model_path=str(model_file), model_name="ridge",
                           tags={"area": "diabetes", "alpha": 0.5}, properties={"mse": 3000.1},
                           description="Ridge regression", model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version="0.22.1")
    assert (model.id, model.model_framework) == ("ridge:1", "ScikitLearn")
    with Workspace.from_config(ws.path) as other:  # another handle on the workspace: what was stored
        again = Model(other, "ridge")
    assert (again.id, again.tags, again.properties, again.description) == (
        "ridge:1", {"alpha": "0.5", "area": "diabetes"}, {"mse": "3000.1"}, "Ridge regression")
    assert (again.model_framework, again.model_framework_version) == ("ScikitLearn", "0.22.1")
    assert (again.run_id, again.experiment_name) == (None, None)
    assert again.url == "kiln://models-ws/models/ridge/1/model.pkl"
    assert again.serialize()["properties"] == {"mse": "3000.1"}
    # the same files with another framework are another version; the same everything is the same version
    assert Model.register(ws, str(model_file), "ridge", tags={"area": "diabetes", "alpha": 0.5},
                          properties={"mse": 3000.1}, description="Ridge regression",
                          model_framework="ScikitLearn", model_framework_version="0.22.1").version == 1
    assert Model.register(ws, str(model_file), "ridge", model_framework=Model.Framework.ONNX).version == 2


def test_tags_are_added_removed_and_replaced_and_properties_only_added(ws: Workspace, model_file: Path) -> None:
    model = Model.register(ws, str(model_file), "clf", tags={"stage": "dev"}, properties={"auc": "0.9"})
    model.add_tags({"stage": "prod", "owner": "ana"})
    assert model.tags == {"stage": "prod", "owner": "ana"}
    model.remove_tags(["owner", "not-there"])
    assert Model(ws, "clf").tags == {"stage": "prod"}
    model.add_properties({"auc": "0.9", "f1": "0.8"})
    assert Model(ws, "clf").properties == {"auc": "0.9", "f1": "0.8"}
    with pytest.raises(DefinitionError) as info:
        model.add_properties({"auc": "0.95"})
    assert str(info.value) == ("model clf:1: property 'auc' is '0.9' already; properties can be added, not changed "
                               "(use tags for what changes)")
    assert Model(ws, "clf").properties == {"auc": "0.9", "f1": "0.8"}
    model.update(tags={"fresh": "yes"}, description="retagged")
    fetched = Model(ws, "clf")
    assert (fetched.tags, fetched.description, fetched.version, fetched.manifest) == (
        {"fresh": "yes"}, "retagged", 1, model.manifest)


def test_models_are_found_by_tags_properties_and_run(ws: Workspace, model_file: Path) -> None:
    ws.store.create_run(RunRecord(id="run-1", experiment="train-ridge", status="Completed", created_at=1.0,
                                  definition="{}"))
    Model.register(ws, str(model_file), "m", tags={"stage": "dev"}, run_id="run-1")
    model_file.write_bytes(b"other weights")
    Model.register(ws, str(model_file), "m", tags={"stage": "prod"}, properties={"auc": "0.9"})
    assert [m.version for m in Model.list(ws, "m", tags=[["stage", "dev"]])] == [1]
    assert [m.version for m in Model.list(ws, tags=["stage"])] == [1, 2]
    assert [m.version for m in Model.list(ws, properties=["auc"])] == [2]
    assert Model(ws, "m", tags=[["stage", "dev"]]).version == 1
    from_run = Model(ws, "m", run_id="run-1")
    assert (from_run.version, from_run.experiment_name) == (1, "train-ridge")
    assert Model(ws, "m", id="m:1").version == Model(ws, "m", 1).version == 1  # Kiln's positional version too
    with pytest.raises(NotFoundError, match="with the tags, properties and run given"):
        Model(ws, "m", tags=[["stage", "qa"]])


def test_a_deleted_version_is_gone_and_one_a_service_deploys_is_kept(ws: Workspace, model_file: Path) -> None:
    first = Model.register(ws, str(model_file), "gone")
    model_file.write_bytes(b"v2")
    second = Model.register(ws, str(model_file), "gone")
    ws.store.put_service(ServiceRecord(name="svc", state="Healthy", port=1, generation=1, pid=None, pid_start=None,
                                       config=json.dumps({"deployment": {"models": ["gone:2"]}}), error=None,
                                       created_at=1.0, updated_at=1.0))
    with pytest.raises(DefinitionError) as info:
        second.delete()
    assert str(info.value) == "model gone:2 is deployed by service(s) svc: delete them or update them with other " \
                              "models first"
    first.delete()
    assert [m.id for m in Model.list(ws, "gone")] == ["gone:2"]
    with pytest.raises(NotFoundError):
        Model(ws, "gone", version=1)
    with pytest.raises(NotFoundError):
        first.add_tags({"late": "1"})


def test_a_model_folder_is_taken_by_the_copy_rule(ws: Workspace, tmp_path: Path) -> None:
    folder = Path.cwd() / "encoder"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "layer.bin").write_bytes(b"\x00\x01")
    os.symlink("weights/layer.bin", folder / "latest.bin")  # inside: kept as a link
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("never read")
    os.symlink(secret, folder / "leak.txt")  # outside: never read
    nested = folder / "scratch-ws"  # a Kiln workspace inside the model folder: never taken
    Workspace.create("scratch", path=nested).close()

    model = Model.register(ws, str(folder), "encoder")
    target = Path(model.download(tmp_path / "out"))
    assert target == tmp_path / "out" / "encoder"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "latest.bin", "weights", "weights/layer.bin"]
    assert (target / "latest.bin").is_symlink() and os.readlink(target / "latest.bin") == "weights/layer.bin"
    assert (target / "latest.bin").read_bytes() == b"\x00\x01"
