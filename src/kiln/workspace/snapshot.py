"""Snapshots of a run's source folder: content-addressed in the workspace, ignore files honoured.

The first of ``.kilnignore``, ``.amlignore``, ``.gitignore`` found at the top of the folder decides
what is left out (gitignore syntax, read by ``pathspec``); ``.git``, ``__pycache__``, ``outputs``
and ``.kiln`` are always left out, and so are Kiln workspaces, caches and environments wherever they
sit, and links that point outside the folder (the rule of ``kiln._tree``, said in the log). Submitting
an unchanged folder again stores nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kiln._tree import Tree, scan_tree
from kiln.workspace.blobs import BlobStore, Manifest

__all__ = ["IGNORE_FILES", "SIZE_WARNING", "Snapshot", "snapshot_files", "take_snapshot"]

log = logging.getLogger(__name__)

IGNORE_FILES = (".kilnignore", ".amlignore", ".gitignore")
ALWAYS_IGNORED = (".git/", "__pycache__/", "outputs/", ".venv/", ".kiln/", "*.pyc")
#: above this, a snapshot is logged as a warning (Azure ML warns at 300 MB and refuses above 2 GB)
SIZE_WARNING = 300 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    id: str  # the manifest digest
    files: int
    size: int
    new_bytes: int
    ignore_file: str | None
    #: what was left out by Kiln's rule (not by the ignore file), with the reason
    skipped: tuple[tuple[str, str], ...] = ()


def _spec(source: Path) -> tuple[object, str | None]:
    import pathspec

    lines = list(ALWAYS_IGNORED)
    used = None
    for name in IGNORE_FILES:
        candidate = source / name
        if candidate.is_file():
            lines += candidate.read_text(encoding="utf-8", errors="replace").splitlines()
            used = name
            break
    return pathspec.GitIgnoreSpec.from_lines(lines), used


def snapshot_tree(source: Path) -> tuple[Tree, str | None]:
    """What a snapshot of ``source`` holds (files, links kept, what was skipped), and the ignore file used."""
    spec, used = _spec(source)
    match = spec.match_file  # type: ignore[attr-defined]
    return scan_tree(source, ignore=lambda rel, is_dir: bool(match(rel))), used


def snapshot_files(source: Path) -> tuple[list[Path], str | None]:
    """The files a snapshot of ``source`` holds, and the ignore file used."""
    tree, used = snapshot_tree(source)
    return [source / rel for rel in tree.files], used


def take_snapshot(source: Path, blobs: BlobStore) -> Snapshot:
    tree, used = snapshot_tree(source)
    manifest: Manifest = blobs.put_tree(source, [source / rel for rel in tree.files], tree.links)
    if tree.skipped:
        log.warning("the snapshot of %s leaves out %s", source, tree.describe_skipped())
    if manifest.size > SIZE_WARNING:
        log.warning("the snapshot of %s is %.0f MB: put large data outside the source folder or list it in %s",
                    source, manifest.size / 1e6, used or ".kilnignore")
    return Snapshot(manifest.digest, len(manifest.entries), manifest.size, manifest.new_bytes, used,
                    tuple(tree.skipped))
