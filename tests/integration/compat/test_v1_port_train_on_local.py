"""Azure ML's public v1 notebook ``train-on-local.ipynb``, ported by changing the imports, each cell's
behaviour asserted: a user-managed environment, a system-managed one, a Docker one (run in a container of
the environment's image, through the session's podman service), metrics, ``./outputs`` and ``register_model``.

The training script is the notebook's in spirit (alphas from a helper module, a metric per alpha, a
model file per alpha in ``./outputs``) with a least-squares fit in plain Python instead of scikit-learn,
so that the environments need no package from an index.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment, Experiment, ScriptRunConfig, Workspace
from kiln.errors import IgnoredSettingWarning, KilnError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

MYLIB = """\
def get_alphas():
    return [round(0.1 * i, 2) for i in range(1, 6)]
"""
TRAIN = """\
import os
import pickle

import mylib
from kiln import Run  # was: from azureml.core.run import Run

os.makedirs('./outputs', exist_ok=True)
xs = [float(i) for i in range(20)]
ys = [3.0 * x + 1.0 for x in xs]

run = Run.get_context()
for alpha in mylib.get_alphas():
    # ridge regression of y on x, by hand: slope = sum(xy) / (sum(xx) + alpha)
    slope = sum(x * y for x, y in zip(xs, ys)) / (sum(x * x for x in xs) + alpha)
    mse = sum((slope * x - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    run.log('alpha', alpha)
    run.log('mse', mse)
    model_file_name = 'ridge_{0:.2f}.pkl'.format(alpha)
    with open(os.path.join('./outputs/', model_file_name), "wb") as file:
        pickle.dump({"slope": slope}, file)
    print('alpha is {0:.2f}, and mse is {1:0.2f}'.format(alpha, mse))
"""


def test_train_on_local_notebook(capsys: pytest.CaptureFixture[str], engine_env: object) -> None:
    Workspace.create("local-training", path="ws").write_config()
    scripts = Path("scripts")
    scripts.mkdir()
    (scripts / "train.py").write_text(TRAIN)
    (scripts / "mylib.py").write_text(MYLIB)

    ws = Workspace.from_config()
    exp = Experiment(workspace=ws, name="train-on-local")

    # the user-managed environment: the script runs with the interpreter that is there (Kiln's own here)
    user_managed_env = Environment("user-managed-env")
    user_managed_env.python.user_managed_dependencies = True
    src = ScriptRunConfig(source_directory="./scripts", script="train.py", environment=user_managed_env)
    run = exp.submit(src)
    assert run.get_status() in ("Queued", "Preparing", "Running", "Completed")
    details = run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed"
    assert "alpha is 0.10, and mse is" in capsys.readouterr().out

    # the system-managed environment (the notebook adds scikit-learn: here, no package)
    system_managed_env = Environment("system-managed-env")
    system_managed_env.python.user_managed_dependencies = False
    cd = CondaDependencies.create(python_version="3.12")
    system_managed_env.python.conda_dependencies = cd
    src.run_config.environment = system_managed_env
    run = exp.submit(src)
    assert run.wait_for_completion(show_output=False)["status"] == "Completed"
    assert run.get_environment().name == "system-managed-env"

    # the Docker environment: the script runs in a container of the environment's image
    docker_env = Environment("docker-env")
    docker_env.python.user_managed_dependencies = False
    docker_env.docker.enabled = True
    assert docker_env.docker.base_image  # the default CPU image, as the notebook prints
    docker_env.python.conda_dependencies = cd
    src.run_config.environment = docker_env
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredSettingWarning)  # nothing of it is ignored
        run = exp.submit(src)
    assert run.wait_for_completion()["status"] == "Completed", run.get_output()
    assert "in image kiln/kiln_" in run.get_output()
    assert run.get_details()["target"] == "container"

    metrics = run.get_metrics()
    assert metrics["alpha"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert len(metrics["mse"]) == 5 and metrics["mse"] == sorted(metrics["mse"])  # more alpha, more error
    best_alpha = metrics["alpha"][metrics["mse"].index(min(metrics["mse"]))]
    assert best_alpha == 0.1

    names = run.get_file_names()
    assert [n for n in names if n.startswith("outputs/")] == [f"outputs/ridge_{a:.2f}.pkl" for a in metrics["alpha"]]

    model = run.register_model(model_name="best_ridge_model", model_path="./outputs/ridge_0.40.pkl")
    assert (model.name, model.version) == ("best_ridge_model", 1)


def test_a_run_configuration_asking_for_docker_without_an_engine_is_refused_at_submit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No silent fallback to the local target: the submit says there is no engine, and how to start one."""
    monkeypatch.setenv("KILN_DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    ws = Workspace.create("docker-runs", path="ws")
    Path("hello.py").write_text("print('hi')\n")
    src = ScriptRunConfig(source_directory=".", script="hello.py")
    src.run_config.docker.use_docker = True
    with pytest.raises(KilnError, match=r"compute target 'container' \(the run asks for Docker\): no container "
                                        r"engine .*unix://.*podman system service"):
        Experiment(ws, "docker").submit(src)
    assert ws.store.list_runs() == []  # nothing recorded


def test_a_command_runs_with_the_environments_python() -> None:
    ws = Workspace.create("commands", path="ws")
    Path("show.py").write_text(textwrap.dedent("""\
        import sys
        print("args", sys.argv[1:], "venv" if sys.prefix != sys.base_prefix else "no venv")
    """))
    run = Experiment(ws, "commands").submit(ScriptRunConfig(source_directory=".",
                                                            command=["python", "show.py", "--n", 2]))
    definition = run.wait_for_completion()["runDefinition"]
    assert (definition["script"], definition["command"]) == (None, ["python", "show.py", "--n", "2"])
    assert "args ['--n', '2'] venv" in run.get_output()
