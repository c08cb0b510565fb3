"""``RunConfiguration``'s Azure ML attributes (script, arguments, node_count, docker) and its ``.runconfig`` file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment
from kiln.errors import DefinitionError
from kiln.runs.config import DockerConfiguration, RunConfiguration, ScriptRunConfig


def test_a_run_configuration_gives_the_script_and_arguments_of_a_script_run_config() -> None:
    config = RunConfiguration(script="train.py", arguments=["--alpha", 0.5])
    run_config = ScriptRunConfig(source_directory=".", run_config=config)
    assert (run_config.script, run_config.arguments) == ("train.py", ["--alpha", "0.5"])
    assert ScriptRunConfig(".", "other.py", arguments=["-x"], run_config=config).program() == (["other.py", "-x"],
                                                                                               False)


def test_save_and_load_keep_every_setting(tmp_path: Path) -> None:
    env = Environment("trainer")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.16.0"], python_version="3.11")
    config = RunConfiguration(script="train.py", arguments=["--n", 3], environment=env, node_count=1,
                              max_run_duration_seconds=60, environment_variables={"A": "1"})
    config.docker.use_docker = True
    config.history.snapshot_project = False
    written = config.save(path=tmp_path, name="mine")
    assert written == str(tmp_path / ".kiln" / "mine.runconfig")
    loaded = RunConfiguration.load(path=tmp_path, name="mine")
    assert loaded.to_dict() == config.to_dict()
    assert loaded.environment is not None and loaded.environment.name == "trainer"
    assert (loaded.script, loaded.arguments, loaded.docker.enabled) == ("train.py", ["--n", "3"], True)
    assert loaded.history.snapshot_project is False
    file = tmp_path / "one.runconfig"
    assert config.save(path=file) == str(file)
    assert RunConfiguration.load(path=file).max_run_duration_seconds == 60


def test_load_reads_azure_ml_yaml_runconfig(tmp_path: Path) -> None:
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "local.runconfig").write_text(textwrap.dedent("""\
        script: train.py
        arguments: [--epochs, '5']
        target: local
        nodeCount: 1
        docker:
          useDocker: false
        history:
          outputCollection: true
          snapshotProject: true
        """), encoding="utf-8")
    loaded = RunConfiguration.load(path=tmp_path, name="local")
    assert (loaded.script, loaded.arguments, loaded.target) == ("train.py", ["--epochs", "5"], "local")


def test_load_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"no run configuration at .*\.kiln/x\.runconfig, .*\.azureml"):
        RunConfiguration.load(path=tmp_path, name="x")


def test_more_than_one_node_is_refused_on_the_local_target(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("", encoding="utf-8")
    config = ScriptRunConfig(tmp_path, "train.py", run_config=RunConfiguration(node_count=2))
    with pytest.raises(DefinitionError, match=r"node_count=2: compute target 'local' runs on one node"):
        config.validate()


def test_docker_enabled_is_the_older_name_of_use_docker() -> None:
    docker = DockerConfiguration()
    docker.enabled = True
    assert docker.use_docker is True
