"""Read an environment from any supported file or folder, detecting the format by content."""

from __future__ import annotations

from pathlib import Path

from kiln.environment.names import check_name
from kiln.errors import DefinitionError, FormatError

__all__ = ["FORMATS", "detect_format", "load_any"]

#: format names, as ``kiln env register --format`` takes them
FORMATS = ("azureml-v1", "azureml-v2", "conda", "requirements")


_CANDIDATES = ("environment.yml", "environment.yaml", "conda.yml", "conda.yaml", "env.yml", "env.yaml",
               "requirements.txt")


def resolve_input(path: Path) -> Path:
    """The file to read for ``path``: a v1 folder stays a folder; another folder gives its first known file."""
    if path.is_dir() and not (path / "azureml_environment.json").is_file():
        for candidate in _CANDIDATES:
            if (path / candidate).is_file():
                return path / candidate
    return path


def detect_format(path: Path) -> str:
    """``azureml-v1`` for a folder with ``azureml_environment.json``; for a file, ``azureml-v2`` when it is
    a YAML mapping with ``image``/``build``/``conda_file``, ``conda`` when it has ``dependencies``,
    else ``requirements``."""
    if path.is_dir():
        if (path / "azureml_environment.json").is_file():
            return "azureml-v1"
        if resolve_input(path) != path:
            return detect_format(resolve_input(path))
        raise FormatError(str(path), "no azureml_environment.json, environment.yml or requirements.txt in this folder")
    if not path.is_file():
        raise FormatError(str(path), "no such file or folder")
    from kiln.environment.textfile import read_utf8

    text = read_utf8(path)
    if path.name == "azureml_environment.json":
        return "azureml-v1"
    if path.suffix.lower() in (".yml", ".yaml") or _looks_like_yaml_mapping(text):
        keys = _top_level_keys(text)
        if keys & {"image", "build", "conda_file", "$schema", "os_type", "inference_config"}:
            return "azureml-v2"
        if keys & {"dependencies", "channels"}:
            return "conda"
        if path.suffix.lower() in (".yml", ".yaml"):
            raise FormatError(str(path), "a YAML file that is neither a conda environment file (no 'dependencies') "
                                         "nor an Azure ML v2 environment (no 'image' or 'build')")
    return "requirements"


def _top_level_keys(text: str) -> set[str]:
    keys = set()
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")) and ":" in line:
            keys.add(line.split(":", 1)[0].strip().strip("'\""))
    return keys


def _looks_like_yaml_mapping(text: str) -> bool:
    return bool(_top_level_keys(text) & {"name", "dependencies", "channels", "image", "build", "conda_file"})


def load_any(path: Path, *, name: str | None = None, format: str | None = None):  # type: ignore[no-untyped-def]
    """An ``Environment`` from ``path``; ``name`` overrides (and is required for a requirements file)."""
    from kiln.environment.environment import Environment, EnvironmentReference
    from kiln.environment.formats import azureml_v2

    path = resolve_input(path)
    if name is not None:
        name = check_name(name)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise FormatError(str(path), f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "azureml-v1":
        folder = path if path.is_dir() else path.parent
        env = Environment.load_from_directory(folder)
        if isinstance(env, EnvironmentReference):
            raise FormatError(str(folder / "azureml_environment.json"),
                              f"names the registered environment {env.name!r} but defines nothing "
                              "(add a 'python' or 'docker' section)")
    elif fmt == "azureml-v2":
        env = azureml_v2.load(path)
    elif fmt == "conda":
        from kiln.environment.formats.conda_file import read_conda_file

        conda, variables = read_conda_file(path)
        env_name = name if name is not None else conda.name
        if not env_name:
            raise FormatError(str(path), "no 'name' in the file: give one (--name)", "name")
        try:
            env = Environment(env_name)
        except DefinitionError as e:
            raise FormatError(str(path), str(e), "name") from None
        env.python.conda_dependencies = conda
        env.environment_variables.update(variables)
        return env
    else:
        if name is None:
            raise FormatError(str(path), "a requirements file has no environment name: give one (--name)")
        return Environment.from_pip_requirements(check_name(name), path)
    if name is not None:
        env.name = check_name(name)
    return env
