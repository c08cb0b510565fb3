"""The build ``Backend`` interface: one capability probe and one action.

A backend turns a ``BuildPlan`` (an interpreter and a lock) into a ready environment inside a
staging folder that the cache then publishes. Backends never publish, lock or touch the registry:
the builder does that, the same way for all of them. Every backend passes the contract tests in
``tests/integration/build/test_backend_contract.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln.builds.interpreters import Interpreter
from kiln.builds.lock import Lock

__all__ = ["Backend", "BuildOutcome", "BuildPlan"]


@dataclass(frozen=True)
class BuildPlan:
    """What to build: ``label`` names it in messages (``name:version``)."""

    label: str
    interpreter: Interpreter
    lock: Lock
    #: where the build will live once published (backends whose files hold their own path need it)
    final_path: Path | None = None
    #: Kiln's cache folder (backends keep their package caches under it)
    cache_dir: Path | None = None


@dataclass(frozen=True)
class BuildOutcome:
    """What a backend reports about a build it made."""

    python: Path  # the environment's interpreter, relative to the staging folder
    link_mode: str  # how package files got there: hardlink, clone or copy (the mode actually used)
    packages: int


class Backend(abc.ABC):
    #: the name stored in cache keys and shown to users
    name: str = ""

    @abc.abstractmethod
    def cannot_build(self, plan: BuildPlan) -> str | None:
        """None when this backend can build ``plan``; otherwise the reason, shown to the user."""

    def prepare(self, plan: BuildPlan, *, requirements: list[str], options: list[str], stage: Path,
                log: Callable[[str], None]) -> None:
        """Optionally start installing ``requirements`` into ``stage`` before the lock is known.

        Called for a definition's first build, while the lock is being resolved, so that downloads and
        installs overlap the resolution. ``build`` then runs on the same ``stage`` and must leave exactly
        the lock's packages. The default does nothing.
        """
        del plan, requirements, options, stage, log

    @abc.abstractmethod
    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        """Build ``plan`` into ``stage`` (the environment goes in ``stage/env``; ``stage`` is empty, or holds
        what ``prepare`` made).

        Installs exactly the lock's packages, resolving nothing. Writes progress lines to ``log``.
        Raises ``KilnError`` (with the installer's message) on failure; the caller discards ``stage``.
        """
