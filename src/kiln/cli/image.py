"""``kiln image``: write an environment's OCI image from its locked build (no daemon), list, show, export, push
(through a container engine), remove."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln._words import count
from kiln.cli.cache import human_size
from kiln.cli.render import parse_ref

if TYPE_CHECKING:
    from kiln.builds.oci.store import StoredImage
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("build", build_cmd,
                     help="Build the environment (or take its cached build) and write its OCI image: one layer per "
                          "package, the same digest for the same lock. Kept in Kiln's cache; --layout and --tar "
                          "write it there too.",
                     example="kiln image build train:2\nkiln image build train --tar train.tar && podman load -i "
                             "train.tar")
    p.add_argument("ref", metavar="NAME[:VERSION]", help="The environment (its latest version without :VERSION).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--layout", metavar="DIR", help="Also write the image as an OCI layout folder (-o/--output is "
                       "the output format, as for every command).")
    where.add_argument("--tar", metavar="FILE", help="Also write a tar that podman load / docker load accept.")
    p.add_argument("--base-layout", metavar="DIR[:TAG]",
                   help="A base image in an OCI layout folder (e.g. from skopeo copy): its layers go under the "
                        "environment's, so the image runs as it is. Default: with an engine (DOCKER_HOST or "
                        "KILN_DOCKER_HOST), the definition's docker.base_image (Kiln's default otherwise) pulled "
                        "through it, and the image loaded into it; without one, the environment's layers only.")
    p.add_argument("--no-engine", action="store_true",
                   help="Write the image without the engine DOCKER_HOST names (no base pulled, nothing loaded).")
    p = commands.add("push", push_cmd,
                     help="Push an image to a registry (the workspace's, set with `kiln workspace create --registry`, "
                          "or --registry) through the container engine DOCKER_HOST names: only the layers the "
                          "registry lacks are sent. An environment is built and its image written first if needed.",
                     example="kiln image push train:2\n"
                             "kiln image push kiln/kiln_6e69...:8fa76973 --registry 127.0.0.1:5000")
    p.add_argument("ref", metavar="IMAGE|NAME[:VERSION]", help="The image's name:tag, or an environment.")
    p.add_argument("--registry", metavar="HOST:PORT", help="The registry (default: the workspace's).")
    p = commands.add("export", export_cmd, help="Write an image of Kiln's cache as a tar that podman load / docker "
                     "load accept.", example="kiln image export train:2 train.tar && podman load -i train.tar")
    p.add_argument("ref", metavar="IMAGE|NAME[:VERSION]", help="The image's name:tag, or an environment.")
    p.add_argument("file", metavar="FILE", help="The tar to write.")
    commands.add("list", list_cmd, help="The images in Kiln's cache.", example="kiln image list")
    p = commands.add("show", show_cmd, help="An image: name, digest, labels, interpreter, its layers.",
                     example="kiln image show kiln/kiln_6e69...:8fa76973\nkiln image show train:2")
    p.add_argument("ref", metavar="IMAGE|NAME[:VERSION]", help="The image's name:tag, or an environment.")
    p = commands.add("rm", rm_cmd, help="Remove an image from Kiln's cache (layers other images use stay).",
                     example="kiln image rm kiln/kiln_6e69...:8fa76973")
    p.add_argument("ref", metavar="IMAGE|NAME[:VERSION]", help="The image's name:tag, or an environment.")


def _layout(st: CliState) -> Path:
    from kiln.builds.oci.build import IMAGES_FOLDER

    return st.settings.cache_dir / IMAGES_FOLDER


def build_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.engine import engine_for
    from kiln.builds.oci.build import build_image
    from kiln.cli.progress import build_progress

    name, version = parse_ref(args.ref)
    ws = st.workspace()
    env = ws.get_environment(name, version)
    base_layout, base_tag = _base(args.base_layout)
    engine = None if args.no_engine else engine_for(st.settings)
    with build_progress(f"{env.name}:{env.version}", quiet=st.json_mode) as progress:
        image = build_image(env, ws, settings=st.settings, progress=progress,
                            tar=Path(args.tar) if args.tar else None, base_layout=base_layout, base_tag=base_tag,
                            engine=engine)
        if args.layout:  # the same bytes again, into the user's folder
            image = build_image(env, ws, settings=st.settings, layout=Path(args.layout), base_layout=base_layout,
                                base_tag=base_tag, engine=engine)
    if engine is not None:
        engine.close()
    data = image.to_dict()
    if args.tar:
        data["tar"] = str(Path(args.tar))
    text = (f"{image.reference}\n{image.digest}\n{count(len(image.layers), 'layer')}, {human_size(image.size)}; "
            f"interpreter: the base image's ({image.base_image}) at {image.interpreter}"
            + (f"\nwritten to {args.tar}" if args.tar else f"\nlayout: {image.layout}"))
    st.out.emit("image.build", data, text)


def _base(value: str | None) -> tuple[Path | None, str | None]:
    """``DIR`` or ``DIR:TAG`` (a folder whose name has a colon is taken whole when it exists)."""
    if value is None:
        return None, None
    folder, colon, tag = value.rpartition(":")
    if colon and folder and not Path(value).is_dir():
        return Path(folder), tag
    return Path(value), None


def _find(st: CliState, ref: str) -> list[StoredImage]:
    from kiln.builds.image import image_name
    from kiln.builds.oci.store import list_images
    from kiln.errors import NotFoundError

    images = list_images(_layout(st))
    exact = [i for i in images if i.reference == ref or i.digest == ref]
    if exact:
        return exact
    if "/" not in ref:
        name, version = parse_ref(ref)
        wanted = image_name(st.workspace().get_environment(name, version))
        found = [i for i in images if i.name == wanted]
        if found:
            return found
    raise NotFoundError(f"image {ref[:200]}: no such image in Kiln's cache (see kiln image list; kiln image build "
                        "writes one)")


def push_cmd(st: CliState, args: Namespace) -> None:
    import os

    from kiln.builds.engine import Engine, EngineError, engine_for
    from kiln.builds.engine.images import push_image, stored_image, workspace_registry_auth
    from kiln.builds.oci.build import build_image
    from kiln.cli.progress import build_progress
    from kiln.errors import WorkspaceError

    engine = engine_for(st.settings) or Engine(None)  # else Docker's own socket
    reason = engine.cannot_connect()
    if reason is not None:
        raise EngineError(reason)
    ws = st.workspace()
    registry = ws.container_registry
    address = args.registry or (registry or {}).get("address")
    if not address:
        raise WorkspaceError(f"{ws.path}: the workspace has no registry: give --registry HOST:PORT, or set one with "
                             "`kiln workspace create NAME --registry HOST:PORT`")
    auth = workspace_registry_auth(registry, os.environ) if registry and registry["address"] == address else None
    with engine, build_progress(args.ref, quiet=st.json_mode) as progress:
        def say(line: str) -> None:
            progress("push", line)

        if "/" in args.ref:
            image = stored_image(_layout(st), _find(st, args.ref)[0].reference)
        else:
            name, version = parse_ref(args.ref)
            image = build_image(ws.get_environment(name, version), ws, settings=st.settings, progress=progress,
                                engine=engine)
        result = push_image(engine, image, address, settings=st.settings, auth=auth, log=say)
    st.out.emit("image.push", {"image": image.reference, "digest": image.digest, "registry": address,
                               "pushed": result.reference, "registry_digest": result.digest},
                f"pushed {result.reference}\n{result.digest or ''}".rstrip())


def export_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.engine.images import stored_image
    from kiln.builds.oci.writer import write_tar

    found = _find(st, args.ref)
    if len(found) > 1:
        from kiln.errors import KilnError

        raise KilnError(f"{args.ref}: {len(found)} images match ({', '.join(i.reference for i in found)[:300]}): "
                        "name one")
    image = stored_image(_layout(st), found[0].reference)
    tar = write_tar(image, Path(args.file))
    st.out.emit("image.export", {"image": image.reference, "digest": image.digest, "tar": str(tar),
                                 "size": tar.stat().st_size},
                f"{image.reference}\nwritten to {tar} ({human_size(tar.stat().st_size)})")


def list_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.oci.store import list_images

    images = list_images(_layout(st))
    rows = [[i.reference, i.digest[7:19], str(i.labels.get("io.kiln.environment", "")), str(len(i.layers)),
             human_size(i.size)] for i in images]
    st.out.table("image.list", [i.to_dict() for i in images], ["image", "digest", "environment", "layers", "size"],
                 rows)


def show_cmd(st: CliState, args: Namespace) -> None:
    images = _find(st, args.ref)
    blocks = []
    for i in images:
        d = i.to_dict()
        lines = [f"image        {i.reference}", f"digest       {i.digest}", f"environment  {d['environment']}",
                 f"definition   {d['definition_hash']}", f"lock         {d['lock_hash']}",
                 f"interpreter  {d['interpreter']} (the base image's: {d['base_image']})",
                 f"size         {human_size(i.size)}", "env          " + " ".join(i.env), "layers"]
        lines += [f"  {x['digest'][7:19]}  {human_size(x['size']):>10}  {x['title']}" for x in i.layers]
        blocks.append("\n".join(lines))
    st.out.emit("image.show", [i.to_dict() for i in images] if len(images) > 1 else images[0].to_dict(),
                "\n\n".join(blocks))


def rm_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.oci.store import remove_image

    removed = []
    freed = 0
    for image in _find(st, args.ref):
        _, n = remove_image(_layout(st), image.reference)
        removed.append(image.reference)
        freed += n
    st.out.emit("image.rm", {"removed": removed, "freed": freed},
                "\n".join(f"removed {r}" for r in removed) + f"\nfreed {human_size(freed)}")
