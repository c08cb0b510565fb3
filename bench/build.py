"""Build speed and disk, Kiln against uv, side by side in one run.

    .venv/bin/python bench/build.py [--packages "numpy pandas scikit-learn"] [--python 3.11] [--rounds 2]

1. Cold build, both with fresh empty caches (uv's and Kiln's): ``kiln env build`` of a new environment
   (resolve + lock + venv + install) against ``uv venv`` + ``uv pip install`` of the same packages.
   Aim: Kiln / uv <= 1.10.
2. Cache hit: the whole ``kiln env build`` process for an environment already built, against a warm
   ``uv venv`` + ``uv pip install`` (uv's cache full). Aims: <= 0.3 s, and <= 0.25 x warm uv.
3. Disk: extra bytes on disk for a second environment sharing the packages (another definition:
   the same packages plus one tiny one), hardlinks counted once. Aim: <= 5% of the first.
Rounds alternate which tool goes first; the medians are printed, with the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import KILN, UV, kiln_env, timed

from kiln.builds.cache import disk_usage
from kiln.builds.interpreters import discover, select


def fresh_env(root: Path) -> dict[str, str]:
    return kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"))


def conda_file(path: Path, name: str, python: str, packages: list[str]) -> None:
    pip = "".join(f"    - {p}\n" for p in packages)
    path.write_text(f"name: {name}\nchannels: [conda-forge]\ndependencies:\n  - python={python}\n  - pip:\n{pip}")


def kiln_cold(root: Path, python: str, packages: list[str]) -> float:
    env = fresh_env(root)
    work = root / "work"
    work.mkdir()
    timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, work)
    conda_file(work / "env.yml", "bench-env", python, packages)
    timed([KILN, "env", "register", "-d", "env.yml"], env, work)
    return timed([KILN, "env", "build", "bench-env"], env, work)


def uv_install(root: Path, interpreter: str, packages: list[str], venv: str = "venv") -> float:
    env = fresh_env(root)
    start = time.perf_counter()
    timed([UV, "venv", "-q", "--python", interpreter, str(root / venv)], env, root)
    timed([UV, "pip", "install", "-q", "--python", str(root / venv / "bin" / "python"), *packages], env, root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="numpy pandas scikit-learn")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    packages = args.packages.split()
    interpreter = select(args.python, discover(), default=args.python).path
    print(f"packages: {' '.join(packages)}; Python {args.python} ({interpreter}); {args.rounds} rounds")

    cold_kiln, cold_uv, hits, warm_uv = [], [], [], []
    extra_ratio = 0.0
    for i in range(args.rounds):
        order = ["kiln", "uv"] if i % 2 == 0 else ["uv", "kiln"]
        for tool in order:
            with tempfile.TemporaryDirectory(prefix=f"kiln-bench-{tool}-") as tmp:
                root = Path(tmp)
                if tool == "uv":
                    cold_uv.append(uv_install(root, interpreter, packages))
                    warm_uv.append(uv_install(root, interpreter, packages, venv="venv2"))
                    continue
                cold_kiln.append(kiln_cold(root, args.python, packages))
                env = fresh_env(root)
                for _ in range(5):
                    hits.append(timed([KILN, "env", "build", "bench-env"], env, root / "work"))
                if i == 0:
                    cache = root / "home" / "cache" / "envs-v1"
                    first = disk_usage([cache])
                    conda_file(root / "work" / "env2.yml", "bench-env-2", args.python, [*packages, "six"])
                    timed([KILN, "env", "register", "-d", "env2.yml"], env, root / "work")
                    timed([KILN, "env", "build", "bench-env-2"], env, root / "work")
                    both = disk_usage([cache])
                    extra_ratio = (both - first) / first
                    print(f"disk: first environment {first / 1e6:.1f} MB (hardlinked from uv's cache), "
                          f"second adds {(both - first) / 1e6:.2f} MB")
                shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    print()
    print(f"{'measure':46} {'kiln':>9} {'uv':>9} {'ratio':>7} {'aim':>7}")
    print(f"{'cold build (s), fresh caches':46} {med(cold_kiln):9.2f} {med(cold_uv):9.2f} "
          f"{med(cold_kiln) / med(cold_uv):7.2f} {'<=1.10':>7}")
    print(f"{'cache hit, whole kiln process (s) vs warm uv':46} {med(hits):9.3f} {med(warm_uv):9.3f} "
          f"{med(hits) / med(warm_uv):7.2f} {'<=0.25':>7}")
    print(f"{'cache hit absolute (s)':46} {med(hits):9.3f} {'':>9} {med(hits) / 0.3:7.2f} {'<=0.3s':>7}")
    print(f"{'second environment: extra disk / first':46} {extra_ratio:9.3f} {'':>9} {extra_ratio / 0.05:7.2f} "
          f"{'<=5%':>7}")


if __name__ == "__main__":
    main()
