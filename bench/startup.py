"""Start-up of the ``kiln`` command on its hot paths, against the bare interpreter and uv, in one run.

    .venv/bin/python bench/startup.py [--rounds 9]

1. ``python -c pass`` (this venv's interpreter) and ``kiln --version``: the floor, and the CLI's own cost.
2. Cache hit: the whole ``kiln env build NAME`` process for a built curated environment
   (``Kiln-minimal-py311``) and a built registered one, against a warm ``uv venv`` + ``uv pip install``
   of the same packages (none) into a fresh venv. Aim: <= 0.15 s each.
3. ``kiln run submit tiny.py`` (a script printing one line, in the cached registered environment) against
   the environment's interpreter running ``tiny.py`` directly. Aim: overhead <= 0.25 s.
Each round runs every command once, in an order that alternates; the medians are printed, with ratios.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import KILN, UV, kiln_env, timed

CURATED = "Kiln-minimal-py311"


def cpu_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and its children) of one command. On a
    shared machine the CPU time is the steadier figure; the aims are wall times."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(cmd, env, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def uv_warm(root: Path, python: str, n: int, env: dict[str, str]) -> float:
    """A fresh venv from uv's warm cache, with the same (no) packages as the environments."""
    start = time.perf_counter()
    venv = root / f"uv-venv-{n}"
    timed([UV, "venv", "-q", "--python", python, str(venv)], env, root)
    timed([UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(root / "req.txt")], env,
          root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-startup-") as tmp:
        root = Path(tmp)
        env = kiln_env(root, UV_CACHE_DIR=str(root / "uv-cache"))
        project = root / "project"
        project.mkdir()
        (project / "tiny.py").write_text('print("hello")\n')
        (project / "environment.yml").write_text("name: bench-startup\ndependencies:\n  - python=3.11\n")
        (root / "req.txt").write_text("")
        timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, project)
        timed([KILN, "env", "register", "-d", "environment.yml"], env, project)
        for name in ("bench-startup", CURATED):
            timed([KILN, "env", "build", name], env, project)
        python = subprocess.run([KILN, "env", "python", "bench-startup"], env=env, cwd=project, capture_output=True,
                                text=True, check=True).stdout.strip()
        uv_warm(root, python, -1, env)  # fills uv's cache

        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "kiln --version": [KILN, "--version"],
            f"kiln env build {CURATED} (cache hit)": [KILN, "env", "build", CURATED],
            "kiln env build bench-startup (registered, cache hit)": [KILN, "env", "build", "bench-startup"],
            "kiln run submit tiny.py": [KILN, "run", "submit", "tiny.py", "--env", "bench-startup"],
            "env interpreter on tiny.py directly": [python, "tiny.py"],
        }
        times: dict[str, list[float]] = {name: [] for name in [*commands, "warm uv venv + uv pip install"]}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.rounds):
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                wall, used = cpu_timed(commands[name], env, project)
                times[name].append(wall)
                cpu[name].append(used)
            times["warm uv venv + uv pip install"].append(uv_warm(root, python, i, env))

        med = {name: statistics.median(values) for name, values in times.items()}
        print(f"medians of {args.rounds} rounds")
        print(f"{'measure':56} {'median s':>9} {'cpu s':>7} {'aim':>6} {'ratio':>6}")
        hit_aim = 0.15
        for name, value in med.items():
            aim = ""
            ratio = ""
            if "cache hit" in name:
                aim, ratio = f"{hit_aim:.2f}", f"{value / hit_aim:.2f}"
            used = f"{statistics.median(cpu[name]):.3f}" if name in cpu else ""
            print(f"{name:56} {value:9.3f} {used:>7} {aim:>6} {ratio:>6}")
        uv = med["warm uv venv + uv pip install"]
        for name in (f"kiln env build {CURATED} (cache hit)", "kiln env build bench-startup (registered, cache hit)"):
            print(f"{name.replace('kiln env build ', '') + ' / warm uv':56} {med[name] / uv:9.2f}")
        print(f"{'kiln --version - python -c pass':56} {med['kiln --version'] - med['python -c pass']:9.3f}")
        overhead = med["kiln run submit tiny.py"] - med["env interpreter on tiny.py directly"]
        label = "run submit overhead over the bare interpreter"
        print(f"{label:56} {overhead:9.3f} {'0.25':>8} {overhead / 0.25:7.2f}")


if __name__ == "__main__":
    main()
