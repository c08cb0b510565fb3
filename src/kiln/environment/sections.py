"""The sections of an ``Environment``: python, docker, spark (and R/Databricks kept as data).

Names and meanings follow Azure ML SDK v1 (``azureml.core.environment``) so that code ports by
changing imports. Setters validate, so a bad value fails where it is assigned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.environment.conda import CondaDependencies
from kiln.errors import DefinitionError

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "DEFAULT_SHM_SIZE",
    "ContainerRegistry",
    "DockerBuildContext",
    "DockerSection",
    "PythonSection",
    "SparkPackage",
    "SparkSection",
]

#: Kiln's default base image (Azure ML used mcr.microsoft.com/azureml/openmpi...-ubuntu22.04).
DEFAULT_CPU_IMAGE = "docker.io/library/python:3.12-slim-bookworm"
#: Azure ML SDK v1's default GPU base image, for definitions that name one (Kiln's builds have no CUDA of their own)
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04"
DEFAULT_SHM_SIZE = "2g"
BUILD_CONTEXT_LOCATION_TYPES = ("git", "storageAccount")


class PythonSection:
    """How Python is provided: Kiln-managed packages, or an interpreter the user manages."""

    def __init__(self, *, conda_dependencies: CondaDependencies | None = None,
                 user_managed_dependencies: bool = False, interpreter_path: str = "python",
                 base_conda_environment: str | None = None) -> None:
        self.conda_dependencies = conda_dependencies
        self.user_managed_dependencies = user_managed_dependencies
        self.interpreter_path = interpreter_path
        self.base_conda_environment = base_conda_environment
        self._conda_file: str | None = None

    @property
    def conda_dependencies(self) -> CondaDependencies | None:
        return self._conda_dependencies

    @conda_dependencies.setter
    def conda_dependencies(self, value: CondaDependencies | None) -> None:
        if value is not None and not isinstance(value, CondaDependencies):
            raise DefinitionError(f"python.conda_dependencies: expected a CondaDependencies, got {value!r}")
        self._conda_dependencies = value

    @property
    def conda_dependencies_file(self) -> str | None:
        """The conda file ``conda_dependencies`` was read from, as given (kept with the definition)."""
        return self._conda_file

    @conda_dependencies_file.setter
    def conda_dependencies_file(self, value: str | os.PathLike[str] | None) -> None:
        """Read the conda file ``value`` into ``conda_dependencies`` now. Azure ML reads it when a run starts,
        relative to the run's source folder; Kiln reads it when set, so that what is registered and locked
        is what the file said then, not whatever it says later."""
        if value is None:
            self._conda_file = None
            return
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise DefinitionError(f"python.conda_dependencies_file: expected a path, got {value!r}")
        path = Path(value)
        if not path.is_file():
            raise DefinitionError(f"python.conda_dependencies_file: {str(path)!r} does not exist (Kiln reads the "
                                  "file when it is set, relative to the current folder)")
        self.conda_dependencies = CondaDependencies(path)
        self._conda_file = str(value)

    @property
    def user_managed_dependencies(self) -> bool:
        return self._user_managed

    @user_managed_dependencies.setter
    def user_managed_dependencies(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise DefinitionError(f"python.user_managed_dependencies: expected True or False, got {value!r}")
        self._user_managed = value

    @property
    def interpreter_path(self) -> str:
        return self._interpreter_path

    @interpreter_path.setter
    def interpreter_path(self, value: str) -> None:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise DefinitionError(f"python.interpreter_path: expected a path, got {value!r}")
        self._interpreter_path = str(value)

    def __repr__(self) -> str:
        return (f"PythonSection(user_managed_dependencies={self.user_managed_dependencies!r}, "
                f"interpreter_path={self.interpreter_path!r}, conda_dependencies={self.conda_dependencies!r})")


@dataclass
class ContainerRegistry:
    """A registry for the base image. Give the password as a reference, ``"${VAR}"``: Kiln reads the
    variable when it pulls, and never stores or writes a literal password (see ``kiln.environment.secrets``).
    """

    address: str | None = None
    username: str | None = None
    password: str | None = None
    registry_identity: Any = None

    def __repr__(self) -> str:
        shown = None if self.password is None else "****"
        return f"ContainerRegistry(address={self.address!r}, username={self.username!r}, password={shown!r})"


@dataclass
class DockerBuildContext:
    """A Docker build context: a folder (``locationType`` ``"git"`` URL or ``"storageAccount"``/local path)
    and the Dockerfile's path inside it."""

    location: str
    location_type: str = "git"
    dockerfile_path: str = "Dockerfile"

    def __post_init__(self) -> None:
        if self.location_type not in BUILD_CONTEXT_LOCATION_TYPES:
            raise DefinitionError(f"docker.build_context.location_type: {self.location_type!r} is not one of "
                                  f"{', '.join(BUILD_CONTEXT_LOCATION_TYPES)}")
        if not isinstance(self.location, str) or not self.location:
            raise DefinitionError(f"docker.build_context.location: expected a path or URL, got {self.location!r}")

    @staticmethod
    def from_local_directory(workspace: Any = None, path: str | os.PathLike[str] = ".",
                             dockerfile_path: str = "Dockerfile") -> DockerBuildContext:
        """A build context from a local folder (its absolute path is the location)."""
        del workspace
        folder = Path(path)
        if not folder.is_dir():
            raise DefinitionError(f"docker.build_context: {str(folder)!r} is not a folder")
        return DockerBuildContext(location=str(folder.resolve()), location_type="storageAccount",
                                  dockerfile_path=dockerfile_path)


class DockerSection:
    """The container side: a base image, or a base Dockerfile, or a build context (one of them)."""

    def __init__(self) -> None:
        self._base_image: str | None = DEFAULT_CPU_IMAGE
        self._base_dockerfile: str | None = None
        self._build_context: DockerBuildContext | None = None
        self.enabled = False
        #: Azure ML's ``gpu_support`` (deprecated there: GPUs are detected). Accepted and kept with the
        #: definition; it changes nothing Kiln builds (not part of the build identity)
        self.gpu_support = False
        self.shared_volumes = True
        self.shm_size: str | None = DEFAULT_SHM_SIZE
        self.arguments: list[str] = []
        self._registry = ContainerRegistry()
        self.platform: dict[str, str] = {"os": "Linux", "architecture": "amd64"}

    # base image / base dockerfile / build context exclude each other: setting one to a value
    # while another is set is an error that says which is in the way
    def _check_exclusive(self, setting: str) -> None:
        others = {"base_image": self._base_image, "base_dockerfile": self._base_dockerfile,
                  "build_context": self._build_context}
        others.pop(setting)
        taken = [k for k, v in others.items() if v is not None]
        if taken:
            raise DefinitionError(
                f"docker.{setting} can't be set while docker.{taken[0]} is set: they exclude each other "
                f"(set docker.{taken[0]} = None first)")

    @property
    def base_image(self) -> str | None:
        return self._base_image

    @base_image.setter
    def base_image(self, value: str | None) -> None:
        if value is not None:
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
                raise DefinitionError(f"docker.base_image: {value!r} is not an image reference")
            self._check_exclusive("base_image")
            value = value.strip()
        self._base_image = value

    @property
    def base_dockerfile(self) -> str | None:
        return self._base_dockerfile

    @base_dockerfile.setter
    def base_dockerfile(self, value: str | os.PathLike[str] | None) -> None:
        if value is not None:
            value = _dockerfile_text(value)
            self._check_exclusive("base_dockerfile")
        self._base_dockerfile = value

    def set_dockerfile_text(self, text: str | None) -> None:
        """Set the Dockerfile from text as it is (never read as a path): for text read from files."""
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise DefinitionError(f"docker.base_dockerfile: expected Dockerfile text, got {text!r}")
            self._check_exclusive("base_dockerfile")
        self._base_dockerfile = text

    @property
    def build_context(self) -> DockerBuildContext | None:
        return self._build_context

    @build_context.setter
    def build_context(self, value: DockerBuildContext | None) -> None:
        if value is not None:
            if not isinstance(value, DockerBuildContext):
                raise DefinitionError(f"docker.build_context: expected a DockerBuildContext, got {value!r}")
            self._check_exclusive("build_context")
        self._build_context = value

    @property
    def base_image_registry(self) -> ContainerRegistry:
        return self._registry

    @base_image_registry.setter
    def base_image_registry(self, value: ContainerRegistry | str | None) -> None:
        # the seeds assign a plain address: myenv.docker.base_image_registry = "your_registry_location"
        if value is None:
            value = ContainerRegistry()
        elif isinstance(value, str):
            value = ContainerRegistry(address=value)
        elif not isinstance(value, ContainerRegistry):
            raise DefinitionError(f"docker.base_image_registry: expected a ContainerRegistry, got {value!r}")
        self._registry = value

    @property
    def shm_size(self) -> str | None:
        return self._shm_size

    @shm_size.setter
    def shm_size(self, value: str | None) -> None:
        import re

        if value is not None and (not isinstance(value, str) or not re.fullmatch(r"\d+[bkmgBKMG]?", value)):
            raise DefinitionError(f"docker.shm_size: {value!r} is not a size like '2g' or '512m'")
        self._shm_size = value

    def __repr__(self) -> str:
        dockerfile = "<text>" if self.base_dockerfile else None
        return (f"DockerSection(base_image={self.base_image!r}, base_dockerfile={dockerfile}, "
                f"build_context={self.build_context!r})")


def _dockerfile_text(value: str | os.PathLike[str]) -> str:
    """A Dockerfile given as text or as a path to a file (as in the seeds: ``"./Dockerfile"``)."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and "\n" not in value and _is_file(value)):
        path = Path(value)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DefinitionError(f"docker.base_dockerfile: can't read {str(path)!r}: {e}") from None
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"docker.base_dockerfile: expected Dockerfile text or a file path, got {value!r}")
    return value


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except OSError:
        return False


@dataclass(frozen=True)
class SparkPackage:
    """A Maven package for Spark: ``group:artifact:version``."""

    group: str
    artifact: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


@dataclass
class SparkSection:
    """Spark packages and repositories (kept, hashed and shown; Kiln does not run Spark itself)."""

    repositories: list[str] = field(default_factory=list)
    packages: list[SparkPackage] = field(default_factory=list)
    precache_packages: bool = True
