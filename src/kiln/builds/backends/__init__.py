"""Build backends: how a lock becomes a ready environment (``venv``, ``conda``; ``image`` later)."""

from __future__ import annotations

from kiln.builds.backends.conda import CondaBackend
from kiln.builds.backends.interface import Backend, BuildPlan
from kiln.builds.backends.venv import VenvBackend

__all__ = ["BACKENDS", "Backend", "BuildPlan", "CondaBackend", "VenvBackend", "backend_for"]

BACKENDS: dict[str, type[Backend]] = {VenvBackend.name: VenvBackend, CondaBackend.name: CondaBackend}


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
