"""A container's shared memory size (``/dev/shm``), as Azure ML writes it: ``docker.shm_size`` of an environment and
of a run's ``DockerConfiguration`` (default ``"2g"``), in ``docker run --shm-size``'s form: a whole number and an
optional unit ``b``, ``k``, ``m`` or ``g`` (powers of 1024), or a number of bytes.

Checked where a container is asked for (submit, deploy), before anything starts: a bad value is said with the
field that holds it, not found later in an engine's error. (An environment's setter checks only the form, as it
always has, so that a definition stored with ``"0"`` stays readable.)
"""

from __future__ import annotations

import re

from kiln.environment.sections import DEFAULT_SHM_SIZE
from kiln.errors import DefinitionError

__all__ = ["DEFAULT_SHM_SIZE", "shm_bytes"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE = re.compile(r"(\d{1,15})([bkmg]?)", re.IGNORECASE)


def shm_bytes(value: object, *, field: str) -> int:
    """``value`` (``"2g"``, ``"512m"``, ``"1048576"``, or an int of bytes) in bytes; ``DefinitionError`` naming
    ``field`` when it is not a size above zero."""
    if isinstance(value, bool):  # an int to Python, never a size
        raise DefinitionError(f"{field}: {str(value)!r} is not a size like '2g', '512m' or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        found = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
        if found is None:
            raise DefinitionError(f"{field}: {str(value)[:200]!r} is not a size like '2g', '512m' or a number "
                                  "of bytes")
        size = int(found.group(1)) * _UNITS[found.group(2).lower()]
    if size <= 0:
        raise DefinitionError(f"{field}: {value!r} is not a size above zero")
    return size
