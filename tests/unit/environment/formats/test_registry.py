"""Every format behind the one registry: round trips, detection, and the error for an unknown name."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln import Environment
from kiln.environment.formats.detect import detect_format, load_any
from kiln.environment.formats.export import export
from kiln.environment.formats.registry import FORMATS, get_format
from kiln.errors import DefinitionError, FormatError


def _env() -> Environment:
    env = Environment("round-trip")
    cd = env.python.conda_dependencies
    assert cd is not None
    cd.add_pip_package("numpy==1.26.4")
    cd.set_pip_option("--extra-index-url https://example.com/simple")
    return env


def test_the_registry_holds_the_four_formats_in_detection_order() -> None:
    assert list(FORMATS) == ["azureml-v1", "azureml-v2", "conda", "requirements"]
    assert all(FORMATS[name].name == name and FORMATS[name].file_names for name in FORMATS)


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_round_trips(name: str, tmp_path: Path) -> None:
    env = _env()
    fmt = get_format(name)
    assert fmt.cannot_dump(env) is None
    written = fmt.dump(env, tmp_path / "out")
    assert written and all(f.is_file() for f in written)
    path = tmp_path / "out" if fmt.folder else written[0]
    assert detect_format(path) == name
    again = fmt.load(path, name="round-trip")
    assert again.hash == env.hash
    assert again.name == "round-trip"
    assert again.python.conda_dependencies is not None
    assert again.python.conda_dependencies.pip_packages == ["numpy==1.26.4"]


@pytest.mark.parametrize("name", list(FORMATS))
def test_dump_refuses_to_overwrite(name: str, tmp_path: Path) -> None:
    FORMATS[name].dump(_env(), tmp_path)
    with pytest.raises(FormatError, match="already exists"):
        FORMATS[name].dump(_env(), tmp_path)


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("azureml-v1/written-by-sdk/plain", "azureml-v1"),
        ("azureml-v1/written-by-sdk/plain/azureml_environment.json", "azureml-v1"),
        ("azureml-v2/env_image.yml", "azureml-v2"),
        ("azureml-v2/env_build.yml", "azureml-v2"),
        ("azureml-v2/conda.yaml", "conda"),
        ("azureml-v1/factories/env.yml", "conda"),
        ("azureml-v1/factories/requirements.txt", "requirements"),
    ],
)
def test_detection_picks_the_format_of_each_fixture(fixtures: Path, relative: str, expected: str) -> None:
    assert detect_format(fixtures / relative) == expected


def test_a_yaml_file_of_no_known_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yml"
    path.write_text("name: x\nfoo: 1\n")
    with pytest.raises(FormatError, match="neither a conda environment file"):
        detect_format(path)


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    known = "known: azureml-v1, azureml-v2, conda, requirements"
    with pytest.raises(DefinitionError, match=known):
        export(_env(), tmp_path, "pipfile")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    with pytest.raises(FormatError, match=known):
        load_any(tmp_path / "requirements.txt", name="x", format="pipfile")
    assert not (tmp_path / "Pipfile").exists()


def test_requirements_cannot_hold_an_environment_without_packages() -> None:
    env = Environment("bare")
    env.python.conda_dependencies = None
    env.python.user_managed_dependencies = True
    assert "no Python packages" in (FORMATS["requirements"].cannot_dump(env) or "")


def test_a_missing_path_is_named_once(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as info:
        load_any(tmp_path / "missing.yml")
    assert str(info.value) == f"{tmp_path / 'missing.yml'}: no such file or folder"
