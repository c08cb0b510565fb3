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
    p = commands.add("prune", prune, help="Remove builds no environment version references, least recently used "
                                          "first.",
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

    cache = BuildCache(st.settings.cache_dir)
    entries = cache.entries()
    total = disk_usage([cache.root]) if cache.root.exists() else 0
    data = {"path": str(cache.root), "bytes": total, "entries": len(entries)}
    st.out.emit("cache.du", data, f"{human_size(total)} in {count(len(entries), 'build')} ({cache.root})")


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
            "kept": len(result.kept), "size_before": result.size_before, "size_after": result.size_after}
    lines = [f"{verb} {e.key[:12]}  {e.meta.get('label')}" for e in result.removed]
    lines.append(f"{verb} {count(len(result.removed), 'build')}, {'would free' if dry_run else 'freed'} "
                 f"{human_size(result.freed)}; kept {len(result.kept)} ({human_size(result.size_after)})")
    st.out.emit("cache.prune", data, "\n".join(lines))
