"""State shared by the CLI commands: the settings, the output mode, the workspace (opened on demand)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from kiln.cli.output import Out

if TYPE_CHECKING:
    from kiln.sdk.workspace import Workspace
    from kiln.settings import Settings

__all__ = ["CliState", "state"]


@dataclass
class CliState:
    settings: Settings
    json_mode: bool = False
    traceback: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def out(self) -> Out:
        return Out(json_mode=self.json_mode)

    def workspace(self) -> Workspace:
        if self._workspace is None:
            from kiln.sdk.workspace import Workspace

            self._workspace = Workspace.from_config(settings=self.settings)
        return self._workspace


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj
