"""Runs on an attached Ray cluster, end to end: a real head (``ray_head``, once per session), real jobs.

The run ships its lock and snapshot; the node (here the head, with a Kiln home and build cache of its
own) builds the environment from the lock, runs the script with it, and sends back the exit code,
``./outputs`` and the metrics; the log arrives while the script runs.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln import ComputeTarget, CondaDependencies, Environment, Experiment, RayCompute, ScriptRunConfig, Workspace
from kiln.builds.interpreters import find_interpreter
from kiln.errors import DefinitionError, KilnError
from kiln.runs.run import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

PY = "3.12"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[Workspace]:
    workspace = Workspace.create("ray-runs", path=tmp_path_factory.mktemp("ws"))
    ComputeTarget.attach(workspace, "ray-dev", RayCompute.attach_configuration(address=ray_head.address))
    yield workspace
    for experiment in Experiment.list(workspace):
        for run in Run.list(experiment):
            if run.status not in ("Completed", "Failed", "Canceled"):
                run.cancel()
    workspace.close()


@pytest.fixture(scope="module")
def six_env() -> Environment:
    try:
        find_interpreter(PY, default=PY)
    except KilnError:
        pytest.skip(f"no Python {PY} on this machine")
    env = Environment("ray-six")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.16.0"], python_version=PY)
    return env


def submit(ws: Workspace, folder: Path, script: str, env: Environment, *, experiment: str,
           target: object = "ray-dev") -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(script), encoding="utf-8")
    config = ScriptRunConfig(source_directory=str(folder), script="train.py", compute_target=target,  # type: ignore[arg-type]
                             environment=env)
    return Experiment(ws, experiment).submit(config)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


TRAIN = """\
    import json, os, sys
    import six
    from kiln.run import Run
    run = Run.get_context()
    run.log("acc", 0.9)
    run.log("loss", 0.5)
    run.log("loss", 0.25)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
    print(json.dumps({"six": six.__version__, "python": sys.executable}), flush=True)
"""


def _said(run: Run) -> dict[str, Any]:
    line = next(line for line in run.get_output().splitlines() if line.startswith('{"six"'))
    seen: dict[str, Any] = json.loads(line)
    return seen


def test_a_run_is_built_on_the_node_from_its_lock_then_a_cache_hit(ws: Workspace, six_env: Environment,
                                                                     tmp_path: Path, ray_head: Any) -> None:
    first = submit(ws, tmp_path / "src", TRAIN, six_env, experiment="ray-train")
    details = first.wait_for_completion()
    assert details["status"] == "Completed", first.get_output()
    assert details["target"] == "ray-dev" and details["exitCode"] == 0
    said = _said(first)
    assert said["six"] == "1.16.0"
    # the interpreter of the node's build (its own cache), not of this machine's
    assert said["python"].startswith(str(ray_head.node_home))
    assert first.get_metrics() == {"acc": 0.9, "loss": [0.5, 0.25]}
    assert "outputs/model.txt" in first.get_file_names()
    first.download_file("outputs/model.txt", tmp_path / "model.txt")
    assert (tmp_path / "model.txt").read_text() == "weights"
    log = first.get_output()
    assert "locking environment ray-six:1" in log and "its node builds lock" in log
    assert "cache hit" not in log  # built on the node: the first run of this lock there

    second = submit(ws, tmp_path / "src2", TRAIN, six_env, experiment="ray-train")
    assert second.wait_for_completion()["status"] == "Completed", second.get_output()
    assert "cache hit" in second.get_output()
    assert _said(second)["python"] == said["python"]
    record = ws.store.get_run(second.id)
    assert record is not None and record.lock_hash == ws.store.get_run(first.id).lock_hash  # type: ignore[union-attr]


def test_metrics_arrive_while_the_script_runs(ws: Workspace, six_env: Environment, tmp_path: Path) -> None:
    flag = tmp_path / "go"  # the node is this machine: the script waits for the test
    run = submit(ws, tmp_path / "src", f"""\
        import os, sys, time
        from kiln.run import Run
        Run.get_context().log("progress", 0.5)
        sys.stdout.write("no newline yet")
        sys.stdout.flush()
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        Run.get_context().log("progress", 1.0)
        print(" and the rest", flush=True)
    """, six_env, experiment="ray-live")
    wait_for(lambda: run.get_metrics() == {"progress": 0.5}, "the metric to arrive while the script runs")
    assert run.status == "Running"
    flag.touch()
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics() == {"progress": [0.5, 1.0]}  # each line once
    assert "no newline yet and the rest\n" in run.get_output()  # the metric's own line is not in the log


def test_a_failing_script_fails_the_run_with_its_exit_code(ws: Workspace, six_env: Environment,
                                                             tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", "print('about to fail', flush=True)\nraise SystemExit(3)\n", six_env,
                 experiment="ray-fail")
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["exitCode"] == 3
    assert details["error"]["message"] == "the script exited with code 3\nabout to fail"


def test_cancel_stops_the_job(ws: Workspace, six_env: Environment, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n", six_env,
                 experiment="ray-cancel", target=ComputeTarget(ws, "ray-dev"))  # an object: known by its name
    wait_for(lambda: "sleeping" in run.get_output(), "the script to start on the node")
    assert run.status == "Running"
    run.cancel()
    wait_for(lambda: run.status in ("Canceled", "Failed", "Completed"), "the run to end")
    assert run.status == "Canceled"


def test_a_target_that_is_not_attached_is_refused_at_submit(ws: Workspace, six_env: Environment,
                                                             tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as e:
        submit(ws, tmp_path / "src", "pass\n", six_env, experiment="ray-missing", target="ray-prod")
    assert str(e.value).startswith("compute_target 'ray-prod': Kiln runs on local, container, ray-dev for now")
