"""Training runs: Experiment, ScriptRunConfig, Run, on the local compute target."""

from __future__ import annotations

from kiln.runs.config import HistoryConfiguration, RunConfiguration, ScriptRunConfig
from kiln.runs.experiment import Experiment
from kiln.runs.run import Run, RunFailedError

__all__ = ["Experiment", "HistoryConfiguration", "Run", "RunConfiguration", "RunFailedError", "ScriptRunConfig"]
