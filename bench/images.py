"""Images from a cached build: seconds to an image, bytes of new layers after adding one small package,
and the digest of two images written on fresh caches. Side by side in one run.

    .venv/bin/python bench/images.py [--packages "numpy pandas scikit-learn"] [--python 3.11] [--extra toolz]

1. ``kiln env build`` (not timed: the build is bench/build.py's), then ``kiln image build`` from the
   cached build: the whole process, seconds.
2. The same definition plus one small package (``--extra``): built, then imaged into the same cache;
   bytes of the layers the first image doesn't have / the image's bytes (aim <= 5 %), and that image's
   seconds.
3. The first definition again on a fresh cache (its own uv cache too): the manifest digest must equal
   the first one.
The Dockerfile comparison (``podman build`` of Azure's two-step shape) needs a base image; not measured yet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import KILN, kiln_env, timed


def conda_file(path: Path, name: str, python: str, packages: list[str]) -> None:
    pip = "".join(f"    - {p}\n" for p in packages)
    path.write_text(f"name: {name}\nchannels: [conda-forge]\ndependencies:\n  - python={python}\n  - pip:\n{pip}")


def image(root: Path, name: str, python: str, packages: list[str]) -> tuple[float, dict[str, object]]:
    """Register and build ``packages`` under ``root``, then time ``kiln image build``; return (seconds, image)."""
    env = kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"))
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    if not (root / "ws").exists():
        timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, work)
    conda_file(work / f"{name}.yml", name, python, packages)
    timed([KILN, "env", "register", "-d", f"{name}.yml"], env, work)
    timed([KILN, "env", "build", name], env, work)
    seconds = timed([KILN, "image", "build", name], env, work)
    out = subprocess.run([KILN, "-o", "json", "image", "build", name], env=env, cwd=work, capture_output=True,
                         text=True, check=True).stdout
    return seconds, json.loads(out)["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="numpy pandas scikit-learn")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--extra", default="toolz", help="the small package added for step 2")
    args = parser.parse_args()
    packages = args.packages.split()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-images-") as tmp:
        root = Path(tmp)
        first_s, first = image(root / "a", "bench-env", args.python, packages)
        second_s, second = image(root / "a", "bench-env-plus", args.python, [*packages, args.extra])
        _, again = image(root / "b", "bench-env", args.python, packages)
    old = {layer["digest"] for layer in first["layers"]}  # type: ignore[attr-defined]
    new = [layer for layer in second["layers"] if layer["digest"] not in old]  # type: ignore[attr-defined]
    new_bytes = sum(int(layer["size"]) for layer in new)
    size = int(second["size"])  # type: ignore[call-overload]
    print(f"image of {' '.join(packages)} on Python {args.python}: {first['size']} bytes, "
          f"{len(first['layers'])} layers")  # type: ignore[arg-type]
    print(f"seconds to an image from the cached build (whole kiln process): {first_s:.2f} s")
    print(f"adding {args.extra}: new layers {[layer['title'] for layer in new]}, {new_bytes} of {size} bytes "
          f"({new_bytes / size:.2%}; aim <= 5 %), {second_s:.2f} s")
    same = "equal" if again["digest"] == first["digest"] else "DIFFERENT"
    print(f"digest on a fresh cache: {again['digest']} vs {first['digest']}: {same}")


if __name__ == "__main__":
    main()
