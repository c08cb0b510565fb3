"""Secrets in definitions: references are kept, literal values never leave memory.

A registry password (or any credential) is written in a definition as a reference to an
environment variable, ``"${MY_REGISTRY_PASSWORD}"``; Kiln resolves it at the moment it is used.
A literal password set in code lives only in that ``Environment`` object: registering drops it,
and ``save_to_directory`` writes it only when asked with ``include_secrets=True``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from kiln.errors import DefinitionError

__all__ = ["expand_references", "is_reference", "mask_url", "resolve_reference", "url_has_literal_password"]

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def is_reference(value: str | None) -> bool:
    """True for ``${VAR}`` / ``$VAR`` (the whole value)."""
    return value is not None and _REFERENCE.fullmatch(value) is not None


def resolve_reference(value: str, environ: Mapping[str, str], what: str) -> str:
    """The value a reference points at; a literal is returned as it is."""
    m = _REFERENCE.fullmatch(value)
    if m is None:
        return value
    var = m.group(1) or m.group(2)
    if var not in environ:
        raise DefinitionError(f"{what}: the environment variable {var} is not set")
    return environ[var]


def expand_references(text: str, environ: Mapping[str, str], what: str) -> tuple[str, dict[str, str]]:
    """``text`` with every ``${VAR}`` replaced by its value, and {value: "${VAR}"} to put the references
    back into anything derived from it (a lock) before it is stored."""
    back: dict[str, str] = {}

    def one(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in environ:
            raise DefinitionError(f"{what}: the environment variable {var} is not set")
        if environ[var]:
            back[environ[var]] = m.group(0)
        return environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", one, text), back


def url_has_literal_password(url: str) -> bool:
    """True when a URL carries ``user:password@`` with a password that is not a ``${VAR}`` reference."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.password is None:
        return False
    return not _REFERENCE.fullmatch(parts.password)


def mask_url(text: str) -> str:
    """Replace the password of any URL in ``text`` with ``****`` (for messages and logs)."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        if parts.password is None or _REFERENCE.fullmatch(parts.password):
            return url
        netloc = f"{parts.username}:****@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+", one, text)
