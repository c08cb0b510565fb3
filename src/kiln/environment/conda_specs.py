"""conda match specs (``numpy>=1.20``, ``pytorch::pytorch=2.0``, ``numpy=1.2=py39_0``), checked by
py-rattler's ``MatchSpec``. Every failure is a ``SpecError`` naming the spec, credentials masked."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kiln.environment.secrets import mask
from kiln.errors import SpecError

if TYPE_CHECKING:  # imported on use: rattler (and pydantic, which it loads) costs ~40 ms at startup
    from rattler import MatchSpec

__all__ = ["conda_spec_name", "conda_spec_version", "normalize_conda_spec", "parse_conda_spec"]

CONDA = "conda match"
_BAD_BUILD_CHARS = set(" \t;<>=,~'\"")
_SIMPLE_VERSION_RE = re.compile(r"(==)?(?P<version>[0-9A-Za-z_+!]+(\.[0-9A-Za-z_+!]+)*?)(\.\*)?")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return mask(lines[0]) if lines else type(error).__name__



def parse_conda_spec(text: str, *, where: str | None = None) -> MatchSpec:
    """Parse a conda match spec (``numpy>=1.20``, ``pytorch::pytorch=2.0``, ``numpy=1.2=py39_0``).

    Uses rattler's lenient parser, the conda-compatible one. Raises
    ``SpecError(text, "conda match", reason, where)``.
    """
    shown = mask(text)
    if not text.strip():
        raise SpecError(text, CONDA, "it is empty", where)
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    try:
        spec = MatchSpec(text)
    except (InvalidMatchSpecError, ValueError) as error:
        raise SpecError(shown, CONDA, _first_line(error), where) from None
    build = spec.build
    # rattler's lenient parser reads stray words as a build string ("numpy>=1 ;" has build ";").
    if isinstance(build, str) and _BAD_BUILD_CHARS.intersection(build):
        raise SpecError(shown, CONDA, f"{build!r} is not a valid build string", where)
    return spec


# The common shapes (``numpy``, ``python=3.11``, ``pip==23.0``) read without rattler, which costs
# ~40 ms to import: enough to matter on the CLI's cache-hit path. Anything else goes to rattler.
_SIMPLE_CONDA_RE = re.compile(r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)(?:(?P<op>==?)(?P<version>\d+(?:\.\d+)*))?")


def conda_spec_name(text: str) -> str:
    """The package name of a conda match spec, normalized (lower case), without its channel."""
    simple = _SIMPLE_CONDA_RE.fullmatch(text.strip())
    if simple is not None:
        return simple["name"].lower()
    name: str = parse_conda_spec(text).name.normalized
    return name


def conda_spec_version(text: str) -> str | None:
    """The version constraint of a conda match spec as a user reads it, or ``None`` without one.

    ``python=3.9`` and ``python 3.9.*`` -> ``"3.9"``, ``python==3.9.16`` -> ``"3.9.16"``,
    ``python>=3.8,<3.12`` -> ``">=3.8,<3.12"``.
    """
    simple = _SIMPLE_CONDA_RE.fullmatch(text.strip())
    if simple is not None:
        return simple["version"]
    version = parse_conda_spec(text).version
    if version is None:
        return None
    match = _SIMPLE_VERSION_RE.fullmatch(str(version))
    return match["version"] if match else str(version)


def normalize_conda_spec(text: str) -> str:
    """Canonical text of a conda match spec (rattler's ``str``), channel kept.

    ``pytorch::pytorch=2.0`` -> ``pytorch::pytorch 2.0.*``; ``python=3.9.16`` ->
    ``python 3.9.16.*`` (conda's ``=`` is a prefix match); ``numpy>=1.20`` -> ``numpy >=1.20``.
    """
    return str(parse_conda_spec(text))
