"""Snapshots of a run's source folder: content-addressed in the workspace, ignore files honoured.

The first of ``.kilnignore``, ``.amlignore``, ``.gitignore`` found at the top of the folder decides
what is left out (gitignore syntax, read by ``pathspec``); ``.git``, ``__pycache__``, ``outputs``
and virtual environments (any folder with a ``pyvenv.cfg``) are always left out. Submitting an
unchanged folder again stores nothing new.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def snapshot_files(source: Path) -> tuple[list[Path], str | None]:
    """The files a snapshot of ``source`` holds, and the ignore file used."""
    spec, used = _spec(source)
    match = spec.match_file  # type: ignore[attr-defined]

    def walk(folder: Path) -> Iterator[Path]:
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                path = Path(entry.path)
                rel = path.relative_to(source).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    # a virtual environment, whatever its folder's name (venv/, env/, .venv/...)
                    if not match(rel + "/") and not (path / "pyvenv.cfg").is_file():
                        yield from walk(path)
                elif entry.is_file(follow_symlinks=True) and not match(rel):
                    yield path

    return list(walk(source)), used


def take_snapshot(source: Path, blobs: BlobStore) -> Snapshot:
    files, used = snapshot_files(source)
    manifest: Manifest = blobs.put_tree(source, files)
    if manifest.size > SIZE_WARNING:
        log.warning("the snapshot of %s is %.0f MB: put large data outside the source folder or list it in %s",
                    source, manifest.size / 1e6, used or ".kilnignore")
    return Snapshot(manifest.digest, len(manifest.entries), manifest.size, manifest.new_bytes, used)
