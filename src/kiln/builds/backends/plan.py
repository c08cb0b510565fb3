"""What a backend is asked to build (``BuildPlan``, with its ``DockerPlan``) and what it reports back
(``BuildOutcome``). Plans are frozen values made from a registered environment by ``plan_for``: a
backend never reads the ``Environment`` itself, so everything it may need is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.interpreters import Interpreter
from kiln.builds.lock import Lock

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.environment.sections import DockerSection

__all__ = ["BuildOutcome", "BuildPlan", "DockerPlan", "RegistryPlan", "label_of", "plan_for"]


@dataclass(frozen=True, kw_only=True)
class RegistryPlan:
    """The base image's registry, without secrets: a password is kept only as a reference (``${VAR}``),
    which the image backend resolves when it pulls; a literal password is dropped here."""

    address: str | None = None
    username: str | None = None
    password_reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class DockerPlan:
    """The definition's docker section, as the image backend will need it. At most one of ``base_image``,
    ``dockerfile`` and ``build_context_location`` is set (the definition enforces it)."""

    base_image: str | None = None
    registry: RegistryPlan = RegistryPlan()
    #: the base Dockerfile's text (the definition's "Docker steps")
    dockerfile: str | None = None
    #: a build context: a local folder or git URL (``build_context_type`` ``storageAccount`` or ``git``)
    build_context_location: str | None = None
    build_context_type: str | None = None
    #: the Dockerfile's path inside the build context
    build_context_dockerfile: str | None = None
    #: ``os/architecture`` as OCI writes it: ``linux/amd64``
    platform: str = "linux/amd64"
    shm_size: str | None = None
    #: extra ``docker run`` arguments
    arguments: tuple[str, ...] = ()
    #: ``docker.enabled``: Azure ML ran the job in the image; Kiln records it
    enabled: bool = False

    @classmethod
    def of(cls, docker: DockerSection) -> DockerPlan:
        from kiln.environment.secrets import is_reference

        registry = docker.base_image_registry
        context = docker.build_context
        platform = docker.platform or {}
        return cls(
            base_image=docker.base_image,
            registry=RegistryPlan(address=registry.address, username=registry.username,
                                  password_reference=registry.password if is_reference(registry.password) else None),
            dockerfile=docker.base_dockerfile,
            build_context_location=None if context is None else context.location,
            build_context_type=None if context is None else context.location_type,
            build_context_dockerfile=None if context is None else context.dockerfile_path,
            platform=f"{platform.get('os', 'Linux').lower()}/{platform.get('architecture', 'amd64').lower()}",
            shm_size=docker.shm_size, arguments=tuple(docker.arguments), enabled=bool(docker.enabled))


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    """What to build: ``label`` names it in messages (``name:version``)."""

    label: str
    #: the interpreter the environment is made from (a user-managed environment's own interpreter)
    interpreter: Interpreter
    #: the exact packages to install; None for a plan that installs nothing (a user-managed environment)
    lock: Lock | None = None
    #: ``python.user_managed_dependencies``: the user provides the environment; Kiln installs nothing
    user_managed: bool = False
    #: the definition's docker section (used by image backends; ignored by local ones)
    docker: DockerPlan = DockerPlan()
    #: where the build will live once published (backends whose files hold their own path need it)
    final_path: Path | None = None
    #: Kiln's cache folder for packages (backends keep their package caches under it)
    cache_dir: Path | None = None

    def locked(self) -> Lock:
        """The plan's lock; for backends that only accept plans with one (``cannot_build`` said so)."""
        if self.lock is None:
            from kiln.errors import KilnError

            raise KilnError(f"{self.label}: this build plan has no lock to install")
        return self.lock


@dataclass(frozen=True)
class BuildOutcome:
    """What a backend reports about a build it made."""

    #: the environment's interpreter: relative to the staging folder, or absolute when it lives outside it
    python: Path
    link_mode: str  # how package files got there: hardlink, clone or copy (the mode actually used), or none
    packages: int
    #: one line saying what the backend did, shown when the build is done (empty: the builder says "built")
    summary: str = ""


def label_of(env: Environment) -> str:
    return f"{env.name}:{env.version}" if env.version else env.name


def plan_for(env: Environment, interpreter: Interpreter, lock: Lock | None, *, cache_dir: Path | None = None
             ) -> BuildPlan:
    """The plan of the registered ``env``, built with ``interpreter`` from ``lock``."""
    return BuildPlan(label=label_of(env), interpreter=interpreter, lock=lock,
                     user_managed=env.python.user_managed_dependencies, docker=DockerPlan.of(env.docker),
                     cache_dir=cache_dir)
