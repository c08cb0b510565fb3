"""The ``conda`` backend: conda packages installed by py-rattler (hardlinked from its package cache)
into a prefix, then the lock's pip packages installed into that prefix by uv."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kiln._words import count
from kiln.builds.backends.interface import Backend, BuildOutcome, BuildPlan
from kiln.builds.backends.venv import link_mode_of
from kiln.builds.uv import run_uv
from kiln.errors import KilnError

__all__ = ["CondaBackend"]


class CondaBackend(Backend):
    name = "conda"

    def cannot_build(self, plan: BuildPlan) -> str | None:
        if plan.user_managed:
            return "the environment's Python is user-managed: Kiln installs nothing"
        if plan.lock is None or not plan.lock.conda:
            return "the lock has no conda packages"
        return None

    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        from kiln.builds.conda.rattler import index_channel, install
        from kiln.builds.conda.standin import standin_channel, standin_file

        if plan.final_path is None or plan.cache_dir is None:  # conda files hold their prefix: it must be known
            raise KilnError(f"{plan.label}: a conda build needs its final path and a package cache")
        env = stage / "env"
        lock = plan.locked()
        log(f"# installing {count(len(lock.conda), 'conda package')} with py-rattler (package cache {plan.cache_dir})")
        # the prefix is built here and then renamed into place: placeholders get the final path
        standin = None
        if lock.python_source == "kiln":  # this cache's copy of the stand-in (the same bytes as the lock's)
            standin_channel(plan.cache_dir.parent, plan.interpreter, index_channel)
            standin = standin_file(plan.cache_dir.parent, plan.interpreter)
        import os

        from kiln.environment.secrets import expand_references

        conda_lock, _ = expand_references(lock.conda_lock, os.environ, f"the lock of {plan.label}")
        install(conda_lock, lock.conda_platform, env, plan.final_path / "env", plan.cache_dir,
                what=f"installing the conda packages of {plan.label}", standin=standin)
        python = env / "bin" / "python"
        if lock.python_source == "kiln":
            log(f"# python: {plan.interpreter.path} (Python {plan.interpreter.version}, found on this machine; "
                "no channel serves python), the prefix made its virtual environment")
            run_uv(["venv", "--no-config", "--allow-existing", "--relocatable", "--quiet", "--python",
                    plan.interpreter.path, str(env)], what=f"placing Python in {plan.label}", sink=log)
        else:
            log("# python: conda's own, from the channels")
        (stage / "lock.txt").write_text(lock.text, encoding="utf-8")
        if lock.packages:
            hashed = ["--require-hashes"] if all(p.hashes for p in lock.packages) else []
            run_uv(["pip", "install", "--no-config", "--no-deps", *hashed, "--python", str(python), "--link-mode",
                    "hardlink", "-r", str(stage / "lock.txt")], what=f"installing the pip packages of {plan.label}",
                   cwd=stage, sink=log)
        return BuildOutcome(python=python.relative_to(stage), link_mode=link_mode_of(env),
                            packages=len(lock.packages) + len(lock.conda))
