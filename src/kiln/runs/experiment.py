"""``Experiment``: a named group of runs in a workspace. It is defined beside ``Run`` (``kiln.runs.run``),
which it makes and which makes it; this module keeps its import path."""

from __future__ import annotations

from kiln.runs.run import Experiment

__all__ = ["Experiment"]
