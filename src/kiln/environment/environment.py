"""``Environment``: the definition of a software environment, with Azure ML SDK v1's names.

The object is mutable while a user edits it, as in the SDK. Everything downstream (identity,
registry, builds) works from its canonical data (``to_dict``), so what is registered is a snapshot.
Workspaces are reached through their own methods, so this module knows nothing of the registry.

The class sits over the modules that do its work (``canonical`` for data, ``identity`` for the
hash, ``formats.azureml_v1`` for folders, ``importers`` for the factories): they work on its
fields and parts and never import it, so there is no import loop. Modules that construct
environments from files (``serialize``, ``formats.azureml_v2``, ``formats.detect``) sit over it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from kiln.environment import canonical
from kiln.environment.conda import CondaDependencies
from kiln.environment.identity import identity_hash
from kiln.environment.names import check_name
from kiln.environment.secrets import refuse_literal_secrets
from kiln.environment.sections import DockerSection, PythonSection, SparkSection
from kiln.errors import DefinitionError, FormatError, KilnError

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

    def build_environment_image(self, environment: Environment, *, push: bool = False) -> Any: ...


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
        #: the label this object was fetched by (``Environment.get(ws, name, label="latest")``); not part of
        #: the definition: Kiln's only label is ``latest``
        self.label: str | None = None

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
        return canonical.environment_to_dict(self, include_secrets=include_secrets)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "environment definition") -> Environment:
        return cls._from_data(data, source)

    @classmethod
    def _from_data(cls, data: Any, source: str, *, conda: CondaDependencies | None = None,
                   dockerfile: str | None = None, trusted: bool = False) -> Environment:
        """From ``azureml_environment.json`` data; see ``canonical.read_into`` for the arguments."""
        env = cls._empty(canonical.name_of(data, source), source)
        canonical.read_into(env, data, source, conda=conda, dockerfile=dockerfile, trusted=trusted)
        return env

    @classmethod
    def _empty(cls, name: str, source: str) -> Environment:
        """An environment with no defaults, named by a file: a bad name is that file's ``name`` error."""
        try:
            return cls(name, _defaults=False)
        except DefinitionError as e:
            raise FormatError(source, str(e), "name") from None

    def definition_text(self) -> str:
        """Deterministic JSON of the definition without name and version: what the registry compares.

        Key order is the serializer's (and the conda file's own), so a download gives the file back as written."""
        import json

        data = canonical.environment_to_dict(self, include_version=False)
        del data["name"]
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and self.to_dict(include_secrets=True) == other.to_dict(
            include_secrets=True)

    def __repr__(self) -> str:
        """The definition as JSON, as Azure ML prints an environment (a literal registry password left out)."""
        import json

        return json.dumps(self.to_dict(), indent=4, ensure_ascii=False)

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
        twin = self._from_data(self.to_dict(include_secrets=True), "copy", trusted=True)
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
    def get(workspace: _Registry, name: str, version: str | int | None = None, label: str | None = None
            ) -> Environment:
        """A registered or curated environment; the latest version when ``version`` is None.

        ``label="latest"`` is the latest version too; Kiln has no other labels."""
        if label is not None and label != "latest":
            raise DefinitionError(f"label {label!r}: Kiln's environments have one label, 'latest' (give a version "
                                  "instead)")
        if label is not None and version is not None:
            raise DefinitionError("give version or label, not both (as in Azure ML)")
        env = workspace.get_environment(name, None if version is None else str(version))
        env.label = label
        return env

    @staticmethod
    def get_default_cpu_image() -> str:
        """The base image of a new environment (Kiln's default, written in the definition; no image is built
        from it unless you build one)."""
        from kiln.environment.sections import DEFAULT_CPU_IMAGE

        return DEFAULT_CPU_IMAGE

    @staticmethod
    def get_default_gpu_image() -> str:
        """Azure's default GPU base image name, for definitions that name it (Kiln builds run without CUDA)."""
        from kiln.environment.sections import DEFAULT_GPU_IMAGE

        return DEFAULT_GPU_IMAGE

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
        """Build here and return when done (a ``BuildResult``). ``useDocker=True``: also write the environment's
        OCI image (no daemon needed) and return its details (``get_image_details``, with its ``digest``);
        ``pushImageToWorkspaceAcr=True``: push that image to the workspace's registry through the container
        engine (``DOCKER_HOST``), only the layers the registry lacks."""
        del platform, kwargs
        if useDocker or pushImageToWorkspaceAcr:
            return _builder(workspace).build_environment_image(self, push=pushImageToWorkspaceAcr)
        return _builder(workspace).build_environment(self, upgrade=upgrade)

    def get_image_details(self, workspace: Any) -> Any:
        """The image Kiln would build: its Dockerfile (two steps), name ``kiln/kiln_<hash>`` and interpreter path;
        once written (``build_local(useDocker=True)``, ``kiln image build``), also its ``digest`` and layers."""
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

        folder = azureml_v1.read(Path(path))
        if folder.reference is not None:
            return EnvironmentReference(*folder.reference)
        return Environment._from_data(folder.data, folder.source, conda=folder.conda, dockerfile=folder.dockerfile)

    @staticmethod
    def add_private_pip_wheel(workspace: Any, file_path: str | os.PathLike[str], exist_ok: bool = False) -> str:
        """Store the wheel ``file_path`` in ``workspace`` by its content hash and return the requirement that
        installs it, for ``CondaDependencies.add_pip_package`` (as Azure ML returns the wheel's URL). The
        same bytes give the same requirement; a different wheel of the same file name is refused unless
        ``exist_ok`` (then both are kept, each under its own hash: nothing stored is ever replaced)."""
        add = getattr(workspace, "add_private_wheel", None)
        if add is None:
            raise KilnError(f"{workspace!r} can't store wheels: pass a kiln.Workspace (from kiln import Workspace)")
        return str(add(file_path, exist_ok=exist_ok))

    # ---- factories ----------------------------------------------------------------------------

    @staticmethod
    def from_pip_requirements(name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
                              ) -> Environment:
        """An environment whose pip packages and options come from a requirements file (``-r`` includes inlined)."""
        from kiln.environment import importers

        conda = importers.conda_from_pip_requirements(Path(file_path), pip_version=pip_version)
        return Environment._with_conda(name, conda, {})

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda ``environment.yml`` (its ``variables`` become environment variables)."""
        from kiln.environment import importers

        return Environment._with_conda(name, *importers.conda_of_conda_specification(Path(file_path)))

    @staticmethod
    def from_existing_conda_environment(name: str, conda_environment_name: str) -> Environment:
        """Capture a conda environment on this machine (needs ``conda`` or ``micromamba`` on PATH)."""
        from kiln.environment import importers

        return Environment._with_conda(name, *importers.conda_of_conda_environment(conda_environment_name))

    @staticmethod
    def from_existing_python(name: str, interpreter: str | os.PathLike[str]) -> Environment:
        """Capture an interpreter or virtual environment: its Python version and its distributions, pinned."""
        from kiln.environment import importers

        return Environment._with_conda(name, importers.conda_from_python(str(interpreter)), {})

    @staticmethod
    def from_dockerfile(name: str, dockerfile: str | os.PathLike[str], conda_specification: str | None = None,
                        pip_requirements: str | None = None) -> Environment:
        """An environment built from a Dockerfile (text or path); without packages it is user-managed."""
        return Environment._on_docker(name, conda_specification, pip_requirements, dockerfile=dockerfile)

    @staticmethod
    def from_docker_image(name: str, image: str, container_registry: Any = None,
                          conda_specification: str | None = None, pip_requirements: str | None = None
                          ) -> Environment:
        """An environment on a Docker image; without packages it is user-managed."""
        return Environment._on_docker(name, conda_specification, pip_requirements, image=image,
                                      container_registry=container_registry)

    @staticmethod
    def from_docker_build_context(name: str, docker_build_context: Any) -> Environment:
        return Environment._on_docker(name, None, None, build_context=docker_build_context)

    @staticmethod
    def _with_conda(name: str, conda: CondaDependencies, variables: dict[str, str]) -> Environment:
        env = Environment(name)
        env.python.conda_dependencies = conda
        env.environment_variables.update(variables)
        return env

    @staticmethod
    def _on_docker(name: str, conda_specification: str | os.PathLike[str] | None,
                   pip_requirements: str | os.PathLike[str] | None, **docker: Any) -> Environment:
        """With packages (a conda file or a requirements file) Kiln manages Python on top of the
        image; without, the image's own Python is used as it is (user-managed), as in the SDK."""
        from kiln.environment import importers

        if conda_specification is not None and pip_requirements is not None:
            raise DefinitionError("give conda_specification or pip_requirements, not both")
        if conda_specification is not None:
            env = Environment.from_conda_specification(name, conda_specification)
        elif pip_requirements is not None:
            env = Environment.from_pip_requirements(name, pip_requirements)
        else:
            env = Environment(name)
            env.python.conda_dependencies = None
            env.python.user_managed_dependencies = True
        importers.set_docker_base(env.docker, **docker)
        return env

    def validate(self) -> None:
        """Check the whole definition (the setters check single fields)."""
        from kiln.environment.checks import check_definition

        check_definition(self)
        if self.python.conda_dependencies is None and not self.python.user_managed_dependencies \
                and self.docker.build_context is None and self.docker.base_dockerfile is None:
            raise DefinitionError(f"environment {self.name!r}: python.conda_dependencies is None: give packages "
                                  "or set python.user_managed_dependencies = True")
        refuse_literal_secrets(self.to_dict(), f"environment {self.name!r}")


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
