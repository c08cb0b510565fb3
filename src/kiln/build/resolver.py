"""Resolving a definition into a lock with uv (``uv pip compile --generate-hashes``).

What is resolved: the pip requirements and options of the definition, plus its conda packages other
than ``python`` and ``pip`` under their PyPI names (the venv backend installs everything from
PyPI; the conda backend resolves conda packages itself). A previous lock can be given as
preferences: uv then keeps every pin that still fits, so a changed definition moves only what it
must. ``upgrade=True`` drops the preferences and takes the newest versions allowed.
"""

from __future__ import annotations

import datetime as _dt
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.build.lock import Lock, LockedPackage, packages_from_requirements
from kiln.build.uv import LineSink, run_uv, uv_version
from kiln.environment import specs
from kiln.environment.secrets import mask_url

if TYPE_CHECKING:
    from kiln.build.interpreters import Interpreter
    from kiln.environment.environment import Environment

__all__ = ["requirements_of", "resolve"]

_SKIPPED_CONDA = {"python", "pip"}
_INDEX_FLAGS = ("--index-url", "--extra-index-url", "--find-links")


def requirements_of(env: Environment) -> tuple[list[str], list[str]]:
    """(requirements, options) to resolve for ``env``: pip entries, then conda packages as PyPI requirements."""
    cd = env.python.conda_dependencies
    if cd is None:
        return [], []
    requirements = [specs.normalize_pip_requirement(p) for p in cd.pip_packages]
    pip_names = {specs.pip_requirement_name(p) for p in cd.pip_packages}
    for spec in cd.conda_packages:
        name = specs.conda_spec_name(spec)
        if name in _SKIPPED_CONDA or name in pip_names:
            continue
        requirements.append(_conda_to_pip(name, specs.conda_spec_version(spec)))
    options = [" ".join(o.split()) for o in cd.pip_options]
    return requirements, options


def _conda_to_pip(name: str, version: str | None) -> str:
    """``numpy=1.26`` (conda: 1.26.*) → ``numpy==1.26.*``; ranges pass through."""
    if not version:
        return name
    version = version.strip()
    if re.fullmatch(r"[\w.!+]+(\.\*)?", version):
        return f"{name}=={version if version.endswith('*') or version.count('.') >= 2 else version + '.*'}"
    if version.startswith("=") and not version.startswith("=="):
        version = "=" + version
    return f"{name}{version}"


def resolve(env: Environment, interpreter: Interpreter, *, preferences: Lock | None = None,
            upgrade: bool = False, sink: LineSink | None = None) -> Lock:
    """Resolve ``env`` for ``interpreter`` into a new ``Lock`` (``KilnError`` with uv's explanation on failure)."""
    requirements, options = requirements_of(env)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    indexes = [mask_url(o.split(None, 1)[1]) for o in options if o.split(None, 1)[0] in _INDEX_FLAGS]
    if not any(o.startswith("--index-url") for o in options) and not any(o == "--no-index" for o in options):
        indexes.insert(0, "https://pypi.org/simple")

    def make(packages: tuple[LockedPackage, ...], text: str) -> Lock:
        return Lock(identity=env.hash, python=interpreter.version, platform=interpreter.platform,
                    requirements=tuple(requirements), options=tuple(mask_url(o) for o in options),
                    indexes=tuple(indexes), resolver=uv_version(), created_at=now, packages=packages, text=text)

    if not requirements:
        return make((), "")
    with tempfile.TemporaryDirectory(prefix="kiln-resolve-") as tmp:
        folder = Path(tmp)
        (folder / "requirements.in").write_text("\n".join([*options, *requirements]) + "\n", encoding="utf-8")
        out = folder / "lock.txt"
        args = ["pip", "compile", "--no-config", "--generate-hashes", "--emit-index-url", "--emit-find-links",
                "--no-header", "--no-annotate", "--python", interpreter.path, "--output-file", str(out),
                str(folder / "requirements.in")]
        if upgrade:
            args.append("--upgrade")
        elif preferences is not None and preferences.text:
            out.write_text(preferences.text, encoding="utf-8")  # uv keeps these pins where they still fit
        run_uv(args, what=f"resolving {env.name}", cwd=folder, sink=sink)
        text = _clean(out.read_text(encoding="utf-8"))
    return make(packages_from_requirements(text), text)


def _clean(text: str) -> str:
    # comments may name this machine's paths; credentials never stay in a lock
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return mask_url(body).strip() + "\n"
