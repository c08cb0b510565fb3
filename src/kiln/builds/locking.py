"""Finding (or making) the lock a registered environment version builds from.

Where a lock comes from, in order: the version's own lock in the workspace; a lock of the same
definition (identical definitions share one, whatever their names); else a new resolve, with the
name's newest lock as preferences so that a changed definition moves only what it must. ``upgrade``
resolves afresh; ``locked`` forbids resolving. Nothing here stores a lock: the builder records it
with the version once a build succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kiln.builds.backends.plan import label_of
from kiln.builds.interpreters import Interpreter, find_interpreter
from kiln.builds.lock import Lock
from kiln.environment.conda import DEFAULT_PYTHON_VERSION
from kiln.environment.conda_specs import conda_spec_name
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.result import Progress
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["LockedError", "interpreter_for", "lock_environment", "locked_error", "newest_lock", "python_is_defaulted",
           "stored_lock"]


class LockedError(KilnError):
    """``locked=True`` and the environment has no lock: building would need a resolve."""


def python_is_defaulted(env: Environment) -> bool:
    """Does ``env`` leave its Python to Kiln? True without a version, and for exactly ``python=<Kiln's
    default>``: Kiln writes that spec into definitions that name none (``CondaDependencies()``, a conda
    file without python), so it is Kiln's choice, not the user's. Any other spec (``3.12.*``, ``3.12.4``,
    ``3.11``) is the user's, and never changed."""
    cd = env.python.conda_dependencies
    if cd is None:
        return True
    specs = [s for s in cd.conda_packages if conda_spec_name(s) == "python"]
    # the spec as written: ``python=3.12.*`` reads as version 3.12 too, but it is the user's pin
    return not specs or [s.replace(" ", "") for s in specs] == [f"python={DEFAULT_PYTHON_VERSION}"]


def interpreter_for(env: Environment, settings: Settings, workspace: Workspace | None = None) -> Interpreter:
    """The interpreter Kiln builds ``env`` with: the newest one of this machine for its Python version.

    A definition that leaves its Python to Kiln (``python_is_defaulted``) builds with the Python its
    version's lock was made for, when that isn't the default: the builder chose it because the pins
    don't install on the default, and every later build must take the same lock (one query, no resolve)."""
    cd = env.python.conda_dependencies
    spec = cd.get_python_version() if cd is not None else None
    if workspace is not None and env.version is not None and python_is_defaulted(env):
        locks = workspace.store.list_environment_locks(name=env.name, version=int(env.version))
        if locks and locks[-1].python != DEFAULT_PYTHON_VERSION:
            try:
                return find_interpreter(locks[-1].python, default=DEFAULT_PYTHON_VERSION, cache_dir=settings.cache_dir)
            except KilnError:
                pass  # that Python is gone from this machine: the default again (and a fallback if needed)
    return find_interpreter(spec, default=DEFAULT_PYTHON_VERSION, cache_dir=settings.cache_dir)


def stored_lock(env: Environment, workspace: Workspace, interpreter: Interpreter, settings: Settings) -> Lock | None:
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


def newest_lock(env: Environment, workspace: Workspace, interpreter: Interpreter) -> Lock | None:
    """The newest lock of any version of ``env``'s name: the preferences of a new resolve."""
    record = workspace.store.latest_lock_of(name=env.name, python=interpreter.minor, platform=interpreter.platform)
    return None if record is None else Lock.from_json(record.content)


def locked_error(env: Environment, workspace: Workspace, interpreter: Interpreter) -> LockedError:
    """The error of ``--locked`` when ``env`` has no lock: it names the version whose lock is the newest."""
    newest = workspace.store.latest_lock_of(name=env.name, python=interpreter.minor, platform=interpreter.platform)
    hint = (f"; the newest lock of {env.name!r} is version {newest.version}'s: the definition changed since"
            if newest is not None else "")
    return LockedError(f"{label_of(env)} has no lock for Python {interpreter.minor} on {interpreter.platform} "
                       f"and --locked forbids resolving one{hint}")


def lock_environment(env: Environment, workspace: Workspace, *, settings: Settings, upgrade: bool = False,
                     locked: bool = False, progress: Progress | None = None,
                     sink: Callable[[str], None] | None = None) -> tuple[Interpreter, Lock, Lock | None, bool]:
    """The lock ``env`` builds from: (interpreter, lock, previous lock, resolved now?). Nothing is stored."""
    from kiln.builds.resolver import resolve
    from kiln.builds.wheels import WheelPaths

    say = progress or (lambda phase, message: None)
    interpreter = interpreter_for(env, settings, workspace)
    say("interpreter", f"Python {interpreter.version} ({interpreter.path})")
    previous = stored_lock(env, workspace, interpreter, settings)
    if previous is not None and not upgrade:
        say("lock", f"lock {previous.lock_hash[:12]} ({previous.summary})")
        return interpreter, previous, previous, False
    if locked:
        raise locked_error(env, workspace, interpreter)
    preferences = None if upgrade else newest_lock(env, workspace, interpreter)
    say("resolve", "resolving with uv" + (" (upgrade)" if upgrade else ""))
    lock = resolve(env, interpreter, preferences=preferences, upgrade=upgrade, sink=sink,
                   cache_dir=settings.cache_dir, conda_via=settings.conda_via,
                   localize=WheelPaths(workspace.wheel_folders).localize)
    say("lock", f"lock {lock.lock_hash[:12]} ({lock.summary})")
    return interpreter, lock, previous, True
