"""State shared by the CLI commands: the settings (built once, in ``kiln.cli.main``), the output mode,
the workspace (opened on demand, once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiln.cli.output import Out

if TYPE_CHECKING:
    from kiln.sdk.workspace import Workspace
    from kiln.settings import Settings

__all__ = ["CliState"]


@dataclass
class CliState:
    settings: Settings
    json_mode: bool = False
    traceback: bool = False
    #: the command being run (``kiln env build``): usage errors raised by its handler point to its --help
    prog: str = "kiln"
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def out(self) -> Out:
        return Out(json_mode=self.json_mode)

    def workspace(self) -> Workspace:
        if self._workspace is None:
            from kiln.sdk.workspace import Workspace

            self._workspace = Workspace.from_config(settings=self.settings)
        return self._workspace
