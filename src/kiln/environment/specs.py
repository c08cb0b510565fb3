"""Package specs: pip requirements, pip options and conda match specs, checked by the real parsers.

pip requirements go through ``packaging`` (PEP 508), conda match specs through py-rattler's
``MatchSpec``. Every failure is a ``SpecError`` naming the spec, and credentials embedded in URLs
never reach an error message (``user:secret@`` is shown as ``user:****@``).

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
- pip options are normalized to their long names, one option per string
  (``-i URL`` -> ``--index-url URL``, ``-e ./pkg`` -> ``--editable ./pkg``).
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

from kiln.errors import SpecError


def _utils() -> Any:
    """``packaging.utils``, imported on first use (with its ``packaging.tags``, ~7 ms at startup)."""
    import packaging.utils

    return packaging.utils


if TYPE_CHECKING:  # imported on use: rattler (and pydantic, which it loads) costs ~40 ms at startup
    from packaging.requirements import Requirement
    from rattler import MatchSpec

__all__ = [
    "PIP_OPTIONS",
    "REPEATABLE_PIP_OPTIONS",
    "PipOption",
    "check_pip_option",
    "conda_spec_name",
    "conda_spec_version",
    "is_pip_option",
    "looks_like_path",
    "looks_like_url",
    "normalize_conda_spec",
    "normalize_pip_requirement",
    "parse_conda_spec",
    "parse_pip_options",
    "parse_pip_requirement",
    "pip_option_flag",
    "pip_requirement_name",
    "redact_credentials",
    "split_hashes",
    "url_to_requirement",
]

PIP = "pip requirement"
CONDA = "conda match"
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
# pip accepts these only after a requirement on the same line.
_PER_REQUIREMENT = ("--hash", "--global-option", "--config-settings", "--install-option")

_HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HASH_RE = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<digest>[0-9a-fA-F]+)$")
_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*)(?::(?P<password>[^/\s]*))?@")
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_REF_RE = re.compile(r"^\$\{[A-Za-z0-9_]+\}$")
_VCS = ("git", "hg", "svn", "bzr")
_URL_SCHEMES = {"http", "https", "file"}
_VCS_SCHEMES = {f"{vcs}+{scheme}" for vcs in _VCS for scheme in ("http", "https", "ssh", "file", "git", "svn")}
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(git|hg|svn|bzr)\+")
_BAD_BUILD_CHARS = set(" \t;<>=,~'\"")
_ARCHIVES = (".whl", ".tar.gz", ".zip")
_WINDOWS_PATH_RE = re.compile(r"^[A-Za-z]:[\\/]")
_SIMPLE_VERSION_RE = re.compile(r"(==)?(?P<version>[0-9A-Za-z_+!]+(\.[0-9A-Za-z_+!]+)*?)(\.\*)?")


def redact_credentials(text: str) -> str:
    """``text`` with the secrets of any URL in it masked: ``user:pass@`` -> ``user:****@``, ``token@`` -> ``****@``.

    A ``${VAR}`` reference is not a secret and is kept; so is ``git@`` (an SSH user name).
    """

    def mask(match: re.Match[str]) -> str:
        user, password = match["user"], match["password"]
        if password is not None:
            if _ENV_REF_RE.match(password) or not password:
                return match[0]
            return f"{match['scheme']}{user}:****@"
        if user == "git" or _ENV_REF_RE.match(user) or not user:
            return match[0]
        return f"{match['scheme']}****@"

    return _CREDENTIALS_RE.sub(mask, text)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return redact_credentials(lines[0]) if lines else type(error).__name__


def _split_url(url: str, spec: str, kind: str, where: str | None) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:  # e.g. "Invalid IPv6 URL"
        raise SpecError(redact_credentials(spec), kind, f"{redact_credentials(url)!r} is not a valid URL ({error})",
                        where) from None


def _check_url(url: str, spec: str, where: str | None) -> None:
    if url.startswith("${"):
        return  # a whole-URL reference, expanded by the installer
    scheme = _split_url(url, spec, PIP, where).scheme.lower()
    if scheme not in _URL_SCHEMES and scheme not in _VCS_SCHEMES:
        raise SpecError(
            redact_credentials(spec),
            PIP,
            f"{redact_credentials(url)!r} is not a URL pip can fetch "
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
        raise SpecError(redact_credentials(text), PIP, str(error), where) from None
    i = 0
    while i < len(rest):
        token = rest[i]
        name, sep, value = token.partition("=")
        if name != "--hash":
            if name in _PER_REQUIREMENT:
                reason = f"the per-requirement option {name} is not supported (only --hash is)"
            else:
                reason = f"unexpected {token!r} after the requirement (only --hash=algo:digest may follow it)"
            raise SpecError(redact_credentials(text), PIP, reason, where)
        if not sep:
            i += 1
            value = rest[i] if i < len(rest) else ""
        hashes.append(_check_hash(value, text, where))
        i += 1
    return requirement, hashes


def _check_hash(value: str, text: str, where: str | None) -> str:
    match = _HASH_RE.match(value)
    if not match:
        raise SpecError(redact_credentials(text), PIP, f"--hash {value!r} is not of the form algo:hexdigest", where)
    algo, digest = match["algo"], match["digest"].lower()
    if algo not in _HASH_LENGTHS:
        raise SpecError(
            redact_credentials(text), PIP, f"hash algorithm {algo!r} is not one of {', '.join(_HASH_LENGTHS)}", where
        )
    if len(digest) != _HASH_LENGTHS[algo]:
        raise SpecError(
            redact_credentials(text),
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
    shown = redact_credentials(text)
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
            raise SpecError(redact_credentials(text), PIP, f"#egg={egg!r} is not a valid project name", where) from None
    filename = unquote(_split_url(base, text, PIP, where).path.rstrip("/").rsplit("/", 1)[-1])
    from_file: str | None = None
    try:
        if filename.endswith(".whl"):
            from_file = _utils().parse_wheel_filename(filename)[0]
        elif filename.endswith((".tar.gz", ".zip")):
            from_file = _utils().parse_sdist_filename(filename)[0]
    except (_utils().InvalidWheelFilename, _utils().InvalidSdistFilename) as error:
        if egg is None:
            raise SpecError(redact_credentials(text), PIP, _first_line(error), where) from None
    if from_file and egg and _utils().canonicalize_name(egg) != from_file:
        raise SpecError(
            redact_credentials(text), PIP, f"#egg={egg} does not match the file's project name {from_file!r}", where
        )
    name = egg or from_file
    if name is None:
        raise SpecError(
            redact_credentials(text),
            PIP,
            "can't derive a package name from this URL: add #egg=<name> or write it as 'name @ url'",
            where,
        )
    clean = base + ("#" + "&".join(kept) if kept else "")
    return f"{name} @ {clean}"


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
    shown = redact_credentials(text)
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
            raise SpecError(shown, OPTION, f"{redact_credentials(token)!r} is not an option", where)
        if name not in PIP_OPTIONS:
            if name in _PER_REQUIREMENT:
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
        scheme = _split_url(value, shown, OPTION, where).scheme.lower()
        if scheme not in _URL_SCHEMES:
            raise SpecError(
                shown, OPTION, f"{name} {redact_credentials(value)!r} is not an http(s):// or file:// URL", where
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


def parse_conda_spec(text: str, *, where: str | None = None) -> MatchSpec:
    """Parse a conda match spec (``numpy>=1.20``, ``pytorch::pytorch=2.0``, ``numpy=1.2=py39_0``).

    Uses rattler's lenient parser, the conda-compatible one. Raises
    ``SpecError(text, "conda match", reason, where)``.
    """
    shown = redact_credentials(text)
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
