"""``kiln.Workspace``'s Azure ML collections: name → object, as ``ws.models["name"]`` in ported code."""

from __future__ import annotations

from pathlib import Path

import kiln
from kiln import Model, Workspace


def test_models_are_the_latest_version_of_each_name(tmp_path: Path) -> None:
    ws = Workspace.create("coll", path=tmp_path / "ws")
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"v1")
    Model.register(ws, str(weights), "clf")
    weights.write_bytes(b"v2")
    Model.register(ws, str(weights), "clf")
    Model.register(ws, str(weights), "other")
    models = ws.models
    assert list(models) == ["clf", "other"] and models["clf"].version == 2
    assert ws.experiments == {} and ws.webservices == {}
    targets = ws.compute_targets
    assert list(targets) == ["local", "container"] and targets["local"].name == "local"
    assert targets["container"].name == "container"


def test_version_is_the_package_version() -> None:
    assert kiln.__version__ == kiln.VERSION and "VERSION" in dir(kiln)
