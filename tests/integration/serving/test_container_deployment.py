"""Container deployments (``deploy_configuration(container=True)``, ``kiln service deploy --container``): the
same score.py deployed in process and in a container of the environment's image gives the same answers; the
port is published on 127.0.0.1 only; updates roll out in the container; delete stops and removes it.
Against the session's real podman service (``engine_env``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_support import PY, Deploy, definition, refused, wait_for, write_source

from conftest import kiln_cmd
from engine_support import ContainerEngine
from kiln import InferenceConfig, LocalWebservice, Model, Workspace
from kiln.serving.container import LABEL, container_name

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

SCORE = """\
import json, os, sys

def init():
    global scale
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        scale = json.load(f)["scale"]
    print("init: scale", scale, "python", sys.version_info[:2], flush=True)

def run(raw_data):
    data = json.loads(raw_data)["data"]
    return {"result": [scale * x for x in data], "sum": sum(data), "env": os.environ.get("SERVE_MODE"),
            "python": "%d.%d" % sys.version_info[:2]}
"""
INPUTS = [{"data": [1, 2, 3]}, {"data": []}, {"data": [0.5, -7, 1e6]}]


@pytest.fixture
def ws(engine_env: ContainerEngine) -> Iterator[Workspace]:
    """A workspace opened with the session's engine in its settings (``KILN_DOCKER_HOST``)."""
    workspace = Workspace.create("boxes", path="ws")
    yield workspace
    workspace.close()


@pytest.fixture
def deploy(ws: Workspace) -> Iterator[Deploy]:
    deployer = Deploy(ws)
    yield deployer
    deployer.clean_up()


def model(ws: Workspace, tmp_path: Path) -> Model:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"scale": 3}))
    return Model.register(ws, model_path=str(folder / "model.json"), model_name="scaler")


def containers(engine: ContainerEngine, name: str) -> list[dict[str, object]]:
    with engine.engine() as e:
        return list(e.client.api.containers(all=True, filters={"label": f"{LABEL}={name}"}))


def test_the_same_score_py_answers_the_same_in_process_and_in_a_container(
        ws: Workspace, deploy: Deploy, engine_env: ContainerEngine, tmp_path: Path) -> None:
    env = definition("serve-boxed", python=PY)
    env.environment_variables = {"SERVE_MODE": "from the definition"}
    env = ws.register_environment(env)
    source = write_source(tmp_path / "src", SCORE)
    scaler = model(ws, tmp_path)
    local = deploy("inproc", source, [scaler], env=env)
    boxed = deploy("boxed", source, [scaler], env=env, container=True)

    assert boxed.state == "Healthy"
    assert boxed.scoring_uri.startswith("http://127.0.0.1:") and boxed.port != local.port
    answers = [boxed.run(json.dumps(body)) for body in INPUTS]
    assert answers == [local.run(json.dumps(body)) for body in INPUTS]
    assert answers[0] == {"result": [3, 6, 9], "sum": 6, "env": "from the definition", "python": PY}

    # it really is a container of Kiln's image, its port on 127.0.0.1 only
    [found] = containers(engine_env, "boxed")
    name = container_name(str(ws.path), "boxed")
    assert found["Names"] in ([name], [f"/{name}"])
    info = boxed.serialize()["container"]
    assert info["name"] == name and str(info["image"]).startswith("kiln/kiln_")
    with engine_env.engine() as e:
        bindings = e.client.api.inspect_container(name)["HostConfig"]["PortBindings"]
    assert [(b["HostIp"], b["HostPort"]) for b in bindings["5001/tcp"]] == [("127.0.0.1", str(boxed.port))]
    # init()'s print reaches the service's log (copied from the engine's log stream, so a moment later)
    deadline = time.monotonic() + 30
    while "init: scale 3" not in boxed.get_logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "init: scale 3" in boxed.get_logs()

    port = boxed.port
    boxed.delete()
    assert containers(engine_env, "boxed") == []  # stopped and removed
    assert refused(f"http://127.0.0.1:{port}/")
    assert local.run(json.dumps(INPUTS[0]))["sum"] == 6  # the other one serves on


def test_an_update_rolls_out_in_the_container(ws: Workspace, deploy: Deploy, engine_env: ContainerEngine,
                                              tmp_path: Path) -> None:
    env = ws.register_environment(definition("serve-boxed", python=PY))
    source = write_source(tmp_path / "src", SCORE)
    boxed = deploy("rolling", source, [model(ws, tmp_path)], env=env, container=True)
    [before] = containers(engine_env, "rolling")
    assert boxed.run(json.dumps({"data": [2]}))["result"] == [6]
    write_source(source, SCORE.replace("scale * x", "scale * x + 1"))
    boxed.reload()
    assert boxed.run(json.dumps({"data": [2]}))["result"] == [7]
    [after] = containers(engine_env, "rolling")
    assert after["Id"] == before["Id"]  # the same container: the new generation rolled out inside it
    record = ws.store.get_service("rolling")
    assert record is not None and record.generation == 2

    # a new version of the environment that changes only its variables: the same packages, the same image name;
    # the workers of the next generation get the new variables, in the same container
    changed = definition("serve-boxed", python=PY)
    changed.environment_variables = {"SERVE_MODE": "changed"}
    boxed.update(inference_config=InferenceConfig(entry_script="score.py", source_directory=str(source),
                                                  environment=ws.register_environment(changed)))
    assert boxed.run(json.dumps({"data": [2]})) == {"result": [7], "sum": 2, "env": "changed", "python": PY}
    assert [c["Id"] for c in containers(engine_env, "rolling")] == [before["Id"]]


def test_init_failing_in_the_container_fails_the_deployment_with_its_reason(
        ws: Workspace, deploy: Deploy, engine_env: ContainerEngine, tmp_path: Path) -> None:
    env = ws.register_environment(definition("serve-boxed", python=PY))
    source = write_source(tmp_path / "src", "def init():\n    raise RuntimeError('no model here')\n\n"
                                            "def run(raw):\n    return raw\n")
    with pytest.raises(Exception, match="no model here"):
        deploy("broken", source, env=env, container=True)
    assert LocalWebservice(ws, "broken").state == "Failed"
    wait_for(lambda: containers(engine_env, "broken") == [], "the failed container to be removed")


def test_kiln_service_deploy_container(ws: Workspace, engine_env: ContainerEngine, tmp_path: Path) -> None:
    import subprocess

    env = ws.register_environment(definition("serve-boxed", python=PY))
    source = write_source(tmp_path / "src", SCORE.replace('os.environ["AZUREML_MODEL_DIR"], "model.json"',
                                                          '"/dev", "null"').replace('json.load(f)["scale"]', "2"))

    def kiln(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*kiln_cmd(), "-w", str(ws.path), *args], capture_output=True, text=True,
                              env=os.environ, timeout=300, check=False)

    deployed = kiln("service", "deploy", "--entry-script", "score.py", "-s", str(source), "-n", "cli-box",
                    "-e", f"{env.name}:{env.version}", "--container", "-o", "json")
    try:
        assert deployed.returncode == 0, deployed.stderr
        data = json.loads(deployed.stdout)["data"]
        assert data["state"] == "Healthy" and data["container"]["name"] == container_name(str(ws.path), "cli-box")
        called = kiln("service", "call", "cli-box", "-d", '{"data": [4]}', "-o", "json")
        assert json.loads(called.stdout)["data"]["result"] == [8], called.stderr
    finally:
        gone = kiln("service", "delete", "cli-box")
    assert gone.returncode == 0, gone.stderr
    assert containers(engine_env, "cli-box") == []


SHM_SCORE = """\
import os

def init():
    pass

def run(raw_data):
    st = os.statvfs("/dev/shm")
    return {"shm": st.f_blocks * st.f_frsize}
"""


def test_the_environments_shm_size_sizes_the_services_dev_shm(ws: Workspace, deploy: Deploy, tmp_path: Path) -> None:
    """Azure ML's ``environment.docker.shm_size`` ("2g" unless told) is the container's /dev/shm; a new size in a new
    version of the environment (the same packages, the same image) takes a new container."""
    source = write_source(tmp_path / "src", SHM_SCORE)
    boxed = deploy("shm", source, env=ws.register_environment(definition("serve-shm", python=PY)), container=True)
    assert boxed.run("{}") == {"shm": 2 << 30}
    smaller = definition("serve-shm", python=PY)
    smaller.docker.shm_size = "160m"
    boxed.update(inference_config=InferenceConfig(entry_script="score.py", source_directory=str(source),
                                                  environment=ws.register_environment(smaller)))
    assert boxed.run("{}") == {"shm": 160 << 20}


def test_a_bad_shm_size_is_refused_before_the_deployment_starts(ws: Workspace, deploy: Deploy,
                                                               tmp_path: Path) -> None:
    from kiln.errors import DefinitionError

    env = definition("serve-bad-shm", python=PY)
    env.docker.shm_size = "0"  # the form of a size: the definition takes it; a container can't have it
    source = write_source(tmp_path / "src", SHM_SCORE)
    with pytest.raises(DefinitionError, match=r"^environment serve-bad-shm: docker\.shm_size: '0' is not a size"):
        deploy("bad-shm", source, env=env, container=True)
    assert ws.store.get_service("bad-shm") is None
    assert ws.store.list_environment_versions(name="serve-bad-shm") == []  # not even registered
