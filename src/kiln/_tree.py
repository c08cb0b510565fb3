"""Copying folders the one way Kiln copies them (run snapshots, run outputs, model folders, service sources).

The rule, as git keeps links: a regular file is copied; a symbolic link whose target lies inside the
folder is kept as a (relative) link; a link that points outside the folder, or at nothing, is skipped
and reported — its target is never read. Folders that are not the user's sources are never entered:
Kiln workspaces, Kiln's home and caches (any folder holding a ``CACHEDIR.TAG``), virtual
environments (``pyvenv.cfg``) and conda environments (``conda-meta/``), wherever they sit. Writing
never follows a link that is already at the destination: the link is replaced by a file.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Tree", "copy_file_no_follow", "copy_tree", "foreign_folder", "scan_tree"]


@dataclass
class Tree:
    """What a folder holds, by the rule above. Paths are relative, with ``/`` separators."""

    root: Path
    files: list[str] = field(default_factory=list)
    #: links kept: (path, relative target inside the folder)
    links: list[tuple[str, str]] = field(default_factory=list)
    #: what was left out, with the reason ("points outside the folder", "a Kiln workspace", ...)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def describe_skipped(self, limit: int = 5) -> str:
        shown = [f"{path} ({why})" for path, why in self.skipped[:limit]]
        more = len(self.skipped) - limit
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def foreign_folder(path: Path) -> str | None:
    """Why ``path`` is not part of anyone's sources (a workspace, a cache, an environment), or None."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return None
    if "workspace.json" in names and _is_workspace(path / "workspace.json"):
        return "a Kiln workspace"
    if "CACHEDIR.TAG" in names:
        return "a cache folder"
    if "pyvenv.cfg" in names:
        return "a virtual environment"
    if "conda-meta" in names:
        return "a conda environment"
    return None


def _is_workspace(meta: Path) -> bool:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("name"), str) and "store" in data


def scan_tree(root: Path, *, ignore: Callable[[str, bool], bool] | None = None) -> Tree:
    """What copying ``root`` takes. ``ignore(relative_path, is_dir)`` leaves out what the caller's ignore
    rules name (not reported as skipped: the user asked for it)."""
    real_root = Path(os.path.realpath(root))
    tree = Tree(root)

    def inside(target: str) -> bool:
        return target == str(real_root) or target.startswith(str(real_root) + os.sep)

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            tree.skipped.append((prefix.rstrip("/") or ".", f"can't be read: {e.strerror}"))
            return
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                if ignore is not None and ignore(rel, False):
                    continue
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    tree.skipped.append((rel, "a link to nothing"))
                elif not inside(target):
                    tree.skipped.append((rel, "a link to outside the folder"))
                else:
                    link = os.path.relpath(target, os.path.realpath(os.path.dirname(entry.path)))
                    tree.links.append((rel, link))
            elif entry.is_dir(follow_symlinks=False):
                if ignore is not None and ignore(rel + "/", True):
                    continue
                why = foreign_folder(Path(entry.path))
                if why is not None:
                    tree.skipped.append((rel + "/", why))
                    continue
                walk(Path(entry.path), rel + "/")
            elif entry.is_file(follow_symlinks=False):
                if ignore is None or not ignore(rel, False):
                    tree.files.append(rel)
            else:
                tree.skipped.append((rel, "not a regular file"))

    walk(root, "")
    return tree


def copy_file_no_follow(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``; a link already at ``target`` is replaced, never written through."""
    if target.is_symlink():
        target.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o666)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    if os.stat(source).st_mode & stat.S_IXUSR:
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def copy_tree(source: Path, target: Path) -> Tree:
    """Copy ``source`` into ``target`` by the rule above; return what was copied and skipped."""
    tree = scan_tree(source)
    for rel in tree.files:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_file_no_follow(source / rel, dest)
    for rel, link in tree.links:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.is_dir():
            shutil.rmtree(dest)
        os.symlink(link, dest)
    return tree
