"""Kiln's images as the standard OCI tools read them: skopeo (the layout and the tar), umoci (unpacks the
layout), podman (loads the tar into its storage). ``make test`` installs them (``make container-tools``).

podman runs with its own storage in the test's temp folder and the repo's containers.conf.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln import Environment, Workspace
from kiln.builds.oci.build import build_image
from kiln.builds.oci.writer import OciImage
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py

CONF = Path(__file__).resolve().parents[2] / "fixtures" / "containers" / "containers.conf"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make container-tools)")
    return path


def _run(*cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture
def image(make_env: Callable[..., Environment], workspace: Workspace, tmp_path: Path) -> OciImage:
    env = make_env("tooled", "six==1.16.0", variables={"GREETING": "hello"})
    return build_image(env, workspace, settings=Settings.from_env(), layout=tmp_path / "layout",
                       tar=tmp_path / "image.tar")


def test_skopeo_reads_the_layout_and_the_tar(image: OciImage, tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    seen = json.loads(_run(skopeo, "inspect", f"oci:{image.layout}:{image.tag}"))
    assert seen["Digest"] == image.digest
    assert seen["Layers"] == [layer.digest for layer in image.layers]
    assert seen["Labels"]["io.kiln.lock-hash"] == image.labels["io.kiln.lock-hash"]
    assert "GREETING=hello" in seen["Env"]
    config = json.loads(_run(skopeo, "inspect", "--config", f"docker-archive:{tmp_path / 'image.tar'}"))
    assert config["config"]["Labels"] == image.labels


def test_umoci_unpacks_the_layout(image: OciImage, tmp_path: Path) -> None:
    umoci = _tool("umoci")
    _run(umoci, "unpack", "--image", f"{image.layout}:{image.tag}", str(tmp_path / "bundle"))
    site = tmp_path / "bundle" / "rootfs" / "kiln" / "env" / "lib" / "python3.12" / "site-packages"
    assert (site / "six.py").is_file() and (site / "six-1.16.0.dist-info" / "RECORD").is_file()
    assert os.readlink(tmp_path / "bundle" / "rootfs" / "kiln" / "env" / "bin" / "python") == image.interpreter


def test_podman_loads_the_tar_with_the_same_digest(image: OciImage, tmp_path: Path) -> None:
    podman = _tool("podman")
    short = Path(tempfile.mkdtemp(prefix="kiln-podman-"))  # podman refuses a runroot path over 50 characters
    try:
        storage = ["--root", str(short / "storage"), "--runroot", str(short / "run"), "--storage-driver", "vfs"]
        env = {**os.environ, "CONTAINERS_CONF": str(CONF)}
        out = _run(podman, *storage, "load", "-i", str(tmp_path / "image.tar"), env=env)
        assert f"Loaded image: localhost/{image.reference}" in out
        seen = json.loads(_run(podman, *storage, "image", "inspect", f"localhost/{image.reference}", env=env))
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert seen[0]["Digest"] == image.digest
    assert seen[0]["Id"] == image.config_digest.removeprefix("sha256:")
