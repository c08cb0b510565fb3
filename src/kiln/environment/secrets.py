"""Secrets in definitions: references are kept, literal values never leave memory.

A registry password (or any credential) is written in a definition as a reference to an
environment variable, ``"${MY_REGISTRY_PASSWORD}"``; Kiln resolves it at the moment it is used.
A literal password set in code lives only in that ``Environment`` object: registering drops it,
and ``save_to_directory`` writes it only when asked with ``include_secrets=True``.

``mask`` is the one masker for anything shown or kept (messages, logs, locks): every credential
Kiln knows how to spot, in linear time. ``literal_secret`` uses it to find, in a definition, what
registration refuses: anything ``mask`` would change is a literal credential (a password, a token
used as a URL's user name, a conda ``/t/<token>/`` path) that belongs in a ``${VAR}`` reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from kiln.errors import DefinitionError

__all__ = ["MASK", "expand_references", "is_reference", "literal_secret", "mask", "refuse_literal_secrets",
           "resolve_reference", "url_has_literal_password"]

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
_HTTP = re.compile(r"(?<![A-Za-z0-9+.-])https?://", re.IGNORECASE)
_CHANNEL_TOKEN = re.compile(r"/t/([^/\s'\"]+)(?=/)")


def mask(text: str) -> str:
    """``text`` with every credential masked, for messages, logs and locks.

    ``scheme://user:password@host`` -> ``scheme://user:****@host`` (the password may hold ``/ # @ %``),
    ``scheme://TOKEN@host`` -> ``scheme://****@host`` (a token as user name) and conda's
    ``/t/<token>/`` -> ``/t/****/``. Kept: ``${VAR}`` references (not secrets), ``git@`` (an SSH user),
    a port (``host:8080/path@ref``). Linear in ``len(text)``: every search moves forward.
    """
    if "://" not in text:
        return text
    text = _mask_userinfo(text)
    if "/t/" in text:
        text = _mask_channel_tokens(text)
    return text


def _mask_channel_tokens(text: str) -> str:
    # only inside http(s) URLs: "/t/" in a path (/home/t/x/) or a file:// URL is no token
    out: list[str] = []
    copied = 0
    for m in _HTTP.finditer(text):
        if m.start() < copied:
            continue
        stop = _STOP.search(text, m.end())
        end = stop.start() if stop else len(text)
        url = _CHANNEL_TOKEN.sub(lambda t: t[0] if is_reference(t[1]) else f"/t/{MASK}", text[m.start():end])
        out += (text[copied:m.start()], url)
        copied = end
    out.append(text[copied:])
    return "".join(out)


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
            # a user name alone is a token (pip and uv send it as one), except an SSH login name
            ssh = text[m.start():m.end() - 3].lower().endswith("ssh")
            shown = MASK if user not in ("", "git") and not ssh and not is_reference(user) else None
        if shown is not None:
            out += (text[copied:start], shown)
            copied = last
    out.append(text[copied:])
    return "".join(out)


# ---- what registration refuses -----------------------------------------------------------------------

# sections whose strings are not credentials: environment variables are the user's to set (as in Azure
# ML, where they are stored in clear), and the registry password has its own rule (dropped unless a reference)
_NOT_CHECKED = ("environmentVariables", "docker.baseImageRegistry.password")
_CUT = 300


def _strings(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if path in _NOT_CHECKED:
        return
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, f"{path}[{i}]")


def literal_secret(data: Any) -> tuple[str, str] | None:
    """The first (field, masked value) of JSON-like ``data`` (an ``azureml_environment.json`` dict)
    holding a literal credential; None when every credential is a ``${VAR}`` reference."""
    for path, value in _strings(data, ""):
        masked = mask(value)
        if masked != value:
            return path, masked
    return None


def refuse_literal_secrets(data: Any, what: str) -> None:
    """``DefinitionError`` (masked, saying how to write a reference) if ``data`` holds a literal credential."""
    found = literal_secret(data)
    if found is None:
        return
    path, masked = found
    if ".pip[" in path:
        label = "pip option" if masked.lstrip().startswith("-") else "pip requirement"
    elif ".channels[" in path:
        label = "conda channel"
    elif ".dependencies[" in path:
        label = "conda package"
    else:
        label = path
    shown = masked if len(masked) <= _CUT else masked[:_CUT] + "..."
    if f"/t/{MASK}" in masked:
        example = "https://conda.anaconda.org/t/${CONDA_TOKEN}/channel"
    elif f":{MASK}@" in masked:
        example = ("https://user:${CHANNEL_PASSWORD}@host/channel" if label == "conda channel"
                   else "https://user:${INDEX_PASSWORD}@host/simple")
    else:
        example = "https://${INDEX_TOKEN}@host/simple"
    raise DefinitionError(f"{what}: {label} {shown!r} holds a literal credential, which Kiln does not store: "
                          f"write it as a reference to an environment variable, e.g. {example} (read only when "
                          "packages are installed)")
