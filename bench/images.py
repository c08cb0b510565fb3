"""Images from a cached build, Kiln's writer against ``podman build`` of Azure ML's two-step Dockerfile, side by
side in one run, through one ``podman system service`` and one local registry (started and stopped here).

    .venv/bin/python bench/images.py [--packages "numpy pandas scikit-learn"] [--python 3.11] [--extra toolz]

The engine, the registry and the base image (this machine's Python as ``python:<minor>-slim-bookworm``)
are the tests' (``tests/engine_support.py``). Then, for Kiln (``DOCKER_HOST`` set, so the base comes from
the engine and the image is loaded into it):

1. ``kiln env build`` (not timed: the build is bench/build.py's), then ``kiln image build``: seconds to an
   image in the engine (the first one also saves the base into Kiln's cache once);
2. the same definition plus one small package (``--extra``): bytes of new layers / image bytes (aim <= 5 %)
   and its seconds;
3. the first definition on a fresh cache (its own uv cache too): the digest must be equal;
4. ``kiln image push`` of both to the registry: bytes the registry received the second time.

For the Dockerfile (Azure's shape: ``FROM`` the base, then the environment in one ``RUN``, here ``uv pip
install`` of the same pinned versions, downloading as a fresh build does): seconds of ``podman build``
(through the Docker API), the rebuild after adding the package (the ``RUN`` runs again whole), the image's
size in the engine, and the bytes the registry received for the second push.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import KILN, UV, kiln_env, timed

from engine_support import ContainerEngine, engine_session


def conda_file(path: Path, name: str, python: str, packages: list[str]) -> None:
    pip = "".join(f"    - {p}\n" for p in packages)
    path.write_text(f"name: {name}\nchannels: [conda-forge]\ndependencies:\n  - python={python}\n  - pip:\n{pip}")


def image(root: Path, name: str, python: str, packages: list[str], engine: dict[str, str]
          ) -> tuple[float, float, dict[str, Any]]:
    """Register and build ``packages`` under ``root``, then time ``kiln image build --no-engine`` (the writer
    alone, Kiln's layers into its cache) and ``kiln image build`` (on the base from the engine, loaded into
    it); return (writer seconds, engine seconds, image)."""
    env = kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"), **engine)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    conda_file(work / f"{name}.yml", name, python, packages)
    timed([KILN, "env", "register", "-d", f"{name}.yml"], env, work)
    timed([KILN, "env", "build", name], env, work)
    writer = timed([KILN, "image", "build", name, "--no-engine"], env, work)
    seconds = timed([KILN, "image", "build", name], env, work)
    out = subprocess.run([KILN, "-o", "json", "image", "build", name], env=env, cwd=work, capture_output=True,
                         text=True, check=True).stdout
    return writer, seconds, json.loads(out)["data"]


def push(root: Path, name: str, engine: dict[str, str]) -> dict[str, Any]:
    env = kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"), **engine)
    out = subprocess.run([KILN, "-o", "json", "image", "push", name], env=env, cwd=root / "work", capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"kiln image push {name} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout)["data"])


def registry_bytes(eng: ContainerEngine) -> dict[str, int]:
    return eng.registry_blobs()


def dockerfile_build(eng: ContainerEngine, context: Path, pins: list[str], tag: str) -> float:
    """``podman build`` (through the Docker API) of Azure's two-step shape; seconds."""
    (context / "requirements.txt").write_text("\n".join(pins) + "\n")
    start = time.perf_counter()
    with eng.engine() as engine:
        stream = engine.client.api.build(path=str(context), tag=tag, rm=True, decode=True, network_mode="host")
        said: list[str] = []
        for line in stream:
            said.append(str(line.get("stream", "")))
            if line.get("error"):
                raise SystemExit(f"podman build failed: {line['error']}\n{''.join(said)[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="numpy pandas scikit-learn")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--extra", default="toolz", help="the small package added for step 2")
    args = parser.parse_args()
    packages = args.packages.split()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-images-") as tmp, engine_session(args.python) as eng:
        root = Path(tmp)
        engine = {**eng.environ, "KILN_DOCKER_HOST": eng.engine_url}
        for where in ("a", "b"):
            (root / where / "work").mkdir(parents=True)
            timed([KILN, "workspace", "create", "bench", "-d", str(root / where / "ws"), "--registry",
                   eng.registry_address], kiln_env(root / where), root / where / "work")
        first_w, first_s, first = image(root / "a", "bench-env", args.python, packages, engine)
        second_w, second_s, second = image(root / "a", "bench-env-plus", args.python, [*packages, args.extra],
                                           engine)
        _, _, again = image(root / "b", "bench-env", args.python, packages, engine)
        before = registry_bytes(eng)
        push(root / "a", "bench-env", engine)
        mid = registry_bytes(eng)
        push(root / "a", "bench-env-plus", engine)
        after = registry_bytes(eng)
        kiln_first_push = sum(n for d, n in mid.items() if d not in before)
        kiln_second_push = sum(n for d, n in after.items() if d not in mid)
        with eng.engine() as e:
            kiln_size = e.image(second["image"]).size

        # the two-step Dockerfile: the same base, the same pinned versions, one RUN
        pins = [x["title"].replace(" ", "==") for x in first["layers"] if x["title"] != "environment"]
        pins_plus = [x["title"].replace(" ", "==") for x in second["layers"] if x["title"] != "environment"]
        context = root / "dockerfile"
        context.mkdir()
        shutil.copy(UV, context / "uv")
        # the machine's CA bundle, as a slim image's ca-certificates has it (this machine's TLS goes through it)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
        (context / "Dockerfile").write_text(
            f"FROM {eng.base_image}\nCOPY uv /usr/local/bin/uv\nCOPY ca-certificates.crt /etc/ssl/certs/\n"
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\nCOPY requirements.txt /kiln/requirements.txt\n"
            f"RUN uv venv --python /usr/local/bin/python{args.python} /kiln/env && "
            "uv pip install --no-cache --python /kiln/env/bin/python -r /kiln/requirements.txt\n"
            "ENV VIRTUAL_ENV=/kiln/env PATH=/kiln/env/bin:/usr/local/bin:/usr/bin:/bin\n")
        docker_s = dockerfile_build(eng, context, pins, "bench/two-step:1")
        docker_plus_s = dockerfile_build(eng, context, pins_plus, "bench/two-step:2")
        with eng.engine() as e:
            docker_size = e.image("bench/two-step:2").size
            before = registry_bytes(eng)
            for tag in ("1", "2"):
                target = f"{eng.registry_address}/bench/two-step:{tag}"
                e.tag(f"bench/two-step:{tag}", target)
                e.push(target)
                if tag == "1":
                    mid = registry_bytes(eng)
            after = registry_bytes(eng)
        docker_first_push = sum(n for d, n in mid.items() if d not in before)
        docker_second_push = sum(n for d, n in after.items() if d not in mid)

    old = {layer["digest"] for layer in first["layers"]}
    new = [layer for layer in second["layers"] if layer["digest"] not in old]
    new_bytes = sum(int(layer["size"]) for layer in new)
    size = int(second["size"])
    mb = 1e6
    print(f"environment {' '.join(packages)} on Python {args.python}; Kiln's image: {len(first['layers'])} layers "
          f"over the base; machine shared and busy (2 cores)")
    print(f"{'':44}{'Kiln writer':>16}{'podman build':>16}")
    print(f"{'seconds to an image in the engine':44}{first_w + first_s:>15.1f}s{docker_s:>15.1f}s")
    print(f"{'  Kiln: its layers (--no-engine)':44}{first_w:>15.1f}s")
    print(f"{'  Kiln: on the engine base, loaded':44}{first_s:>15.1f}s")
    print(f"{'rebuild after adding ' + args.extra:44}{second_w + second_s:>15.1f}s{docker_plus_s:>15.1f}s")
    print(f"{'  Kiln: its layers (--no-engine)':44}{second_w:>15.1f}s")
    print(f"{'  Kiln: on the engine base, loaded':44}{second_s:>15.1f}s")
    print(f"{'image size in the engine (MB)':44}{kiln_size / mb:>16.1f}{docker_size / mb:>16.1f}")
    print(f"{'bytes pushed, first image (MB)':44}{kiln_first_push / mb:>16.1f}{docker_first_push / mb:>16.1f}")
    print(f"{'bytes pushed, second image (MB)':44}{kiln_second_push / mb:>16.2f}{docker_second_push / mb:>16.2f}")
    print(f"adding {args.extra}: Kiln's new layers {[layer['title'] for layer in new]}, {new_bytes} of {size} bytes "
          f"({new_bytes / size:.2%}; aim <= 5 %)")
    same = "equal" if again["digest"] == first["digest"] else "DIFFERENT"
    print(f"digest on a fresh cache: {again['digest']} vs {first['digest']}: {same}")


if __name__ == "__main__":
    main()
