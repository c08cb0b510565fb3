"""Curated environments: ready definitions shipped with Kiln under the reserved ``Kiln-`` and ``AzureML-`` prefixes.

They are data (``environments.json`` for Kiln's own, ``azureml.json`` for re-creations of Azure ML's
curated environments under their Azure names), visible in every workspace without registration, and
immutable: ``Environment.get`` returns a fresh copy each time, and changing one means cloning it under
a name of your own.

A re-creation has Azure's Python version and package pins (from Azure's published definitions, named
in its ``source``), without what Kiln replaces (the Azure ML SDK, Azure's inference server) or can't
install from PyPI (CUDA, Horovod...): those are listed in its ``omitted`` field. Its tags say so
(``kiln.recreation-of``, ``kiln.recreation-source``, ``kiln.recreation-omits``), so ``kiln env show``
and ``env.tags`` tell a re-creation from Azure's own.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol

from kiln.environment.conda import CondaDependencies
from kiln.environment.environment import Environment
from kiln.environment.names import is_curated_name
from kiln.errors import NotFoundError

__all__ = ["DEFAULT_ENVIRONMENT", "RECREATION_TAG", "curated_names", "default_environment", "get_curated",
           "is_curated_name", "list_curated", "unknown_curated_message"]

#: the environment runs and services use when none is given: Kiln's defaults (Kiln's default Python, no packages)
DEFAULT_ENVIRONMENT = "default-env"
#: the data files' folder (not importlib.resources: it imports zipfile and tempfile, ~8 ms of a cache hit)
_HERE = Path(__file__).parent
#: the tag that marks a re-creation of an Azure ML curated environment; its value is the Azure name
RECREATION_TAG = "kiln.recreation-of"


class _Registry(Protocol):
    def get_environment(self, name: str, version: str | None = None) -> Environment: ...

    def register_environment(self, environment: Environment) -> Environment: ...


@lru_cache(maxsize=1)
def _data() -> dict[str, dict[str, Any]]:
    items = []
    for file in ("environments.json", "azureml.json"):
        items += json.loads(_HERE.joinpath(file).read_text(encoding="utf-8"))
    return {item["name"]: item for item in items}


@lru_cache(maxsize=1)
def _canonical() -> dict[str, Any]:
    """``definitions.json``: each curated environment's definition and hash exactly as ``_make`` builds them
    from ``environments.json`` (a unit test keeps the two equal). Building one parses its package specs, which
    imports rattler and ruamel (~0.1 s): too much for a cache hit of ``kiln env build``; reading this doesn't."""
    text = _HERE.joinpath("definitions.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _stored(name: str) -> dict[str, Any] | None:
    stored = _canonical().get(name)
    return stored if stored is not None and stored["definition"].get("version") == _data()[name]["version"] else None


@cache
def _definition(name: str) -> str:
    # built once per process from the data files; every caller then gets its own fresh copy
    stored = _stored(name)
    return json.dumps(stored["definition"] if stored is not None else _make(_data()[name]).to_dict())


def _build(item: dict[str, Any]) -> Environment:
    from kiln.environment.serialize import environment_from_dict

    env = environment_from_dict(json.loads(_definition(item["name"])), f"curated environment {item['name']}",
                                trusted=True)
    stored = _stored(item["name"])
    if stored is not None:  # the hash as computed from this definition: not normalized again on each use
        env._remember_hash(stored["definition_text"], stored["hash"])
    return env


def _make(item: dict[str, Any]) -> Environment:
    env = Environment(item["name"])
    env.version = item["version"]
    env.description = item["description"]
    env.docker.base_image = item["base_image"]
    env.tags = {"curated": "true"}
    if "source" in item:  # a re-creation of Azure's: say so wherever the environment is shown
        env.tags.update({RECREATION_TAG: item["name"], "kiln.recreation-source": item["source"],
                         "kiln.recreation-omits": ", ".join(item.get("omitted", [])) or "nothing"})
    cd = CondaDependencies.create(python_version=item["python"])
    for option in item.get("pip_options", []):
        cd.set_pip_option(option)
    for package in item["pip"]:
        cd.add_pip_package(package)
    env.python.conda_dependencies = cd
    return env


def curated_names() -> list[str]:
    return sorted(_data())


def get_curated(name: str, version: str | None = None) -> Environment | None:
    """A fresh copy of the curated environment ``name`` (matched case-insensitively), or None."""
    for key, item in _data().items():
        if key.lower() == name.lower() and (version is None or version == item["version"]):
            return _build(item)
    return None


def unknown_curated_message(name: str, version: str | None = None) -> str:
    """The message for a curated-looking ``name`` Kiln doesn't ship: the closest known names first."""
    import difflib

    names = curated_names()
    if version is not None and get_curated(name) is not None:
        return f"curated environment {name!r} has no version {version} (Kiln ships version 1 of each)"
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)]
    if close:
        hint = "closest: " + ", ".join(close)
    else:
        family = name.split("-")[0].lower() + "-"  # Kiln- or AzureML-: the names of the same kind
        hint = "curated: " + ", ".join(n for n in names if n.lower().startswith(family))
    return f"no curated environment {name!r} ({hint}); `kiln env list` shows them all"


def list_curated() -> dict[str, Environment]:
    return {name: _build(item) for name, item in sorted(_data().items())}


def default_environment(registry: _Registry) -> Environment:
    """Kiln's default environment, registered in the workspace ``registry`` on first use."""
    try:
        return registry.get_environment(DEFAULT_ENVIRONMENT)
    except NotFoundError:
        env = Environment(DEFAULT_ENVIRONMENT)
        env.description = "Kiln's default environment for runs: Kiln's default Python, no packages."
        return registry.register_environment(env)
