"""``Environment``: the definition of a software environment, with Azure ML SDK v1's names.

The object is mutable while a user edits it, as in the SDK. Everything downstream (identity,
registry, builds) works from its canonical data (``to_dict``), so what is registered is a snapshot.
Workspaces are reached through their own methods, so this module knows nothing of the registry.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from kiln.environment.conda import CondaDependencies
from kiln.environment.identity import identity_hash
from kiln.environment.names import check_name
from kiln.environment.sections import DockerSection, PythonSection, SparkSection
from kiln.errors import DefinitionError, KilnError

__all__ = ["Environment", "EnvironmentReference"]


class _Registry(Protocol):
    """What an Environment needs of a workspace (``kiln.Workspace`` provides it)."""

    def register_environment(self, environment: Environment) -> Environment: ...

    def get_environment(self, name: str, version: str | None = None) -> Environment: ...

    def list_environments(self) -> dict[str, Environment]: ...


class _Builder(Protocol):
    """What ``build``, ``build_local`` and ``get_image_details`` need of a workspace (``kiln.Workspace``)."""

    def build_environment(self, environment: Environment, *, upgrade: bool = False) -> Any: ...

    def build_environment_in_background(self, environment: Environment, *, upgrade: bool = False) -> Any: ...

    def environment_image_details(self, environment: Environment) -> Any: ...


def _builder(workspace: Any) -> _Builder:
    if not hasattr(workspace, "build_environment"):
        raise KilnError(f"{workspace!r} can't build environments: pass a kiln.Workspace (from kiln import Workspace)")
    return workspace


class Environment:
    """A software environment: Python packages, a container base, environment variables, Spark packages.

    ``Environment("myenv")`` starts from Kiln's defaults: Python ``DEFAULT_PYTHON_VERSION`` from
    conda-forge with no packages, base image ``DEFAULT_CPU_IMAGE``, no environment variables.
    """

    def __init__(self, name: str, *, _defaults: bool = True) -> None:
        self.name = check_name(name)
        self.version: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.python = PythonSection(conda_dependencies=CondaDependencies() if _defaults else None)
        self.docker = DockerSection()
        if not _defaults:
            self.docker.base_image = None
            self.docker.shm_size = None
        self.spark = SparkSection()
        self.r: dict[str, Any] | None = None
        self.databricks: dict[str, Any] = {k: [] for k in ("mavenLibraries", "pypiLibraries", "rcranLibraries",
                                                              "jarLibraries", "eggLibraries")}
        self.inferencing_stack_version: str | None = None
        self.asset_id: str | None = None
        self.description: str | None = None
        self.tags: dict[str, str] = {}
        #: Azure ML v2's routes for serving (liveness, readiness, scoring), kept as data
        self.inference_config: dict[str, Any] | None = None

    # ---- identity -----------------------------------------------------------------------------

    @property
    def hash(self) -> str:
        """The build identity (see ``kiln.environment.identity``): equal for equal builds, whatever the name."""
        known = getattr(self, "_known_hash", None)
        if known is not None and known[0] == self.definition_text():
            return str(known[1])  # as registered, and unchanged since: no need to normalize every spec again
        return identity_hash(self)

    def _remember_hash(self, definition: str, hash: str) -> None:
        """Record the hash the registry stored for ``definition`` (used while the definition is unchanged)."""
        self._known_hash = (definition, hash)

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The whole definition as JSON-ready data (conda file and Dockerfile inline)."""
        from kiln.environment.serialize import environment_to_dict

        return environment_to_dict(self, include_secrets=include_secrets)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "environment definition") -> Environment:
        from kiln.environment.serialize import environment_from_dict

        return environment_from_dict(data, source)

    def definition_text(self) -> str:
        """Deterministic JSON of the definition without name and version: what the registry compares.

        Key order is the serializer's (and the conda file's own), so a download gives the file back as written."""
        import json

        from kiln.environment.serialize import environment_to_dict

        data = environment_to_dict(self, include_version=False)
        del data["name"]
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and self.to_dict(include_secrets=True) == other.to_dict(
            include_secrets=True)

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"

    # ---- copies -------------------------------------------------------------------------------

    def clone(self, new_name: str) -> Environment:
        """A copy under ``new_name``, unregistered (version None): how a curated environment is customized."""
        check_name(new_name)
        twin = copy.deepcopy(self)
        twin.name = new_name
        twin.version = None
        twin.asset_id = None
        return twin

    def __deepcopy__(self, memo: dict[int, Any]) -> Environment:
        from kiln.environment.serialize import environment_from_dict

        twin = environment_from_dict(self.to_dict(include_secrets=True), "copy", trusted=True)
        twin.python.conda_dependencies = (None if self.python.conda_dependencies is None
                                          else self.python.conda_dependencies.copy())
        return twin

    # ---- workspace ----------------------------------------------------------------------------

    def register(self, workspace: _Registry) -> Environment:
        """Register in ``workspace``: a new version if the definition changed, else the latest one.

        Returns the registered environment (with its ``version``). A literal registry password is
        not stored (see ``kiln.environment.secrets``).
        """
        return workspace.register_environment(self)

    @staticmethod
    def get(workspace: _Registry, name: str, version: str | int | None = None) -> Environment:
        """A registered or curated environment; the latest version when ``version`` is None."""
        return workspace.get_environment(name, None if version is None else str(version))

    @staticmethod
    def list(workspace: _Registry) -> dict[str, Environment]:
        """Name → latest version, curated environments included."""
        return workspace.list_environments()

    # ---- builds: actions of the workspace given (``kiln.Workspace``), so definitions hold no build code ----

    def build(self, workspace: Any, *, upgrade: bool = False) -> Any:
        """Build in the background (registering first, as Azure ML does); returns a handle with
        ``status``, ``get_log()`` and ``wait_for_completion(show_output=False)``."""
        return _builder(workspace).build_environment_in_background(self, upgrade=upgrade)

    def build_local(self, workspace: Any, platform: str | None = None, *, useDocker: bool = False,
                    pushImageToWorkspaceAcr: bool = False, upgrade: bool = False, **kwargs: Any) -> Any:
        """Build here and return when done (a ``BuildResult``). ``useDocker=True`` (an image) comes later."""
        del platform, kwargs
        if useDocker or pushImageToWorkspaceAcr:
            raise DefinitionError("build_local(useDocker=True): container image builds are not available yet in "
                                  "this Kiln; build without Docker (useDocker=False)")
        return _builder(workspace).build_environment(self, upgrade=upgrade)

    def get_image_details(self, workspace: Any) -> Any:
        """The image Kiln would build: its Dockerfile (two steps), name ``kiln/kiln_<hash>`` and interpreter path."""
        return _builder(workspace).environment_image_details(self)

    # ---- files --------------------------------------------------------------------------------

    def save_to_directory(self, path: str | os.PathLike[str], overwrite: bool = False, *,
                          include_secrets: bool = False) -> None:
        """Write an Azure ML v1 environment folder (``azureml_environment.json`` and friends)."""
        from kiln.environment.formats import azureml_v1

        azureml_v1.save(self, Path(path), overwrite=overwrite, include_secrets=include_secrets)

    @staticmethod
    def load_from_directory(path: str | os.PathLike[str]) -> Environment | EnvironmentReference:
        """Read an Azure ML v1 environment folder. A folder whose JSON holds only a name (and a
        version) names a registered environment: an ``EnvironmentReference`` is returned, as in the SDK."""
        from kiln.environment.formats import azureml_v1

        return azureml_v1.load(Path(path))

    # ---- factories ----------------------------------------------------------------------------

    @staticmethod
    def from_pip_requirements(name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
                              ) -> Environment:
        """An environment whose pip packages and options come from a requirements file (``-r`` includes inlined)."""
        from kiln.environment import importers

        return importers.from_pip_requirements(name, Path(file_path), pip_version=pip_version)

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda ``environment.yml`` (its ``variables`` become environment variables)."""
        from kiln.environment import importers

        return importers.from_conda_specification(name, Path(file_path))

    @staticmethod
    def from_existing_conda_environment(name: str, conda_environment_name: str) -> Environment:
        """Capture a conda environment on this machine (needs ``conda`` or ``micromamba`` on PATH)."""
        from kiln.environment import importers

        return importers.from_existing_conda_environment(name, conda_environment_name)

    @staticmethod
    def from_existing_python(name: str, interpreter: str | os.PathLike[str]) -> Environment:
        """Capture an interpreter or virtual environment: its Python version and its distributions, pinned."""
        from kiln.environment import importers

        return importers.from_existing_python(name, str(interpreter))

    @staticmethod
    def from_dockerfile(name: str, dockerfile: str | os.PathLike[str], conda_specification: str | None = None,
                        pip_requirements: str | None = None) -> Environment:
        """An environment built from a Dockerfile (text or path); without packages it is user-managed."""
        from kiln.environment import importers

        return importers.from_docker(name, dockerfile=dockerfile, conda_specification=conda_specification,
                                     pip_requirements=pip_requirements)

    @staticmethod
    def from_docker_image(name: str, image: str, container_registry: Any = None,
                          conda_specification: str | None = None, pip_requirements: str | None = None
                          ) -> Environment:
        """An environment on a Docker image; without packages it is user-managed."""
        from kiln.environment import importers

        return importers.from_docker(name, image=image, container_registry=container_registry,
                                     conda_specification=conda_specification, pip_requirements=pip_requirements)

    @staticmethod
    def from_docker_build_context(name: str, docker_build_context: Any) -> Environment:
        from kiln.environment import importers

        return importers.from_docker(name, build_context=docker_build_context)

    def validate(self) -> None:
        """Check the whole definition (the setters check single fields)."""
        for key, value in self.environment_variables.items():
            if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
                raise DefinitionError(f"environment_variables: {key!r}: {value!r} is not a NAME: 'value' pair "
                                      "of strings")
        if self.python.conda_dependencies is None and not self.python.user_managed_dependencies \
                and self.docker.build_context is None and self.docker.base_dockerfile is None:
            raise DefinitionError(f"environment {self.name!r}: python.conda_dependencies is None: give packages "
                                  "or set python.user_managed_dependencies = True")


class EnvironmentReference:
    """A name (and optionally a version) pointing at a registered environment, as the SDK reads a
    folder whose ``azureml_environment.json`` holds only those two fields."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = check_name(name)
        self.version = version

    def get_environment(self, workspace: _Registry) -> Environment:
        return workspace.get_environment(self.name, self.version)

    def __repr__(self) -> str:
        return f"EnvironmentReference(name={self.name!r}, version={self.version!r})"
