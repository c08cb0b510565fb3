"""Run overhead and snapshots, side by side in one run.

    .venv/bin/python bench/runs.py [--rounds 7]

1. Overhead of ``kiln run submit tiny.py`` (a cached environment, a script that prints one line),
   the whole CLI process until the script's exit code is back, against the environment's
   interpreter running the same script directly. Aim: at most +0.25 s.
2. Snapshot of a source folder of 1,000 files (4 KiB each), submitted twice unchanged: the time to
   snapshot and the bytes the blob store grew by each time. Aim: the second stores nothing new.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import KILN, kiln_env, timed


def blob_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-runs-") as tmp:
        root = Path(tmp)
        env = kiln_env(root)
        project = root / "project"
        project.mkdir()
        (project / "tiny.py").write_text('print("hello")\n')
        (project / "environment.yml").write_text("name: bench-run\ndependencies:\n  - python=3.11\n")
        timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, project)
        timed([KILN, "env", "register", "-d", "environment.yml"], env, project)
        timed([KILN, "env", "build", "bench-run"], env, project)
        python = subprocess.run([KILN, "env", "python", "bench-run"], env=env, cwd=project, capture_output=True,
                                text=True, check=True).stdout.strip()
        kiln_times, direct_times = [], []
        for i in range(args.rounds):
            pair = [("kiln", [KILN, "run", "submit", "tiny.py", "--env", "bench-run"]), ("direct", [python, "tiny.py"])]
            for name, cmd in pair if i % 2 == 0 else reversed(pair):
                (kiln_times if name == "kiln" else direct_times).append(timed(cmd, env, project))
        k, d = statistics.median(kiln_times), statistics.median(direct_times)
        print(f"{'measure':52} {'value':>10} {'aim':>10}")
        print(f"{'kiln run submit tiny.py, whole process (s)':52} {k:10.3f}")
        print(f"{'env interpreter on tiny.py directly (s)':52} {d:10.3f}")
        print(f"{'overhead (s)':52} {k - d:10.3f} {'<= 0.250':>10}   ratio to aim {(k - d) / 0.25:.2f}")

        big = root / "big"
        big.mkdir()
        for n in range(1000):
            sub = big / f"pkg{n % 20}"
            sub.mkdir(exist_ok=True)
            (sub / f"file{n}.txt").write_bytes(os.urandom(2048).hex().encode())
        (big / "tiny.py").write_text('print("hello")\n')
        blobs = root / "ws" / "blobs"
        for attempt in ("first", "second (unchanged)"):
            before = blob_bytes(blobs)
            start = time.perf_counter()
            timed([KILN, "run", "submit", "tiny.py", "--env", "bench-run", "--source-dir", str(big)], env, project)
            elapsed = time.perf_counter() - start
            print(f"{'1,000-file snapshot, ' + attempt + ' submit (s)':52} {elapsed:10.3f}")
            print(f"{'  blob store grew by (bytes)':52} {blob_bytes(blobs) - before:10d}"
                  + (f" {'0':>10}" if attempt != "first" else ""))


if __name__ == "__main__":
    main()
