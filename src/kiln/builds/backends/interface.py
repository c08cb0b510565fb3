"""The build ``Backend`` interface: one capability probe and one action.

A backend turns a ``BuildPlan`` (an interpreter, a lock, the definition's docker section) into a
ready environment inside a staging folder that the cache then publishes. Backends never publish,
lock or touch the registry: the builder does that, the same way for all of them
(``kiln.builds.builder``). Every backend passes the contract tests in
``tests/integration/builds/test_backend_contract.py``; a new backend is added to
``kiln.builds.backends.BACKENDS`` and to that suite's parameters.

Writing one:

- ``name`` is set: it goes into cache keys (changing it invalidates every build it made) and into
  ``BuildResult.backend``;
- ``cannot_build(plan)`` is cheap and never raises: it answers None, or a reason the user reads when no
  backend can build a plan ("no build backend can build env:1: venv: <reason>; conda: <reason>");
- ``build(plan, stage=..., log=...)`` installs exactly ``plan.lock`` into ``stage`` (resolving nothing),
  so two builds of one lock hold the same packages; it reports progress lines to ``log`` and raises a
  ``KilnError`` carrying the installer's output when it fails; it writes nothing outside ``stage``
  except into its own package caches (under ``plan.cache_dir``);
- ``virtual_env(python)`` says how a process runs in what ``build`` made.

A user-managed plan (``plan.user_managed``: the user provides the interpreter, ``plan.lock`` is None)
is the one exception to the cache: the builder finds no lock, resolves none and publishes nothing;
it calls ``build`` with a throwaway staging folder and uses the interpreter where it is.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

from kiln.builds.backends.plan import BuildOutcome, BuildPlan, DockerPlan, RegistryPlan

__all__ = ["Backend", "BuildOutcome", "BuildPlan", "DockerPlan", "RegistryPlan"]


class Backend(abc.ABC):
    #: the name stored in cache keys and shown to users
    name: str = ""

    @abc.abstractmethod
    def cannot_build(self, plan: BuildPlan) -> str | None:
        """None when this backend can build ``plan``; otherwise the reason, shown to the user.

        Looks at the plan only (its lock, interpreter, ``user_managed``, docker section): no processes,
        no network. Never raises.
        """

    def prepare(self, plan: BuildPlan, *, requirements: list[str], options: list[str], stage: Path,
                log: Callable[[str], None]) -> None:
        """Optionally start installing ``requirements`` into ``stage`` before the lock is known.

        Called for a definition's first build, while the lock is being resolved, so that downloads and
        installs overlap the resolution (``plan.lock`` is then an empty lock). ``build`` then runs on the
        same ``stage`` and must leave exactly the lock's packages. It may be called more than once on
        one ``stage``: first with no requirements (make the environment only), then with them; each call
        keeps what an earlier one made. The default does nothing.
        """
        del plan, requirements, options, stage, log

    @abc.abstractmethod
    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        """Build ``plan`` into ``stage`` (the environment goes in ``stage/env``; ``stage`` is empty, or holds
        what ``prepare`` made).

        Installs exactly the lock's packages, resolving nothing. Writes progress lines to ``log``.
        Raises ``KilnError`` (with the installer's message) on failure; the caller discards ``stage``
        and publishes nothing.
        """

    def virtual_env(self, python: Path) -> Path | None:
        """The folder to activate to run ``python`` (the ``BuildOutcome.python`` of a published build): set
        as ``VIRTUAL_ENV``, its ``bin`` first on ``PATH``. None: run ``python`` as it is, environment
        untouched. The default is the environment ``python`` is in (``<env>/bin/python``)."""
        return python.parent.parent
