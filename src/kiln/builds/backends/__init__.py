"""Build backends: how a plan becomes a ready environment (``venv``, ``conda``, ``user-managed``; ``image`` later)."""

from __future__ import annotations

from kiln.builds.backends.conda import CondaBackend
from kiln.builds.backends.interface import Backend, BuildOutcome, BuildPlan, DockerPlan
from kiln.builds.backends.user_managed import UserManagedBackend
from kiln.builds.backends.venv import VenvBackend

__all__ = ["BACKENDS", "Backend", "BuildOutcome", "BuildPlan", "CondaBackend", "DockerPlan", "UserManagedBackend",
           "VenvBackend", "backend_for", "backend_named"]

#: every backend, in the order ``backend_for`` asks them
BACKENDS: dict[str, type[Backend]] = {VenvBackend.name: VenvBackend, CondaBackend.name: CondaBackend,
                                      UserManagedBackend.name: UserManagedBackend}


def backend_for(plan: BuildPlan) -> Backend:
    """The first backend that can build ``plan``; a ``KilnError`` listing every backend's reason otherwise."""
    from kiln.errors import KilnError

    reasons = []
    for cls in BACKENDS.values():
        backend = cls()
        reason = backend.cannot_build(plan)
        if reason is None:
            return backend
        reasons.append(f"{cls.name}: {reason}")
    raise KilnError(f"no build backend can build {plan.label}: " + "; ".join(reasons))


def backend_named(name: str) -> Backend:
    """The backend called ``name`` (as a ``BuildResult`` or a cache entry records it)."""
    from kiln.errors import KilnError

    cls = BACKENDS.get(name)
    if cls is None:
        raise KilnError(f"no build backend is called {name!r} (known: {', '.join(BACKENDS)})")
    return cls()
