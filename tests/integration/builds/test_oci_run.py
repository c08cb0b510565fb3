"""An image on a base read from an OCI layout, loaded into podman and run: the environment's Python
imports its packages and sees the definition's variables, with nothing but the image.

No registry is reachable here, so the base is made on the spot from this machine's own Python (its
binary, its standard library, the shared libraries they load), written with Kiln's own layer writer
into an OCI layout: a stand-in for ``python:3.12-slim`` with the same interpreter path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln import Environment, Workspace
from kiln.builds.oci.build import build_image
from kiln.builds.oci.layer import Entry, write_layer
from kiln.builds.oci.writer import canonical
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py

CONF = Path(__file__).resolve().parents[2] / "fixtures" / "containers" / "containers.conf"
SKIP = {"test", "site-packages", "__pycache__", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
_PROBE = ("import json, sys, sysconfig; print(json.dumps({'exe': sys.executable, 'prefix': sys.base_prefix, "
          "'stdlib': sysconfig.get_paths()['stdlib'], 'minor': '%d.%d' % sys.version_info[:2]}))")


def _libraries(binaries: list[Path]) -> set[Path]:
    """The shared libraries ``binaries`` load (ldd's answer), the loader included."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            found.add(Path(m.group(1)))
    return found


def make_base(python: str, layout: Path) -> str:
    """Write an OCI layout holding a minimal image with ``python`` at ``/usr/local/bin/python<minor>``; its tag."""
    info = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    minor, prefix, stdlib = info["minor"], Path(info["prefix"]), Path(info["stdlib"])
    exe = Path(os.path.realpath(info["exe"]))
    entries = [Entry(f"usr/local/bin/python{minor}", "file", source=exe, executable=True), Entry("tmp", "dir")]
    for folder, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in SKIP]
        for name in files:
            path = Path(folder) / name
            if path.is_file():
                entries.append(Entry(f"usr/local/lib/python{minor}/{path.relative_to(stdlib).as_posix()}", "file",
                                     source=path, executable=os.access(path, os.X_OK)))
    binaries = [exe, *stdlib.glob("lib-dynload/*.so")]
    for lib in _libraries(binaries) | set((prefix / "lib").glob("libpython*.so*")):
        where = f"usr/local/lib/{lib.name}" if lib.is_relative_to(prefix) else lib.as_posix().lstrip("/")
        entries.append(Entry(where, "file", source=Path(os.path.realpath(lib)), executable=True))
    dirs = {p.as_posix() for e in entries for p in Path(e.name).parents if p.as_posix() != "."}
    entries += [Entry(d, "dir") for d in dirs]
    blobs = layout / "blobs" / "sha256"
    layer = write_layer(entries, blobs, title="base")
    config = canonical({"architecture": "amd64", "os": "linux",
                        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=/usr/local/lib",
                                           "LANG=C.UTF-8"], "Labels": {"made-by": "kiln's tests"}},
                        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})
    (blobs / _sha(config)).write_bytes(config)
    manifest = canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "digest": f"sha256:{_sha(config)}", "size": len(config)},
                          "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                      "digest": layer.digest, "size": layer.size}]})
    (blobs / _sha(manifest)).write_bytes(manifest)
    (layout / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_bytes(canonical({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{_sha(manifest)}",
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": minor}}]}))
    return minor


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from kiln.builds.interpreters import discover, select
    from kiln.errors import DefinitionError

    try:
        python = select("3.12", discover(), default="3.12")
    except DefinitionError:
        pytest.skip("no Python 3.12 here")
    layout = tmp_path_factory.mktemp("base") / "layout"
    return layout, make_base(python.path, layout)


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
