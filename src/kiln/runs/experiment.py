"""``Experiment``: a named group of runs in a workspace (Azure ML SDK v1's names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kiln.environment.names import check_name

if TYPE_CHECKING:
    from kiln.runs.config import ScriptRunConfig
    from kiln.runs.run import Run
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["Experiment"]


class Experiment:
    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = check_name(name, "experiment name")

    def submit(self, config: ScriptRunConfig, tags: dict[str, str] | None = None, *,
               settings: Settings | None = None) -> Run:
        """Start ``config`` as a new run and return it at once (``run.wait_for_completion()`` to wait)."""
        from kiln.runs.run import Run
        from kiln.runs.submit import submit_run

        run_id = submit_run(self.workspace, self.name, config, settings=settings or self.workspace.settings, tags=tags)
        return Run(self, run_id)

    def get_runs(self) -> Iterator[Run]:
        """The experiment's runs, newest first."""
        from kiln.runs.run import Run

        yield from Run.list(self)

    @staticmethod
    def list(workspace: Workspace) -> list[Experiment]:
        names = sorted({r.experiment for r in workspace.store.list_runs()})
        return [Experiment(workspace, n) for n in names]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"
