"""pip options as a requirements file holds them (``-i URL``, ``--extra-index-url URL``, ``--pre``...),
normalized to their long names, one option per string (``-i URL`` -> ``--index-url URL``,
``-e ./pkg`` -> ``--editable ./pkg``). Every failure is a ``SpecError``, credentials masked."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kiln.environment.secrets import mask
from kiln.errors import SpecError

__all__ = [
    "PER_REQUIREMENT_OPTIONS",
    "PIP_OPTIONS",
    "REPEATABLE_PIP_OPTIONS",
    "PipOption",
    "check_pip_option",
    "is_pip_option",
    "parse_pip_options",
    "pip_option_flag",
]

OPTION = "pip option"

#: long name -> (short name or None, takes a value). The options pip reads in a requirements file.
PIP_OPTIONS: dict[str, tuple[str | None, bool]] = {
    "--index-url": ("-i", True),
    "--extra-index-url": (None, True),
    "--no-index": (None, False),
    "--find-links": ("-f", True),
    "--constraint": ("-c", True),
    "--requirement": ("-r", True),
    "--editable": ("-e", True),
    "--no-binary": (None, True),
    "--only-binary": (None, True),
    "--prefer-binary": (None, False),
    "--require-hashes": (None, False),
    "--pre": (None, False),
    "--trusted-host": (None, True),
    "--use-feature": (None, True),
}
_SHORT = {short: long for long, (short, _) in PIP_OPTIONS.items() if short}
#: options that may be given more than once (pip appends their values); the others take one value.
REPEATABLE_PIP_OPTIONS = frozenset(
    {
        "--extra-index-url",
        "--find-links",
        "--constraint",
        "--requirement",
        "--editable",
        "--no-binary",
        "--only-binary",
        "--trusted-host",
        "--use-feature",
    }
)
#: pip accepts these only after a requirement on the same line.
PER_REQUIREMENT_OPTIONS = ("--hash", "--global-option", "--config-settings", "--install-option")
_URL_SCHEMES = {"http", "https", "file"}


def _utils() -> Any:
    """``packaging.utils``, imported on first use (with its ``packaging.tags``, ~7 ms at startup)."""
    import packaging.utils

    return packaging.utils



def is_pip_option(line: str) -> bool:
    """Whether pip reads this requirements line as options rather than a requirement.

    pip's rule: the line starts with ``-`` (``-i URL``, ``--pre``, ``-e ./pkg``...). Whether the
    option exists and is well formed is ``parse_pip_options``'s job.
    """
    return line.strip().startswith("-")


@dataclass(frozen=True)
class PipOption:
    """One pip option in its long form: ``name`` like ``--index-url``, ``value`` ``None`` for a flag."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        if self.value is None:
            return self.name
        value = self.value
        if not value or any(c.isspace() or c in "'\"\\" for c in value):
            value = shlex.quote(value)
        return f"{self.name} {value}"


def parse_pip_options(text: str, *, where: str | None = None) -> list[PipOption]:
    """Parse a requirements-file option line (one or more options) into long-form ``PipOption``s.

    Accepts ``--name value``, ``--name=value``, ``-x value`` and ``-xvalue`` like pip does. Relative
    paths are returned as written; resolving them is the caller's job (it knows the file).
    Raises ``SpecError(text, "pip option", reason, where)``.
    """
    shown = mask(text)
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as error:
        raise SpecError(shown, OPTION, str(error), where) from None
    options: list[PipOption] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        attached: str | None = None
        if token.startswith("--"):
            name, sep, rest = token.partition("=")
            attached = rest if sep else None
        elif token.startswith("-") and len(token) >= 2:
            name = _SHORT.get(token[:2], token[:2])
            attached = token[2:] or None
        else:
            raise SpecError(shown, OPTION, f"{mask(token)!r} is not an option", where)
        if name not in PIP_OPTIONS:
            if name in PER_REQUIREMENT_OPTIONS:
                reason = f"{name} must follow a requirement on the same line"
            else:
                close = difflib.get_close_matches(name, [*PIP_OPTIONS, *_SHORT], n=1)
                reason = f"unknown option {name!r}" + (f" (did you mean {close[0]}?)" if close else "")
            raise SpecError(shown, OPTION, reason, where)
        takes_value = PIP_OPTIONS[name][1]
        if not takes_value:
            if attached is not None:
                raise SpecError(shown, OPTION, f"{name} takes no value", where)
            options.append(PipOption(name))
        else:
            if attached is None:
                i += 1
                if i >= len(tokens) or tokens[i].startswith("-"):
                    raise SpecError(shown, OPTION, f"{name} needs a value", where)
                attached = tokens[i]
            options.append(PipOption(name, _check_option_value(name, attached, shown, where)))
        i += 1
    if not options:
        raise SpecError(shown, OPTION, "no option found", where)
    return options


def check_pip_option(text: str, *, where: str | None = None) -> list[PipOption]:
    """Check an option line (``SpecError`` if malformed) and return its options; see ``parse_pip_options``."""
    return parse_pip_options(text, where=where)


def pip_option_flag(text: str) -> str:
    """The long name of the (first) option on a line: ``-i URL`` -> ``--index-url``.

    Lenient on purpose, for lines already stored: an unknown option gives its own name.
    """
    token = text.strip().split(None, 1)[0] if text.strip() else ""
    if token.startswith("--"):
        return token.partition("=")[0]
    return _SHORT.get(token[:2], token[:2])


def _check_option_value(name: str, value: str, shown: str, where: str | None) -> str:
    if not value.strip():
        raise SpecError(shown, OPTION, f"{name} needs a value", where)
    if name in ("--index-url", "--extra-index-url") and not value.startswith("${"):
        try:
            scheme = urlsplit(value).scheme.lower()
        except ValueError as error:  # e.g. "Invalid IPv6 URL"
            raise SpecError(shown, OPTION, f"{mask(value)!r} is not a valid URL ({error})", where) from None
        if scheme not in _URL_SCHEMES:
            raise SpecError(
                shown, OPTION, f"{name} {mask(value)!r} is not an http(s):// or file:// URL", where
            )
    if name in ("--no-binary", "--only-binary"):
        for item in value.split(","):
            if item in (":all:", ":none:"):
                continue
            try:
                _utils().canonicalize_name(item, validate=True)
            except _utils().InvalidName:
                raise SpecError(
                    shown, OPTION, f"{name} expects :all:, :none: or project names, not {item!r}", where
                ) from None
    if name == "--trusted-host" and ("/" in value or any(c.isspace() for c in value)):
        raise SpecError(shown, OPTION, f"--trusted-host expects host[:port], not {value!r}", where)
    return value
