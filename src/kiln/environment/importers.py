"""What existing things hold, as parts of an environment: requirement files, conda files and
environments, interpreters and virtual environments, Dockerfiles and images.

Each function returns parts (a ``CondaDependencies``, variables, a docker section filled in) and
never an ``Environment``: the class's factories (``Environment.from_pip_requirements`` and friends)
assemble them, so this module sits under the class and the class can call it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kiln.environment.conda import CondaDependencies
from kiln.environment.secrets import mask
from kiln.environment.sections import ContainerRegistry, DockerBuildContext, DockerSection
from kiln.errors import CommandError, DefinitionError, FormatError

__all__ = [
    "conda_from_pip_requirements",
    "conda_from_python",
    "conda_of_conda_environment",
    "conda_of_conda_specification",
    "set_docker_base",
]

log = logging.getLogger(__name__)


def conda_from_pip_requirements(path: Path, *, pip_version: str | None = None) -> CondaDependencies:
    """Kiln's template with the packages and options of a requirements file (``-r`` includes inlined)."""
    from kiln.environment.formats.requirements import parse_requirements

    parsed = parse_requirements(path)
    cd = CondaDependencies()
    if pip_version:
        cd.add_conda_package(f"pip={pip_version}")
    for option in parsed.options:
        cd.set_pip_option(option)
    cd._add_pip_packages(parsed.packages)
    return cd



def conda_of_conda_specification(path: Path) -> tuple[CondaDependencies, dict[str, str]]:
    """A conda ``environment.yml``'s dependencies and its ``variables``."""
    from kiln.environment.formats.conda_file import read_conda_file

    return read_conda_file(path)


def conda_of_conda_environment(conda_environment_name: str) -> tuple[CondaDependencies, dict[str, str]]:
    """A conda environment on this machine (by name or prefix), exported with ``conda env export``."""
    from kiln.environment.formats.conda_file import conda_from_text

    tool = shutil.which("conda") or shutil.which("micromamba") or shutil.which("mamba")
    if tool is None:
        raise DefinitionError("from_existing_conda_environment: neither conda, micromamba nor mamba is on PATH")
    listed = _run([tool, "env", "list", "--json"], "listing conda environments")
    try:
        prefixes = [str(p) for p in json.loads(listed)["envs"]]
    except (ValueError, KeyError, TypeError):
        raise DefinitionError(f"{tool} env list --json: unexpected output {listed[:200]!r}") from None
    names = {Path(p).name: p for p in prefixes}
    if conda_environment_name not in names and conda_environment_name not in prefixes:
        known = ", ".join(sorted(names)) or "none"
        raise DefinitionError(f"from_existing_conda_environment: no conda environment named "
                              f"{conda_environment_name!r} (found: {known})")
    flag = "-p" if conda_environment_name in prefixes else "-n"
    exported = _run([tool, "env", "export", flag, conda_environment_name, "--no-builds"],
                    f"exporting conda environment {conda_environment_name!r}")
    return conda_from_text(exported, f"{tool} env export {conda_environment_name}")


# Runs inside the captured interpreter (any Python from 3.6 on): prints its version and its
# distributions as JSON, the way `pip freeze` would see them.
_PROBE = r"""
import json, sys
out = {"version": "%d.%d.%d" % sys.version_info[:3], "dists": []}
try:
    from importlib import metadata
    for d in metadata.distributions():
        name = d.metadata["Name"]
        if not name:
            continue
        direct = None
        try:
            direct = d.read_text("direct_url.json")
        except Exception:
            pass
        out["dists"].append([name, d.version, direct])
except ImportError:
    import pkg_resources
    for d in pkg_resources.working_set:
        out["dists"].append([d.project_name, d.version, None])
print(json.dumps(out))
"""
_SKIP = {"pip", "setuptools", "wheel", "distribute"}


def conda_from_python(interpreter: str) -> CondaDependencies:
    """An interpreter's (or virtual environment's) Python version and distributions, pinned."""
    from packaging.utils import canonicalize_name

    python = _interpreter(interpreter)
    data = json.loads(_run([python, "-I", "-c", _PROBE], f"inspecting {python}"))
    version = str(data["version"])
    cd = CondaDependencies()
    cd.set_python_version(version)
    seen: set[str] = set()
    for dist_name, dist_version, direct in sorted(data["dists"], key=lambda d: str(d[0]).lower()):
        key = str(canonicalize_name(dist_name))
        if key in _SKIP or key in seen:
            continue
        seen.add(key)
        requirement = _pinned(dist_name, dist_version, direct)
        if requirement is None:
            log.warning("from_existing_python: %s %s is installed from a local folder; left out", dist_name,
                        dist_version)
            continue
        cd.add_pip_package(requirement)
    return cd


def _pinned(name: str, version: str, direct: str | None) -> str | None:
    if not direct:
        return f"{name}=={version}"
    try:
        info: dict[str, Any] = json.loads(direct)
    except ValueError:
        return f"{name}=={version}"
    url = str(info.get("url", ""))
    if url.startswith("file:") and "archive_info" not in info:
        return None
    vcs = info.get("vcs_info")
    if vcs:
        return f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}".rstrip("@")
    return f"{name} @ {url}" if url and not url.startswith("file:") else f"{name}=={version}"


def _interpreter(value: str) -> str:
    path = Path(value).expanduser()
    if path.is_dir():  # a virtual environment or a conda prefix
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe", path / "python.exe"):
            if candidate.exists():
                return str(candidate)
        raise DefinitionError(f"from_existing_python: {str(path)!r} holds no bin/python")
    if path.exists():
        return str(path)
    found = shutil.which(value)
    if found is None:
        raise DefinitionError(f"from_existing_python: no interpreter at {value!r}")
    return found


def _run(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except OSError as e:
        raise CommandError(cmd, -1, str(e), what) from None
    except subprocess.TimeoutExpired:
        raise CommandError(cmd, -1, "timed out after 300 s", what) from None
    if proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, mask(proc.stdout + proc.stderr), what)
    return proc.stdout


def set_docker_base(docker: DockerSection, *, image: str | None = None,
                    dockerfile: str | os.PathLike[str] | None = None, build_context: DockerBuildContext | None = None,
                    container_registry: Any = None) -> None:
    """Put ``docker`` on an image, a Dockerfile or a build context (the first given), and a registry."""
    docker.base_image = None
    if image is not None:
        docker.base_image = image
    elif dockerfile is not None:
        docker.base_dockerfile = dockerfile
    elif build_context is not None:
        docker.build_context = build_context
    if container_registry is not None:
        if not isinstance(container_registry, ContainerRegistry):
            raise FormatError("container_registry", f"expected a ContainerRegistry, got {container_registry!r}")
        docker.base_image_registry = container_registry
