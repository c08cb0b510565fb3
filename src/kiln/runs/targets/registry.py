"""The compute targets by name: what ``ScriptRunConfig(compute_target=...)`` accepts.

Two kinds of names: the built-in targets (``local``, ``container``), and the compute targets attached to the
workspace (``ComputeTarget.attach(ws, "ray-dev", ...)``, a record of the workspace's store naming a
kind of target and its configuration, e.g. a Ray cluster's address). Each name maps to the module and
class that implement it, imported only when a run starts there, so that checking a name
(``kiln run submit``) imports no target. ``docker`` is another name of ``container`` (Azure ML's runs in
Docker are asked for by name too).
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError

if TYPE_CHECKING:
    from kiln.runs.targets.interface import ComputeTarget
    from kiln.workspace.workspace import Workspace

__all__ = ["ATTACHABLE", "CONTAINER_TARGET", "DEFAULT_TARGET", "get_target", "target_name", "target_names"]

DEFAULT_TARGET = "local"
#: where runs asking for Docker go (``run_config.docker.use_docker``, an environment's ``docker.enabled``)
CONTAINER_TARGET = "container"

_TARGETS: dict[str, tuple[str, str]] = {
    "local": ("kiln.runs.targets.local", "LocalTarget"),
    "container": ("kiln.runs.targets.container", "ContainerTarget"),
}
#: other names of a target
_ALIASES = {"docker": "container"}

#: the kinds of compute a workspace can attach: kind → (module, class); the class takes ``name`` and the
#: attached configuration's fields as keyword arguments
ATTACHABLE: dict[str, tuple[str, str]] = {
    "ray": ("kiln.runs.targets.ray", "RayTarget"),
}


def target_names() -> tuple[str, ...]:
    """The built-in targets (attached ones are the workspace's: ``store.list_computes()``)."""
    return tuple(_TARGETS)


def target_name(target: object, *, workspace: Workspace | None = None) -> str:
    """The name of ``target`` (a name, or an object with a ``name``, as Azure ML's compute targets) when
    it is a built-in target or one attached to ``workspace``; a ``DefinitionError`` naming the known
    targets when there is none such."""
    name = getattr(target, "name", target)
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if isinstance(name, str) and name in _TARGETS:
        return name
    attached: list[str] = []
    if workspace is not None:
        if isinstance(name, str) and name and workspace.store.get_compute(name) is not None:
            return name
        attached = [c.name for c in workspace.store.list_computes()]
    known = ", ".join([*_TARGETS, *attached])
    hint = "" if workspace is None else " (attach a Ray cluster: kiln compute attach ray NAME --address URL)"
    raise DefinitionError(f"compute_target {name!r}: Kiln runs on {known} for now{hint}")


def get_target(target: object, *, workspace: Workspace | None = None) -> ComputeTarget:
    """A fresh instance of the target named ``target`` (see ``target_name``)."""
    name = target_name(target, workspace=workspace)
    if name in _TARGETS:
        module, cls = _TARGETS[name]
        options: dict[str, Any] = {}
    else:
        assert workspace is not None
        record = workspace.store.get_compute(name)
        if record is None or record.type not in ATTACHABLE:
            kind = None if record is None else record.type
            raise DefinitionError(f"compute_target {name!r}: attached as {kind!r}, which this Kiln doesn't run "
                                  f"(it runs {', '.join(ATTACHABLE)})")
        module, cls = ATTACHABLE[record.type]
        options = {"name": name, **json.loads(record.config)}
    factory = getattr(importlib.import_module(module), cls)
    instance: ComputeTarget = factory(**options)
    return instance
