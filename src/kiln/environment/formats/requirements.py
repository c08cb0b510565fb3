"""pip ``requirements.txt`` files, read into packages and options (``Environment.from_pip_requirements``).

Unlike the Azure ML SDK, which copies the lines verbatim (comments and blank lines included),
Kiln parses the file the way pip does and checks every line:

- comments (a line starting with ``#``, or `` #`` after text) and blank lines are dropped, lines
  ending in ``\\`` are joined with the next one; errors name the first physical line;
- ``-r FILE`` includes are read now, relative to the including file, recursively (a cycle or a
  missing file is an error); their packages and options are merged in place. The SDK kept
  ``-r other.txt`` as an option, which breaks once the environment leaves the folder;
- options are normalized to their long names, one per entry (``-i URL`` -> ``--index-url URL``);
  relative paths of ``-c``, ``-e`` and ``--find-links`` are made absolute against the file.
  ``-e`` stays an option (``--editable PATH_OR_URL``), as in the SDK's ``pip_options``;
- a bare URL or local archive line becomes ``name @ url`` (see ``url_to_requirement``);
- ``--hash`` options after a requirement are kept in the package text, normalized to
  ``name==1.0 --hash=sha256:<hex>``; other per-requirement options are an error;
- ``${VAR}`` references are never expanded (pip would), so secrets stay out of definitions;
  credentials in URLs are masked in error messages;
- a line seen twice (say, a file included twice) is kept once; two different ``--index-url``
  values are an error (pip would silently use the last one);
- ``-c`` files are not read (their path is kept); a YAML or JSON document, binary data or
  non-UTF-8 text is reported as such.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kiln.environment.limits import MAX_DEPTH, MAX_FIELD, MAX_ITEMS, cut
from kiln.environment.pip_options import PipOption, is_pip_option, parse_pip_options
from kiln.environment.pip_requirements import (
    looks_like_path,
    looks_like_url,
    parse_pip_requirement,
    split_hashes,
    url_to_requirement,
)
from kiln.environment.secrets import mask
from kiln.environment.textfile import check_file_size
from kiln.errors import FormatError, SpecError

__all__ = ["RequirementsFile", "parse_requirements", "write_requirements"]

_COMMENT_RE = re.compile(r"(?:^|(?<=\s))#.*$")  # linear: see pip_requirements
_YAML_KEY_RE = re.compile(r"^[A-Za-z_][\w.-]*:(\s|$)")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_EXTRAS_RE = re.compile(r"^(?P<path>.*?)(?P<extras>\[[^\]]*\])?$")


@dataclass(frozen=True)
class RequirementsFile:
    """A requirements file as Kiln keeps it.

    ``packages``: requirement strings as written (comments and extra whitespace removed), bare
    URLs rewritten as ``name @ url``, optionally followed by ``--hash=algo:digest`` options.
    ``options``: pip options, one per entry, in ``--long-name value`` form.
    """

    packages: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_requirements(path: Path) -> RequirementsFile:
    """Read a pip requirements file, following its ``-r`` includes.

    Raises ``FormatError(file, message, field="line N")`` for a malformed line, naming the value.
    """
    reader = _Reader()
    reader.read(Path(path), display=str(path), stack=())
    return RequirementsFile(packages=reader.packages, options=reader.options)


def write_requirements(packages: Sequence[str], options: Sequence[str]) -> str:
    """The text of a requirements file: options first, then packages, one per line."""
    lines = [*options, *packages]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise SpecError(mask(line), "pip requirement", "it contains a line break")
    return "".join(f"{line}\n" for line in lines)


def _echoes(path: Path) -> bool:
    """Whether errors may quote the lines of ``path``: yes for a file named like a requirements file
    (``*.txt``, ``*.in``, ``*requirements*``...), no for anything else (``-r /etc/passwd``, ``-r ~/.netrc``):
    an error names the line and the problem, and never shows what such a file holds."""
    name = path.name.lower()
    return name.endswith((".txt", ".in", ".pip")) or "requirement" in name or "constraint" in name


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    # pip's join_lines: a trailing "\" continues the line unless the line is a comment.
    start: int | None = None
    parts: list[str] = []
    # Split on line ends only (str.splitlines also splits on \x1c, \u2028...), so numbers match editors.
    for number, line in enumerate(_LINE_BREAK_RE.split(text), start=1):
        is_comment = line.lstrip().startswith("#")
        if line.endswith("\\") and not is_comment:
            if not parts:
                start = number
            parts.append(line.strip("\\"))
            continue
        if is_comment:
            line = " " + line
        if parts:
            parts.append(line)
            yield start or number, "".join(parts)
            parts = []
        else:
            yield number, line
    if parts:
        yield start or 1, "".join(parts)


class _Reader:
    def __init__(self) -> None:
        self.packages: list[str] = []
        self.options: list[str] = []
        self._index_url: tuple[str, str] | None = None  # value, "file: line N"
        self._seen: set[str] = set()

    def read(self, path: Path, *, display: str, stack: tuple[Path, ...]) -> None:
        echo = _echoes(path)
        text = self._decode(path, display, echo=echo)
        base = _absolute(path).parent
        first = True
        for number, raw in _logical_lines(text):
            where = f"line {number}"
            if len(raw) > MAX_FIELD:  # described, never echoed: it may be anything but a requirement
                raise FormatError(display, f"{len(raw)} characters: too long for a requirements line (at most "
                                           f"{MAX_FIELD})", field=where)
            line = _COMMENT_RE.sub("", raw).strip()
            if not line:
                continue
            if first:
                self._not_another_format(line, display, where, echo=echo)
                first = False
            try:
                if is_pip_option(line):
                    for option in parse_pip_options(line):
                        self._option(option, base=base, display=display, where=where, stack=(*stack, path))
                else:
                    self._add(self.packages, self._package(line, base=base))
            except SpecError as error:
                kind = "pip option line" if is_pip_option(line) else "pip requirement"
                if not echo:  # -r /etc/passwd: say what is wrong without showing what the file holds
                    raise FormatError(display, f"not a valid {kind} ({error.reason}): is this a requirements "
                                               "file?", field=where) from None
                shown = cut(mask(line))
                raise FormatError(display, f"{shown!r} is not a valid {kind}: {error.reason}", field=where) from None

    @staticmethod
    def _decode(path: Path, display: str, *, echo: bool) -> str:
        try:
            check_file_size(path)
            data = path.read_bytes()
        except FormatError as error:
            raise FormatError(display, error.detail) from None
        except OSError as error:
            raise FormatError(display, f"can't read the requirements file: {error.strerror or error}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            number = data[: error.start].count(b"\n") + 1
            raise FormatError(
                display,
                f"byte 0x{data[error.start]:02x} is not UTF-8 text: is this a binary file?",
                field=f"line {number}",
            ) from None
        match = _CONTROL_RE.search(text)
        if match:
            number = len(_LINE_BREAK_RE.split(text[: match.start()]))
            line = _LINE_BREAK_RE.split(text)[number - 1]
            shown = f" in {cut(mask(line), 80)!r}" if echo else ""
            raise FormatError(display, f"control character {match[0]!r}{shown}: is this a binary file?",
                              field=f"line {number}")
        return text

    @staticmethod
    def _not_another_format(line: str, display: str, where: str, *, echo: bool) -> None:
        kind = None
        if line.startswith(("{", "[")):
            kind = "a JSON document"
        elif line == "---" or _YAML_KEY_RE.match(line):
            kind = "a YAML document (conda environment files are read with from_conda_specification)"
        if kind:
            shown = f"{cut(mask(line), 80)!r}: " if echo else ""
            raise FormatError(display, f"{shown}this looks like {kind}, not a pip requirements file", field=where)

    def _package(self, line: str, *, base: Path) -> str:
        requirement, hashes = split_hashes(line)
        if looks_like_url(requirement):
            requirement = url_to_requirement(requirement)
        elif looks_like_path(requirement):
            target = _absolute(base / requirement)
            if not target.name.endswith((".whl", ".tar.gz", ".zip")):
                raise SpecError(
                    requirement,
                    "pip requirement",
                    f"{cut(str(target), 120)!r} is a local path: build a wheel (uv build) and install it from an "
                    "index (--extra-index-url ${MY_INDEX}) or a --find-links folder",
                )
            requirement = url_to_requirement(target.as_uri())
        else:
            parse_pip_requirement(requirement)
        return " ".join([requirement, *(f"--hash={h}" for h in hashes)])

    def _option(self, option: PipOption, *, base: Path, display: str, where: str, stack: tuple[Path, ...]) -> None:
        value = option.value or ""
        if option.name == "--requirement":
            self._include(value, base=base, display=display, where=where, stack=stack)
            return
        if option.name in ("--constraint", "--find-links") and not looks_like_url(value):
            option = PipOption(option.name, str(_absolute(base / value)))
        elif option.name == "--editable":
            option = PipOption(option.name, _editable(value, base))
        elif option.name == "--index-url":
            here = f"{display}: {where}"
            if self._index_url and self._index_url[0] != value:
                raise FormatError(
                    display,
                    f"--index-url {mask(value)!r} conflicts with "
                    f"--index-url {mask(self._index_url[0])!r} ({self._index_url[1]})",
                    field=where,
                )
            self._index_url = (value, here)
        self._add(self.options, str(option))

    def _include(self, value: str, *, base: Path, display: str, where: str, stack: tuple[Path, ...]) -> None:
        if looks_like_url(value):
            raise FormatError(
                display, f"-r {mask(value)!r}: remote requirements files are not supported", field=where
            )
        target = _absolute(base / value)
        if not target.is_file():
            state = "is not a file" if target.exists() else "not found"
            raise FormatError(display, f"-r {value!r}: requirements file {str(target)!r} {state}", field=where)
        if len(stack) >= MAX_DEPTH:  # each include is a level of recursion
            raise FormatError(display, f"-r {cut(value, 80)!r}: includes nested more than {MAX_DEPTH} deep",
                              field=where)
        resolved = [p.resolve() for p in stack]
        if target.resolve() in resolved:
            chain = [p.name for p in stack[resolved.index(target.resolve()) :]] + [target.name]
            raise FormatError(display, f"-r {value!r}: include cycle {' -> '.join(chain)}", field=where)
        self.read(target, display=str(target), stack=stack)

    def _add(self, entries: list[str], entry: str) -> None:
        # the same line twice (e.g. one file included twice) means the same thing; a set keeps this linear
        if entry not in self._seen:
            if len(entries) >= MAX_ITEMS:
                raise SpecError(cut(entry, 80), "pip requirement", f"more than {MAX_ITEMS} entries in the file")
            self._seen.add(entry)
            entries.append(entry)


def _editable(value: str, base: Path) -> str:
    if looks_like_url(value) and not value.startswith("${"):
        if not re.match(r"^(git|hg|svn|bzr)\+|^file:", value):
            raise SpecError(value, "pip requirement", "-e needs a local path or a VCS URL (git+https://...)")
        if not value.startswith("file:"):
            url_to_requirement(value)  # a VCS URL must name its package with #egg=
        return value
    if value.startswith("${"):
        return value
    match = _EXTRAS_RE.match(value)
    path, extras = (match["path"], match["extras"] or "") if match else (value, "")
    return str(_absolute(base / path)) + extras
