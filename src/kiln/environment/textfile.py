"""Reading a definition file as UTF-8 text, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from kiln.environment.limits import MAX_FILE_BYTES
from kiln.errors import FormatError

__all__ = ["check_file_size", "read_utf8"]


def check_file_size(path: Path) -> None:
    """Refuse a file larger than any definition (``/dev/zero`` and the like included), before reading it."""
    try:
        info = path.stat()
    except OSError:
        return  # the read says what is wrong
    import stat

    if path.is_file() and info.st_size > MAX_FILE_BYTES:
        raise FormatError(str(path), f"{info.st_size} bytes: too large for a definition file (at most "
                                     f"{MAX_FILE_BYTES})")
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise FormatError(str(path), "not a regular file (a device, pipe or socket)")


def read_utf8(path: Path) -> str:
    """The text of the definition file ``path``; a file over ``MAX_FILE_BYTES`` is refused unread."""
    check_file_size(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FormatError(str(path), "file not found") from None
    except IsADirectoryError:
        raise FormatError(str(path), "is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise FormatError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
