"""OCI images written from a locked build (no daemon): reproducible digests, one layer per package,
a loadable tar, and layers that make a working environment when unpacked.

Real uv builds from the package index; the image writer reads the published build.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln import Environment, Workspace
from kiln.builds.oci.build import build_image
from kiln.builds.oci.writer import OciImage
from kiln.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),  # run_uv's pipe, see test_build.py
]

MakeEnv = Callable[..., Environment]
PINS = ("six==1.16.0", "idna==3.7")


def _image(make_env: MakeEnv, root: Path, monkeypatch: pytest.MonkeyPatch, *pins: str,
           tar: Path | None = None) -> OciImage:
    """Build ``pins`` with a fresh cache and workspace under ``root`` and write the image."""
    monkeypatch.setenv("KILN_CACHE_DIR", str(root / "cache"))
    env = make_env("imaged", *pins, variables={"GREETING": "hello"})
    ws = Workspace.create("images", path=root / "ws")
    try:
        return build_image(env, ws, settings=Settings.from_env(), tar=tar)
    finally:
        ws.close()


def test_the_same_lock_gives_the_same_digest_on_fresh_caches(make_env: MakeEnv, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    one = _image(make_env, tmp_path / "one", monkeypatch, *PINS, tar=tmp_path / "one.tar")
    two = _image(make_env, tmp_path / "two", monkeypatch, *PINS, tar=tmp_path / "two.tar")
    assert one.digest == two.digest
    assert one.layout != two.layout
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert [layer.title for layer in one.layers] == ["environment", "idna 3.7", "six 1.16.0"]


def test_adding_one_package_changes_only_its_layer(make_env: MakeEnv, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = _image(make_env, tmp_path / "a", monkeypatch, *PINS)
    after = _image(make_env, tmp_path / "b", monkeypatch, *PINS, "toolz==0.12.1")
    assert before.digest != after.digest
    new = {x.digest for x in after.layers} - {x.digest for x in before.layers}
    titles = [x.title for x in after.layers if x.digest in new]
    assert titles == ["toolz 0.12.1"]
    new_bytes = sum(x.size for x in after.layers if x.digest in new)
    print(f"new layers: {new_bytes} of {after.size} bytes ({new_bytes / after.size:.1%})")
    assert new_bytes < after.size


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_the_image_holds_the_labels_variables_and_no_host_path(make_env: MakeEnv, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(make_env, tmp_path / "x", monkeypatch, *PINS, tar=tmp_path / "x.tar")
    layout = image.layout
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [image.digest]
    manifest = json.loads(_blob(layout, image.digest))
    config_bytes = _blob(layout, manifest["config"]["digest"])
    config = json.loads(config_bytes)
    labels = config["config"]["Labels"]
    assert labels["io.kiln.definition-hash"] == image.labels["io.kiln.definition-hash"]
    assert len(labels["io.kiln.lock-hash"]) == 64 and image.tag == labels["io.kiln.lock-hash"][:16]
    assert image.name == f"kiln/kiln_{labels['io.kiln.definition-hash'][:32]}"
    assert "GREETING=hello" in config["config"]["Env"] and "VIRTUAL_ENV=/kiln/env" in config["config"]["Env"]
    assert labels["io.kiln.interpreter"] == "/usr/local/bin/python3.12"
    assert "created" not in config
    host = [str(tmp_path).encode(), str(Path.home()).encode() + b"/", os.path.realpath(os.sys.executable).encode()]
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        data = gzip.decompress(_blob(layout, layer["digest"]))
        assert "sha256:" + hashlib.sha256(data).hexdigest() == diff_id
        assert not any(h in data for h in host), layer["annotations"]
    assert not any(h in config_bytes for h in host)
    # the tar: docker's manifest.json and the OCI layout, the blobs the descriptors name
    with tarfile.open(tmp_path / "x.tar") as tar:
        names = set(tar.getnames())
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert docker[0]["RepoTags"] == [image.reference]
    assert {"oci-layout", "index.json", *docker[0]["Layers"], docker[0]["Config"]} <= names


def test_the_layers_unpacked_make_a_working_environment(make_env: MakeEnv, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, look: Any,
                                                        interpreter: Callable[[str], Any]) -> None:
    image = _image(make_env, tmp_path / "x", monkeypatch, *PINS)
    root = tmp_path / "rootfs"
    for layer in image.layers:  # as an engine stacks them
        with tarfile.open(image.layout / "blobs" / "sha256" / layer.digest[7:]) as tar:
            tar.extractall(root, filter="tar")
    env = root / "kiln" / "env"
    assert os.readlink(env / "bin" / "python") == "/usr/local/bin/python3.12"
    # no /usr/local/bin/python3.12 here: stand the host's 3.12 in for the base image's
    (env / "bin" / "python").unlink()
    (env / "bin" / "python").symlink_to(os.path.realpath(interpreter("3.12").path))
    code = "import sys, six, idna; print(sys.prefix, six.__version__, idna.__version__)"
    out = look.run(env / "bin" / "python", code)
    assert out == f"{env} 1.16.0 3.7"
