"""Settings a run accepts but Kiln can't apply: said out loud at submit, never dropped silently.

Asking for Docker — ``run_config.docker.use_docker`` (or ``enabled``), an environment's ``docker.enabled``, or
``compute_target="docker"`` — runs the script in a container (``kiln.runs.targets.container``). On the local
target, an environment's ``docker.base_image`` (other than Kiln's default), ``base_dockerfile`` or
``build_context`` can't take effect; in a container, ``run_config.docker.arguments`` (``docker run``'s command
line) can't either. Each gets an ``IgnoredSettingWarning`` in the submitting process and a ``[kiln] warning:``
line at the top of the run's log.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from kiln.errors import IgnoredSettingWarning

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.runs.config import RunConfiguration

__all__ = ["ignored_settings", "wants_docker", "warn_ignored"]

_WHY = ("ignored: the local target runs the environment's interpreter on this machine (run in a container: "
        "run_config.docker.use_docker = True)")


def wants_docker(config: RunConfiguration, environment: Environment | None) -> bool:
    """Whether the run asks for Docker as Azure ML's are asked (``DockerConfiguration`` or the older
    ``environment.docker.enabled``)."""
    docker = getattr(environment, "docker", None)
    return bool(config.docker.use_docker or (docker is not None and docker.enabled))


def ignored_settings(config: RunConfiguration, environment: Environment | None, *,
                     target: str = "local") -> list[str]:
    """One message per setting of the run that will not take effect on ``target``."""
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    out = []
    if target == "container":
        if config.docker.arguments:
            out.append(f"run_config.docker.arguments {config.docker.arguments!r:.200} are ignored: Kiln starts "
                       "containers through the Docker API, not the docker command line")
        return out
    docker = getattr(environment, "docker", None)
    if docker is not None and target == "local":
        name = getattr(environment, "name", "?")
        if docker.base_image is not None and docker.base_image != DEFAULT_CPU_IMAGE:
            out.append(f"environment {name!r}: docker.base_image={docker.base_image[:200]!r} is {_WHY}")
        if docker.base_dockerfile is not None:
            out.append(f"environment {name!r}: docker.base_dockerfile is {_WHY}")
        if getattr(docker, "build_context", None) is not None:
            out.append(f"environment {name!r}: docker.build_context is {_WHY}")
    return out


def warn_ignored(messages: list[str]) -> None:
    for message in messages:
        # stacklevel: submit_run ← Experiment.submit ← the user's line
        warnings.warn(message, IgnoredSettingWarning, stacklevel=4)
