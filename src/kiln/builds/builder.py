"""From a registered environment version to a ready, cached build: interpreter → lock → cache entry.

The one place that orders the steps, the same for every backend:

1. pick the interpreter (user-managed environments stop here: their backend checks the interpreter
   they name and Kiln uses it as it is: no lock, no cache entry);
2. find the version's lock (``kiln.builds.locking``), or resolve a new one; ``upgrade`` resolves
   afresh; ``locked`` forbids resolving;
3. look the build key up in the cache: a hit is instant; a miss builds in a staging folder under the
   key's file lock and publishes it with one rename (``kiln.builds.staging``);
4. only then record the lock with the version in the workspace: a failed build leaves no trace.

A definition that leaves its Python to Kiln (``python_is_defaulted``) and whose pins don't install on
Kiln's default Python (old pins: no wheel for a new Python, and their source builds fail) is built with
the newest other interpreter of this machine on which they do; the build output says so, and the lock
records that Python and why (``Lock.python_reason``), so later builds take it again. A definition that
pins its Python is never moved.

``BuildResult``, ``Progress``, ``LockedError`` and ``lock_environment`` live in their own modules and
are re-exported here, where the other packages import them from.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.backends import backend_for
from kiln.builds.backends.plan import BuildPlan, label_of, plan_for
from kiln.builds.cache import BuildCache, CacheEntry
from kiln.builds.interpreters import Interpreter, named_interpreter
from kiln.builds.journal import BuildJournal
from kiln.builds.keys import BUILD_FORMAT, build_key, resolve_key
from kiln.builds.lock import Lock, LockChange, diff_locks
from kiln.builds.locking import (
    LockedError,
    interpreter_for,
    lock_environment,
    locked_error,
    newest_lock,
    python_is_defaulted,
    stored_lock,
)
from kiln.builds.result import BuildResult, Progress
from kiln.builds.staging import BuildLog, build_and_publish
from kiln.builds.uv import UvError
from kiln.builds.wheels import WheelPaths

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
                 progress: Progress | None = None, interpreter: Interpreter | None = None) -> BuildResult | None:
    """The ready build of ``env`` if there is one (a lock and a published entry); None otherwise.

    Never resolves or builds: this is the whole cache-hit path, kept cheap for the CLI. A user-managed
    environment has no cached build (its interpreter is checked when it is built). ``interpreter`` is
    ``interpreter_for(env, ...)`` when the caller already has it.
    """
    if env.python.user_managed_dependencies:
        return None
    say = progress or _quiet
    started = time.monotonic()
    interpreter = interpreter or interpreter_for(env, settings, workspace)
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
    say = progress or _quiet
    started = time.monotonic()
    if env.python.user_managed_dependencies:
        return _as_it_is(env, say, started)
    interpreter = interpreter_for(env, settings, workspace)  # once: looking interpreters up costs ~7 ms
    if not upgrade:
        ready = cached_build(env, workspace, settings=settings, progress=say, interpreter=interpreter)
        if ready is not None:
            return ready
    # not a cache hit: recorded as it goes (kiln.builds.journal), for the studio to follow from another process
    journal = BuildJournal(settings.cache_dir, label=label_of(env), workspace=workspace.path)
    with journal.recording():
        say = _echoed(say, journal)
        try:
            return _build_with(env, workspace, interpreter, settings=settings, upgrade=upgrade, locked=locked,
                               say=say, started=started)
        except UvError as e:
            if locked or not _may_move_python(env, settings) or _index_refused(e):
                raise
            return _build_on_another_python(env, workspace, interpreter, e, settings=settings, upgrade=upgrade,
                                            say=say, started=started)


def _echoed(say: Progress, journal: BuildJournal) -> Progress:
    def both(phase: str, message: str) -> None:
        journal.progress(phase, message)
        say(phase, message)

    return both


def _index_refused(error: UvError) -> bool:
    """uv failed because an index refused its credentials: every other Python would be refused the same way,
    and trying them all would bury the one thing to fix."""
    return re.search(r"\b(401 Unauthorized|403 Forbidden)\b", str(error)) is not None


def _may_move_python(env: Environment, settings: Settings) -> bool:
    from kiln.builds.resolver import conda_specs

    # conda packages bring their own python from the channels: the solver already picks a fitting one
    return python_is_defaulted(env) and not (conda_specs(env) and settings.conda_via != "pypi")


def _build_on_another_python(env: Environment, workspace: Workspace, tried: Interpreter, error: UvError, *,
                             settings: Settings, upgrade: bool, say: Progress, started: float) -> BuildResult:
    """``env``'s pins failed on ``tried`` (Kiln's default): build on the newest other interpreter on which they
    install. Each failed try leaves nothing behind; when none works, ``error`` (the default's) is raised."""
    from kiln.builds.interpreters import discover

    by_minor: dict[str, Interpreter] = {}
    for candidate in discover(cache_dir=settings.cache_dir):  # newest first: the first of each minor is its newest
        by_minor.setdefault(candidate.minor, candidate)
    others = [i for minor, i in by_minor.items() if minor != tried.minor]
    first_line = str(error).splitlines()[0] if str(error) else "uv failed"
    say("interpreter", f"the pins don't install on Python {tried.minor} (Kiln's default; the definition doesn't pin "
                       f"Python): {first_line}")
    failed: list[str] = []
    for candidate in others:
        reason = (f"the definition doesn't pin Python and its pins don't install on Python {tried.minor} (Kiln's "
                  f"default); Python {candidate.minor} is the newest here on which they do")
        try:
            result = _build_with(env, workspace, candidate, settings=settings, upgrade=upgrade, locked=False, say=say,
                                 started=started, python_reason=reason)
        except UvError:
            failed.append(candidate.minor)
            continue
        say("interpreter", f"using Python {candidate.version}: {reason} (recorded in the lock)")
        return result
    error.add_note_line(f"(the definition doesn't pin Python, so Kiln also tried Python "
                        f"{', '.join(failed) or 'nothing else: no other interpreter here'}: the pins don't install "
                        "there either; pin a Python version or change the pins)")
    raise error


def _build_with(env: Environment, workspace: Workspace, interpreter: Interpreter, *, settings: Settings,
                upgrade: bool, locked: bool, say: Progress, started: float, python_reason: str = "") -> BuildResult:
    """Build ``env`` with ``interpreter``: its stored lock, or a new resolve (see the module docstring)."""
    from kiln.builds.resolver import check_references, conda_specs, resolve

    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    cache = BuildCache(settings.cache_dir)
    log = BuildLog()
    # one resolver per definition at a time: the others wait, then find its lock and its build
    with cache.locked(resolve_key(env, interpreter),
                      on_wait=lambda: say("wait", "another process is building this environment: waiting")):
        if not upgrade:
            # looked up again only where waiting may have changed it: a definition that leaves its Python to Kiln
            # builds on the Python of its newest lock, which another process may just have made on another Python
            again = None if python_is_defaulted(env) else interpreter
            ready = cached_build(env, workspace, settings=settings, progress=say, interpreter=again)
            if ready is not None:
                return ready
        check_references(env)  # resolving or installing from here on: an index's credentials must be set
        wheels = WheelPaths(workspace.wheel_folders)
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
                return _build_first(env, workspace, cache, interpreter, log, say, started, settings, python_reason)
            say("resolve", "resolving" + (" (upgrade)" if upgrade else ""))
            lock = resolve(env, interpreter, preferences=preferences, upgrade=upgrade, sink=log,
                           cache_dir=settings.cache_dir, conda_via=settings.conda_via,
                           notice=lambda message: say("resolve", message), localize=wheels.localize)
            lock = replace(lock, python_reason=python_reason) if python_reason else lock
        say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
        plan = _plan(env, interpreter, wheels.lock(lock), settings)
        backend = backend_for(plan)
        key = build_key(lock, interpreter, backend.name)
        plan = replace(plan, final_path=cache.bucket / key)
        with cache.locked(key, on_wait=lambda: say("wait", "another process is building this environment")):
            entry = cache.lookup(key)
            hit = entry is not None
            if entry is None:
                try:
                    entry = build_and_publish(cache, cache.stage(key), key, plan, backend, log, say)
                except UvError as e:
                    if lock.conda_via == "pypi" and settings.conda_via == "auto":
                        e.add_note_line("(this lock took the conda packages from PyPI, under their PyPI names: the "
                                        "conda channels couldn't be reached when it was made)")
                    raise
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
                 log: BuildLog, say: Progress, started: float, settings: Settings, python_reason: str = ""
                 ) -> BuildResult:
    """A definition's first build: the backend installs the requirements while uv resolves the lock
    (as fast as a plain ``uv pip install``); then the build step makes the environment exactly the lock."""
    from concurrent.futures import ThreadPoolExecutor

    from kiln.builds.resolver import requirements_of, resolve
    from kiln.builds.uv import uv_binary

    # found once, before the threads: sysconfig's lazy setup isn't thread-safe (uv's version, which the lock
    # records, is asked by the resolving thread: not before the install starts)
    uv_binary()
    stage = cache.stage(resolve_key(env, interpreter))
    wheels = WheelPaths(workspace.wheel_folders)
    say("resolve", "resolving with uv while installing")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(resolve, env, interpreter, sink=log, cache_dir=settings.cache_dir,
                                 conda_via=settings.conda_via, localize=wheels.localize)
            probe = plan_for(env, interpreter, _EMPTY_LOCK)
            backend = backend_for(probe)
            try:
                # the environment first (no requirements): its ``uv venv`` runs while the resolving thread reads
                # the requirements (their first parse imports ``packaging``: ~35 ms of CPU off the install's path)
                backend.prepare(probe, requirements=[], options=[], stage=stage, log=log)
                requirements, options = requirements_of(env, cache_dir=settings.cache_dir)
                requirements = [wheels.localize(r) for r in requirements]
                backend.prepare(probe, requirements=requirements, options=options, stage=stage, log=log)
            finally:
                lock = future.result()  # the resolver's error wins: it is the clearer one
    except BaseException:
        cache.discard(stage)
        raise
    lock = replace(lock, python_reason=python_reason) if python_reason else lock
    say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
    plan = _plan(env, interpreter, wheels.lock(lock), settings)
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
