"""Environment variable names and values: what a process environment can carry."""

from __future__ import annotations

import re
from typing import Any

from kiln.environment.limits import shown

__all__ = ["variable_problem"]

_POSIX_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def variable_problem(name: Any, value: Any) -> str | None:
    """Why ``name=value`` can't be an environment variable, or None. Names are POSIX names (a run's
    shell, ``env`` and Docker refuse or mangle others); a NUL byte can't be passed to a process."""
    if not isinstance(name, str) or not _POSIX_NAME.fullmatch(name):
        return f"{shown(name, 60)} is not a variable name (letters, digits and '_', not starting with a digit)"
    if not isinstance(value, str):
        return f"expected a string value, got {shown(value, 60)}"
    if "\x00" in value:
        return "the value holds a NUL byte, which no process environment can carry"
    return None
