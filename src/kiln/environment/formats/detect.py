"""Read an environment from any supported file or folder, detecting the format by content."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiln.environment.checks import check_definition
from kiln.environment.formats.registry import FORMATS, get_format, yaml_keys
from kiln.environment.limits import cut
from kiln.environment.names import check_name
from kiln.errors import DefinitionError, FormatError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["FORMATS", "detect_format", "load_any", "resolve_input"]


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
    """The name of the format of ``path``: ``azureml-v1`` for a folder with ``azureml_environment.json``;
    for a file, the first format in ``registry.FORMATS`` that recognizes it (``requirements`` last, for
    anything that is not YAML)."""
    if path.is_dir():
        if (path / "azureml_environment.json").is_file():
            return "azureml-v1"
        if resolve_input(path) != path:
            return detect_format(resolve_input(path))
        raise FormatError(str(path), "no azureml_environment.json, environment.yml or requirements.txt in this folder")
    if not path.is_file():
        raise FormatError(str(path), "not a regular file (a device, pipe or socket)" if path.exists()
                          else "no such file or folder")
    yaml_keys(path)  # an unreadable file is reported as such, whatever its name
    for fmt in FORMATS.values():
        if fmt.sniff(path):
            return fmt.name
    raise FormatError(str(path), "a YAML file that is neither a conda environment file (no 'dependencies') "
                                 "nor an Azure ML v2 environment (no 'image' or 'build')")


def load_any(path: Path, *, name: str | None = None, format: str | None = None) -> Environment:
    """An ``Environment`` from ``path``; ``name`` overrides (and is required for a requirements file)."""
    if name is not None:
        name = check_name(name)
    try:
        path = resolve_input(path)
        detected = format or detect_format(path)
    except OSError as e:  # a name too long for the file system, a folder we may not list...
        raise FormatError(cut(str(path)), e.strerror or type(e).__name__) from None
    try:
        fmt = get_format(detected)
    except DefinitionError as e:  # an unknown --format: the message names the known ones
        raise FormatError(str(path), str(e)) from None
    env = fmt.load(path, name=name)
    # checked here too, where the file is known, and not only at registration
    check_definition(env, str(path / "azureml_environment.json" if path.is_dir() else path))
    return env
