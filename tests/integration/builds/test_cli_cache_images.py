"""``kiln cache du`` and ``kiln cache prune`` count and collect the images in the cache's OCI layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kiln.builds.oci.store import list_images
from kiln.builds.oci.writer import write_image

pytestmark = pytest.mark.integration


def make_env(root: Path, name: str) -> Path:
    """A built environment's shape: ``pyvenv.cfg``, ``bin/python`` and one package with its ``RECORD``."""
    site = root / "lib" / "python3.12" / "site-packages"
    (site / name).mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to("/usr/bin/python3.12")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (site / name / "__init__.py").write_bytes(os.urandom(4096))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/RECORD,,\n")
    return root


def data(run_kiln: Any, *args: str) -> Any:
    code, out, err = run_kiln("-o", "json", *args)
    assert code == 0, err
    return json.loads(out)["data"]


def test_du_counts_images_and_prune_removes_the_unreferenced_ones(run_kiln: Any, kiln_home: Path,
                                                                  tmp_path: Path) -> None:
    layout = kiln_home / "cache" / "images-v1"
    for n, lock in enumerate(("1" * 64, "2" * 64)):
        write_image(env_dir=make_env(tmp_path / f"e{n}", f"pkg{n}"), name=f"kiln/kiln_{n}", tag=lock[:16],
                    python_version="3.12.1", labels={"io.kiln.lock-hash": lock}, variables={}, layout=layout)
    (layout / "blobs" / "sha256" / ".left-by-a-killed-build.tmp").write_bytes(b"x" * 1000)
    du = data(run_kiln, "cache", "du")
    assert du["images"] == 2 and du["image_bytes"] > 8192 and du["bytes"] >= du["image_bytes"]
    preview = data(run_kiln, "cache", "prune", "--dry-run")
    assert sorted(i["reference"] for i in preview["removed_images"]) == ["kiln/kiln_0:1111111111111111",
                                                                        "kiln/kiln_1:2222222222222222"]
    assert len(list_images(layout)) == 2 and preview["orphan_blob_bytes"] == 1000
    code, out, _ = run_kiln("cache", "prune")
    assert code == 0 and "removed image kiln/kiln_0:1111111111111111" in out and "2 images" in out
    assert list_images(layout) == [] and [p.name for p in (layout / "blobs" / "sha256").iterdir()] == []
    assert data(run_kiln, "cache", "du")["images"] == 0
