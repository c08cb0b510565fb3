"""Reading a definition file as UTF-8 text, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from kiln.errors import FormatError

__all__ = ["read_utf8"]


def read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FormatError(str(path), "file not found") from None
    except IsADirectoryError:
        raise FormatError(str(path), "is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise FormatError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
