"""An image on a base read from an OCI layout, loaded into podman and run: the environment's Python
imports its packages and sees the definition's variables, with nothing but the image.

No registry is reachable here, so the base is made on the spot from this machine's own Python by the
session engine's helper (``engine_support.make_base_layout``: its binary, standard library and the shared
libraries they load, written with Kiln's own layer writer into an OCI layout): a stand-in for
``python:3.12-slim`` with the same interpreter path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from engine_support import make_base_layout
from kiln import Environment, Workspace
from kiln.builds.oci.build import build_image
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py

CONF = Path(__file__).resolve().parents[2] / "fixtures" / "containers" / "containers.conf"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from kiln.builds.interpreters import discover, select
    from kiln.errors import DefinitionError

    try:
        python = select("3.12", discover(), default="3.12")
    except DefinitionError:
        pytest.skip("no Python 3.12 here")
    layout = tmp_path_factory.mktemp("base") / "layout"
    return layout, make_base_layout(python.path, layout, "3.12")


@pytest.fixture
def podman() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    binary = shutil.which("podman")
    if binary is None or shutil.which("runc") is None:
        pytest.skip("podman or runc is not installed (make container-tools)")
    short = Path(tempfile.mkdtemp(prefix="kiln-podman-"))  # podman refuses a runroot path over 50 characters
    storage = ["--root", str(short / "storage"), "--runroot", str(short / "run"), "--storage-driver", "vfs"]
    env = {**os.environ, "CONTAINERS_CONF": str(CONF)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *storage, *args], capture_output=True, text=True, env=env, timeout=180,
                              check=False)

    try:
        yield run
    finally:
        run("rm", "--all", "--force")
        shutil.rmtree(short, ignore_errors=True)


def test_the_image_on_a_base_runs_its_environment_in_podman(make_env: Callable[..., Environment],
                                                           workspace: Workspace, tmp_path: Path,
                                                           base: tuple[Path, str], podman: Any) -> None:
    layout, tag = base
    env = make_env("runnable", "six==1.16.0", variables={"GREETING": "hello from the image"})
    image = build_image(env, workspace, settings=Settings.from_env(), tar=tmp_path / "image.tar", base_layout=layout,
                        base_tag=tag)
    assert [x.title for x in image.layers] == ["environment", "six 1.16.0"] and len(image.base_layers) == 1
    assert "LD_LIBRARY_PATH=/usr/local/lib" in image.env
    assert "PATH=/kiln/env/bin:/usr/local/bin:/usr/bin:/bin" in image.env
    assert image.labels["org.opencontainers.image.base.name"] == tag
    assert image.labels["made-by"] == "kiln's tests"
    loaded = podman("load", "-i", str(tmp_path / "image.tar"))
    assert loaded.returncode == 0, loaded.stderr
    code = "import os, sys, six; print(sys.prefix, six.__version__, os.environ['GREETING'])"
    ran = podman("run", "--rm", "--network", "none", f"localhost/{image.reference}", "python", "-c", code)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "/kiln/env 1.16.0 hello from the image"
    # the same lock on the same base: the same image, bit for bit
    again = build_image(env, workspace, settings=Settings.from_env(), layout=tmp_path / "again", base_layout=layout,
                        base_tag=tag)
    assert again.digest == image.digest
