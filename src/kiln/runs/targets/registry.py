"""The compute targets by name: what ``ScriptRunConfig(compute_target=...)`` accepts.

Each name maps to the module and class that implement it, imported only when a run starts there, so
that checking a name (``kiln run submit``) imports no target. ``container`` ("docker") and ``ray``
("ray-dev") come next.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kiln.errors import DefinitionError

if TYPE_CHECKING:
    from kiln.runs.targets.interface import ComputeTarget

__all__ = ["DEFAULT_TARGET", "get_target", "target_name", "target_names"]

DEFAULT_TARGET = "local"

_TARGETS: dict[str, tuple[str, str]] = {
    "local": ("kiln.runs.targets.local", "LocalTarget"),
}


def target_names() -> tuple[str, ...]:
    return tuple(_TARGETS)


def target_name(target: object) -> str:
    """The registered name of ``target`` (a name, or an object with a ``name``, as Azure ML's compute
    targets); a ``DefinitionError`` naming the known targets when there is none such."""
    name = getattr(target, "name", target)
    if not isinstance(name, str) or name not in _TARGETS:
        raise DefinitionError(f"compute_target {name!r}: Kiln runs on {', '.join(_TARGETS)} for now")
    return name


def get_target(target: object) -> ComputeTarget:
    """A fresh instance of the target named ``target`` (see ``target_name``)."""
    module, cls = _TARGETS[target_name(target)]
    factory = getattr(importlib.import_module(module), cls)
    instance: ComputeTarget = factory()
    return instance
