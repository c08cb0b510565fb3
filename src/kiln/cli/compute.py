"""``kiln compute``: attach, list, show, detach the compute targets of the workspace (Ray clusters)."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("attach", attach, help="Attach a Ray cluster to the workspace by its dashboard's address (Ray's "
                                            "Jobs API); runs then use it by name (--compute-target NAME).",
                     example="kiln compute attach ray ray-dev --address http://127.0.0.1:8265")
    p.add_argument("kind", metavar="KIND", choices=["ray"], help="The kind of compute: ray.")
    p.add_argument("name", metavar="NAME", help="The compute target's name in the workspace.")
    p.add_argument("--address", metavar="URL", required=True,
                   help="The Ray dashboard's address, http://HOST:PORT (8265 by default); no credentials.")
    commands.add("list", list_, help="The compute targets runs can use here: local, container, then the attached ones.",
                 example="kiln compute list -o json")
    p = commands.add("show", show, help="One compute target: its kind and address.",
                     example="kiln compute show ray-dev")
    p.add_argument("name", metavar="NAME", help="The compute target's name.")
    p = commands.add("detach", detach, help="Forget an attached compute target (the cluster and past runs stay).",
                     example="kiln compute detach ray-dev")
    p.add_argument("name", metavar="NAME", help="The compute target's name.")


def attach(st: CliState, args: Namespace) -> None:
    from kiln.sdk.compute import ComputeTarget, RayCompute

    target = ComputeTarget.attach(st.workspace(), args.name, RayCompute.attach_configuration(address=args.address))
    data = target.serialize()
    st.out.emit("compute.attach", data, f"{data['name']}: attached ({data['type']}, {data['address']})")


def list_(st: CliState, args: Namespace) -> None:
    from kiln.sdk.compute import ComputeTarget

    targets = [t.serialize() for t in ComputeTarget.list(st.workspace())]
    rows = [[t["name"], t["type"], t.get("address") or "-"] for t in targets]
    st.out.table("compute.list", targets, ["name", "type", "address"], rows)


def show(st: CliState, args: Namespace) -> None:
    from kiln.sdk.compute import ComputeTarget

    data = ComputeTarget(st.workspace(), args.name).serialize()
    lines = [f"{data['name']}  {data['type']}", f"  address  {data.get('address') or '-'}",
             f"  state    {data['provisioningState']}"]
    st.out.emit("compute.show", data, "\n".join(lines))


def detach(st: CliState, args: Namespace) -> None:
    from kiln.sdk.compute import ComputeTarget

    ComputeTarget(st.workspace(), args.name).detach()
    st.out.emit("compute.detach", {"name": args.name, "detached": True}, f"{args.name}: detached")
