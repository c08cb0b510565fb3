"""Runs in containers end to end (``compute_target="docker"``, ``run_config.docker.use_docker``): submitted as
any run, supervised by a real detached process, run in the environment's Kiln image through the session's
podman service. What a run records — output, metrics, ``./outputs``, exit code, cancel, a dead
supervisor — is what the local target records."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine_support import ContainerEngine
from kiln import CondaDependencies, Environment, Experiment, ScriptRunConfig, Workspace
from kiln.runs.config import DockerConfiguration
from kiln.runs.run import Run
from kiln.runs.targets.container import LABEL

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

PY = "3.12"

TRAIN = """\
import os, sys
from kiln import Run

run = Run.get_context()
for step in range(3):
    run.log("loss", 1.0 / (step + 1))
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as f:
    f.write("weights")
print("argv", sys.argv[1:], "var", os.environ.get("FROM_DEFINITION"), "in", sys.prefix, flush=True)
print("to stderr", file=sys.stderr, flush=True)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


@pytest.fixture
def ws(engine_env: ContainerEngine) -> Iterator[Workspace]:
    workspace = Workspace.create("boxed-runs", path="ws")
    yield workspace
    for experiment in Experiment.list(workspace):  # nothing of a test keeps running after it
        for run in Run.list(experiment):
            if run.status not in ("Completed", "Failed", "Canceled"):
                run.cancel()
    workspace.close()


def env(ws: Workspace) -> Environment:
    definition = Environment("boxed")
    definition.python.conda_dependencies = CondaDependencies.create(python_version=PY)
    definition.environment_variables = {"FROM_DEFINITION": "definition value"}
    return ws.register_environment(definition)


def submit(ws: Workspace, script: str, *, experiment: str = "boxed", **config: Any) -> Run:
    folder = Path("src")
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(script), encoding="utf-8")
    return Experiment(ws, experiment).submit(ScriptRunConfig(source_directory=folder, script="train.py",
                                                             environment=env(ws), **config))


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_containers(engine: ContainerEngine, run: Run) -> list[dict[str, Any]]:
    with engine.engine() as e:
        return list(e.client.api.containers(all=True, filters={"label": f"{LABEL}={run.id}"}))


def test_a_docker_run_records_what_a_local_run_records(ws: Workspace, engine_env: ContainerEngine) -> None:
    run = submit(ws, TRAIN, compute_target="docker", arguments=["--alpha", "0.5"])
    details = run.wait_for_completion()
    assert (details["status"], details["exitCode"], details["target"]) == ("Completed", 0, "container")
    output = run.get_output()
    assert "argv ['--alpha', '0.5'] var definition value in /kiln/env" in output  # the image's environment
    assert "to stderr" in output
    assert "in image kiln/kiln_" in output
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
    assert "outputs/model.txt" in run.get_file_names()
    assert run_containers(engine_env, run) == []  # removed once the run ended


def test_use_docker_runs_in_a_container_and_the_exit_code_comes_back(ws: Workspace) -> None:
    config = ScriptRunConfig(source_directory=".", script="x.py")  # only to hold the run configuration
    config.run_config.environment_variables = {"EXIT_WITH": "3"}
    run = submit(ws, TRAIN, run_config=config.run_config, docker_runtime_config=DockerConfiguration(use_docker=True))
    details = run.wait_for_completion(raise_on_error=False)
    assert (details["status"], details["exitCode"], details["target"]) == ("Failed", 3, "container")
    assert details["error"]["message"].startswith("the script exited with code 3")


def test_cancel_stops_the_container(ws: Workspace, engine_env: ContainerEngine) -> None:
    run = submit(ws, "import time\nprint('started', flush=True)\ntime.sleep(300)\n", compute_target="docker")
    wait_for(lambda: "started" in run.get_output(), "the script to start")
    assert len(run_containers(engine_env, run)) == 1
    run.cancel()
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Canceled" and details["exitCode"] == -signal.SIGTERM
    assert run_containers(engine_env, run) == []


def test_a_killed_supervisor_leaves_a_failed_run_and_no_container(ws: Workspace, engine_env: ContainerEngine) -> None:
    run = submit(ws, "import time\nprint('started', flush=True)\ntime.sleep(300)\n", compute_target="docker")
    wait_for(lambda: "started" in run.get_output(), "the script to start")
    record = ws.store.get_run(run.id)
    assert record is not None and record.pid is not None
    state = json.loads((ws.path / "runs" / run.id / "script.pid").read_text())
    assert [c["Id"] for c in run_containers(engine_env, run)] == [state["container"]]
    os.kill(record.pid, signal.SIGKILL)
    wait_for(lambda: run.status != "Running", "the run to be seen as dead", timeout=10)
    assert Run.get(ws, run.id).get_details()["status"] == "Failed"
    wait_for(lambda: run_containers(engine_env, run) == [], "the orphaned container to be removed", timeout=30)


def test_kiln_run_submit_docker_streams_and_exits_with_the_scripts_code(ws: Workspace) -> None:
    import subprocess

    from conftest import kiln_cmd

    env(ws)
    folder = Path("cli-src")
    folder.mkdir()
    (folder / "train.py").write_text("import sys\nprint('inside', sys.prefix, flush=True)\nsys.exit(5)\n")
    proc = subprocess.run([*kiln_cmd(), "-w", str(ws.path), "run", "submit", "train.py", "-s", str(folder), "--env",
                           "boxed", "--docker"], capture_output=True, text=True, env=os.environ, timeout=300,
                          check=False)
    assert proc.returncode == 5, proc.stderr
    assert "inside /kiln/env" in proc.stdout


def test_a_user_managed_environment_runs_with_the_images_own_python(ws: Workspace) -> None:
    """Azure's "bring your own image": Kiln installs nothing; ``interpreter_path`` is the image's (on its PATH)."""
    own = Environment("own-image")
    own.python.user_managed_dependencies = True
    own.python.interpreter_path = "python3"
    own.docker.enabled = True
    folder = Path("own-src")
    folder.mkdir()
    (folder / "train.py").write_text("import sys\nprint('prefix', sys.prefix, flush=True)\n")
    run = Experiment(ws, "own").submit(ScriptRunConfig(source_directory=folder, script="train.py", environment=own))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", run.get_output()
    assert "prefix /usr/local\n" in run.get_output()  # the base image's Python, not a Kiln environment


SHM = "import os\nst = os.statvfs('/dev/shm')\nprint('shm bytes', st.f_blocks * st.f_frsize, flush=True)\n"


def shm_of(run: Run) -> int:
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", run.get_output()
    [line] = [line for line in run.get_output().splitlines() if line.startswith("shm bytes ")]
    return int(line.split()[-1])


def test_docker_shm_size_sizes_the_containers_dev_shm(ws: Workspace) -> None:
    """Azure ML's ``docker.shm_size``: "2g" unless told; the run's ``DockerConfiguration(shm_size=...)`` first, then
    the environment's (an engine's own default would be 64 MB)."""
    assert shm_of(submit(ws, SHM, compute_target="docker")) == 2 << 30
    config = ScriptRunConfig(source_directory=".", script="x.py")  # only to hold the run configuration
    boxed = submit(ws, SHM, run_config=config.run_config,
                   docker_runtime_config=DockerConfiguration(use_docker=True, shm_size="96m"))
    assert shm_of(boxed) == 96 << 20
    own = Environment("small-shm")
    own.python.conda_dependencies = CondaDependencies.create(python_version=PY)
    own.docker.shm_size = "160m"
    folder = Path("src")
    run = Experiment(ws, "shm").submit(ScriptRunConfig(source_directory=folder, script="train.py", environment=own,
                                                       compute_target="docker"))
    assert shm_of(run) == 160 << 20


def test_a_bad_shm_size_is_refused_at_submit_naming_its_field(ws: Workspace) -> None:
    from kiln.errors import DefinitionError

    config = ScriptRunConfig(source_directory=".", script="x.py")
    for bad in ("lots", "2 gigs", "0", "-1g"):
        with pytest.raises(DefinitionError, match=rf"^run_config\.docker\.shm_size: '{bad}' is not a size"):
            submit(ws, SHM, experiment="bad-shm", run_config=config.run_config,
                   docker_runtime_config=DockerConfiguration(use_docker=True, shm_size=bad))
    zero = Environment("zero-shm")
    zero.python.conda_dependencies = CondaDependencies.create(python_version=PY)
    zero.docker.shm_size = "0"  # the form of a size: the definition takes it; a container can't have it
    with pytest.raises(DefinitionError, match=r"^environment 'zero-shm': docker\.shm_size: '0' is not a size above"):
        Experiment(ws, "bad-shm").submit(ScriptRunConfig(source_directory="src", script="train.py", environment=zero,
                                                         compute_target="docker"))
    assert list(Experiment(ws, "bad-shm").get_runs()) == []  # nothing recorded, nothing started
    assert ws.store.list_environment_versions(name="zero-shm") == []  # not even registered
