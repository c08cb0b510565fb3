"""Compute targets: where a run's script runs (``interface`` for implementers, ``registry`` by name).

Names are imported on first use: the submit path only checks a target's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

__all__ = ["ComputeTarget", "RunHandle", "RunPlan", "get_target", "target_names"]

_LAZY = {
    "ComputeTarget": "kiln.runs.targets.interface",
    "RunHandle": "kiln.runs.targets.interface",
    "RunPlan": "kiln.runs.targets.interface",
    "get_target": "kiln.runs.targets.registry",
    "target_names": "kiln.runs.targets.registry",
}

if TYPE_CHECKING:
    from kiln.runs.targets.interface import ComputeTarget, RunHandle, RunPlan
    from kiln.runs.targets.registry import get_target, target_names


__getattr__ = lazy_exports(__name__, _LAZY)
