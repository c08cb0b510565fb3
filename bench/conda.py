"""Conda builds on a local channel of 50 small packages: cold, cached, rebuilt from the lock, re-solved.

    .venv/bin/python bench/conda.py [--packages 50] [--rounds 3]

1. Cold: solve + install into a fresh Kiln cache (rattler's package cache empty too).
2. Cache hit: ``kiln env build`` of the built environment (the whole process).
3. Rebuild from the lock (the entry removed; no solve) against a fresh solve + install
   (``--upgrade``, same entry removed), rattler's package cache warm for both. Prints the ratio.
The channel is built with py-rattler-build (noarch generic packages, each depending on the previous
few) and indexed with rattler, in a child process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import KILN, kiln_env, timed

MAKE_CHANNEL = r'''
import asyncio, sys
from pathlib import Path
from rattler_build import assemble_package
from rattler import index
root, n = Path(sys.argv[1]), int(sys.argv[2])
channel = root / "channel"
(channel / "noarch").mkdir(parents=True)
for i in range(n):
    files = root / "files" / f"pkg{i}" / "share" / f"pkg{i}"
    files.mkdir(parents=True)
    (files / "data.txt").write_text(f"package {i}\n" * 200)
    depends = [f"pkg{j}" for j in range(max(0, i - 3), i)]
    assemble_package(f"pkg{i}", "1.0", "noarch", "0", channel / "noarch", files_dir=root / "files" / f"pkg{i}",
                     noarch="generic", depends=depends)
asyncio.run(index.index_fs(channel))
'''




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-conda-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-c", MAKE_CHANNEL, str(root), str(args.packages)], check=True)
        env = kiln_env(root, KILN_CONDA_VIA="conda")
        work = root / "work"
        work.mkdir()
        deps = "".join(f"  - pkg{i}\n" for i in range(args.packages))
        (work / "env.yml").write_text(f"name: conda-bench\nchannels:\n  - {root / 'channel'}\ndependencies:\n"
                                      f"  - python=3.11\n{deps}")
        timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, work)
        timed([KILN, "env", "register", "-d", "env.yml"], env, work)
        cold = timed([KILN, "env", "build", "conda-bench"], env, work)
        hits = [timed([KILN, "env", "build", "conda-bench"], env, work) for _ in range(5)]
        bucket = root / "home" / "cache" / "envs-v1"
        from_lock, fresh = [], []
        for i in range(args.rounds):
            pair = [("lock", ["env", "build", "conda-bench"]), ("fresh", ["env", "build", "conda-bench", "--upgrade"])]
            for name, cmd in pair if i % 2 == 0 else reversed(pair):
                shutil.rmtree(bucket, ignore_errors=True)
                (from_lock if name == "lock" else fresh).append(timed([KILN, *cmd], env, work))
        med = statistics.median
        print(f"{'measure':58} {'seconds':>9}")
        print(f"{f'cold: solve + install {args.packages} packages (empty caches)':58} {cold:9.3f}")
        print(f"{'cache hit: kiln env build, whole process':58} {med(hits):9.3f}")
        print(f"{'rebuild from the lock (no solve), warm package cache':58} {med(from_lock):9.3f}")
        print(f"{'fresh solve + install (--upgrade), warm package cache':58} {med(fresh):9.3f}")
        print(f"{'ratio rebuild-from-lock / fresh solve':58} {med(from_lock) / med(fresh):9.2f}")


if __name__ == "__main__":
    main()
