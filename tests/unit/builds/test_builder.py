"""The builder's step order: which steps run on a cache hit, a miss with a lock, a miss without one,
``locked`` and ``upgrade``; and that a user-managed environment goes through its backend only.

The steps around the builder are stand-ins that record their calls (the interpreter, the workspace's
locks, the resolver, the backend); the cache is a real one in the test's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiln import CondaDependencies, Environment
from kiln.builds import builder
from kiln.builds.backends import Backend, BuildOutcome, BuildPlan
from kiln.builds.cache import BuildCache
from kiln.builds.interpreters import Interpreter
from kiln.builds.keys import build_key
from kiln.builds.lock import Lock, LockedPackage
from kiln.builds.locking import LockedError
from kiln.errors import KilnError
from kiln.settings import Settings

PYTHON = Interpreter(path="/opt/py/bin/python3.12", version="3.12.1", machine="x86_64", system="Linux")


def lock_of(*pins: str) -> Lock:
    packages = tuple(LockedPackage(name=p.split("==")[0], version=p.split("==")[1]) for p in pins)
    return Lock(identity="id", python=PYTHON.version, platform=PYTHON.platform, requirements=pins, options=(),
                packages=packages, text="\n".join(pins) + "\n", resolver="uv test", created_at="now")


OLD = lock_of("six==1.15.0")
NEW = lock_of("six==1.16.0")


class FakeBackend(Backend):
    name = "venv"  # stands in for the venv backend (the cache keys name it)

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def cannot_build(self, plan: BuildPlan) -> str | None:
        return None

    def prepare(self, plan: BuildPlan, *, requirements: list[str], options: list[str], stage: Path,
                log: Callable[[str], None]) -> None:
        self.calls.append(f"prepare {' '.join(requirements)}")

    def build(self, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        self.calls.append(f"build {plan.locked().requirements[0]}")
        (stage / "env" / "bin").mkdir(parents=True)
        (stage / "env" / "bin" / "python").write_text("")
        return BuildOutcome(python=Path("env/bin/python"), link_mode="copy", packages=len(plan.locked().packages))


@dataclass
class Store:
    added: list[str] = field(default_factory=list)

    def add_environment_lock(self, **kwargs: Any) -> None:
        self.added.append(Lock.from_json(kwargs["content"]).requirements[0])

    def latest_lock_of(self, **kwargs: Any) -> None:
        return None


@dataclass
class FakeWorkspace:
    path: Path
    store: Store = field(default_factory=Store)
    wheel_folders: tuple[Path, ...] = ()  # where private wheels live (kiln.builds.wheels): none here


@dataclass
class World:
    """The stand-ins' state: the lock the workspace holds, the newest lock of the name, what resolving gives."""

    calls: list[str]
    phases: list[str]
    cache: BuildCache
    workspace: FakeWorkspace
    settings: Settings
    stored: Lock | None = None
    newest: Lock | None = None
    resolved: Lock = NEW

    def build(self, **kwargs: Any) -> Any:
        env = Environment("env")
        env.version = "1"
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"], python_version="3.12")
        return builder.build_environment(env, self.workspace, settings=self.settings,  # type: ignore[arg-type]
                                         progress=lambda phase, message: self.phases.append(phase), **kwargs)

    def publish(self, lock: Lock) -> None:
        """A published entry for ``lock`` (built earlier)."""
        key = build_key(lock, PYTHON, "venv")
        with self.cache.locked(key):
            stage = self.cache.stage(key)
            (stage / "env" / "bin").mkdir(parents=True)
            self.cache.publish(stage, key, {"link_mode": "copy"})


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    from kiln.builds import resolver

    settings = Settings.from_env()
    w = World(calls=[], phases=[], cache=BuildCache(settings.cache_dir), workspace=FakeWorkspace(tmp_path / "ws"),
              settings=settings)

    def resolve(env: Environment, interpreter: Interpreter, *, preferences: Lock | None = None,
                upgrade: bool = False, **kwargs: Any) -> Lock:
        w.calls.append(f"resolve preferences={None if preferences is None else preferences.requirements[0]} "
                       f"upgrade={upgrade}")
        return w.resolved

    monkeypatch.setattr(builder, "interpreter_for", lambda env, settings, workspace=None: PYTHON)
    monkeypatch.setattr(builder, "stored_lock", lambda env, workspace, interpreter, settings: w.stored)
    monkeypatch.setattr(builder, "newest_lock", lambda env, workspace, interpreter: w.newest)
    monkeypatch.setattr(builder, "backend_for", lambda plan: FakeBackend(w.calls))
    monkeypatch.setattr(resolver, "resolve", resolve)
    return w


def test_a_hit_builds_nothing_and_resolves_nothing(world: World) -> None:
    world.stored = NEW
    world.publish(NEW)
    result = world.build()
    assert world.calls == []
    assert (result.cache_hit, result.resolved, result.lock) == (True, False, NEW)
    assert world.phases == ["interpreter", "lock", "done"]
    assert world.workspace.store.added == ["six==1.16.0"]  # the version keeps its lock
    assert result.virtual_env == result.python.parent.parent


def test_a_miss_with_a_lock_builds_that_lock_without_resolving(world: World) -> None:
    world.stored = OLD
    result = world.build()
    assert world.calls == ["build six==1.15.0"]
    assert (result.cache_hit, result.resolved, result.lock) == (False, False, OLD)
    assert world.phases == ["interpreter", "lock", "build", "done"]
    assert world.cache.lookup(build_key(OLD, PYTHON, "venv")) is not None


def test_a_first_build_installs_while_resolving_then_builds_the_lock(world: World) -> None:
    result = world.build()
    # the install (the environment first, then the packages) and the resolve run at the same time (in either
    # order), then the build
    assert sorted(world.calls[:3]) == ["prepare ", "prepare six", "resolve preferences=None upgrade=False"]
    assert [c for c in world.calls if c.startswith("prepare")] == ["prepare ", "prepare six"]
    assert world.calls[3:] == ["build six==1.16.0"]
    assert (result.cache_hit, result.resolved, result.lock) == (False, True, NEW)
    assert world.phases == ["interpreter", "resolve", "lock", "build", "done"]
    assert world.workspace.store.added == ["six==1.16.0"]


def test_a_changed_definition_resolves_with_the_newest_lock_as_preferences(world: World) -> None:
    world.newest = OLD
    result = world.build()
    assert world.calls == ["resolve preferences=six==1.15.0 upgrade=False", "build six==1.16.0"]
    assert result.resolved and result.lock_changes == []


def test_locked_without_a_lock_stops_before_resolving(world: World) -> None:
    world.newest = OLD
    with pytest.raises(LockedError, match="--locked forbids resolving one"):
        world.build(locked=True)
    assert world.calls == []
    assert world.workspace.store.added == []
    assert world.cache.entries() == []


def test_locked_with_a_lock_builds_it(world: World) -> None:
    world.stored = OLD
    result = world.build(locked=True)
    assert world.calls == ["build six==1.15.0"] and result.lock == OLD


def test_upgrade_skips_the_hit_and_resolves_afresh(world: World) -> None:
    world.stored = world.newest = OLD
    world.publish(OLD)
    result = world.build(upgrade=True)
    assert world.calls == ["resolve preferences=None upgrade=True", "build six==1.16.0"]
    assert (result.cache_hit, result.resolved, result.lock) == (False, True, NEW)
    assert [str(c) for c in result.lock_changes] == [str(c) for c in builder.diff_locks(OLD, NEW)]
    assert result.lock_changes


def test_a_failed_build_records_no_lock(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: FakeBackend, plan: BuildPlan, *, stage: Path, log: Callable[[str], None]) -> BuildOutcome:
        (stage / "half-built").write_text("")
        raise KilnError("installing env:1: broken")

    monkeypatch.setattr(FakeBackend, "build", fail)
    world.stored = OLD
    with pytest.raises(KilnError, match="broken"):
        world.build()
    assert world.workspace.store.added == []
    assert world.cache.entries() == []
    assert list((world.cache.root / "tmp").iterdir()) == []


def test_a_user_managed_environment_goes_through_its_backend_only(world: World, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    import sys

    monkeypatch.undo()  # the real backends, the real interpreter
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = sys.executable
    env.environment_variables = {"GREETING": "hi"}
    phases: list[tuple[str, str]] = []
    result = builder.build_environment(env, world.workspace, settings=world.settings,  # type: ignore[arg-type]
                                       progress=lambda phase, message: phases.append((phase, message)))
    assert (result.backend, result.lock, result.key, result.virtual_env) == ("user-managed", None, None, None)
    assert result.python == Path(sys.executable)
    assert phases == [("done", f"user-managed: {sys.executable} (Python {result.python_version})")]
    assert result.environ({"PATH": "/bin"}) == {"PATH": "/bin", "GREETING": "hi"}
    assert world.workspace.store.added == []
    assert not world.cache.bucket.exists()
    assert builder.cached_build(env, world.workspace, settings=world.settings) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("python", "lookups"), [("3.11", 1), ("3.12", 2)])
def test_a_miss_with_a_lock_looks_the_interpreter_up_again_only_for_a_defaulted_python(
        world: World, monkeypatch: pytest.MonkeyPatch, python: str, lookups: int) -> None:
    """Each lookup costs a teammate's build ~3 ms. A pinned Python (3.11) can't change while the build waits for
    the definition's lock; Kiln's default (3.12) is looked up again: another process may have moved it."""
    asked: list[str] = []
    monkeypatch.setattr(builder, "interpreter_for", lambda env, settings, workspace=None: asked.append("x") or PYTHON)
    world.stored = OLD
    env = Environment("env")
    env.version = "1"
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"], python_version=python)
    result = builder.build_environment(env, world.workspace, settings=world.settings)  # type: ignore[arg-type]
    assert (result.cache_hit, result.lock, world.calls) == (False, OLD, ["build six==1.15.0"])
    assert len(asked) == lookups
