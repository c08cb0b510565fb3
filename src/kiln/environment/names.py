"""Environment names: what is allowed, and the curated prefixes only Kiln may use.

``Kiln-`` names Kiln's own curated environments; ``AzureML-`` names Kiln's re-creations of Azure ML's
curated environments (Azure reserves that prefix too), so that ported code finds them by their Azure names.
"""

from __future__ import annotations

import re

from kiln.errors import DefinitionError

__all__ = ["AZUREML_PREFIX", "CURATED_PREFIX", "CURATED_PREFIXES", "MAX_NAME_LENGTH", "check_name", "check_user_name",
           "is_curated_name"]

CURATED_PREFIX = "Kiln-"
AZUREML_PREFIX = "AzureML-"
CURATED_PREFIXES = (CURATED_PREFIX, AZUREML_PREFIX)
MAX_NAME_LENGTH = 255
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: object, what: str = "environment name") -> str:
    """Return ``name`` if it is a valid name, else raise a ``DefinitionError`` saying why."""
    if not isinstance(name, str):
        raise DefinitionError(f"{what}: expected a string, got {name!r}")
    if not name:
        raise DefinitionError(f"{what}: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise DefinitionError(f"{what}: {name[:40]!r}... is {len(name)} characters long (at most {MAX_NAME_LENGTH})")
    if "/" in name or "\\" in name or ".." in name:
        raise DefinitionError(f"{what}: {name!r} must not contain '/', '\\' or '..'")
    if not _NAME.fullmatch(name):
        raise DefinitionError(f"{what}: {name!r} may use only letters, digits, '.', '_' and '-', "
                              "and must start with a letter or digit")
    return name


def is_curated_name(name: str) -> bool:
    return name.lower().startswith(tuple(p.lower() for p in CURATED_PREFIXES))


def check_user_name(name: object, what: str = "environment name") -> str:
    """A name a user may register: valid, and not under the curated prefix."""
    checked = check_name(name, what)
    if is_curated_name(checked):
        prefix = next(p for p in CURATED_PREFIXES if checked.lower().startswith(p.lower()))
        raise DefinitionError(f"{what}: {checked!r} starts with {prefix!r}, which is reserved for Kiln's "
                              "curated environments; clone it under another name: env.clone('my-env')")
    return checked
