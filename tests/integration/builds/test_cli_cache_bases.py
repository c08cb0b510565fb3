"""``kiln cache du`` and ``kiln cache prune`` count and collect the base images saved in the cache (``bases-v1/``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def saved_base(cache: Path, name: str, size: int) -> Path:
    """A saved base's shape as the cache's accounting reads it: an OCI layout whose index names one manifest."""
    layer = os.urandom(size)
    folder = cache / "bases-v1" / hashlib.sha256(name.encode()).hexdigest()
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()).write_bytes(layer)
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "digest": f"sha256:{hashlib.sha256(name.encode()).hexdigest()}", "size": 1,
        "annotations": {"org.opencontainers.image.ref.name": name}}]}))
    return folder


def data(run_kiln: Any, *args: str) -> Any:
    code, out, err = run_kiln("-o", "json", *args)
    assert code == 0, err
    return json.loads(out)["data"]


def test_du_counts_saved_bases_and_prune_removes_those_no_image_was_built_on(run_kiln: Any, kiln_home: Path) -> None:
    base = saved_base(kiln_home / "cache", "python:3.12-slim", 30000)
    (kiln_home / "cache" / "bases-v1" / ".save-k1lled").mkdir()
    (kiln_home / "cache" / "bases-v1" / ".save-k1lled" / "save.tar").write_bytes(b"x" * 1000)
    du = data(run_kiln, "cache", "du")
    assert du["bases"] == 1 and du["base_bytes"] > 30000 and du["bytes"] >= du["base_bytes"]
    code, out, _ = run_kiln("cache", "du")
    assert code == 0 and "1 saved base image" in out
    preview = data(run_kiln, "cache", "prune", "--dry-run")
    assert [b["name"] for b in preview["removed_bases"]] == ["python:3.12-slim"]
    assert preview["base_leftover_bytes"] == 1000 and base.is_dir()
    code, out, _ = run_kiln("cache", "prune")
    assert code == 0 and "removed saved base python:3.12-slim" in out and "1 saved base" in out
    assert not base.exists() and not (kiln_home / "cache" / "bases-v1" / ".save-k1lled").exists()
    assert data(run_kiln, "cache", "du")["bases"] == 0
