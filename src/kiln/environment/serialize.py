"""An ``Environment`` from plain data, for the modules over the class (the registry, the curated
environments, the v2 format): the data layout itself lives in ``kiln.environment.canonical``, under
the class, so that ``Environment.to_dict``/``from_dict`` reach it without an import loop."""

from __future__ import annotations

from typing import Any

from kiln.environment.canonical import environment_to_dict
from kiln.environment.conda import CondaDependencies
from kiln.environment.environment import Environment

__all__ = ["empty_environment", "environment_from_dict", "environment_to_dict"]


def environment_from_dict(data: Any, source: str, *, conda: CondaDependencies | None = None,
                          dockerfile: str | None = None, trusted: bool = False) -> Environment:
    """Build an ``Environment`` from ``azureml_environment.json`` data (see ``canonical.read_into``)."""
    return Environment._from_data(data, source, conda=conda, dockerfile=dockerfile, trusted=trusted)


def empty_environment(name: str, source: str) -> Environment:
    """An environment with no defaults, named by a file: a bad name is that file's ``name`` error."""
    return Environment._empty(name, source)
