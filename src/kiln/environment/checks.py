"""Whole-definition checks made at registration: what a single field's setter can't see, and what
would register fine but fail (or mean something else) later.

``check_definition(env, source)`` is called by ``Environment.validate`` (``source`` None: messages
name the environment) and by ``formats.detect.load_any`` (``source`` the file: messages name it),
so every way in meets the same rules:

- environment variables have POSIX names (``[A-Za-z_][A-Za-z0-9_]*``) and no NUL in their values
  (a process can't be started with them);
- ``docker.platform`` is a known OS and architecture (an unknown one would build for Linux anyway);
- one Python pin at most, with a numeric version (``python=3.x.y`` is refused);
- no editable (``-e``) or local-path requirement (``./pkg``, ``file:``): a build installs what the
  lock names, and a folder on this machine is neither hashed nor reachable elsewhere, so Kiln
  would drop it or build something the lock can't reproduce. Build a wheel and add it with
  ``Environment.add_private_pip_wheel`` (a wheel stored by its hash is the one local file allowed), or
  serve it from an index (``--extra-index-url ${MY_INDEX}``) or a ``--find-links`` folder;
- ``-c`` constraints files exist and parse;
- every field is within its size (``limits.check_shape``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kiln.environment.limits import check_shape, cut, shown
from kiln.environment.variables import variable_problem
from kiln.environment.wheels import is_stored_wheel_url
from kiln.errors import DefinitionError, FormatError, KilnError

__all__ = ["ARCHITECTURES", "OPERATING_SYSTEMS", "check_definition"]

OPERATING_SYSTEMS = ("linux", "windows")
ARCHITECTURES = ("amd64", "arm64")
_PYTHON_VERSION = re.compile(r"[0-9<>=!~,.*| ]+")
_LOCAL = ("an editable or local-path requirement can't be locked: build a wheel and add it with "
          "Environment.add_private_pip_wheel, or install it from an index (--extra-index-url ${MY_INDEX}) or a "
          "--find-links folder")


def _fail(source: str | None, name: str, message: str, field: str) -> KilnError:
    if source is not None:
        return FormatError(source, message, field)
    return DefinitionError(f"environment {name!r}: {field}: {message}")


def check_definition(env: Any, source: str | None = None) -> None:
    """Raise ``FormatError`` (naming ``source``) or ``DefinitionError`` for the first problem of ``env``."""
    from kiln.environment.canonical import environment_to_dict

    name = env.name
    try:
        check_shape(environment_to_dict(env), source or f"environment {name!r}")
    except FormatError as e:
        raise _fail(source, name, e.detail, e.field or "definition") from None
    for key, value in env.environment_variables.items():
        problem = variable_problem(key, value)
        if problem:
            raise _fail(source, name, problem, f"environment variable {cut(str(key), 60)!r}")
    platform = env.docker.platform or {}
    os_name, arch = str(platform.get("os", "Linux")), str(platform.get("architecture", "amd64"))
    if os_name.lower() not in OPERATING_SYSTEMS:
        raise _fail(source, name, f"{shown(os_name, 60)} is not one of Linux, Windows", "docker.platform.os")
    if arch.lower() not in ARCHITECTURES:
        raise _fail(source, name, f"{shown(arch, 60)} is not one of {', '.join(ARCHITECTURES)}",
                    "docker.platform.architecture")
    cd = env.python.conda_dependencies
    if cd is None:
        return
    # name the conda file when the problem is in it (a v1 folder's conda_dependencies.yml, a v2 conda_file)
    conda_source = getattr(cd, "_source", None)
    if source is not None and isinstance(conda_source, str) and Path(conda_source).is_file():
        source = conda_source
    _check_python_pins(cd.conda_packages, source, name)
    for entry in cd.pip_options:
        _check_pip_option(entry, source, name)
    for entry in cd.pip_packages:
        _check_pip_package(entry, source, name)


def _check_python_pins(specs: list[str], source: str | None, name: str) -> None:
    from kiln.environment.conda_specs import conda_spec_name, conda_spec_version

    pins = [s for s in specs if conda_spec_name(s) == "python"]
    if len(pins) > 1:
        raise _fail(source, name, f"{cut(pins[0], 60)!r} and {cut(pins[1], 60)!r}: Python is pinned twice (keep one)",
                    "dependencies")
    for pin in pins:
        version = conda_spec_version(pin)
        if version is not None and not _PYTHON_VERSION.fullmatch(version):
            raise _fail(source, name, f"{cut(pin, 60)!r}: {cut(version, 60)!r} is not a Python version "
                                      "(e.g. python=3.11 or python=3.11.9)", "dependencies")


def _check_pip_option(entry: str, source: str | None, name: str) -> None:
    from kiln.environment.pip_options import pip_option_flag

    flag = pip_option_flag(entry)
    value = entry.split(None, 1)[1].strip() if len(entry.split(None, 1)) == 2 else ""
    if flag == "--editable":
        raise _fail(source, name, f"{cut(entry, 120)!r}: {_LOCAL}", "pip")
    if flag == "--constraint" and not value.startswith(("${", "http://", "https://")):
        _check_constraints(Path(value), entry, source, name)


def _check_pip_package(entry: str, source: str | None, name: str) -> None:
    from kiln.environment.pip_requirements import parse_pip_requirement

    try:
        requirement = parse_pip_requirement(entry)
    except DefinitionError:
        return  # the readers report malformed requirements themselves
    url = (requirement.url or "").lower()
    if url.startswith("file:") and is_stored_wheel_url(requirement.url or ""):
        return  # a workspace's private wheel, named by its content hash (kiln.environment.wheels)
    if url.startswith("file:") or re.match(r"^[a-z]+\+file:", url):
        from kiln.environment.secrets import mask

        raise _fail(source, name, f"{cut(mask(entry), 120)!r}: {_LOCAL}", "pip")


def _check_constraints(path: Path, entry: str, source: str | None, name: str) -> None:
    from kiln.environment.formats.requirements import parse_requirements

    if not path.is_file():
        state = "is not a file" if path.exists() else "not found"
        raise _fail(source, name, f"{cut(entry, 120)!r}: the constraints file {state}", "pip")
    try:
        parse_requirements(path)
    except FormatError as e:
        raise FormatError(e.file, f"constraints file: {e.detail}", e.field) from None
