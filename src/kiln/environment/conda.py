"""``CondaDependencies``: the conda + pip package list of an environment, as in Azure ML SDK v1.

The data is a ruamel.yaml round-trip document, as in the SDK, so that a conda file read from disk
and written back unchanged keeps its bytes (comments included). Every spec added is validated
with a real parser (``packaging`` for pip, rattler's ``MatchSpec`` for conda).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from kiln.environment.conda_specs import conda_spec_name, conda_spec_version, parse_conda_spec
from kiln.environment.formats.conda_yaml import (
    check_channel,
    is_blank,
    load_yaml_text,
    plain,
    rt_yaml,
    validate_conda_data,
)
from kiln.environment.pip_options import REPEATABLE_PIP_OPTIONS, is_pip_option, pip_option_flag
from kiln.environment.pip_requirements import parse_pip_requirement, pip_requirement_name
from kiln.errors import DefinitionError

__all__ = ["DEFAULT_CHANNELS", "DEFAULT_PYTHON_VERSION", "CondaDependencies"]

#: Kiln's default Python version for new definitions (Azure ML's template pinned 3.8.13).
DEFAULT_PYTHON_VERSION = "3.12"
#: Kiln's default channels (Azure ML's template used anaconda + conda-forge).
DEFAULT_CHANNELS = ("conda-forge",)


class CondaDependencies:
    """The conda dependencies of an environment (channels, conda packages, a nested pip list).

    ``CondaDependencies()`` gives Kiln's template (Python ``DEFAULT_PYTHON_VERSION``, channel
    conda-forge, no pip packages); ``CondaDependencies(conda_dependencies_file_path=...)`` reads a
    conda environment file.
    """

    def __init__(self, conda_dependencies_file_path: str | os.PathLike[str] | None = None,
                 _underlying_structure: Mapping[str, Any] | None = None, *, _source: str | None = None) -> None:
        if conda_dependencies_file_path is not None:
            from kiln.environment.textfile import read_utf8

            path = Path(conda_dependencies_file_path)
            text = read_utf8(path)
            self._data = load_yaml_text(text, str(path))
            self._source = str(path)
        elif _underlying_structure is not None:
            # plain data stays plain (dicts and lists): ruamel dumps it in order, and it is fast to build
            self._source = _source or "conda dependencies"
            self._data = plain(_underlying_structure)
        else:
            self._source = _source or "conda dependencies"
            self._data = load_yaml_text(_template(), self._source)
        validate_conda_data(self._data, self._source)

    # ---- construction -------------------------------------------------------------------------

    @staticmethod
    def create(pip_packages: Iterable[str] | None = None, conda_packages: Iterable[str] | None = None,
               python_version: str | None = None, pin_sdk_version: bool = True,
               pip_indexurl: str | None = None) -> CondaDependencies:
        """A new definition: Kiln's template plus the given packages.

        ``pin_sdk_version`` is accepted for Azure ML compatibility and ignored (Kiln adds no SDK).
        """
        del pin_sdk_version
        cd = CondaDependencies()
        if python_version is not None:
            cd.set_python_version(python_version)
        for spec in conda_packages or ():
            cd.add_conda_package(spec)
        if pip_indexurl:
            cd.set_pip_option(f"--index-url {pip_indexurl}")
        for spec in pip_packages or ():
            cd.add_pip_package(spec)
        return cd

    @classmethod
    def from_text(cls, text: str, source: str = "conda dependencies") -> CondaDependencies:
        """Parse a conda environment file's text; ``source`` names it in errors."""
        self = cls.__new__(cls)
        self._source = source
        self._data = load_yaml_text(text, source)
        validate_conda_data(self._data, source)
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "conda dependencies", *, validate: bool = True
                  ) -> CondaDependencies:
        """From plain data. ``validate=False`` is for data Kiln validated itself before storing it."""
        if validate:
            return cls(_underlying_structure=data, _source=source)
        return cls._adopt(plain(data), source)

    @classmethod
    def _adopt(cls, data: dict[str, Any], source: str) -> CondaDependencies:
        """Take ``data`` as it is (no copy, no validation): for fresh, trusted data such as a registry record."""
        self = cls.__new__(cls)
        self._source = source
        self._data = data
        return self

    def copy(self) -> CondaDependencies:
        if isinstance(self._data, dict) and type(self._data) is dict:
            return CondaDependencies.from_dict(self._data, self._source, validate=False)
        return CondaDependencies.from_text(self.serialize_to_string(), self._source)

    # ---- reading ------------------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        value = self._data.get("name")
        return None if value is None else str(value)

    @property
    def conda_channels(self) -> list[str]:
        return [str(c) for c in self._data.get("channels") or []]

    @property
    def conda_packages(self) -> list[str]:
        """Conda specs in order, ``python`` and ``pip`` included (as the SDK lists them)."""
        return [str(d) for d in self._deps() if not isinstance(d, Mapping)]

    @property
    def pip_packages(self) -> list[str]:
        """Pip requirements in order (blank and comment-only entries, which pip skips, left out)."""
        return [str(p) for p in self._pip_list() if not is_pip_option(str(p)) and not is_blank(str(p))]

    @property
    def pip_options(self) -> list[str]:
        return [str(p) for p in self._pip_list() if is_pip_option(str(p))]

    @property
    def variables(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self._data.get("variables") or {}).items()}

    @property
    def prefix(self) -> str | None:
        value = self._data.get("prefix")
        return None if value is None else str(value)

    def get_python_version(self) -> str | None:
        """The version in the ``python`` conda spec (``"3.9"`` for ``python=3.9``), or None."""
        for spec in self.conda_packages:
            if conda_spec_name(spec) == "python":
                return conda_spec_version(spec)
        return None

    @property
    def python_version(self) -> str | None:
        return self.get_python_version()

    def serialize_to_string(self) -> str:
        """The conda environment file text."""
        stream = io.StringIO()
        rt_yaml().dump(self._data, stream)
        return stream.getvalue()

    def as_dict(self) -> dict[str, Any]:
        """A plain-data copy (no comments), for storage and hashing."""
        return plain(self._data)

    # ---- editing ------------------------------------------------------------------------------

    def add_conda_package(self, conda_package: str) -> None:
        """Add a conda spec; a spec of the same package replaces the old one in place."""
        parse_conda_spec(conda_package, where=self._source)
        name = conda_spec_name(conda_package)
        deps = self._deps()
        for i, d in enumerate(deps):
            if not isinstance(d, Mapping) and conda_spec_name(str(d)) == name:
                deps[i] = conda_package
                return
        index = next((i for i, d in enumerate(deps) if isinstance(d, Mapping)), len(deps))
        deps.insert(index, conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove the conda package named by ``conda_package`` (a name or a spec)."""
        name = conda_spec_name(conda_package)
        deps = self._deps()
        deps[:] = [d for d in deps if isinstance(d, Mapping) or conda_spec_name(str(d)) != name]

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement; a requirement of the same project replaces the old one in place."""
        req = parse_pip_requirement(pip_package, where=self._source)
        pip = self._pip_list(create=True)
        for i, p in enumerate(pip):
            if not is_pip_option(str(p)) and pip_requirement_name(str(p)) == _canon(req.name):
                pip[i] = pip_package
                return
        pip.append(pip_package)

    def _add_pip_packages(self, packages: Iterable[str]) -> None:
        """``add_pip_package`` for each of ``packages``, in linear time: each project name is computed
        once (``add_pip_package`` compares with every package already there: quadratic for a file)."""
        pip = self._pip_list(create=True)
        index = {pip_requirement_name(str(p)): i for i, p in enumerate(pip) if not is_pip_option(str(p))}
        for package in packages:
            name = _canon(parse_pip_requirement(package, where=self._source).name)
            if name in index:
                pip[index[name]] = package
            else:
                index[name] = len(pip)
                pip.append(package)
        self._drop_empty_pip()

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove the pip requirement named by ``pip_package`` (a name or a requirement)."""
        name = pip_requirement_name(pip_package)
        pip = self._pip_list()
        pip[:] = [p for p in pip if is_pip_option(str(p)) or pip_requirement_name(str(p)) != name]
        self._drop_empty_pip()

    def add_channel(self, channel: str) -> None:
        """Append a channel (order is priority: the first channel wins)."""
        channel = check_channel(channel, self._source)
        channels = self._data.get("channels")
        if channels is None:
            channels = []
            self._data["channels"] = channels
        if channel not in [str(c) for c in channels]:
            channels.append(channel)

    def remove_channel(self, channel: str) -> None:
        channels = self._data.get("channels")
        if channels is not None:
            channels[:] = [c for c in channels if str(c) != channel]

    def set_python_version(self, version: str) -> None:
        """Pin the interpreter: ``python=<version>`` replaces any ``python`` spec."""
        version = str(version).strip()
        spec = f"python={version}"
        parse_conda_spec(spec, where=f"{self._source}: python version")
        self.add_conda_package(spec)

    def set_pip_option(self, pip_option: str) -> None:
        """Add a pip option; an option with the same flag is replaced (``--extra-index-url`` and
        ``--find-links`` may appear several times: identical lines are not repeated)."""
        option = " ".join(str(pip_option).split())
        if not is_pip_option(option):
            raise DefinitionError(f"{self._source}: {pip_option!r} is not a pip option (it must start with '-')")
        flag = pip_option_flag(option)
        pip = self._pip_list(create=True)
        if flag in REPEATABLE_PIP_OPTIONS:
            if option not in [str(p) for p in pip]:
                pip.insert(len(self.pip_options), option)
            return
        for i, p in enumerate(pip):
            if is_pip_option(str(p)) and pip_option_flag(str(p)) == flag:
                pip[i] = option
                return
        pip.insert(len(self.pip_options), option)

    def remove_pip_option(self, pip_option: str) -> None:
        """Remove a pip option: the exact line, or every line of a flag given alone (``--extra-index-url``)."""
        option = " ".join(str(pip_option).split())
        pip = self._pip_list()
        if " " in option or "=" in option:
            pip[:] = [p for p in pip if " ".join(str(p).split()) != option]
        else:
            flag = pip_option_flag(option)
            pip[:] = [p for p in pip if not (is_pip_option(str(p)) and pip_option_flag(str(p)) == flag)]
        self._drop_empty_pip()

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the conda file to ``path`` (a file path); return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as f:
            f.write(self.serialize_to_string())
        return str(target)

    def save_to_file(self, base_directory: str | os.PathLike[str], conda_file_path: str | None = None) -> str:
        """SDK spelling of ``save``: ``base_directory/conda_file_path`` (default ``myenv.yml``)."""
        return self.save(Path(base_directory) / (conda_file_path or "myenv.yml"))

    # ---- helpers ------------------------------------------------------------------------------

    def _deps(self) -> Any:
        deps = self._data.get("dependencies")
        if deps is None:
            deps = []
            self._data["dependencies"] = deps
        return deps

    def _pip_list(self, create: bool = False) -> Any:
        for d in self._deps():
            if isinstance(d, MutableMapping) and "pip" in d:
                if d["pip"] is None:
                    d["pip"] = []
                return d["pip"]
        if not create:
            return []
        entry: dict[str, Any] = {"pip": []}
        self._deps().append(entry)
        return entry["pip"]

    def _drop_empty_pip(self) -> None:
        deps = self._deps()
        deps[:] = [d for d in deps if not (isinstance(d, Mapping) and "pip" in d and not d["pip"])]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return (f"CondaDependencies(channels={self.conda_channels!r}, conda={self.conda_packages!r}, "
                f"pip={self.pip_packages!r})")


def _canon(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _template() -> str:
    return (
        "# Conda environment specification, written by Kiln.\n"
        "name: project_environment\n"
        "dependencies:\n"
        f"- python={DEFAULT_PYTHON_VERSION}\n"
        "channels:\n" + "".join(f"- {c}\n" for c in DEFAULT_CHANNELS)
    )
