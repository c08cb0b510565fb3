"""``kiln workspace``: create a workspace and point the current project at it; show which one is used."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kiln.cli.context import state

__all__ = ["app"]

app = typer.Typer(help="Create and inspect workspaces.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workspace name.")],
    directory: Annotated[Path | None, typer.Option("--directory", "-d", help="Workspace folder "
                                                                             "(default: ./NAME).")] = None,
    config: Annotated[bool, typer.Option("--config/--no-config", help="Write .kiln/config.json here, so that "
                                                                      "commands run below this folder use it.")]
    = True,
) -> None:
    """Create a workspace (SQLite registry in its folder)."""
    from kiln.sdk.workspace import Workspace

    st = state(ctx)
    ws = Workspace.create(name, path=directory, exist_ok=True)
    written = ws.write_config() if config else None
    data = {"name": ws.name, "path": str(ws.path), "config": str(written) if written else None}
    st.out.emit("workspace.create", data,
                f"Workspace {ws.name!r} at {ws.path}" + (f"\nConfig written to {written}" if written else ""))


@app.command()
def show(ctx: typer.Context) -> None:
    """Show the workspace commands use here (its name, folder and store)."""
    st = state(ctx)
    ws = st.workspace()
    envs = ws.store.list_environments()
    st.out.emit("workspace.show", {"name": ws.name, "path": str(ws.path), "store": ws.store.name,
                                   "environments": len(envs)},
                f"Workspace {ws.name!r} at {ws.path}\n  store         {ws.store.name}\n"
                f"  environments  {len(envs)} registered")
