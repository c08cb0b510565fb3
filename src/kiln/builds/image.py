"""The container image Kiln would build for an environment: two steps, as in Azure ML.

Step 1 is the base: the base image, or the definition's own Dockerfile (its "Docker steps").
Step 2 is the Python environment, installed from Kiln's lock with uv — no resolution at image build
time, so the image holds exactly the packages of the local build. The image is named by the
definition's identity: ``kiln/kiln_<first 32 hex of the hash>``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.builds.interpreters import Interpreter
    from kiln.builds.lock import Lock
    from kiln.environment.environment import Environment

__all__ = ["ENV_PREFIX", "ImageDetails", "image_details", "image_name"]

ENV_PREFIX = "/kiln/env"


def image_name(env: Environment) -> str:
    return f"kiln/kiln_{env.hash[:32]}"


class ImageDetails(dict[str, Any]):
    """As Azure ML's ``DockerImageDetails``: a dict, with attributes for its main fields."""

    @property
    def dockerfile(self) -> str:
        return str(self["dockerfile"])

    @property
    def image(self) -> str:
        return str(self["image"])

    @property
    def digest(self) -> str | None:
        """The manifest digest of the image Kiln wrote (``build_local(useDocker=True)``); None before."""
        value = self.get("digest")
        return None if value is None else str(value)

    @property
    def interpreter_path(self) -> str:
        return str(self["interpreterPath"])


def _base(env: Environment) -> str:
    from kiln.builds.backends.plan import DockerPlan

    docker = DockerPlan.of(env.docker)  # what the image backend will build from
    if docker.dockerfile is not None:
        return docker.dockerfile.rstrip("\n")
    if docker.build_context_location is not None:
        from kiln.builds.engine.steps import dockerfile_used
        from kiln.errors import KilnError

        head = f"# base: the build context {docker.build_context_location} ({docker.build_context_dockerfile})"
        try:
            text = dockerfile_used(docker)
        except KilnError:  # a git context, or a folder not there: said as it is
            text = None
        return f"{head}, built first as kiln-base\nFROM kiln-base" if text is None else \
            f"{head}, built first:\n{text.rstrip()}"
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    image = docker.base_image or DEFAULT_CPU_IMAGE
    cd = env.python.conda_dependencies
    python = cd.get_python_version() if cd is not None else None
    if image == DEFAULT_CPU_IMAGE and python and not env.python.user_managed_dependencies:
        # Kiln's default base is "the official slim Python image of the environment's Python"
        minor = ".".join(python.split(".")[:2])
        image = f"docker.io/library/python:{minor}-slim-bookworm"
    return f"FROM {image}"


def dockerfile(env: Environment, lock: Lock | None, interpreter_minor: str | None, uv_version: str) -> str:
    lines = [f"# Kiln image for {env.name}:{env.version or '-'} (identity {env.hash})",
             "# Step 1: the base image and the environment's Docker steps", _base(env)]
    if env.python.user_managed_dependencies:
        lines += ["# Step 2: none: Python is user-managed", f"# interpreter: {env.python.interpreter_path}"]
    else:
        assert lock is not None and interpreter_minor is not None
        lines += [
            f"# Step 2: the Python environment from lock {lock.lock_hash} ({lock.summary})",
            "COPY lock.txt /kiln/lock.txt",
            f"RUN python3 -m pip install --no-cache-dir {uv_version.replace('uv ', 'uv==').split()[0]} \\",
            f" && uv venv --relocatable --python python{interpreter_minor} {ENV_PREFIX} \\",
            f" && uv pip sync --require-hashes --python {ENV_PREFIX}/bin/python /kiln/lock.txt \\",
            " && python3 -m pip uninstall --yes uv",
            f"ENV VIRTUAL_ENV={ENV_PREFIX} PATH={ENV_PREFIX}/bin:$PATH",
        ]
    for key, value in env.environment_variables.items():
        lines.append(f"ENV {key}={json.dumps(value)}")
    return "\n".join(lines) + "\n"


def image_details(env: Environment, lock: Lock | None, interpreter: Interpreter | None, uv_version: str
                  ) -> ImageDetails:
    python = env.python.interpreter_path if env.python.user_managed_dependencies else f"{ENV_PREFIX}/bin/python"
    data: dict[str, Any] = {
        "image": image_name(env),
        "repository": image_name(env),
        "registry": None,
        "imageExistState": None,
        "dockerfile": dockerfile(env, lock, None if interpreter is None else interpreter.minor, uv_version),
        "interpreterPath": python,
        "pythonVersion": None if interpreter is None else interpreter.version,
        "lockHash": None if lock is None else lock.lock_hash,
        "identity": env.hash,
    }
    return ImageDetails(data)
