"""The formats Kiln reads and writes, one ``Format`` each, in the order detection asks them.

Detection (``formats.detect``), ``kiln env register -d PATH`` and ``kiln env download --format F``
(``formats.export``) all go through ``FORMATS``: adding a format is adding a class here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiln._files import write_text_atomic
from kiln.environment.formats import azureml_v1
from kiln.environment.formats.interface import Format
from kiln.environment.names import check_name
from kiln.errors import DefinitionError, FormatError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["FORMATS", "V2_KEYS", "get_format", "yaml_keys"]

#: top-level keys that only an Azure ML v2 environment has
V2_KEYS = frozenset({"image", "build", "conda_file", "$schema", "os_type", "inference_config"})
_YAML_HINT_KEYS = frozenset({"name", "dependencies", "channels", "image", "build", "conda_file"})


def yaml_keys(path: Path) -> set[str] | None:
    """The top-level keys of a YAML mapping file (read as text, without a YAML parser), or None when
    ``path`` is neither named nor shaped like one."""
    from kiln.environment.textfile import read_utf8

    keys = set()
    for line in read_utf8(path).splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")) and ":" in line:
            keys.add(line.split(":", 1)[0].strip().strip("'\""))
    if path.suffix.lower() in (".yml", ".yaml") or keys & _YAML_HINT_KEYS:
        return keys
    return None


def _write_one(directory: Path, file_name: str, text: str, overwrite: bool) -> list[Path]:
    target = directory / file_name
    if target.exists() and not overwrite:
        raise FormatError(str(target), "already exists (pass overwrite=True, or --overwrite, to replace it)")
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text)
    return [target]


def _rename(env: Environment, name: str | None) -> Environment:
    if name is not None:
        env.name = check_name(name)
    return env


class AzureMLv1(Format):
    """An Azure ML SDK v1 folder (``Environment.save_to_directory``/``load_from_directory``)."""

    name = "azureml-v1"
    file_names = (azureml_v1.JSON_FILE, azureml_v1.CONDA_FILE, azureml_v1.DOCKERFILE)
    folder = True

    def sniff(self, path: Path) -> bool:
        return (path / azureml_v1.JSON_FILE).is_file() if path.is_dir() else path.name == azureml_v1.JSON_FILE

    def load(self, path: Path, *, name: str | None = None) -> Environment:
        from kiln.environment.environment import Environment, EnvironmentReference

        folder = path if path.is_dir() else path.parent
        env = Environment.load_from_directory(folder)
        if isinstance(env, EnvironmentReference):
            raise FormatError(str(folder / azureml_v1.JSON_FILE),
                              f"names the registered environment {env.name!r} but defines nothing "
                              "(add a 'python' or 'docker' section)")
        return _rename(env, name)

    def dump(self, env: Environment, directory: Path, *, overwrite: bool = False) -> list[Path]:
        env.save_to_directory(directory, overwrite=overwrite)
        return [directory / n for n in self.file_names if (directory / n).exists()]


class AzureMLv2(Format):
    """An Azure ML SDK/CLI v2 environment YAML (``formats.azureml_v2``)."""

    name = "azureml-v2"
    file_names = ("env.yml", "env.yaml")

    def sniff(self, path: Path) -> bool:
        keys = yaml_keys(path)
        return keys is not None and bool(keys & V2_KEYS)

    def load(self, path: Path, *, name: str | None = None) -> Environment:
        from kiln.environment.formats import azureml_v2

        return _rename(azureml_v2.load(path), name)

    def dump(self, env: Environment, directory: Path, *, overwrite: bool = False) -> list[Path]:
        from kiln.environment.formats import azureml_v2

        return _write_one(directory, self.file_names[0], azureml_v2.dump(env), overwrite)

    def cannot_dump(self, env: Environment) -> str | None:
        if env.docker.base_dockerfile is not None:
            return "a base Dockerfile can only be referenced through a build context folder in v2 YAML"
        return None


class CondaFile(Format):
    """A conda ``environment.yml`` (``formats.conda_file``); its ``variables`` are environment variables."""

    name = "conda"
    file_names = ("environment.yml", "environment.yaml", "conda.yml", "conda.yaml")

    def sniff(self, path: Path) -> bool:
        keys = yaml_keys(path)
        return keys is not None and not keys & V2_KEYS and bool(keys & {"dependencies", "channels"})

    def load(self, path: Path, *, name: str | None = None) -> Environment:
        from kiln.environment.environment import Environment
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

    def dump(self, env: Environment, directory: Path, *, overwrite: bool = False) -> list[Path]:
        from kiln.environment.formats.conda_file import write_conda_file

        return _write_one(directory, self.file_names[0], write_conda_file(env), overwrite)


class Requirements(Format):
    """A pip ``requirements.txt`` (``formats.requirements``): packages and options, no name."""

    name = "requirements"
    file_names = ("requirements.txt",)

    def sniff(self, path: Path) -> bool:
        # asked last: whatever is not named .yml/.yaml is read as pip reads it
        return yaml_keys(path) is None or path.suffix.lower() not in (".yml", ".yaml")

    def load(self, path: Path, *, name: str | None = None) -> Environment:
        from kiln.environment.environment import Environment

        if name is None:
            raise FormatError(str(path), "a requirements file has no environment name: give one (--name)")
        return Environment.from_pip_requirements(check_name(name), path)

    def dump(self, env: Environment, directory: Path, *, overwrite: bool = False) -> list[Path]:
        from kiln.environment.formats.requirements import write_requirements

        reason = self.cannot_dump(env)
        if reason is not None:
            raise DefinitionError(reason)
        cd = env.python.conda_dependencies
        assert cd is not None
        return _write_one(directory, self.file_names[0], write_requirements(cd.pip_packages, cd.pip_options),
                          overwrite)

    def cannot_dump(self, env: Environment) -> str | None:
        if env.python.conda_dependencies is None:
            return f"environment {env.name!r} has no Python packages to write as requirements"
        return None


#: every format, by name, in the order detection asks them (the fallback, requirements, last)
FORMATS: dict[str, Format] = {f.name: f for f in (AzureMLv1(), AzureMLv2(), CondaFile(), Requirements())}


def get_format(name: str) -> Format:
    """The format called ``name``; an unknown name is a ``DefinitionError`` naming the known ones."""
    if name not in FORMATS:
        raise DefinitionError(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    return FORMATS[name]
