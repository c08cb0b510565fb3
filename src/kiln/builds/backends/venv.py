"""The ``venv`` backend: a relocatable virtual environment made by uv, packages hardlinked from uv's cache."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.backends.interface import Backend, BuildOutcome, BuildPlan
from kiln.builds.uv import run_uv

if TYPE_CHECKING:
    from kiln.builds.lock import Lock

__all__ = ["VenvBackend", "holds_exactly", "link_mode_of"]


class VenvBackend(Backend):
    name = "venv"

    def cannot_build(self, plan: BuildPlan) -> str | None:
        if plan.user_managed:
            return "the environment's Python is user-managed: Kiln installs nothing"
        if plan.lock is None:
            return "the plan has no lock"
        if plan.interpreter.implementation != "cpython":
            return f"uv venvs need CPython, not {plan.interpreter.implementation}"
        if plan.lock.conda:
            return "the lock has conda packages"
        return None

    def _venv(self, plan: BuildPlan, env: Path, log: Callable[[str], None]) -> None:
        if (env / "pyvenv.cfg").exists():
            return
        # --relocatable: the staged folder is renamed into the cache, so scripts must not name its path
        run_uv(["venv", "--no-config", "--relocatable", "--quiet", "--python", plan.interpreter.path, str(env)],
               what=f"creating the environment of {plan.label}", sink=log)

    def prepare(self, plan: BuildPlan, *, requirements: list[str], options: list[str], stage: Path,
                log: Callable[[str], None]) -> None:
        env = stage / "env"
        self._venv(plan, env, log)
        if not requirements:
            return
        (stage / "requirements.in").write_text("\n".join([*options, *requirements]) + "\n", encoding="utf-8")
        run_uv(["pip", "install", "--no-config", "--python", str(env / "bin" / "python"), "--link-mode",
                "hardlink", "-r", str(stage / "requirements.in")], what=f"installing {plan.label}", cwd=stage,
               sink=log)

    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        env = stage / "env"
        lock = plan.locked()
        self._venv(plan, env, log)
        (stage / "lock.txt").write_text(lock.text, encoding="utf-8")
        python = env / "bin" / "python"
        if lock.packages and holds_exactly(env, lock):
            # a first build installed while resolving (``prepare``) and got exactly the lock: ``uv pip sync`` would
            # only check the same names and versions (it doesn't hash installed files), at ~0.07 s and a process
            log(f"# the environment already holds exactly the lock's {len(lock.packages)} packages (names and "
                "versions, nothing else): nothing to sync")
        elif lock.packages:
            hashed = ["--require-hashes"] if all(p.hashes for p in lock.packages) else []
            run_uv(["pip", "sync", "--no-config", *hashed, "--python", str(python), "--link-mode", "hardlink",
                    str(stage / "lock.txt")], what=f"installing {plan.label}", cwd=stage, sink=log)
        return BuildOutcome(python=python.relative_to(stage), link_mode=link_mode_of(env),
                            packages=len(lock.packages))


def link_mode_of(env: Path) -> str:
    """``hardlink`` when installed files share inodes with uv's cache, else ``copy`` (or ``none``)."""
    site = next(env.glob("lib/python*/site-packages"), None)
    if site is None:
        return "none"
    for folder, _, files in os.walk(site):
        for name in files:
            if name.endswith(".py") and not name.startswith("_virtualenv"):
                try:
                    return "hardlink" if os.stat(os.path.join(folder, name)).st_nlink > 1 else "copy"
                except OSError:
                    continue
    return "none"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def holds_exactly(env: Path, lock: Lock) -> bool:
    """Does the venv at ``env`` hold the lock's packages, at its versions, and nothing else?

    Read from the ``.dist-info`` folder names (``name-version.dist-info``). Anything this can't tell for
    sure answers False (then ``uv pip sync`` decides): a package from a URL or a path (no version in the
    lock), legacy ``.egg-info`` metadata, a version written differently, no site-packages.
    """
    site = next(env.glob("lib/python*/site-packages"), None)
    if site is None or any(not p.version or p.url for p in lock.packages):
        return False
    installed: set[tuple[str, str]] = set()
    try:
        names = os.listdir(site)
    except OSError:
        return False
    for name in names:
        if name.endswith(".egg-info") or name.endswith(".egg-link"):
            return False
        if name.endswith(".dist-info"):
            dist, sep, version = name[: -len(".dist-info")].rpartition("-")
            if not sep:
                return False
            installed.add((_canonical(dist), version))
    return installed == {(_canonical(p.name), p.version) for p in lock.packages}
