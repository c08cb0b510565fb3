"""The ``user-managed`` backend: the environment is an interpreter the user provides, used as it is.

An environment with ``python.user_managed_dependencies = True`` names its interpreter in
``python.interpreter_path`` (a path, or a command looked up on ``PATH``; see
``kiln.builds.interpreters.named_interpreter``).
Kiln installs nothing, locks nothing and caches nothing: a "build" checks that the interpreter runs
as the Python the plan was made with, and runs it without activating anything.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from kiln.builds.backends.interface import Backend, BuildOutcome, BuildPlan
from kiln.errors import KilnError

__all__ = ["UserManagedBackend"]

_VERSION = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


class UserManagedBackend(Backend):
    name = "user-managed"

    def cannot_build(self, plan: BuildPlan) -> str | None:
        if not plan.user_managed:
            return "Kiln manages this environment's Python (python.user_managed_dependencies is False)"
        if plan.lock is not None and (plan.lock.packages or plan.lock.conda):
            return "a user-managed environment installs nothing, and this plan has a lock to install"
        return None

    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        del stage  # nothing is made: the interpreter is used where it is
        python = plan.interpreter.path
        try:
            proc = subprocess.run([python, "-c", _VERSION], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise KilnError(f"{plan.label}: the user-managed interpreter {python} does not run: {e}") from e
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0 or output != plan.interpreter.version:
            raise KilnError(f"{plan.label}: the user-managed interpreter {python} does not run as Python "
                            f"{plan.interpreter.version} (exit code {proc.returncode}): {output}")
        summary = f"user-managed: {python} (Python {plan.interpreter.version})"
        log(f"# {summary}: used as it is, nothing installed")
        return BuildOutcome(python=Path(python), link_mode="none", packages=0, summary=summary)

    def virtual_env(self, python: Path) -> Path | None:
        del python
        return None  # the user's interpreter runs in the caller's environment, as it would without Kiln

