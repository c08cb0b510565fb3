"""A readable, section-by-section difference between two environment definitions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln.environment import conda_specs, pip_requirements

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["Change", "EnvironmentDiff", "diff_environments"]


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` is ``added``, ``removed`` or ``changed``; ``item`` names a package,
    variable or field inside ``section``."""

    section: str
    item: str
    kind: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"{self.section}: + {self.item}" + (f" = {self.new}" if self.new not in (None, self.item) else "")
        if self.kind == "removed":
            return f"{self.section}: - {self.item}" + (f" = {self.old}" if self.old not in (None, self.item) else "")
        return f"{self.section}: ~ {self.item}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class EnvironmentDiff:
    old: str
    new: str
    old_hash: str
    new_hash: str
    changes: list[Change]

    @property
    def same_build(self) -> bool:
        """True when both definitions have the same build identity (the differences don't change the build)."""
        return self.old_hash == self.new_hash

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "old_hash": self.old_hash, "new_hash": self.new_hash,
                "same_build": self.same_build,
                "changes": [{"section": c.section, "item": c.item, "kind": c.kind, "old": c.old, "new": c.new}
                            for c in self.changes]}


def _label(env: Environment) -> str:
    return f"{env.name}:{env.version}" if env.version else env.name


def diff_environments(old: Environment, new: Environment) -> EnvironmentDiff:
    changes: list[Change] = []
    changes += _fields("metadata", {"description": old.description}, {"description": new.description})
    changes += _mapping("metadata.tags", old.tags, new.tags)
    changes += _mapping("environment_variables", old.environment_variables, new.environment_variables)
    changes += _python(old, new)
    changes += _docker(old, new)
    changes += _mapping("spark.packages", {f"{p.group}:{p.artifact}": p.version for p in old.spark.packages},
                        {f"{p.group}:{p.artifact}": p.version for p in new.spark.packages})
    changes += _sets("spark.repositories", old.spark.repositories, new.spark.repositories)
    changes += _fields("spark", {"precache_packages": old.spark.precache_packages},
                       {"precache_packages": new.spark.precache_packages})
    changes += _fields("inferencing", {"stack_version": old.inferencing_stack_version,
                                       "inference_config": old.inference_config},
                       {"stack_version": new.inferencing_stack_version, "inference_config": new.inference_config})
    if old.r != new.r:
        changes.append(Change("r", "section", "changed", old.r, new.r))
    return EnvironmentDiff(_label(old), _label(new), old.hash, new.hash, changes)


def _python(old: Environment, new: Environment) -> list[Change]:
    a, b = old.python, new.python
    out = _fields("python", {"user_managed_dependencies": a.user_managed_dependencies,
                             "interpreter_path": a.interpreter_path},
                  {"user_managed_dependencies": b.user_managed_dependencies, "interpreter_path": b.interpreter_path})
    ca, cb = a.conda_dependencies, b.conda_dependencies
    if ca is None or cb is None:
        if (ca is None) != (cb is None):
            out.append(Change("python", "conda_dependencies", "changed", "none" if ca is None else "set",
                              "none" if cb is None else "set"))
        return out
    if ca.conda_channels != cb.conda_channels:
        out.append(Change("python.channels", "order", "changed", ca.conda_channels, cb.conda_channels))
    out += _mapping("python.conda", {conda_specs.conda_spec_name(s): s for s in ca.conda_packages},
                    {conda_specs.conda_spec_name(s): s for s in cb.conda_packages}, show_values=True)
    out += _mapping("python.pip", {pip_requirements.pip_requirement_name(s): s for s in ca.pip_packages},
                    {pip_requirements.pip_requirement_name(s): s for s in cb.pip_packages}, show_values=True)
    out += _sets("python.pip_options", ca.pip_options, cb.pip_options)
    return out


def _docker(old: Environment, new: Environment) -> list[Change]:
    a, b = old.docker, new.docker

    def bc(d: Any) -> str | None:
        c = d.build_context
        return None if c is None else f"{c.location_type}:{c.location} ({c.dockerfile_path})"

    out = _fields("docker", {"base_image": a.base_image, "build_context": bc(a), "shm_size": a.shm_size,
                             "arguments": a.arguments, "platform": a.platform, "enabled": a.enabled,
                             "registry": a.base_image_registry.address,
                             "registry_username": a.base_image_registry.username},
                  {"base_image": b.base_image, "build_context": bc(b), "shm_size": b.shm_size,
                   "arguments": b.arguments, "platform": b.platform, "enabled": b.enabled,
                   "registry": b.base_image_registry.address,
                   "registry_username": b.base_image_registry.username})
    if a.base_dockerfile != b.base_dockerfile:
        lines = difflib.unified_diff((a.base_dockerfile or "").splitlines(), (b.base_dockerfile or "").splitlines(),
                                     "old", "new", lineterm="", n=1)
        out.append(Change("docker", "base_dockerfile", "changed", a.base_dockerfile, "\n".join(list(lines)[2:])))
    return out


def _fields(section: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    return [Change(section, k, "changed", old[k], new[k]) for k in old if old[k] != new[k]]


def _mapping(section: str, old: dict[str, Any], new: dict[str, Any], show_values: bool = False) -> list[Change]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(Change(section, str(old[key]) if show_values else key, "removed", None if show_values
                              else old[key]))
        elif key not in old:
            out.append(Change(section, str(new[key]) if show_values else key, "added", None, None if show_values
                              else new[key]))
        elif old[key] != new[key]:
            out.append(Change(section, key, "changed", old[key], new[key]))
    return out


def _sets(section: str, old: Iterable[str], new: Iterable[str]) -> list[Change]:
    a, b = list(old), list(new)
    return ([Change(section, x, "removed") for x in a if x not in b]
            + [Change(section, x, "added") for x in b if x not in a])
