"""``kiln workspace``: create a workspace and point the current project at it; show which one is used."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("create", create, help="Create a workspace (SQLite registry in its folder, or a team's "
                     "PostgreSQL database).",
                     example="kiln workspace create proj --directory ./ws\n"
                             "PGPASSWORD=... kiln workspace create team --store postgresql://kiln@db:5432/kiln "
                             "--blobs /mnt/team/blobs\n"
                             "kiln workspace create proj --registry 127.0.0.1:5000 --registry-username kiln "
                             "--registry-password '${REGISTRY_PASSWORD}'")
    p.add_argument("name", metavar="NAME", help="Workspace name.")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, help="Workspace folder (default: ./NAME).")
    p.add_argument("--store", metavar="URL",
                   help="The registry database: postgresql://USER@HOST:PORT/DB (password from PGPASSWORD, ~/.pgpass "
                        "or a ${VAR} reference, never written in the URL); default: SQLite in the folder.")
    p.add_argument("--blobs", metavar="PATH", type=Path,
                   help="Folder of snapshots and model files, e.g. one shared by a team (default: FOLDER/blobs).")
    p.add_argument("--registry", metavar="HOST:PORT",
                   help="The registry images are pushed to (kiln image push; build_local(pushImageToWorkspaceAcr="
                        "True)); on an existing workspace, sets it.")
    p.add_argument("--registry-username", metavar="NAME|${VAR}", help="The registry's user name.")
    p.add_argument("--registry-password", metavar="${VAR}",
                   help="The registry's password, as a ${VAR} reference only (resolved when pushing, never written).")
    p.add_argument("--config", dest="config", action="store_true", default=True,
                   help="Write .kiln/config.json here, so that commands run below this folder use it (default).")
    p.add_argument("--no-config", dest="config", action="store_false", help="Don't write .kiln/config.json.")
    p = commands.add("migrate", migrate, help="Move the workspace's records from its SQLite file into a new, empty "
                     "PostgreSQL database and use that from now on (the SQLite file stays as a backup).",
                     example="kiln workspace migrate --to postgresql://kiln@db.example:5432/kiln")
    p.add_argument("--to", metavar="URL", required=True,
                   help="The new database: postgresql://USER@HOST:PORT/DB (password from PGPASSWORD, ~/.pgpass or a "
                        "${VAR} reference).")
    commands.add("show", show, help="Show the workspace commands use here (its name, folder and store).",
                 example="kiln workspace show\nkiln -o json workspace show")


def create(st: CliState, args: Namespace) -> None:
    from kiln.sdk.workspace import Workspace

    ws = Workspace.create(args.name, path=args.directory, exist_ok=True, store=args.store, blobs=args.blobs,
                          container_registry=args.registry, registry_username=args.registry_username,
                          registry_password=args.registry_password)
    written = ws.write_config() if args.config else None
    data = {"name": ws.name, "path": str(ws.path), "store": ws.store.name, "blobs": str(ws.blobs.root),
            "config": str(written) if written else None, "registry": ws.container_registry}
    st.out.emit("workspace.create", data,
                f"Workspace {ws.name!r} at {ws.path}" + (f"\nConfig written to {written}" if written else ""))


def migrate(st: CliState, args: Namespace) -> None:
    ws = st.workspace()
    counts = ws.migrate_store(args.to)
    lines = "\n".join(f"  {table:<18}{n}" for table, n in counts.items())
    st.out.emit("workspace.migrate", {"name": ws.name, "path": str(ws.path), "store": ws.store.name, "copied": counts},
                f"Workspace {ws.name!r} now uses {ws.store.name} (its SQLite file is kept as a backup); "
                f"copied:\n{lines}")


def show(st: CliState, args: Namespace) -> None:
    ws = st.workspace()
    envs = ws.store.list_environments()
    st.out.emit("workspace.show", {"name": ws.name, "path": str(ws.path), "store": ws.store.name,
                                   "environments": len(envs)},
                f"Workspace {ws.name!r} at {ws.path}\n  store         {ws.store.name}\n"
                f"  environments  {len(envs)} registered")
