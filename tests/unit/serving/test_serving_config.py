"""``InferenceConfig`` and ``DeploymentConfiguration``: what they accept, and the errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiln import InferenceConfig, LocalWebservice
from kiln.errors import DefinitionError, KilnError
from kiln.serving.config import DEFAULT_MAX_PAYLOAD, DeploymentConfiguration

# ---- DeploymentConfiguration ----------------------------------------------------------------------------


def test_defaults_validate_and_give_the_server_its_settings() -> None:
    config = LocalWebservice.deploy_configuration()
    config.validate()
    assert config.port is None
    assert config.settings() == {"host": "127.0.0.1", "workers": 1, "auth_enabled": False, "timeout_seconds": 60.0,
                                 "max_payload_bytes": DEFAULT_MAX_PAYLOAD, "batching": False, "max_batch_size": 32,
                                 "max_batch_wait_ms": 0.0, "debug": False, "container": False}


def test_azure_ml_arguments_are_accepted_and_unknown_ones_kept_aside() -> None:
    config = LocalWebservice.deploy_configuration(port=6789, cpu_cores=1.5, memory_gb=2, workers=3,
                                                  auth_enabled=True, timeout_seconds=5, max_payload_bytes=1000,
                                                  batching=True, max_batch_size=8, max_batch_wait_ms=4,
                                                  debug=True, tags={"a": "b"}, description="svc", container=True)
    config.validate()
    assert (config.port, config.cpu_cores, config.memory_gb) == (6789, 1.5, 2)
    assert config.extra == {"tags": {"a": "b"}, "description": "svc"}
    assert config.settings() == {"host": "127.0.0.1", "workers": 3, "auth_enabled": True, "timeout_seconds": 5.0,
                                 "max_payload_bytes": 1000, "batching": True, "max_batch_size": 8,
                                 "max_batch_wait_ms": 4.0, "debug": True, "container": True}
    assert isinstance(config, DeploymentConfiguration)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("port", 0, "deployment configuration: port 0 is not a TCP port"),
    ("port", -1, "deployment configuration: port -1 is not a TCP port"),
    ("port", 65536, "deployment configuration: port 65536 is not a TCP port"),
    ("workers", 0, "deployment configuration: workers must be at least 1, got 0"),
    ("timeout_seconds", 0, "deployment configuration: timeout_seconds must be positive, got 0"),
    ("timeout_seconds", -2.5, "deployment configuration: timeout_seconds must be positive, got -2.5"),
    ("max_payload_bytes", 0, "deployment configuration: max_payload_bytes must be positive, got 0"),
    ("max_batch_size", 0, "deployment configuration: max_batch_size must be at least 1, got 0"),
])
def test_bad_values_name_the_field(field: str, value: Any, message: str) -> None:
    config = LocalWebservice.deploy_configuration(**{field: value})
    with pytest.raises(DefinitionError) as info:
        config.validate()
    assert str(info.value) == message


@pytest.mark.parametrize("port", [1, 6789, 65535])
def test_every_tcp_port_is_accepted(port: int) -> None:
    LocalWebservice.deploy_configuration(port=port).validate()


def test_a_port_that_is_not_a_number_names_the_field() -> None:
    with pytest.raises(KilnError, match="port"):
        LocalWebservice.deploy_configuration(port="http").validate()  # type: ignore[arg-type]


# ---- InferenceConfig ------------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "score.py").write_text("def run(x):\n    return x\n")
    (folder / "sub" / "inner.py").write_text("def run(x):\n    return x\n")
    (tmp_path / "outside.py").write_text("def run(x):\n    return x\n")
    return folder


def test_a_valid_config_gives_the_resolved_source_folder(source: Path) -> None:
    assert InferenceConfig(entry_script="score.py", source_directory=source).validate() == source.resolve()
    assert InferenceConfig("sub/inner.py", source_directory=str(source)).validate() == source.resolve()


def test_azure_ml_only_arguments_are_accepted(source: Path) -> None:
    config = InferenceConfig(entry_script="score.py", source_directory=source, runtime="python",
                             conda_file="env.yml", extra_docker_file_steps="steps", enable_gpu=False)
    assert (config.entry_script, config.source_directory, config.environment) == ("score.py", str(source), None)


def test_without_a_source_directory_only_the_entry_script_is_taken_from_the_current_folder(
        source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(source)
    config = InferenceConfig("sub/inner.py")
    assert config.source_directory is None
    assert config.validate() is None
    assert config.entry_script_file() == source / "sub" / "inner.py"


def test_without_a_source_directory_a_missing_entry_script_is_named(source: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(source)
    with pytest.raises(DefinitionError) as info:
        InferenceConfig("nope.py").validate()
    assert str(info.value) == ("InferenceConfig: entry_script 'nope.py' not found (without a source_directory it "
                               f"is a path from the current folder, {Path.cwd()})")


def test_an_entry_script_is_required() -> None:
    with pytest.raises(DefinitionError) as info:
        InferenceConfig(entry_script="")
    assert str(info.value) == "InferenceConfig: entry_script is required"


@pytest.mark.parametrize(("script", "folder", "message"), [
    ("score.py", "missing", "InferenceConfig: source_directory {folder!r} is not a folder"),
    ("nope.py", None, "InferenceConfig: entry_script 'nope.py' not found in {resolved}"),
    ("sub", None, "InferenceConfig: entry_script 'sub' not found in {resolved}"),
    ("../outside.py", None, "InferenceConfig: entry_script '../outside.py' must be a path inside source_directory"),
    ("/etc/passwd", None, "InferenceConfig: entry_script '/etc/passwd' must be a path inside source_directory"),
], ids=["no-folder", "no-script", "script-is-a-folder", "dot-dot", "absolute"])
def test_validation_errors_name_the_field(source: Path, script: str, folder: str | None, message: str) -> None:
    directory = str(source.parent / folder) if folder else str(source)
    with pytest.raises(DefinitionError) as info:
        InferenceConfig(entry_script=script, source_directory=directory).validate()
    assert str(info.value) == message.format(folder=directory, resolved=source.resolve())
