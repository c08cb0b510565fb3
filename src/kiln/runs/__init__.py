"""Training runs: Experiment, ScriptRunConfig, Run, on the local compute target.

Names are imported on first use: the supervisor process (``python -m kiln.runs.supervisor``) imports
this package too, and must start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

__all__ = ["Experiment", "HistoryConfiguration", "Run", "RunConfiguration", "RunFailedError", "ScriptRunConfig"]

_LAZY = {
    "Experiment": "kiln.runs.experiment",
    "HistoryConfiguration": "kiln.runs.config",
    "Run": "kiln.runs.run",
    "RunConfiguration": "kiln.runs.config",
    "RunFailedError": "kiln.runs.run",
    "ScriptRunConfig": "kiln.runs.config",
}

if TYPE_CHECKING:
    from kiln.runs.config import HistoryConfiguration, RunConfiguration, ScriptRunConfig
    from kiln.runs.experiment import Experiment
    from kiln.runs.run import Run, RunFailedError


__getattr__ = lazy_exports(__name__, _LAZY)
