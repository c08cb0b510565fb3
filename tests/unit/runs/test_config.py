"""``ScriptRunConfig``: what it keeps, and the mistakes ``validate`` (run by ``submit``) reports."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kiln import Environment
from kiln.errors import DefinitionError
from kiln.runs.config import HistoryConfiguration, RunConfiguration, ScriptRunConfig


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "pkg").mkdir(parents=True)
    (folder / "train.py").write_text("print('hi')\n")
    (folder / "pkg" / "job.py").write_text("print('job')\n")
    (tmp_path / "outside.py").write_text("print('outside')\n")
    return folder


def error(config: ScriptRunConfig) -> str:
    with pytest.raises(DefinitionError) as e:
        config.validate()
    return str(e.value)


def test_a_valid_config_returns_its_absolute_source_folder(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(src.parent)
    assert ScriptRunConfig("src", "train.py").validate() == src
    assert ScriptRunConfig(src, "pkg/job.py", compute_target="local").validate() == src


def test_arguments_become_strings_and_the_azure_names_are_kept(src: Path) -> None:
    env = Environment("e")
    config = ScriptRunConfig(source_directory=src, script="train.py", arguments=["--alpha", 0.5, "--n", 3, True],
                             compute_target="local", environment=env, max_run_duration_seconds=60)
    assert config.arguments == ["--alpha", "0.5", "--n", "3", "True"]
    assert (config.source_directory, config.script, config.compute_target) == (str(src), "train.py", "local")
    assert config.environment is env and config.run_config.environment is env
    assert config.run_config.max_run_duration_seconds == 60
    other = Environment("other")
    config.environment = other
    assert config.run_config.environment is other


def test_keyword_arguments_override_the_run_configuration(src: Path) -> None:
    run_config = RunConfiguration(target="local", max_run_duration_seconds=5,
                                  environment_variables={"A": "1"})
    config = ScriptRunConfig(src, "train.py", run_config=run_config, max_run_duration_seconds=9)
    assert config.run_config is run_config
    assert (run_config.max_run_duration_seconds, run_config.environment_variables) == (9, {"A": "1"})


def test_defaults() -> None:
    config = ScriptRunConfig(script="train.py")
    assert (config.source_directory, config.arguments, config.compute_target, config.environment) == \
        (".", [], "local", None)
    history = config.run_config.history
    assert (history.snapshot_project, history.output_collection, history.enabled) == (True, True, True)
    assert config.run_config.max_run_duration_seconds is None


def test_history_enabled_switches_both_parts() -> None:
    history = HistoryConfiguration()
    history.enabled = False
    assert (history.snapshot_project, history.output_collection, history.enabled) == (False, False, False)
    history.output_collection = True
    assert history.enabled is True
    history.enabled = True
    assert (history.snapshot_project, history.output_collection) == (True, True)


@pytest.mark.parametrize("script", [None, ""])
def test_a_script_is_required(script: str | None) -> None:
    with pytest.raises(DefinitionError, match=r"^ScriptRunConfig: script is required"):
        ScriptRunConfig(source_directory=".", script=script)


def test_command_and_script_exclude_each_other() -> None:
    with pytest.raises(DefinitionError, match=r"give script= or command=, not both"):
        ScriptRunConfig(script="train.py", command=["python", "train.py"])


@pytest.mark.parametrize("command", [["python", "train.py", "--alpha", 1], "python train.py --alpha 1"])
def test_a_command_is_its_words(command: Any) -> None:
    config = ScriptRunConfig(source_directory=".", command=command)
    assert config.script is None
    assert config.program() == (["python", "train.py", "--alpha", "1"], True)


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"command= is empty"):
        ScriptRunConfig(command="")


def test_a_missing_script(src: Path) -> None:
    assert error(ScriptRunConfig(src, "nope.py")) == f"script 'nope.py' not found in {src}"


def test_a_folder_is_not_a_script(src: Path) -> None:
    assert error(ScriptRunConfig(src, "pkg")) == f"script 'pkg' not found in {src}"


@pytest.mark.parametrize("script", ["../outside.py", "pkg/../../outside.py"])
def test_a_script_outside_the_source_folder(src: Path, script: str) -> None:
    assert error(ScriptRunConfig(src, script)) == f"script {script!r} must be a path inside source_directory"


def test_an_absolute_script_path_is_outside_the_source_folder(src: Path) -> None:
    script = str(src / "train.py")
    assert error(ScriptRunConfig(src, script)) == f"script {script!r} must be a path inside source_directory"


def test_a_source_folder_that_is_not_a_folder(src: Path) -> None:
    assert error(ScriptRunConfig(src / "missing", "train.py")) == \
        f"source_directory {str(src / 'missing')!r} is not a folder"
    assert error(ScriptRunConfig(src / "train.py", "train.py")) == \
        f"source_directory {str(src / 'train.py')!r} is not a folder"


@pytest.mark.parametrize("target", ["cpu-cluster", "", "Local"])
def test_a_target_other_than_local(src: Path, target: str) -> None:
    assert error(ScriptRunConfig(src, "train.py", compute_target=target)) == \
        f"compute_target {target!r}: Kiln runs on local, container for now"


def test_a_compute_target_object_is_judged_by_its_name(src: Path) -> None:
    config = ScriptRunConfig(src, "train.py")
    config.run_config.target = SimpleNamespace(name="local")
    assert config.validate() == src
    config.run_config.target = SimpleNamespace(name="gpu")
    assert error(config) == "compute_target 'gpu': Kiln runs on local, container for now"


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_a_timeout_must_be_positive(src: Path, timeout: float) -> None:
    assert error(ScriptRunConfig(src, "train.py", max_run_duration_seconds=timeout)) == \
        f"max_run_duration_seconds must be a positive number of seconds, got {timeout!r}"


def test_a_timeout_set_on_the_run_configuration_is_checked_too(src: Path) -> None:
    config = ScriptRunConfig(src, "train.py", run_config=RunConfiguration(max_run_duration_seconds=-3))
    assert error(config) == "max_run_duration_seconds must be a positive number of seconds, got -3"


@pytest.mark.parametrize("timeout", [0.5, 1, 3600])
def test_a_positive_timeout_is_fine(src: Path, timeout: float) -> None:
    assert ScriptRunConfig(src, "train.py", max_run_duration_seconds=timeout).validate() == src


def test_a_timeout_that_is_not_a_number(src: Path) -> None:
    assert "max_run_duration_seconds" in error(ScriptRunConfig(src, "train.py", max_run_duration_seconds="10"))


def test_a_nan_timeout_is_refused(src: Path) -> None:
    assert "max_run_duration_seconds" in error(ScriptRunConfig(src, "train.py",
                                                               max_run_duration_seconds=float("nan")))
