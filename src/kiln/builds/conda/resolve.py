"""A conda definition into a lock: rattler solves the conda packages, uv resolves the pip list on top."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._words import count
from kiln.builds.conda.rattler import CondaError, index_channel, solve
from kiln.builds.conda.standin import BUILD_STRING, conda_subdir, standin_channel
from kiln.builds.lock import CondaPackage, Lock
from kiln.environment.conda_specs import conda_spec_name
from kiln.environment.pip_requirements import normalize_pip_requirement, pip_requirement_name
from kiln.environment.secrets import mask

if TYPE_CHECKING:
    from kiln.builds.interpreters import Interpreter
    from kiln.builds.uv import LineSink
    from kiln.environment.environment import Environment

__all__ = ["channel_url", "resolve_conda", "unreachable"]

DEFAULT_CHANNEL = "conda-forge"


def channel_url(channel: str) -> str:
    """A channel as rattler takes it: names stay names (conda-forge → conda.anaconda.org), URLs stay URLs,
    folders (relative to the current folder) become ``file://`` URLs."""
    if "://" in channel:
        return channel
    path = Path(channel).expanduser()
    if channel.startswith((".", "/", "~")) or path.is_dir():
        return path.resolve().as_uri()
    return channel


def unreachable(error: CondaError) -> bool:
    """Did the solve fail because a channel could not be fetched (rather than for lack of a solution)?"""
    return re.search(r"(?i)(error sending request|dns error|failed to lookup address|connection refused|"
                     r"failed to connect|could not connect|tcp connect error|operation timed out|"
                     r"network is unreachable|no route to host)", str(error)) is not None


def resolve_conda(env: Environment, interpreter: Interpreter, *, preferences: Lock | None, sink: LineSink | None,
                  cache_dir: Path, resolve_pip: Callable[..., Lock]) -> Lock:
    say = sink or (lambda line: None)
    cd = env.python.conda_dependencies
    assert cd is not None
    import os

    from kiln.environment.secrets import expand_references

    # ${VAR} references in channel URLs (credentials) are read now, and put back into the lock after the solve
    secrets: dict[str, str] = {}
    channels: list[str] = []
    for name in cd.conda_channels or [DEFAULT_CHANNEL]:
        expanded, back = expand_references(channel_url(name), os.environ, f"conda channel {name!r}")
        channels.append(expanded)
        secrets.update(back)
    subdir = conda_subdir(interpreter)
    standin = standin_channel(cache_dir, interpreter, index_channel)
    wanted = [s for s in cd.conda_packages if conda_spec_name(s) != "pip"]
    if not any(conda_spec_name(s) == "python" for s in wanted):
        wanted.append(f"python={interpreter.minor}")
    locked = preferences.conda_lock if preferences is not None and preferences.conda_lock else None
    shown = ", ".join(mask(name) for name in cd.conda_channels or [DEFAULT_CHANNEL])
    say(f"# solving {count(len(wanted), 'conda spec')} with py-rattler on {shown} ({subdir} + noarch)")
    answer = solve([*channels, standin.as_uri()], wanted, [subdir, "noarch"], locked=locked,
                   what=f"solving the conda packages of {env.name}")
    for value, reference in secrets.items():
        answer["lock"] = answer["lock"].replace(value, reference)
        for r in answer["records"]:
            r["channel"], r["url"] = r["channel"].replace(value, reference), r["url"].replace(value, reference)
    records: list[dict[str, Any]] = answer["records"]
    conda = tuple(sorted((CondaPackage(name=r["name"], version=r["version"], build=r["build"],
                                       channel=mask(r["channel"]), subdir=r["subdir"], url=mask(r["url"]),
                                       sha256=r["sha256"]) for r in records), key=lambda c: c.name))
    python = next((c for c in conda if c.name == "python"), None)
    source = "kiln" if python is not None and python.build == BUILD_STRING else "conda"
    for c in conda:
        say(f"  conda {c.name}={c.version}={c.build}  ({c.channel})")
    conda_python = f"conda's python {python.version if python else '?'}"
    say("# python: " + (f"{interpreter.path} (Python {interpreter.version}, found on this machine: no channel "
                        "serves python)" if source == "kiln" else conda_python))
    # the pip list on top, minus what the conda packages provide already
    requirements = [normalize_pip_requirement(p) for p in cd.pip_packages]
    provided = _provided(conda, cache_dir)
    kept = [r for r in requirements if pip_requirement_name(r) not in provided]
    options = [" ".join(o.split()) for o in cd.pip_options]
    lock = resolve_pip(env, interpreter, kept, options, preferences=preferences, sink=sink)
    if provided:
        lock = replace(lock, packages=tuple(p for p in lock.packages if pip_requirement_name(p.name)
                                            not in provided),
                       text=_without(lock.text, provided))
    return replace(lock, conda=conda, conda_lock=mask(answer["lock"]), conda_platform=subdir,
                   python_source=source, conda_via="conda")


def _provided(conda: tuple[CondaPackage, ...], cache_dir: Path) -> set[str]:
    """PyPI names of the conda packages (so that pip doesn't install them a second time)."""
    from kiln.builds.conda.pypi_map import load_map

    names = {c.name for c in conda if c.name not in ("python", "pip")}
    if not names:
        return set()
    try:
        mapping = load_map(cache_dir)
    except Exception:
        mapping = {}
    return {pip_requirement_name(mapping.get(n, n)) for n in names}


def _without(text: str, names: set[str]) -> str:
    """The locked requirements text without the entries of ``names`` (and their hash lines)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("-"):
            name = re.split(r"[=<>!~@ ;\[]", line, maxsplit=1)[0]
            skipping = pip_requirement_name(name) in names
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"
