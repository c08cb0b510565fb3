"""Resolving a definition into a lock: conda packages with py-rattler, pip packages with uv.

A definition whose conda list holds more than ``python`` and ``pip`` is solved as conda packages
against its channels (in order, strict priority, the machine's subdir plus ``noarch``), with Kiln's
stand-in channel last (see ``kiln.builds.conda.standin``); its pip list is then resolved with uv
(``uv pip compile --generate-hashes``), leaving out what the conda packages already provide. With
``conda_via="pypi"`` (or ``"auto"`` when the channels can't be reached) the conda packages are
mapped to their PyPI names instead and everything is resolved with uv into a venv.

A previous lock can be given as preferences: uv (and the conda solver) then keep every pin that
still fits, so a changed definition moves only what it must. ``upgrade=True`` drops them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.lock import Lock, LockedPackage, packages_from_requirements
from kiln.builds.uv import LineSink, UvError, run_uv, uv_version
from kiln.environment.conda_specs import conda_spec_name, conda_spec_version
from kiln.environment.pip_requirements import normalize_pip_requirement, pip_requirement_name
from kiln.environment.secrets import mask

if TYPE_CHECKING:
    from kiln.builds.interpreters import Interpreter
    from kiln.environment.environment import Environment

__all__ = ["check_references", "requirements_of", "resolve"]

_SKIPPED_CONDA = {"python", "pip"}
_INDEX_FLAGS = ("--index-url", "--extra-index-url", "--find-links")


def conda_specs(env: Environment) -> list[str]:
    """The definition's conda packages other than ``python`` and ``pip`` (what makes a conda build)."""
    cd = env.python.conda_dependencies
    if cd is None or env.python.user_managed_dependencies:
        return []
    return [s for s in cd.conda_packages if conda_spec_name(s) not in _SKIPPED_CONDA]


def requirements_of(env: Environment, *, cache_dir: Path | None = None, with_conda: bool = True
                    ) -> tuple[list[str], list[str]]:
    """(requirements, options) for uv: pip entries, then (``with_conda``) conda packages under PyPI names."""
    cd = env.python.conda_dependencies
    if cd is None:
        return [], []
    requirements = [normalize_pip_requirement(p) for p in cd.pip_packages]
    pip_names = {pip_requirement_name(p) for p in cd.pip_packages}
    conda = conda_specs(env) if with_conda else []
    mapping: dict[str, str] = {}
    if conda:
        from kiln.builds.conda.pypi_map import load_map

        mapping = load_map(cache_dir or Path(tempfile.gettempdir()))
    for spec in conda:
        from kiln.builds.conda.pypi_map import conda_to_pypi

        name = conda_to_pypi(conda_spec_name(spec), mapping)
        if pip_requirement_name(name) in pip_names:
            continue
        exact = re.match(r"^[^=<>!~ ]+\s*==\s*[\w.!+]+$", spec.split("::")[-1].strip()) is not None
        requirements.append(_conda_to_pip(name, conda_spec_version(spec), exact=exact))
    options = [" ".join(o.split()) for o in cd.pip_options]
    return requirements, options


def check_references(env: Environment, environ: Mapping[str, str] | None = None) -> None:
    """Every ``${VAR}`` of ``env``'s pip options and requirements (an index's credentials) is set, else a
    ``DefinitionError`` naming the variable and the entry: uv would send the reference as it is written and
    report only that the index refused it. Their values go to uv through its environment, nowhere else."""
    import os

    from kiln.environment.secrets import expand_references

    cd = env.python.conda_dependencies
    if cd is None or env.python.user_managed_dependencies:
        return
    label = f"{env.name}:{env.version}" if env.version else env.name
    for kind, entries in (("pip option", cd.pip_options), ("pip package", cd.pip_packages)):
        for entry in entries:
            if "${" in entry:
                what = f"environment {label}: {kind} {mask(entry)[:300]!r} (resolving and installing read it)"
                expand_references(entry, os.environ if environ is None else environ, what)


def _conda_to_pip(name: str, version: str | None, *, exact: bool = False) -> str:
    """``numpy=1.26`` (conda: 1.26.*) → ``numpy==1.26.*``; ``numpy==1.26`` → ``numpy==1.26``; ranges pass."""
    if not version:
        return name
    version = version.strip()
    if exact:
        return f"{name}=={version}"
    if re.fullmatch(r"[\w.!+]+(\.\*)?", version):
        return f"{name}=={version if version.endswith('*') or version.count('.') >= 2 else version + '.*'}"
    if version.startswith("=") and not version.startswith("=="):
        version = "=" + version
    return f"{name}{version}"


def resolve(env: Environment, interpreter: Interpreter, *, preferences: Lock | None = None,
            upgrade: bool = False, sink: LineSink | None = None, cache_dir: Path | None = None,
            conda_via: str = "auto", notice: LineSink | None = None,
            localize: Callable[[str], str] | None = None) -> Lock:
    """Resolve ``env`` for ``interpreter`` into a new ``Lock`` (``KilnError`` with the resolver's explanation).

    ``notice`` hears what the user must be told as it happens (the build output): a fallback from the
    conda channels to PyPI. The same fallback is named in the error when the PyPI resolve then fails."""
    check_references(env)
    fallback = None
    if conda_specs(env) and conda_via != "pypi":
        from kiln.builds.conda.rattler import CondaError
        from kiln.builds.conda.resolve import resolve_conda, unreachable

        try:
            return resolve_conda(env, interpreter, preferences=None if upgrade else preferences, sink=sink,
                                 cache_dir=cache_dir or Path(tempfile.gettempdir()),
                                 resolve_pip=functools.partial(_resolve_pip, localize=localize))
        except CondaError as e:
            if conda_via != "auto" or not unreachable(e):
                raise
            fallback = (f"the conda channels can't be reached ({mask(str(e).splitlines()[0])}): the conda packages "
                        "are resolved from PyPI under their PyPI names instead (--conda-via conda to forbid this)")
            for hear in (sink, notice):
                if hear is not None:
                    hear(f"# {fallback}" if hear is sink else fallback)
    requirements, options = requirements_of(env, cache_dir=cache_dir)
    try:
        lock = _resolve_pip(env, interpreter, requirements, options, preferences=preferences, upgrade=upgrade,
                            sink=sink, localize=localize)
    except UvError as e:
        if fallback is not None:
            e.add_note_line("(the conda channels can't be reached, so Kiln resolved the conda packages from PyPI "
                            "under their PyPI names; --conda-via conda to forbid this)")
        raise
    if conda_specs(env):
        from dataclasses import replace

        lock = replace(lock, conda_via="pypi")
        if sink is not None:
            sink("# conda packages resolved under their PyPI names (conda-pypi's map), installed with uv")
    return lock


def _resolve_pip(env: Environment, interpreter: Interpreter, requirements: list[str], options: list[str], *,
                 preferences: Lock | None = None, upgrade: bool = False, sink: LineSink | None = None,
                 localize: Callable[[str], str] | None = None) -> Lock:
    """``localize``: this machine's paths for the private wheels named (``kiln.builds.wheels``); the lock keeps
    the requirements as the definition writes them."""
    here = localize or (lambda text: text)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    indexes = [mask(o.split(None, 1)[1]) for o in options if o.split(None, 1)[0] in _INDEX_FLAGS]
    if not any(o.startswith("--index-url") for o in options) and not any(o == "--no-index" for o in options):
        indexes.insert(0, "https://pypi.org/simple")

    def make(packages: tuple[LockedPackage, ...], text: str) -> Lock:
        return Lock(identity=env.hash, python=interpreter.version, platform=interpreter.platform,
                    requirements=tuple(requirements), options=tuple(mask(o) for o in options),
                    indexes=tuple(indexes), resolver=uv_version(), created_at=now, packages=packages, text=text)

    if not requirements:
        return make((), "")
    with tempfile.TemporaryDirectory(prefix="kiln-resolve-") as tmp:
        folder = Path(tmp)
        (folder / "requirements.in").write_text(here("\n".join([*options, *requirements]) + "\n"), encoding="utf-8")
        out = folder / "lock.txt"
        args = ["pip", "compile", "--no-config", "--generate-hashes", "--emit-index-url", "--emit-find-links",
                "--no-header", "--no-annotate", "--python", interpreter.path, "--output-file", str(out),
                str(folder / "requirements.in")]
        if upgrade:
            args.append("--upgrade")
        elif preferences is not None and preferences.text:
            out.write_text(here(preferences.text), encoding="utf-8")  # uv keeps these pins where they still fit
        run_uv(args, what=f"resolving {env.name}", cwd=folder, sink=sink)
        text = _clean(out.read_text(encoding="utf-8"))
    return make(packages_from_requirements(text), text)


def _clean(text: str) -> str:
    # comments may name this machine's paths; credentials never stay in a lock
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return mask(body).strip() + "\n"
