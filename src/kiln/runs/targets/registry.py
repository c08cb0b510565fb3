"""The compute targets by name: what ``ScriptRunConfig(compute_target=...)`` accepts.

Each name maps to the module and class that implement it, imported only when a run starts there, so
that checking a name (``kiln run submit``) imports no target. ``docker`` is another name of ``container``
(Azure ML's runs in Docker are asked for by name too); ``ray`` comes next.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kiln.errors import DefinitionError

if TYPE_CHECKING:
    from kiln.runs.targets.interface import ComputeTarget

__all__ = ["CONTAINER_TARGET", "DEFAULT_TARGET", "get_target", "target_name", "target_names"]

DEFAULT_TARGET = "local"
#: where runs asking for Docker go (``run_config.docker.use_docker``, an environment's ``docker.enabled``)
CONTAINER_TARGET = "container"

_TARGETS: dict[str, tuple[str, str]] = {
    "local": ("kiln.runs.targets.local", "LocalTarget"),
    "container": ("kiln.runs.targets.container", "ContainerTarget"),
}
#: other names of a target
_ALIASES = {"docker": "container"}


def target_names() -> tuple[str, ...]:
    return tuple(_TARGETS)


def target_name(target: object) -> str:
    """The registered name of ``target`` (a name, or an object with a ``name``, as Azure ML's compute
    targets); a ``DefinitionError`` naming the known targets when there is none such."""
    name = getattr(target, "name", target)
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(name, str) or name not in _TARGETS:
        raise DefinitionError(f"compute_target {name!r}: Kiln runs on {', '.join(_TARGETS)} for now")
    return name


def get_target(target: object) -> ComputeTarget:
    """A fresh instance of the target named ``target`` (see ``target_name``)."""
    module, cls = _TARGETS[target_name(target)]
    factory = getattr(importlib.import_module(module), cls)
    instance: ComputeTarget = factory()
    return instance
