"""Write an environment in any supported format (what ``kiln env download`` does), through ``registry.FORMATS``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiln.environment.formats.registry import get_format

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["export"]


def export(env: Environment, directory: Path, fmt: str, *, overwrite: bool = False) -> list[Path]:
    """Write ``env`` into ``directory`` as ``fmt``; return the files written. Nothing is written on error."""
    return get_format(fmt).dump(env, directory, overwrite=overwrite)
