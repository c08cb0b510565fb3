"""Settings a run accepts but Kiln can't apply yet: said out loud at submit, never dropped silently.

Kiln runs scripts on the local target, without containers, until the image backend and the container
target land (see ARCHITECTURE.md). Until then a run asking for Docker — ``run_config.docker.use_docker``
(or ``enabled``), or an environment's ``docker.enabled``, ``base_image`` (other than Kiln's default) or
``base_dockerfile`` — gets an ``IgnoredSettingWarning`` in the submitting process and a ``[kiln] warning:``
line at the top of the run's log.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from kiln.errors import IgnoredSettingWarning

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.runs.config import RunConfiguration

__all__ = ["ignored_settings", "warn_ignored"]

_WHY = "ignored: runs use the environment's interpreter on this machine until container runs land"


def ignored_settings(config: RunConfiguration, environment: Environment | None) -> list[str]:
    """One message per setting of the run that will not take effect."""
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    out = []
    if config.docker.use_docker:
        out.append(f"run_config.docker.use_docker=True is {_WHY}")
    docker = getattr(environment, "docker", None)
    if docker is not None:
        name = getattr(environment, "name", "?")
        if docker.enabled:
            out.append(f"environment {name!r}: docker.enabled=True is {_WHY}")
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
