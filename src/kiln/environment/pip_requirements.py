"""pip requirements, as a requirements-file line, checked by ``packaging`` (PEP 508).

Every failure is a ``SpecError`` naming the spec, and credentials embedded in URLs never reach an
error message (see ``kiln.environment.secrets.mask``).

Decisions:

- ``${VAR}`` references are never expanded (pip and uv expand them in requirements files).
  Kiln keeps the literal text so that a secret stays in the builder's environment and never
  lands in a definition; the tool that installs expands it.
- A pip requirement is a requirements-file line, as pip reads it: PEP 508, or a bare URL that
  names its package (``git+https://...#egg=name``, a wheel or sdist URL), optionally followed by
  pip's per-requirement hashes (``numpy==1.24.3 --hash=sha256:...``) and a `` # comment``.
  Hashes are kept in the package text (dropping them would loosen what the user pinned);
  ``split_hashes`` separates them, ``normalize_pip_requirement`` sorts them. Other
  per-requirement options (``--global-option``, ``--config-settings``) are an error.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

from kiln.environment.pip_options import PER_REQUIREMENT_OPTIONS, is_pip_option
from kiln.environment.secrets import mask
from kiln.errors import SpecError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "looks_like_path",
    "looks_like_url",
    "normalize_pip_requirement",
    "parse_pip_requirement",
    "pip_requirement_name",
    "split_hashes",
    "url_to_requirement",
]

PIP = "pip requirement"
_HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HASH_RE = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<digest>[0-9a-fA-F]+)$")
# a comment starts at a "#" at the start or after whitespace; the lookbehind keeps this linear ("\s+#" was
# tried at every space of a long line: quadratic). Callers strip the whitespace left before it.
_COMMENT_RE = re.compile(r"(?:^|(?<=\s))#.*$")
_VCS = ("git", "hg", "svn", "bzr")
_URL_SCHEMES = {"http", "https", "file"}
_VCS_SCHEMES = {f"{vcs}+{scheme}" for vcs in _VCS for scheme in ("http", "https", "ssh", "file", "git", "svn")}
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(git|hg|svn|bzr)\+")
_ARCHIVES = (".whl", ".tar.gz", ".zip")
_WINDOWS_PATH_RE = re.compile(r"^[A-Za-z]:[\\/]")


def _utils() -> Any:
    """``packaging.utils``, imported on first use (with its ``packaging.tags``, ~7 ms at startup)."""
    import packaging.utils

    return packaging.utils



def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return mask(lines[0]) if lines else type(error).__name__



def _split_url(url: str, spec: str, kind: str, where: str | None) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:  # e.g. "Invalid IPv6 URL"
        raise SpecError(mask(spec), kind, f"{mask(url)!r} is not a valid URL ({error})",
                        where) from None



def _check_url(url: str, spec: str, where: str | None) -> None:
    if url.startswith("${"):
        return  # a whole-URL reference, expanded by the installer
    scheme = _split_url(url, spec, PIP, where).scheme.lower()
    if scheme not in _URL_SCHEMES and scheme not in _VCS_SCHEMES:
        raise SpecError(
            mask(spec),
            PIP,
            f"{mask(url)!r} is not a URL pip can fetch "
            "(expected http://, https://, file:// or a VCS URL like git+https://)",
            where,
        )


# pip's own split: the requirement ends at the first whitespace-separated token starting with "-".
def split_hashes(text: str, *, where: str | None = None) -> tuple[str, list[str]]:
    """Split ``name==1.0 --hash=sha256:...`` into the requirement and its hashes (``algo:digest``).

    Raises ``SpecError`` for a malformed hash or any other per-requirement option.
    """
    tokens = text.split(" ")
    index = next((i for i, token in enumerate(tokens) if token.startswith("-")), len(tokens))
    requirement = " ".join(tokens[:index]).strip()
    hashes: list[str] = []
    try:
        rest = shlex.split(" ".join(tokens[index:]))
    except ValueError as error:
        raise SpecError(mask(text), PIP, str(error), where) from None
    i = 0
    while i < len(rest):
        token = rest[i]
        name, sep, value = token.partition("=")
        if name != "--hash":
            if name in PER_REQUIREMENT_OPTIONS:
                reason = f"the per-requirement option {name} is not supported (only --hash is)"
            else:
                reason = f"unexpected {token!r} after the requirement (only --hash=algo:digest may follow it)"
            raise SpecError(mask(text), PIP, reason, where)
        if not sep:
            i += 1
            value = rest[i] if i < len(rest) else ""
        hashes.append(_check_hash(value, text, where))
        i += 1
    return requirement, hashes


def _check_hash(value: str, text: str, where: str | None) -> str:
    match = _HASH_RE.match(value)
    if not match:
        raise SpecError(mask(text), PIP, f"--hash {value!r} is not of the form algo:hexdigest", where)
    algo, digest = match["algo"], match["digest"].lower()
    if algo not in _HASH_LENGTHS:
        raise SpecError(
            mask(text), PIP, f"hash algorithm {algo!r} is not one of {', '.join(_HASH_LENGTHS)}", where
        )
    if len(digest) != _HASH_LENGTHS[algo]:
        raise SpecError(
            mask(text),
            PIP,
            f"a {algo} digest has {_HASH_LENGTHS[algo]} hex digits, not {len(digest)}",
            where,
        )
    return f"{algo}:{digest}"


def parse_pip_requirement(text: str, *, where: str | None = None) -> Requirement:
    """Parse one pip requirement line into a ``packaging`` ``Requirement``.

    Accepts PEP 508 (``name[extras] specifier ; marker``, ``name @ url``), a bare URL that names
    its package (see ``url_to_requirement``) and trailing ``--hash=algo:digest`` options, which are
    checked but not part of the result (``split_hashes`` returns them). Raises
    ``SpecError(text, "pip requirement", reason, where)``. ``${VAR}`` is not expanded.
    """
    shown = mask(text)
    stripped = _COMMENT_RE.sub("", text).strip()  # pip drops a trailing " # comment"
    if not stripped:
        raise SpecError(text, PIP, "it is empty", where)
    if is_pip_option(stripped):
        raise SpecError(shown, PIP, "it is a pip option, not a requirement", where)
    requirement_text, _ = split_hashes(stripped, where=where)
    if looks_like_url(requirement_text):
        requirement_text = url_to_requirement(requirement_text, where=where)
    elif looks_like_path(requirement_text):
        raise SpecError(
            shown, PIP, "a local path needs to be written 'name @ file:///absolute/path' (or use -e PATH)", where
        )
    try:
        from packaging.requirements import InvalidRequirement, Requirement

        requirement = Requirement(requirement_text)
    except InvalidRequirement as error:
        reason = _first_line(error)
        if "${" in requirement_text:
            reason += " (Kiln does not expand ${VAR} references)"
        raise SpecError(shown, PIP, reason, where) from None
    if requirement.url is not None:
        _check_url(requirement.url, text, where)
    return requirement


def pip_requirement_name(text: str) -> str:
    """The canonical (PEP 503) project name of a requirement line or a bare name."""
    name: str = _utils().canonicalize_name(parse_pip_requirement(text).name)
    return name


def looks_like_path(text: str) -> bool:
    """Whether a requirement line is a local path (``./pkg``, ``/abs/pkg``, ``dist/pkg-1.0.tar.gz``)."""
    text = text.strip()
    if looks_like_url(text):
        return False
    if text.startswith((".", "/", "\\")) or _WINDOWS_PATH_RE.match(text):
        return True
    return text.endswith(_ARCHIVES) and "@" not in text and not any(c.isspace() for c in text)


def looks_like_url(text: str) -> bool:
    """Whether a requirement line is a bare URL (``https://...``, ``git+https://...``, ``${URL}``)."""
    return bool(_URL_RE.match(text.strip())) or text.strip().startswith("${")


def normalize_pip_requirement(text: str) -> str:
    """Canonical text of a requirement, for hashing: two spellings of one requirement give one string.

    The name and extras are canonicalized (PEP 503/685), extras and specifiers sorted, the marker
    rewritten by ``packaging``, a URL kept as written and hashes (if any) sorted after it.
    """
    requirement = parse_pip_requirement(text)
    _, hashes = split_hashes(_COMMENT_RE.sub("", text).strip())
    out: str = _utils().canonicalize_name(requirement.name)
    if requirement.extras:
        out += "[" + ",".join(sorted({_utils().canonicalize_name(extra) for extra in requirement.extras})) + "]"
    if requirement.url is not None:
        out += f" @ {requirement.url}"
        if requirement.marker is not None:
            out += " "  # PEP 508 needs a space between a URL and ";"
    else:
        out += str(requirement.specifier)
    if requirement.marker is not None:
        out += f"; {requirement.marker}"
    return " ".join([out, *(f"--hash={h}" for h in sorted(set(hashes)))])


def url_to_requirement(url: str, *, where: str | None = None) -> str:
    """Turn a bare URL line into ``name @ url``.

    The name comes from a wheel or sdist filename (``packaging``'s rules) or from an
    ``#egg=name`` fragment, which is then dropped from the URL (other fragment parts such as
    ``subdirectory=`` are kept). Raises ``SpecError`` when there is no name to derive.
    """
    text = url.strip()
    marker = re.search(r"\s+;", text)  # pip's "URL ; marker": the space keeps ";" out of the URL
    if marker is not None:
        named = f"{url_to_requirement(text[: marker.start()], where=where)} ; {text[marker.end() :].strip()}"
        parse_pip_requirement(named, where=where)
        return named
    _check_url(text, text, where)
    base, _, fragment = text.partition("#")
    parts = [part for part in fragment.split("&") if part] if fragment else []
    egg = next((part[4:] for part in parts if part.startswith("egg=")), None)
    kept = [part for part in parts if not part.startswith("egg=")]
    if egg is not None:
        try:
            _utils().canonicalize_name(egg, validate=True)
        except _utils().InvalidName:
            raise SpecError(mask(text), PIP, f"#egg={egg!r} is not a valid project name", where) from None
    filename = unquote(_split_url(base, text, PIP, where).path.rstrip("/").rsplit("/", 1)[-1])
    from_file: str | None = None
    try:
        if filename.endswith(".whl"):
            from_file = _utils().parse_wheel_filename(filename)[0]
        elif filename.endswith((".tar.gz", ".zip")):
            from_file = _utils().parse_sdist_filename(filename)[0]
    except (_utils().InvalidWheelFilename, _utils().InvalidSdistFilename) as error:
        if egg is None:
            raise SpecError(mask(text), PIP, _first_line(error), where) from None
    if from_file and egg and _utils().canonicalize_name(egg) != from_file:
        raise SpecError(
            mask(text), PIP, f"#egg={egg} does not match the file's project name {from_file!r}", where
        )
    name = egg or from_file
    if name is None:
        raise SpecError(
            mask(text),
            PIP,
            "can't derive a package name from this URL: add #egg=<name> or write it as 'name @ url'",
            where,
        )
    clean = base + ("#" + "&".join(kept) if kept else "")
    return f"{name} @ {clean}"
