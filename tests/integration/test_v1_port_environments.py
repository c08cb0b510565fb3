"""Azure ML's "using environments" notebook (MachineLearningNotebooks, how-to-use-azureml/training/
using-environments), ported by changing its imports, each cell's behaviour asserted.

The one other change: the notebook adds ``scikit-learn`` as a conda package; here a small pip package
stands in, so that the test needs no conda channel (conda builds have their own tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]


def test_the_environments_notebook_runs_with_kilns_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    # setup the notebook assumes: a workspace and its config.json (here: `kiln workspace create`)
    import kiln

    kiln.Workspace.create("notebooks", path=tmp_path / "ws").write_config()

    # import azureml.core; print("SDK version:", azureml.core.VERSION)
    print("SDK version:", kiln.VERSION)
    assert capsys.readouterr().out == f"SDK version: {kiln.__version__}\n"

    # from azureml.core import Workspace
    from kiln import Workspace

    ws = Workspace.from_config()
    print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")
    assert capsys.readouterr().out == f"notebooks\nlocal\n{tmp_path / 'ws'}\nlocal\n"
    assert ws.get_details()["name"] == "notebooks"

    # from azureml.core import Environment
    from kiln import Environment

    env = Environment.get(workspace=ws, name="AzureML-Minimal")
    assert env.name == "AzureML-Minimal" and env.tags["kiln.recreation-of"] == "AzureML-Minimal"
    assert json.loads(repr(env))["name"] == "AzureML-Minimal"  # the cell's output: the definition as JSON

    curated_clone = env.clone("customize_curated")
    assert (curated_clone.name, curated_clone.version) == ("customize_curated", None)

    envs = Environment.list(workspace=ws)
    for env in envs:
        if env.startswith("AzureML"):
            print("Name", env)
            print("packages", envs[env].python.conda_dependencies.serialize_to_string())
    out = capsys.readouterr().out
    for name in ("AzureML-Minimal", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu",
                 "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu"):
        assert f"Name {name}\n" in out
    assert "- scikit-learn==0.24.1" in out and "Name Kiln-" not in out

    sklearn = Environment.get(workspace=ws, name="AzureML-sklearn-0.24-ubuntu18.04-py37-cpu")
    assert sklearn.python.conda_dependencies.get_python_version() == "3.7"
    with pytest.raises(kiln.KilnError, match=r"closest: AzureML-sklearn-0\.24-ubuntu18\.04-py37-cpu"):
        Environment.get(workspace=ws, name="AzureML-sklearn-0.23-ubuntu18.04-py37-cpu")

    # from azureml.core.environment import CondaDependencies
    from kiln import CondaDependencies

    myenv = Environment(name="myenv")
    conda_dep = CondaDependencies()
    conda_dep.add_pip_package("six==1.16.0")  # the notebook: conda_dep.add_conda_package("scikit-learn")
    myenv.python.conda_dependencies = conda_dep
    myenv.environment_variables = {"MESSAGE": "Hello from Azure Machine Learning"}

    registered = myenv.register(workspace=ws)
    assert registered.version == "1"

    envs = Environment.list(workspace=ws)
    for env in envs:
        if env.startswith("my"):
            print("Name", env)
            print("packages", envs[env].python.conda_dependencies.serialize_to_string())
    out = capsys.readouterr().out
    assert out.startswith("Name myenv\npackages ") and "- six==1.16.0" in out

    restored_environment = Environment.get(workspace=ws, name="myenv", version="1")
    print("Attributes of restored environment")
    restored_environment  # noqa: B018 - a notebook cell's value
    assert restored_environment.environment_variables == {"MESSAGE": "Hello from Azure Machine Learning"}
    assert restored_environment.python.conda_dependencies.pip_packages == ["six==1.16.0"]

    # a second version, then the first again by number
    myenv.python.conda_dependencies.add_pip_package("packaging")
    assert myenv.register(workspace=ws).version == "2"
    assert Environment.get(workspace=ws, name="myenv", version=1).python.conda_dependencies.pip_packages == [
        "six==1.16.0"]
    assert Environment.get(workspace=ws, name="myenv", label="latest").version == "2"
    assert ws.environments["myenv"].version == "2"

    build = restored_environment.build_local(workspace=ws)
    assert build.environment == "myenv:1" and build.environ()["MESSAGE"] == "Hello from Azure Machine Learning"
    assert build.lock is not None and build.lock.version_of("six") == "1.16.0"

    handle = restored_environment.build(workspace=ws)
    handle.wait_for_completion(show_output=False)
    assert handle.status == "Succeeded"

    details = restored_environment.get_image_details(workspace=ws)
    assert details["image"].startswith("kiln/kiln_")
    assert 'ENV MESSAGE="Hello from Azure Machine Learning"' in details.dockerfile

    assert set(ws.compute_targets) == {"local", "container"} and ws.models == {} and ws.webservices == {}
    assert ws.experiments == {}
