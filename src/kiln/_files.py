"""Writing files so that a reader sees the old content or the new one, never a part."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["temp_beside", "write_text_atomic"]


def temp_beside(path: Path) -> Path:
    """A new, unused name in ``path``'s folder (created with the user's umask, unlike ``mkstemp``'s 0600)."""
    return path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"  # not uuid: its import (platform) costs ~2 ms


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` by writing a temp file beside it and renaming it."""
    tmp = temp_beside(path)
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
