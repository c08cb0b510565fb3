"""``kiln model``: register, list, download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kiln.cli.context import state

__all__ = ["app"]

app = typer.Typer(help="Register and fetch models.", no_args_is_help=True)


@app.command()
def register(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A model file or folder.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    description: Annotated[str | None, typer.Option("--description", help="What the model is.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE (repeatable).")] = None,
    run: Annotated[str | None, typer.Option("--run", "-r", help="Take PATH from this run's files "
                                                                "(e.g. outputs/model.pkl).")] = None,
) -> None:
    """Register a file or folder as the next version of a model (a local path, or a run's file with --run)."""
    from kiln.serving.model import Model

    st = state(ctx)
    tags = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    if run is not None:
        from kiln.runs.run import Run

        model = Run.get(st.workspace(), run).register_model(name, str(path), tags=tags, description=description)
    else:
        model = Model.register(st.workspace(), path, name, tags=tags, description=description)
    st.out.emit("model.register", model.serialize(), f"Registered model {model.name} version {model.version}")


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this model's versions.")] = None,
) -> None:
    """Registered models and their versions."""
    from kiln.serving.model import Model

    st = state(ctx)
    models = Model.list(st.workspace(), name=name)
    rows = [[m.name, str(m.version), m.path, m.run_id or "-", ", ".join(f"{k}={v}" for k, v in m.tags.items())]
            for m in models]
    st.out.table("model.list", [m.serialize() for m in models], ["name", "version", "file", "run", "tags"], rows)


@app.command()
def download(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Model, latest version by default.")],
    directory: Annotated[Path, typer.Option("--directory", "-d", help="Where to write.")] = Path("."),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Write a model's files into a folder."""
    from kiln.cli.render import parse_ref
    from kiln.serving.model import Model

    st = state(ctx)
    name, version = parse_ref(ref)
    model = Model(st.workspace(), name, version)
    path = model.download(directory, exist_ok=overwrite)
    st.out.emit("model.download", {**model.serialize(), "written": path}, path)
