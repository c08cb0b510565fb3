"""From a registered environment version to a ready, cached build: interpreter → lock → cache entry.

The one place that orders the steps, the same for every backend:

1. pick the interpreter (user-managed environments stop here: their backend checks the interpreter
   they name and Kiln uses it as it is: no lock, no cache entry);
2. find the version's lock (``kiln.builds.locking``), or resolve a new one; ``upgrade`` resolves
   afresh; ``locked`` forbids resolving;
3. look the build key up in the cache: a hit is instant; a miss builds in a staging folder under the
   key's file lock and publishes it with one rename (``kiln.builds.staging``);
4. only then record the lock with the version in the workspace: a failed build leaves no trace.

``BuildResult``, ``Progress``, ``LockedError`` and ``lock_environment`` live in their own modules and
are re-exported here, where the other packages import them from.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.backends import backend_for
from kiln.builds.backends.plan import BuildPlan, label_of, plan_for
from kiln.builds.cache import BuildCache, CacheEntry
from kiln.builds.interpreters import Interpreter, named_interpreter
from kiln.builds.keys import BUILD_FORMAT, build_key, resolve_key
from kiln.builds.lock import Lock, LockChange, diff_locks
from kiln.builds.locking import LockedError, interpreter_for, lock_environment, locked_error, newest_lock, stored_lock
from kiln.builds.result import BuildResult, Progress
from kiln.builds.staging import BuildLog, build_and_publish

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["BUILD_FORMAT", "BuildResult", "LockedError", "Progress", "build_environment", "cached_build",
           "lock_environment"]


def _quiet(phase: str, message: str) -> None:
    del phase, message


def _plan(env: Environment, interpreter: Interpreter, lock: Lock, settings: Settings) -> BuildPlan:
    return plan_for(env, interpreter, lock, cache_dir=settings.cache_dir / "conda-pkgs")


def cached_build(env: Environment, workspace: Workspace, *, settings: Settings,
                 progress: Progress | None = None) -> BuildResult | None:
    """The ready build of ``env`` if there is one (a lock and a published entry); None otherwise.

    Never resolves or builds: this is the whole cache-hit path, kept cheap for the CLI. A user-managed
    environment has no cached build (its interpreter is checked when it is built).
    """
    if env.python.user_managed_dependencies:
        return None
    say = progress or _quiet
    started = time.monotonic()
    interpreter = interpreter_for(env, settings)
    lock = stored_lock(env, workspace, interpreter, settings)
    if lock is None:
        return None
    backend = backend_for(_plan(env, interpreter, lock, settings))
    key = build_key(lock, interpreter, backend.name)
    cache = BuildCache(settings.cache_dir)
    entry = cache.lookup(key)
    if entry is None:
        return None
    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
    return _finish(env, workspace, cache, entry, lock, interpreter, backend.name, hit=True, started=started,
                   say=say)


def build_environment(env: Environment, workspace: Workspace, *, settings: Settings, upgrade: bool = False,
                      locked: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build the registered ``env`` (or take its cached build). See the module docstring."""
    from kiln.builds.resolver import conda_specs, requirements_of, resolve

    say = progress or _quiet
    started = time.monotonic()
    if env.python.user_managed_dependencies:
        return _as_it_is(env, say, started)
    if not upgrade:
        ready = cached_build(env, workspace, settings=settings, progress=say)
        if ready is not None:
            return ready
    interpreter = interpreter_for(env, settings)
    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    cache = BuildCache(settings.cache_dir)
    log = BuildLog()
    # one resolver per definition at a time: the others wait, then find its lock and its build
    with cache.locked(resolve_key(env, interpreter),
                      on_wait=lambda: say("wait", "another process is building this environment: waiting")):
        if not upgrade:
            ready = cached_build(env, workspace, settings=settings, progress=say)
            if ready is not None:
                return ready
        previous = stored_lock(env, workspace, interpreter, settings)
        if previous is not None and not upgrade:
            lock, resolved = previous, False
        elif locked:
            raise locked_error(env, workspace, interpreter)
        else:
            preferences = None if upgrade else newest_lock(env, workspace, interpreter)
            resolved = True
            if preferences is None and not upgrade and not (conda_specs(env) and settings.conda_via != "pypi"):
                # a first build: install while resolving, then make the environment exactly the lock
                requirements, options = requirements_of(env, cache_dir=settings.cache_dir)
                return _build_first(env, workspace, cache, interpreter, requirements, options, log, say, started,
                                    settings)
            say("resolve", "resolving" + (" (upgrade)" if upgrade else ""))
            lock = resolve(env, interpreter, preferences=preferences, upgrade=upgrade, sink=log,
                           cache_dir=settings.cache_dir, conda_via=settings.conda_via)
        say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
        plan = _plan(env, interpreter, lock, settings)
        backend = backend_for(plan)
        key = build_key(lock, interpreter, backend.name)
        plan = replace(plan, final_path=cache.bucket / key)
        with cache.locked(key, on_wait=lambda: say("wait", "another process is building this environment")):
            entry = cache.lookup(key)
            hit = entry is not None
            if entry is None:
                entry = build_and_publish(cache, cache.stage(key), key, plan, backend, log, say)
    changes = diff_locks(previous, lock) if upgrade else []
    return _finish(env, workspace, cache, entry, lock, interpreter, backend.name, hit=hit, started=started, say=say,
                   resolved=resolved, changes=changes)


def _as_it_is(env: Environment, say: Progress, started: float) -> BuildResult:
    """A user-managed environment: the interpreter it names, checked by its backend; nothing installed,
    locked or cached."""
    import tempfile

    interpreter = named_interpreter(env.python.interpreter_path)
    plan = plan_for(env, interpreter, None)
    backend = backend_for(plan)
    with tempfile.TemporaryDirectory(prefix="kiln-as-it-is-") as stage:  # the backend writes nothing there
        outcome = backend.build(plan, stage=Path(stage), log=BuildLog())
        python = Path(stage) / outcome.python
    say("done", outcome.summary or f"built: {python}")
    return BuildResult(environment=plan.label, identity=env.hash, python=python,
                       python_version=interpreter.version, backend=backend.name, cache_hit=True,
                       environment_variables=dict(env.environment_variables), seconds=time.monotonic() - started,
                       virtual_env=backend.virtual_env(python))


def _finish(env: Environment, workspace: Workspace, cache: BuildCache, entry: CacheEntry, lock: Lock,
            interpreter: Interpreter, backend: str, *, hit: bool, started: float, say: Progress,
            resolved: bool = False, changes: list[LockChange] | None = None) -> BuildResult:
    from kiln.builds.backends import backend_named

    cache.touch(entry.key)
    cache.remember_workspace(workspace.path)
    if env.version is not None:  # attach the lock now, after success: a failed build leaves no trace
        workspace.store.add_environment_lock(name=env.name, version=int(env.version), identity=env.hash,
                                             python=interpreter.minor, platform=interpreter.platform,
                                             lock_hash=lock.lock_hash, content=lock.to_json())
    say("done", f"{'cache hit' if hit else 'built'}: {entry.python}")
    return BuildResult(environment=label_of(env), identity=env.hash, python=entry.python,
                       python_version=interpreter.version, backend=backend, cache_hit=hit,
                       environment_variables=dict(env.environment_variables), lock=lock, key=entry.key,
                       path=entry.path, log_path=entry.log_path, link_mode=entry.meta.get("link_mode"),
                       seconds=time.monotonic() - started, lock_changes=changes or [], resolved=resolved,
                       virtual_env=backend_named(backend).virtual_env(entry.python))


def _build_first(env: Environment, workspace: Workspace, cache: BuildCache, interpreter: Interpreter,
                 requirements: list[str], options: list[str], log: BuildLog, say: Progress, started: float,
                 settings: Settings) -> BuildResult:
    """A definition's first build: the backend installs the requirements while uv resolves the lock
    (as fast as a plain ``uv pip install``); then the build step makes the environment exactly the lock."""
    from concurrent.futures import ThreadPoolExecutor

    from kiln.builds.resolver import resolve
    from kiln.builds.uv import uv_binary, uv_version

    uv_binary(), uv_version()  # found once, before the threads: sysconfig's lazy setup isn't thread-safe
    stage = cache.stage(resolve_key(env, interpreter))
    say("resolve", "resolving with uv while installing")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(resolve, env, interpreter, sink=log, cache_dir=settings.cache_dir,
                                 conda_via=settings.conda_via)
            probe = plan_for(env, interpreter, _EMPTY_LOCK)
            try:
                backend_for(probe).prepare(probe, requirements=requirements, options=options, stage=stage, log=log)
            finally:
                lock = future.result()  # the resolver's error wins: it is the clearer one
    except BaseException:
        cache.discard(stage)
        raise
    say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
    plan = _plan(env, interpreter, lock, settings)
    backend = backend_for(plan)
    key = build_key(lock, interpreter, backend.name)
    with cache.locked(key):
        entry = cache.lookup(key)
        hit = entry is not None
        if entry is None:
            entry = build_and_publish(cache, stage, key, plan, backend, log, say)
        else:  # another definition resolved to the same lock and built it first
            cache.discard(stage)
    return _finish(env, workspace, cache, entry, lock, interpreter, backend.name, hit=hit, started=started, say=say,
                   resolved=True)


_EMPTY_LOCK = Lock(identity="", python="", platform="", requirements=(), options=(), packages=(), text="",
                   resolver="", created_at="")
