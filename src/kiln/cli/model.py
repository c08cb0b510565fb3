"""``kiln model``: register, list, download."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.cli.failures import UsageError

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("register", register, help="Register a file or folder as the next version of a model (a local "
                                                "path, or a run's file with --run).",
                     example="kiln model register model.pkl -n forest -t stage=dev\n"
                             "kiln model register outputs/model.pkl -n forest --run RUN_ID")
    p.add_argument("path", metavar="PATH", type=Path, help="A model file or folder.")
    p.add_argument("-n", "--name", metavar="NAME", required=True, help="Model name.")
    p.add_argument("--description", metavar="TEXT", help="What the model is.")
    p.add_argument("-t", "--tag", metavar="KEY=VALUE", action="append", help="A tag (repeatable).")
    p.add_argument("-r", "--run", metavar="ID", help="Take PATH from this run's files (e.g. outputs/model.pkl).")

    p = commands.add("list", list_, help="Registered models and their versions.",
                     example="kiln model list --name forest")
    p.add_argument("-n", "--name", metavar="NAME", help="Only this model's versions.")

    p = commands.add("download", download, help="Write a model's files into a folder.",
                     example="kiln model download forest:2 -d ./models")
    p.add_argument("ref", metavar="NAME[:VERSION]", help="Model, latest version by default.")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, default=Path("."),
                   help="Where to write (default: the current folder).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing file.")


def register(st: CliState, args: Namespace) -> None:
    from kiln.serving.model import Model

    tags = {}
    for item in args.tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{item!r} is not KEY=VALUE", hint="--tag")
        tags[key] = value
    if args.run is not None:
        from kiln.runs.run import Run

        model = Run.get(st.workspace(), args.run).register_model(args.name, str(args.path), tags=tags,
                                                                 description=args.description)
    else:
        model = Model.register(st.workspace(), args.path, args.name, tags=tags, description=args.description)
    st.out.emit("model.register", model.serialize(), f"Registered model {model.name} version {model.version}")


def list_(st: CliState, args: Namespace) -> None:
    from kiln.serving.model import Model

    models = Model.list(st.workspace(), name=args.name)
    rows = [[m.name, str(m.version), m.path, m.run_id or "-", ", ".join(f"{k}={v}" for k, v in m.tags.items())]
            for m in models]
    st.out.table("model.list", [m.serialize() for m in models], ["name", "version", "file", "run", "tags"], rows)


def download(st: CliState, args: Namespace) -> None:
    from kiln.cli.render import parse_ref
    from kiln.serving.model import Model

    name, version = parse_ref(args.ref)
    model = Model(st.workspace(), name, version=version)
    path = model.download(args.directory, exist_ok=args.overwrite)
    st.out.emit("model.download", {**model.serialize(), "written": path}, path)
