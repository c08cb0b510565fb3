"""Kiln's own CPU before its first uv process in a cold build: what a build costs beyond uv's work.

    .venv/bin/python bench/build_overhead.py [--rounds 6] [--src OTHER_CHECKOUT/src] [--from-lock]

Runs the real CLI (``kiln env build`` of a new definition, fresh Kiln cache) in a child process whose
``run_uv`` stops the process at its first call, and prints the CPU time spent until then: the process's
own (Python's start, Kiln's imports, the workspace, lookups) and its children's (interpreter probes,
and anything else run before uv), and the wall time from the child's start. CPU, not wall: it stays
meaningful on a busy machine. ``--from-lock``: a teammate's first build instead (the workspace has the
version's lock, the Kiln cache is empty). ``--src`` runs another checkout's Kiln (``git archive COMMIT
src | tar -x -C DIR``) for a before/after comparison; both are compiled to bytecode first, as installs are.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import KILN, kiln_env, timed

CHILD = r'''
import os, resource, sys, time
import kiln.builds.backends.venv as venv
import kiln.builds.resolver as resolver
import kiln.builds.uv as uv

def stop(args, **kwargs):
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(f"OVERHEAD {time.process_time()} {children.ru_utime + children.ru_stime} {time.monotonic()}\n")
    sys.stderr.flush()
    os._exit(0)

uv.run_uv = venv.run_uv = resolver.run_uv = stop
sys.argv = ["kiln", "env", "build", "bench-env"]
from kiln.cli.entry import main
main()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--src", type=Path, help="another checkout's src folder (before/after)")
    parser.add_argument("--from-lock", action="store_true", help="a teammate's first build: the lock is there")
    args = parser.parse_args()
    kiln_src = args.src.resolve() if args.src is not None else Path(__file__).resolve().parent.parent / "src"
    compileall.compile_dir(str(kiln_src / "kiln"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="kiln-bench-overhead-") as tmp:
        root = Path(tmp)
        env = kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"))
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        work = root / "work"
        work.mkdir()
        timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, work)
        (work / "env.yml").write_text("name: bench-env\ndependencies:\n  - python=3.11\n  - pip:\n    - six\n")
        timed([KILN, "env", "register", "-d", "env.yml"], env, work)
        if args.from_lock:  # the version's lock in the workspace: a real build (with this checkout's Kiln)
            timed([KILN, "env", "build", "bench-env"], {k: v for k, v in env.items() if k != "PYTHONPATH"}, work)
        own, children, walls = [], [], []
        for _ in range(args.rounds):
            shutil.rmtree(root / "home" / "cache", ignore_errors=True)  # a cold build: probes included
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=work, capture_output=True, text=True,
                                  check=False)
            line = [x for x in proc.stderr.splitlines() if x.startswith("OVERHEAD ")]
            if not line:
                raise SystemExit(f"the build did not reach uv:\n{proc.stdout}\n{proc.stderr}")
            own.append(float(line[-1].split()[1]))
            children.append(float(line[-1].split()[2]))
            walls.append(float(line[-1].split()[3]) - started)
    med = statistics.median
    what = "a rebuild from the lock" if args.from_lock else "a cold build"
    print(f"Kiln {args.src or 'this checkout'}, {what}: CPU before the first uv process, median of {args.rounds}: "
          f"{med(own) + med(children):.3f} s (own {med(own):.3f} s, children {med(children):.3f} s); wall from "
          f"the start {med(walls):.3f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    os.environ.pop("KILN_WORKSPACE", None)
    main()
