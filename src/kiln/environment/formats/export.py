"""Write an environment in any supported format (what ``kiln env download`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiln._files import write_text_atomic
from kiln.errors import DefinitionError, FormatError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["export"]

_SINGLE_FILE = {"azureml-v2": "env.yml", "conda": "environment.yml", "requirements": "requirements.txt"}


def export(env: Environment, directory: Path, fmt: str, *, overwrite: bool = False) -> list[Path]:
    """Write ``env`` into ``directory`` as ``fmt``; return the files written. Nothing is written on error."""
    if fmt == "azureml-v1":
        env.save_to_directory(directory, overwrite=overwrite)
        return [directory / n for n in ("azureml_environment.json", "conda_dependencies.yml", "BaseDockerfile")
                if (directory / n).exists()]
    if fmt not in _SINGLE_FILE:
        raise DefinitionError(f"unknown format {fmt!r} (known: azureml-v1, {', '.join(_SINGLE_FILE)})")
    text = _text(env, fmt)
    target = directory / _SINGLE_FILE[fmt]
    if target.exists() and not overwrite:
        raise FormatError(str(target), "already exists (pass overwrite=True, or --overwrite, to replace it)")
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text)
    return [target]


def _text(env: Environment, fmt: str) -> str:
    if fmt == "azureml-v2":
        from kiln.environment.formats import azureml_v2

        return azureml_v2.dump(env)
    if fmt == "conda":
        from kiln.environment.formats.conda_file import write_conda_file

        return write_conda_file(env)
    from kiln.environment.formats.requirements import write_requirements

    cd = env.python.conda_dependencies
    if cd is None:
        raise DefinitionError(f"environment {env.name!r} has no Python packages to write as requirements")
    return write_requirements(cd.pip_packages, cd.pip_options)
