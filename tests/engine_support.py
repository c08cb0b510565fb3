"""A real container engine and registry for the tests, once per session: ``podman system service`` (the
Docker Engine API) with Kiln's shipped containers.conf and its own storage under a temp folder (the
user's images are never touched), Debian's ``docker-registry`` on 127.0.0.1, and a local base image.

No registry outside is reachable, so the base image is made here from this machine's own Python (its
binary, standard library and the shared libraries they load, plus ``/bin/sh`` for Dockerfile ``RUN``
steps), written with Kiln's own layer writer into an OCI layout, copied into the local registry with
skopeo and pulled through the engine. The engine then also knows it by the name of Kiln's default base
(``docker.io/library/python:3.12-slim-bookworm``), so definitions without a base image resolve to it.

Imported by ``tests/conftest.py`` (a module, not a second conftest: test modules import ``conftest`` by name).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.builds.engine import CONTAINERS_CONF, Engine, registries_conf
from kiln.builds.oci.layer import Entry, write_layer
from kiln.builds.oci.writer import canonical

__all__ = ["ContainerEngine", "container_engine", "engine_env", "engine_environ", "engine_session",
           "make_base_layout"]

#: the Python of the session's base image: Kiln's default (and so its default base image's)
BASE_PYTHON = "3.12"
#: the session's base image's name in the engine: Kiln's default base image
BASE_IMAGE = f"docker.io/library/python:{BASE_PYTHON}-slim-bookworm"
SKIP = {"test", "site-packages", "__pycache__", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
#: the few programs a Dockerfile's RUN steps in the tests use (the shell's builtins do the rest)
PROGRAMS = ("/bin/sh", "/bin/cat", "/bin/ls", "/bin/mkdir", "/bin/cp", "/bin/rm", "/usr/bin/env")
#: libraries a slim Debian image has that prebuilt tools (uv) and wheels' bundled libraries load
EXTRA_LIBRARIES = ("libgcc_s.so.1", "librt.so.1", "libpthread.so.0", "libdl.so.2", "libstdc++.so.6")
LIBRARY_FOLDERS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")
_PROBE = ("import json, sys, sysconfig; print(json.dumps({'exe': sys.executable, 'prefix': sys.base_prefix, "
          "'stdlib': sysconfig.get_paths()['stdlib'], 'minor': '%d.%d' % sys.version_info[:2]}))")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _libraries(binaries: list[Path]) -> set[Path]:
    """The shared libraries ``binaries`` load (ldd's answer), the loader included."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            found.add(Path(m.group(1)))
    return found


def make_base_layout(python: str, layout: Path, tag: str) -> str:
    """An OCI layout holding a minimal image: ``python`` at ``/usr/local/bin/python<minor>`` (and ``python3``,
    ``python``), a shell and a few programs. Returns the interpreter's minor version."""
    info = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    minor, prefix, stdlib = info["minor"], Path(info["prefix"]), Path(info["stdlib"])
    exe = Path(os.path.realpath(info["exe"]))
    entries = [Entry(f"usr/local/bin/python{minor}", "file", source=exe, executable=True),
               Entry("usr/local/bin/python3", "symlink", target=f"python{minor}"),
               Entry("usr/local/bin/python", "symlink", target=f"python{minor}"), Entry("tmp", "dir")]
    for folder, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in SKIP]
        for name in files:
            path = Path(folder) / name
            if path.is_file():
                entries.append(Entry(f"usr/local/lib/python{minor}/{path.relative_to(stdlib).as_posix()}", "file",
                                     source=path, executable=os.access(path, os.X_OK)))
    programs = [Path(p) for p in PROGRAMS if Path(p).exists()]
    entries += [Entry(p.as_posix().lstrip("/"), "file", source=Path(os.path.realpath(p)), executable=True)
                for p in programs]
    binaries = [exe, *stdlib.glob("lib-dynload/*.so"), *programs]
    extra = {Path(folder) / name for folder in LIBRARY_FOLDERS for name in EXTRA_LIBRARIES
             if (Path(folder) / name).exists()}
    placed = {e.name for e in entries}
    for lib in sorted(_libraries(binaries) | set((prefix / "lib").glob("libpython*.so*")) | extra):
        where = f"usr/local/lib/{lib.name}" if lib.is_relative_to(prefix) else lib.as_posix().lstrip("/")
        if where not in placed:
            placed.add(where)
            entries.append(Entry(where, "file", source=Path(os.path.realpath(lib)), executable=True))
    dirs = {p.as_posix() for e in entries for p in Path(e.name).parents if p.as_posix() != "."}
    entries += [Entry(d, "dir") for d in dirs]
    blobs = layout / "blobs" / "sha256"
    layer = write_layer(entries, blobs, title="base")
    config = canonical({"architecture": "amd64", "os": "linux",
                        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=/usr/local/lib",
                                           "LANG=C.UTF-8"], "Labels": {"made-by": "kiln's tests"}},
                        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                        # builders check that the history accounts for every layer
                        "history": [{"created_by": "kiln's tests: this machine's Python and a shell"}]})
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
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return str(minor)


@dataclass
class ContainerEngine:
    """What the session's engine fixture offers the tests."""

    #: the Docker-API address (``unix:///.../podman.sock``)
    engine_url: str
    #: the local registry's ``127.0.0.1:PORT`` (plain HTTP; the engine knows it as insecure)
    registry_address: str
    #: the base image's name in the engine (Kiln's default base image's name)
    base_image: str
    #: the same base in the registry (``127.0.0.1:PORT/library/python:3.12-slim-bookworm``)
    registry_base_image: str
    #: the base image as an OCI layout (``oci:DIR:TAG``), for the reading-from-a-layout path
    base_layout: Path
    base_tag: str
    #: the registry's storage folder (to count what it received)
    registry_storage: Path
    #: the environment of podman/skopeo commands run against the same storage and configuration
    environ: dict[str, str] = field(default_factory=dict)
    podman_args: list[str] = field(default_factory=list)

    def engine(self) -> Engine:
        return Engine(self.engine_url)

    def podman(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The podman CLI on the engine's own storage (for checks the Docker API doesn't offer)."""
        return subprocess.run(["podman", *self.podman_args, *args], capture_output=True, text=True,
                              env={**os.environ, **self.environ}, timeout=timeout, check=False)

    def registry_blobs(self) -> dict[str, int]:
        """Every blob the registry holds: digest -> bytes."""
        root = self.registry_storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
        return {f"sha256:{p.parent.name}": p.stat().st_size for p in root.glob("*/*/data")} if root.is_dir() else {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(check: object, what: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} ended with exit code {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in {seconds} s: {log.read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _unmount_under(folder: Path) -> None:
    """Unmount what the engine's storage left mounted under ``folder`` (overlay mounts its own home)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(str(folder))), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def engine_environ(folder: Path, registry: str, sock: Path) -> dict[str, str]:
    conf = folder / "registries.conf"
    conf.write_text(registries_conf([registry]), encoding="utf-8")
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF), "CONTAINERS_REGISTRIES_CONF": str(conf),
            "DOCKER_HOST": f"unix://{sock}"}


@pytest.fixture(scope="session")
def container_engine() -> Iterator[ContainerEngine]:
    """``podman system service`` + a registry + the base image, for the whole session; stopped by pid at the end."""
    for tool in ("podman", "runc", "skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: `make container-tools` installs it (Debian packages)")
    with engine_session() as engine:
        yield engine


@contextmanager
def engine_session(python_version: str = BASE_PYTHON) -> Iterator[ContainerEngine]:
    """Start the registry and the engine, make the base image for ``python_version``; stop both at the end
    (also used by bench/images.py)."""
    from kiln.builds.interpreters import discover, select

    folder = Path(tempfile.mkdtemp(prefix="kiln-eng-"))  # short: podman refuses a runroot over 50 characters
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = _free_port()
        registry = f"127.0.0.1:{port}"
        storage = folder / "registry"
        (folder / "registry.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {storage}\n  delete:\n    enabled: true\nhttp:\n  addr: {registry}\n"
            "  secret: kiln-tests-only\n", encoding="utf-8")
        reg_log = folder / "registry.log"
        with reg_log.open("wb") as out:
            procs.append(subprocess.Popen(["docker-registry", "serve", str(folder / "registry.yml")], stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        _wait(lambda: _answers(registry), "docker-registry", procs[-1], reg_log)
        sock = folder / "podman.sock"
        environ = engine_environ(folder, registry, sock)
        podman_args = ["--root", str(folder / "storage"), "--runroot", str(folder / "run"),
                       "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        pod_log = folder / "podman.log"
        with pod_log.open("wb") as out:
            procs.append(subprocess.Popen(["podman", *podman_args, "system", "service", "--time=0", f"unix://{sock}"],
                                          stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **environ},
                                          start_new_session=True))
        engine = Engine(environ["DOCKER_HOST"])
        _wait(lambda: sock.exists() and engine.cannot_connect() is None, "podman system service", procs[-1], pod_log)
        python = select(python_version, discover(), default=python_version)
        layout = folder / "base-layout"
        tag = make_base_layout(python.path, layout, python_version)
        in_registry = f"{registry}/library/python:{python_version}-slim-bookworm"
        base_image = f"docker.io/library/python:{python_version}-slim-bookworm"
        copied = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
                                 f"docker://{in_registry}"], capture_output=True, text=True,
                                env={**os.environ, **environ}, timeout=300, check=False)
        if copied.returncode != 0:
            raise RuntimeError(f"skopeo copy of the base image failed: {copied.stderr[-2000:]}")
        engine.pull(in_registry)
        engine.tag(in_registry, base_image)
        engine.close()
        yield ContainerEngine(engine_url=environ["DOCKER_HOST"], registry_address=registry, base_image=base_image,
                              registry_base_image=in_registry, base_layout=layout, base_tag=tag,
                              registry_storage=storage, environ=environ, podman_args=podman_args)
    finally:
        if len(procs) > 1:  # containers first, while the engine still runs
            subprocess.run(["podman", *podman_args, "rm", "--all", "--force"], capture_output=True,
                           env={**os.environ, **environ}, timeout=120, check=False)
        for proc in reversed(procs):
            _stop(proc)
        _unmount_under(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _answers(address: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def engine_env(container_engine: ContainerEngine, monkeypatch: pytest.MonkeyPatch) -> ContainerEngine:
    """The session's engine, named to Kiln through the environment for this test (``KILN_DOCKER_HOST``)."""
    for key, value in container_engine.environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KILN_DOCKER_HOST", container_engine.engine_url)
    return container_engine
