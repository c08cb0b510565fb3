"""conda ``environment.yml``: channels, dependencies, a nested pip list, ``variables``, ``prefix``.

Read into the model: ``variables`` become the environment's variables, ``prefix`` (a path on the
machine that wrote the file) is dropped, ``-r FILE`` lines of the pip list are inlined from the
file (relative to the conda file, as conda does) so that the definition is whole on its own, and
a file without a Python pin gets Kiln's default one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kiln.environment import pip_options
from kiln.environment.canonical import Definition
from kiln.environment.conda import DEFAULT_PYTHON_VERSION, CondaDependencies
from kiln.errors import FormatError

__all__ = ["conda_from_text", "read_conda_file", "write_conda_file"]

log = logging.getLogger(__name__)


def read_conda_file(path: Path) -> tuple[CondaDependencies, dict[str, str]]:
    """The conda dependencies and the ``variables`` of the file at ``path``."""
    from kiln.environment.textfile import read_utf8

    return conda_from_text(read_utf8(path), str(path), base_dir=path.parent)


def conda_from_text(text: str, source: str, *, base_dir: Path | None = None
                    ) -> tuple[CondaDependencies, dict[str, str]]:
    cd = CondaDependencies.from_text(text, source)
    data = cd._data  # the round-trip document: edit in place to keep comments and order
    if not data.get("dependencies"):
        raise FormatError(source, "missing or empty: a conda environment file lists its packages here",
                          "dependencies")
    variables = cd.variables
    for key in ("variables", "prefix"):
        if key in data:
            del data[key]
    _inline_includes(cd, source, base_dir)
    if cd.get_python_version() is None:
        log.info("%s: no Python version given; using Kiln's default python=%s", source, DEFAULT_PYTHON_VERSION)
        cd.set_python_version(DEFAULT_PYTHON_VERSION)
    return cd, variables


def _inline_includes(cd: CondaDependencies, source: str, base_dir: Path | None) -> None:
    from kiln.environment.formats.requirements import parse_requirements

    pip = cd._pip_list()
    if not any(_include_target(str(p)) for p in pip):
        return
    kept: list[str] = []
    included_packages: list[str] = []
    for i, line in enumerate(list(pip)):
        target = _include_target(str(line))
        if target is None:
            kept.append(str(line))
            continue
        path = Path(target)
        if not path.is_absolute():
            if base_dir is None:
                raise FormatError(source, f"{line!r}: an include needs a file on disk to be relative to",
                                  f"dependencies.pip[{i}]")
            path = base_dir / path
        if not path.is_file():
            raise FormatError(source, f"{line!r}: {str(path)!r} not found", f"dependencies.pip[{i}]")
        parsed = parse_requirements(path)
        kept.extend(o for o in parsed.options if o not in kept)
        included_packages.extend(parsed.packages)
    options = [p for p in kept if pip_options.is_pip_option(p)]
    packages = [p for p in kept if not pip_options.is_pip_option(p)]
    pip[:] = options + packages
    cd._add_pip_packages(included_packages)


def _include_target(line: str) -> str | None:
    parts = line.split(None, 1)
    if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
        return parts[1].strip()
    if line.startswith("--requirement="):
        return line.split("=", 1)[1].strip()
    return None


def write_conda_file(env: Definition) -> str:
    """The environment as a conda ``environment.yml`` (its variables under ``variables``)."""
    cd = env.python.conda_dependencies.copy() if env.python.conda_dependencies else CondaDependencies()
    cd._data["name"] = env.name
    if env.environment_variables:
        from ruamel.yaml.comments import CommentedMap

        variables = CommentedMap()
        for k, v in env.environment_variables.items():
            variables[k] = v
        cd._data["variables"] = variables
    return cd.serialize_to_string()
