"""From a registered environment version to a ready, cached build: interpreter → lock → cache entry.

The one place that orders the steps, the same for every backend:

1. pick the interpreter (user-managed environments stop here: their interpreter is checked, not built);
2. find the version's lock in the workspace, or a lock of the same definition (identical definitions
   share one), or resolve a new one — with the name's newest lock as preferences, so that a changed
   definition moves only what it must; ``upgrade`` resolves afresh; ``locked`` forbids resolving;
3. look the build key up in the cache: a hit is instant; a miss builds in a staging folder under the
   key's file lock and publishes it with one rename;
4. only then record the lock with the version in the workspace: a failed build leaves no trace.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.cache import BuildCache, CacheEntry
from kiln.builds.interpreters import Interpreter, find_interpreter, inspect_interpreter
from kiln.builds.lock import Lock, LockChange, diff_locks
from kiln.environment.conda import DEFAULT_PYTHON_VERSION
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["BUILD_FORMAT", "BuildResult", "LockedError", "Progress", "build_environment", "lock_environment"]

BUILD_FORMAT = 1
#: progress callback: (phase, message); phases: interpreter, lock, resolve, wait, build, done
Progress = Callable[[str, str], None]


class LockedError(KilnError):
    """``locked=True`` and the environment has no lock: building would need a resolve."""


@dataclass(frozen=True)
class BuildResult:
    """A ready environment. ``python`` is its interpreter; ``environ()`` gives the variables to run with."""

    environment: str
    identity: str
    python: Path
    python_version: str
    backend: str
    cache_hit: bool
    environment_variables: dict[str, str]
    lock: Lock | None = None
    key: str | None = None
    path: Path | None = None
    log_path: Path | None = None
    link_mode: str | None = None
    seconds: float = 0.0
    lock_changes: list[LockChange] = field(default_factory=list)
    resolved: bool = False

    @property
    def lock_hash(self) -> str | None:
        return None if self.lock is None else self.lock.lock_hash

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the environment activated and its variables set."""
        import os

        env = dict(os.environ if base is None else base)
        if self.backend != "user-managed":
            bindir = self.python.parent
            env["VIRTUAL_ENV"] = str(bindir.parent)
            env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
            env.pop("PYTHONHOME", None)
        env.update(self.environment_variables)
        return env

    def get_log(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "identity": self.identity, "python": str(self.python),
                "python_version": self.python_version, "backend": self.backend, "cache_hit": self.cache_hit,
                "lock_hash": self.lock_hash, "key": self.key, "path": None if self.path is None else str(self.path),
                "link_mode": self.link_mode, "seconds": round(self.seconds, 3), "resolved": self.resolved,
                "lock_changes": [str(c) for c in self.lock_changes],
                "packages": [] if self.lock is None else [f"{p.name}=={p.version}" for p in self.lock.packages]}


def _label(env: Environment) -> str:
    return f"{env.name}:{env.version}" if env.version else env.name


def _interpreter(env: Environment, settings: Settings) -> Interpreter:
    cd = env.python.conda_dependencies
    spec = cd.get_python_version() if cd is not None else None
    return find_interpreter(spec, default=DEFAULT_PYTHON_VERSION, cache_dir=settings.cache_dir)


def lock_environment(env: Environment, workspace: Workspace, *, settings: Settings, upgrade: bool = False,
                     locked: bool = False, progress: Progress | None = None,
                     sink: Callable[[str], None] | None = None) -> tuple[Interpreter, Lock, Lock | None, bool]:
    """The lock ``env`` builds from: (interpreter, lock, previous lock, resolved now?). Nothing is stored."""
    from kiln.builds.resolver import resolve

    say = progress or (lambda phase, message: None)
    interpreter = _interpreter(env, settings)
    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    previous = _stored_lock(env, workspace, interpreter, settings)
    if previous is not None and not upgrade:
        say("lock", f"lock {previous.lock_hash[:12]} ({previous.summary})")
        return interpreter, previous, previous, False
    store = workspace.store
    newest = store.latest_lock_of(name=env.name, python=interpreter.minor, platform=interpreter.platform)
    if locked:
        hint = (f"; the newest lock of {env.name!r} is version {newest.version}'s: the definition changed since"
                if newest is not None else "")
        raise LockedError(f"{_label(env)} has no lock for Python {interpreter.minor} on {interpreter.platform} "
                          f"and --locked forbids resolving one{hint}")
    preferences = None if upgrade or newest is None else Lock.from_json(newest.content)
    say("resolve", "resolving with uv" + (" (upgrade)" if upgrade else ""))
    lock = resolve(env, interpreter, preferences=preferences, upgrade=upgrade, sink=sink,
                   cache_dir=settings.cache_dir, conda_via=settings.conda_via)
    say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
    return interpreter, lock, previous, True


def build_key(lock: Lock, interpreter: Interpreter, backend: str) -> str:
    text = json.dumps({"format": BUILD_FORMAT, "lock": lock.lock_hash, "interpreter": str(Path(interpreter.path)),
                       "python": interpreter.version, "platform": interpreter.platform, "backend": backend},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plan(env: Environment, interpreter: Interpreter, lock: Lock, settings: Settings) -> Any:
    from kiln.builds.backends import BuildPlan

    return BuildPlan(label=_label(env), interpreter=interpreter, lock=lock, cache_dir=settings.cache_dir / "conda-pkgs")


def _lock_key(env: Environment, interpreter: Interpreter) -> str:
    text = f"{env.hash}:{interpreter.minor}:{interpreter.platform}"
    return "resolve-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_build(env: Environment, workspace: Workspace, *, settings: Settings,
                 progress: Progress | None = None) -> BuildResult | None:
    """The ready build of ``env`` if there is one (a lock and a published entry); None otherwise.

    Never resolves or builds: this is the whole cache-hit path, kept cheap for the CLI.
    """
    from kiln.builds.backends import backend_for

    if env.python.user_managed_dependencies:
        return None
    say = progress or (lambda phase, message: None)
    started = time.monotonic()
    interpreter = _interpreter(env, settings)
    lock = _stored_lock(env, workspace, interpreter, settings)
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


def _stored_lock(env: Environment, workspace: Workspace, interpreter: Interpreter, settings: Settings
                 ) -> Lock | None:
    """The lock to build from, if any. A lock made through conda and a build asked through PyPI (or the
    other way round, ``--conda-via``) don't match: that lock is not taken."""
    store = workspace.store
    record = None
    if env.version is not None:
        record = store.get_environment_lock(name=env.name, version=int(env.version), python=interpreter.minor,
                                            platform=interpreter.platform)
    if record is None:
        record = store.find_lock(identity=env.hash, python=interpreter.minor, platform=interpreter.platform)
    lock = None if record is None else Lock.from_json(record.content)
    if lock is not None and lock.conda_via and settings.conda_via in ("conda", "pypi") \
            and lock.conda_via != settings.conda_via:
        return None
    return lock


def _finish(env: Environment, workspace: Workspace, cache: BuildCache, entry: CacheEntry, lock: Lock,
            interpreter: Interpreter, backend: str, *, hit: bool, started: float, say: Progress,
            resolved: bool = False, changes: list[LockChange] | None = None) -> BuildResult:
    cache.touch(entry.key)
    cache.remember_workspace(workspace.path)
    if env.version is not None:  # attach the lock now, after success: a failed build leaves no trace
        workspace.store.add_environment_lock(name=env.name, version=int(env.version), identity=env.hash,
                                             python=interpreter.minor, platform=interpreter.platform,
                                             lock_hash=lock.lock_hash, content=lock.to_json())
    say("done", f"{'cache hit' if hit else 'built'}: {entry.python}")
    return BuildResult(environment=_label(env), identity=env.hash, python=entry.python,
                       python_version=interpreter.version, backend=backend, cache_hit=hit,
                       environment_variables=dict(env.environment_variables), lock=lock, key=entry.key,
                       path=entry.path, log_path=entry.log_path, link_mode=entry.meta.get("link_mode"),
                       seconds=time.monotonic() - started, lock_changes=changes or [], resolved=resolved)


def build_environment(env: Environment, workspace: Workspace, *, settings: Settings, upgrade: bool = False,
                      locked: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build the registered ``env`` (or take its cached build). See the module docstring."""
    from kiln.builds.backends import backend_for
    from kiln.builds.resolver import conda_specs, requirements_of, resolve

    say = progress or (lambda phase, message: None)
    started = time.monotonic()
    if env.python.user_managed_dependencies:
        interpreter = inspect_interpreter(env.python.interpreter_path) if "/" in env.python.interpreter_path \
            else _user_interpreter(env.python.interpreter_path)
        say("done", f"user-managed: {interpreter.path} (Python {interpreter.version})")
        return BuildResult(environment=_label(env), identity=env.hash, python=Path(interpreter.path),
                           python_version=interpreter.version, backend="user-managed", cache_hit=True,
                           environment_variables=dict(env.environment_variables))
    if not upgrade:
        ready = cached_build(env, workspace, settings=settings, progress=say)
        if ready is not None:
            return ready
    interpreter = _interpreter(env, settings)
    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    cache = BuildCache(settings.cache_dir)
    log = _Log()
    # one resolver per definition at a time: the others wait, then find its lock and its build
    with cache.locked(_lock_key(env, interpreter),
                      on_wait=lambda: say("wait", "another process is building this environment: waiting")):
        if not upgrade:
            ready = cached_build(env, workspace, settings=settings, progress=say)
            if ready is not None:
                return ready
        store = workspace.store
        previous = _stored_lock(env, workspace, interpreter, settings)
        if previous is not None and not upgrade:
            lock, resolved = previous, False
        elif locked:
            newest = store.latest_lock_of(name=env.name, python=interpreter.minor, platform=interpreter.platform)
            hint = (f"; the newest lock of {env.name!r} is version {newest.version}'s: the definition changed "
                    "since" if newest is not None else "")
            raise LockedError(f"{_label(env)} has no lock for Python {interpreter.minor} on {interpreter.platform} "
                              f"and --locked forbids resolving one{hint}")
        else:
            newest = None if upgrade else store.latest_lock_of(name=env.name, python=interpreter.minor,
                                                               platform=interpreter.platform)
            preferences = None if newest is None else Lock.from_json(newest.content)
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
                stage = cache.stage(key)
                entry = _build_in(cache, stage, key, plan, backend, log, say)
    changes = diff_locks(previous, lock) if upgrade else []
    return _finish(env, workspace, cache, entry, lock, interpreter, backend.name, hit=hit, started=started, say=say,
                   resolved=resolved, changes=changes)


class _Log:
    """Build log lines, from several uv processes at once; written into the entry when it is published."""

    def __init__(self) -> None:
        import threading

        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def write(self, path: Path) -> None:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def _build_in(cache: BuildCache, stage: Path, key: str, plan: Any, backend: Any, log: _Log, say: Progress
              ) -> CacheEntry:
    """Build ``plan`` in ``stage`` (which may hold a prepared environment) and publish it as ``key``."""
    try:
        log(f"# kiln build of {plan.label}: Python {plan.interpreter.version} ({plan.interpreter.path}), "
            f"backend {backend.name}, lock {plan.lock.lock_hash}")
        say("build", f"installing {plan.lock.summary} ({backend.name})")
        started = time.monotonic()
        outcome = backend.build(plan, stage=stage, log=log)
        seconds = time.monotonic() - started
        log(f"# built in {seconds:.2f} s, link mode {outcome.link_mode}")
        log.write(stage / "build.log")
        return cache.publish(stage, key, {
            "format": BUILD_FORMAT, "label": plan.label, "backend": backend.name, "lock_hash": plan.lock.lock_hash,
            "identity": plan.lock.identity, "interpreter": plan.interpreter.path,
            "python_version": plan.interpreter.version, "platform": plan.interpreter.platform,
            "packages": outcome.packages, "link_mode": outcome.link_mode, "build_seconds": round(seconds, 3),
        })
    except BaseException:
        cache.discard(stage)
        raise


def _build_first(env: Environment, workspace: Workspace, cache: BuildCache, interpreter: Interpreter,
                 requirements: list[str], options: list[str], log: _Log, say: Progress, started: float,
                 settings: Settings) -> BuildResult:
    """A definition's first build: the backend installs the requirements while uv resolves the lock
    (as fast as a plain ``uv pip install``); then the build step makes the environment exactly the lock."""
    from concurrent.futures import ThreadPoolExecutor

    from kiln.builds.backends import BuildPlan, backend_for
    from kiln.builds.resolver import resolve
    from kiln.builds.uv import uv_binary, uv_version

    uv_binary(), uv_version()  # found once, before the threads: sysconfig's lazy setup isn't thread-safe
    stage = cache.stage(_lock_key(env, interpreter))
    say("resolve", "resolving with uv while installing")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(resolve, env, interpreter, sink=log, cache_dir=settings.cache_dir,
                                 conda_via=settings.conda_via)
            probe = BuildPlan(label=_label(env), interpreter=interpreter, lock=_EMPTY_LOCK)
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
            entry = _build_in(cache, stage, key, plan, backend, log, say)
        else:  # another definition resolved to the same lock and built it first
            cache.discard(stage)
    return _finish(env, workspace, cache, entry, lock, interpreter, backend.name, hit=hit, started=started, say=say,
                   resolved=True)


_EMPTY_LOCK = Lock(identity="", python="", platform="", requirements=(), options=(), packages=(), text="",
                   resolver="", created_at="")


def _user_interpreter(command: str) -> Interpreter:
    import shutil

    found = shutil.which(command)
    if found is None:
        raise KilnError(f"python.interpreter_path: {command!r} is not on PATH")
    return inspect_interpreter(found)
