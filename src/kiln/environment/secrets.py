"""Secrets in definitions: references are kept, literal values never leave memory.

A registry password (or any credential) is written in a definition as a reference to an
environment variable, ``"${MY_REGISTRY_PASSWORD}"``; Kiln resolves it at the moment it is used.
A literal password set in code lives only in that ``Environment`` object: registering drops it,
and ``save_to_directory`` writes it only when asked with ``include_secrets=True``.

``mask`` is the one masker for anything shown or kept (messages, logs, locks): every credential
Kiln knows how to spot, in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from kiln.errors import DefinitionError

__all__ = ["MASK", "expand_references", "is_reference", "mask", "resolve_reference", "url_has_literal_password"]

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


MASK = "****"
# A scheme starts where no scheme character precedes it: each run of letters is tried once, not
# once per letter (which made the old pattern quadratic on a long line without "://").
_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://")
_STOP = re.compile(r"[\s'\"]")  # a URL ends at whitespace or a quote (messages quote values with !r)
_DIGITS = re.compile(r"\d*")
# conda's token channels: https://conda.anaconda.org/t/<token>/<channel>
_CHANNEL_TOKEN = re.compile(r"/t/([^/\s'\"]+)(?=/)")


def mask(text: str) -> str:
    """``text`` with every credential masked, for messages, logs and locks.

    ``scheme://user:password@host`` -> ``scheme://user:****@host`` (the password may hold ``/ # @ %``),
    ``scheme://TOKEN@host`` -> ``scheme://****@host`` (a token as user name) and conda's
    ``/t/<token>/`` -> ``/t/****/``. Kept: ``${VAR}`` references (not secrets), ``git@`` (an SSH user),
    a port (``host:8080/path@ref``). Linear in ``len(text)``: every search moves forward.
    """
    if "://" in text:
        text = _mask_userinfo(text)
    if "/t/" in text:
        text = _CHANNEL_TOKEN.sub(lambda m: m[0] if is_reference(m[1]) else f"/t/{MASK}", text)
    return text


class _Next:
    """The next match at or after a position, remembering the stretch already searched: queries
    that move forward (as ``_mask_userinfo``'s do) search each character once."""

    def __init__(self, find: Callable[[int], int]) -> None:
        self._find = find
        self._from = self._found = -1  # nothing matches in [_from, _found)

    def __call__(self, pos: int) -> int:
        if not self._from <= pos <= self._found:
            self._from, self._found = pos, self._find(pos)
        return self._found


def _mask_userinfo(text: str) -> str:
    n = len(text)

    def char(c: str) -> _Next:
        return _Next(lambda pos: n if (i := text.find(c, pos)) < 0 else i)

    stop = _Next(lambda pos: m.start() if (m := _STOP.search(text, pos)) else n)
    slash, at, colon = char("/"), char("@"), char(":")
    out: list[str] = []
    copied = 0  # text[:copied] is in out
    for m in _SCHEME.finditer(text):
        start = m.end()
        if start < copied:
            continue  # a "scheme://" inside a userinfo already handled
        end = stop(start)
        head = min(slash(start), end)  # user:password@host, up to the path
        last = at(start)
        if last < head:
            while (nxt := at(last + 1)) < head:  # the host follows the last "@": "p@ss" is a password
                last = nxt
        else:
            # user:pass/word@host: a password holding "/" (but host:8080/path@ref is a port)
            c = colon(start)
            if c + 1 >= head or _DIGITS.match(text, c + 1, head).end() == head:  # type: ignore[union-attr]
                continue
            last = at(head)
            if last >= end:
                continue
            while (nxt := at(last + 1)) < min(slash(last + 1), end):
                last = nxt
        c = colon(start)
        if c < last:
            user, password = text[start:c], text[c + 1:last]
            shown = user + ":" + MASK if password and not is_reference(password) else None
        else:
            user = text[start:last]
            shown = MASK if user not in ("", "git") and not is_reference(user) else None
        if shown is not None:
            out += (text[copied:start], shown)
            copied = last
    out.append(text[copied:])
    return "".join(out)
