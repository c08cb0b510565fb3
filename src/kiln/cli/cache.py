"""``kiln cache``: list, du, prune the build cache."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

from kiln._words import count

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands

__all__ = ["add_commands", "human_size"]


def add_commands(commands: Commands) -> None:
    commands.add("list", list_, help="The cached builds, most recently used first.", example="kiln cache list")
    commands.add("du", du, help="Bytes the cache really takes on disk (hardlinked files counted once).",
                 example="kiln cache du")
    p = commands.add("prune", prune, help="Remove builds and images no environment version references, and "
                                          "saved base images no image left was built on, least recently used first "
                                          "(an image's blobs stay while a kept image shares them).",
                     example="kiln cache prune --dry-run\nkiln cache prune --max-size 5G")
    p.add_argument("--max-size", metavar="SIZE", help="Stop once the cache is this small (e.g. 5G); default: "
                                                      "remove every unreferenced build.")
    p.add_argument("--dry-run", action="store_true", help="Say what would be removed; remove nothing.")


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _when(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def list_(st: CliState, args: Namespace) -> None:
    from kiln.builds.cache import BuildCache

    entries = sorted(BuildCache(st.settings.cache_dir).entries(), key=lambda e: e.last_used, reverse=True)
    data = [{"key": e.key, "environment": e.meta.get("label"), "python": e.meta.get("python_version"),
             "backend": e.meta.get("backend"), "packages": e.meta.get("packages"), "lock_hash": e.meta.get("lock_hash"),
             "last_used": e.last_used, "path": str(e.path)} for e in entries]
    rows = [[e.key[:12], str(e.meta.get("label")), str(e.meta.get("python_version")), str(e.meta.get("backend")),
             str(e.meta.get("packages")), _when(e.last_used)] for e in entries]
    st.out.table("cache.list", data, ["key", "built for", "python", "backend", "packages", "last used"], rows)


def du(st: CliState, args: Namespace) -> None:
    from kiln.builds.cache import BuildCache, disk_usage
    from kiln.builds.engine.saved import saved_bases
    from kiln.builds.oci.build import IMAGES_FOLDER
    from kiln.builds.oci.gc import layout_bytes
    from kiln.builds.oci.store import list_images

    cache = BuildCache(st.settings.cache_dir)
    entries = cache.entries()
    total = disk_usage([cache.root]) if cache.root.exists() else 0
    layout = cache.root / IMAGES_FOLDER
    images = list_images(layout) if (layout / "index.json").is_file() else []
    image_bytes = sum(layout_bytes(layout).values())
    bases = saved_bases(cache.root)
    base_bytes = sum(b.size for b in bases)
    data = {"path": str(cache.root), "bytes": total, "entries": len(entries), "images": len(images),
            "image_bytes": image_bytes, "bases": len(bases), "base_bytes": base_bytes}
    held = count(len(entries), "build")
    if images:
        held += f", {count(len(images), 'image')} ({human_size(image_bytes)} of image blobs, shared between images)"
    if bases:  # their layers are hardlinked into the images' blobs when on one file system: the total counts once
        held += f", {count(len(bases), 'saved base image')} ({human_size(base_bytes)})"
    st.out.emit("cache.du", data, f"{human_size(total)} in {held} ({cache.root})")


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def prune(st: CliState, args: Namespace) -> None:
    from kiln.builds.cache import BuildCache
    from kiln.builds.gc import parse_size, referenced_lock_hashes
    from kiln.builds.gc import prune as run_prune

    max_size, dry_run = args.max_size, args.dry_run
    limit = parse_size(max_size) if max_size is not None else None
    cache = BuildCache(st.settings.cache_dir)
    workspaces = {*cache.known_workspaces(), st.workspace().path}
    result = run_prune(cache, references=referenced_lock_hashes(workspaces), max_size=limit, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    data = {"dry_run": dry_run, "removed": [e.key for e in result.removed], "freed": result.freed,
            "kept": len(result.kept), "size_before": result.size_before, "size_after": result.size_after,
            "removed_images": result.removed_images, "kept_images": result.kept_images,
            "orphan_blob_bytes": result.orphans, "removed_bases": result.removed_bases,
            "kept_bases": result.kept_bases, "base_leftover_bytes": result.base_leftovers}
    lines = [f"{verb} {e.key[:12]}  {e.meta.get('label')}" for e in result.removed]
    lines += [f"{verb} image {i['reference']}  ({human_size(i['freed'])} not shared with a kept image)"
              for i in result.removed_images]
    lines += [f"{verb} saved base {b['name']}  {b['id'][:12]}  ({human_size(b['size'])}; no image left was built on it)"
              for b in result.removed_bases]
    if result.orphans:
        lines.append(f"{verb} {human_size(result.orphans)} of image blobs no image names (an interrupted build's)")
    if result.base_leftovers:
        lines.append(f"{verb} {human_size(result.base_leftovers)} of unfinished base saves (an interrupted build's)")
    removed, kept = count(len(result.removed), "build"), str(len(result.kept))
    if result.removed_images or result.kept_images or result.removed_bases or result.kept_bases:
        removed_parts, kept_parts = [removed], [count(len(result.kept), "build")]
        if result.removed_images or result.kept_images:  # a cache with images: both counted
            removed_parts.append(count(len(result.removed_images), "image"))
            kept_parts.append(count(result.kept_images, "image"))
        if result.removed_bases or result.kept_bases:
            removed_parts.append(count(len(result.removed_bases), "saved base"))
            kept_parts.append(count(result.kept_bases, "saved base"))
        removed, kept = _and(removed_parts), _and(kept_parts)
    lines.append(f"{verb} {removed}, {'would free' if dry_run else 'freed'} {human_size(result.freed)}; kept {kept} "
                 f"({human_size(result.size_after)})")
    st.out.emit("cache.prune", data, "\n".join(lines))
