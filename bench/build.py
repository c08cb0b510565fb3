"""Build speed and disk, Kiln against uv, side by side in one run, against PyPI and a local index.

    .venv/bin/python bench/build.py [--packages "numpy pandas scikit-learn"] [--python 3.11] [--rounds 3]
                                    [--index both|pypi|local]

1. Cold build, both with fresh empty caches (uv's and Kiln's): ``kiln env build`` of a new environment
   (resolve + lock + venv + install) against ``uv venv`` + ``uv pip install`` of the same packages.
   Aim: Kiln / uv <= 1.10 in every round.
2. Cold rebuild from the lock (a teammate's first build: the workspace has the lock, the machine has
   empty caches): ``kiln env build`` against ``uv venv`` + ``uv pip sync`` of the same pinned file
   (Kiln's lock, hashes included: both verify them), twice each per round in mirrored order (Kiln, uv,
   uv, Kiln; then uv, Kiln, Kiln, uv), each with fresh caches. Aim: <= 1.05.
3. Cache hit: the whole ``kiln env build`` process for an environment already built, against a warm
   ``uv venv`` + ``uv pip install`` (uv's cache full). Aims: <= 0.3 s, and <= 0.25 x warm uv.
4. Disk: extra bytes on disk for a second environment sharing the packages (another definition:
   the same packages plus one tiny one), hardlinks counted once. Aim: <= 5% of the first.

``--index local`` serves the same wheels (downloaded once with pip) from a PEP 503 folder on
127.0.0.1 (``bench/localindex.py``: hashes and core metadata in the pages, as PyPI has) to take the
network's noise out; ``both`` (the default) measures against PyPI, then locally. Neither side compiles
bytecode (uv's default; Kiln doesn't ask for it); Kiln's own modules are compiled first, as an install
has them. Rounds alternate which tool goes first; dirty pages are written out (``sync``, not timed)
before each timed command, and nothing is deleted until every round is timed (free disk needed: ~1.7 GB
per round and index for the default packages, ~2.2 GB with ``--trace``). Every round's ratios are
printed, with the load average, then the medians and the worst round.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import KILN, UV, kiln_env, timed
from localindex import LocalIndex, download_wheels

import kiln as kiln_package
from kiln.builds.cache import disk_usage
from kiln.builds.interpreters import discover, select


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def clock(into: list[tuple[float, float]]) -> Iterator[None]:
    """Append (wall seconds, CPU seconds of the commands run) of the block to ``into``. Dirty pages are written
    out first (``sync``, not timed): otherwise the side that goes second pays for the writeback of the ~270 MB
    the first side wrote (seen here as the second side's system time rising round after round)."""
    os.sync()
    wall, cpu = time.perf_counter(), cpu_of_children()
    yield
    into.append((time.perf_counter() - wall, cpu_of_children() - cpu))


def fresh_env(root: Path, cache: str = "") -> dict[str, str]:
    env = kiln_env(root, UV_CACHE_DIR=str(root / f"uv-cache{cache}"))
    env["KILN_CACHE_DIR"] = str(root / "home" / f"cache{cache}")
    return env


def conda_file(path: Path, name: str, python: str, packages: list[str], index: str | None) -> None:
    pip = "".join(f"    - {p}\n" for p in [*([f"--index-url {index}"] if index else []), *packages])
    path.write_text(f"name: {name}\nchannels: [conda-forge]\ndependencies:\n  - python={python}\n  - pip:\n{pip}")


def kiln_setup(root: Path, python: str, packages: list[str], index: str | None) -> None:
    env = fresh_env(root)
    work = root / "work"
    work.mkdir(parents=True)
    timed([KILN, "workspace", "create", "bench", "-d", str(root / "ws")], env, work)
    conda_file(work / "env.yml", "bench-env", python, packages, index)
    timed([KILN, "env", "register", "-d", "env.yml"], env, work)


def kiln_build(root: Path, cache: str = "", trace: list[tuple[float, float]] | None = None) -> None:
    """``kiln env build``; with ``cache="-teammate1"``, a teammate's first build: the workspace holds the lock,
    Kiln's and uv's caches are empty. With ``trace``, the same command with Kiln's uv calls stamped (``TRACED``)
    and append Kiln's own time on the critical path: (before the first ``uv venv``, after the last ``uv pip``
    install or sync)."""
    env = fresh_env(root, cache)
    if trace is None:
        timed([KILN, "env", "build", "bench-env"], env, root / "work")
        return
    env["KILN_BENCH_STAMPS"] = str(root / f"stamps{cache}.txt")
    started = time.monotonic()
    timed([sys.executable, "-c", TRACED], env, root / "work")
    ended = time.monotonic()
    calls = [(line.split("\t")[0], float(line.split("\t")[1]), float(line.split("\t")[2]))
             for line in Path(env["KILN_BENCH_STAMPS"]).read_text().splitlines()]
    venv = min(start for what, start, _ in calls if what == "venv")
    install = max(end for what, _, end in calls if what in ("pip install", "pip sync"))
    trace.append((venv - started, ended - install))


#: ``kiln env build bench-env`` (the console script's ``main``), each uv call stamped (monotonic clock, the same in
#: every process): Kiln's own time around uv's is then read without ptrace (``strace -f`` slowed uv's threads)
TRACED = r"""
import atexit, os, sys, time
import kiln.builds.backends.venv as venv, kiln.builds.resolver as resolver, kiln.builds.uv as uv
real, calls = uv.run_uv, []
def stamped(args, **kwargs):
    start = time.monotonic()
    try:
        return real(args, **kwargs)
    finally:
        calls.append(f"{' '.join(args[:2]) if args[0] == 'pip' else args[0]}\t{start}\t{time.monotonic()}")
uv.run_uv = venv.run_uv = resolver.run_uv = stamped
atexit.register(lambda: open(os.environ["KILN_BENCH_STAMPS"], "w").write("\n".join(calls)))
sys.argv = ["kiln", "env", "build", "bench-env"]
from kiln.cli.entry import main
main()
"""


def index_args(index: str | None) -> list[str]:
    return ["--index-url", index] if index else []


def uv_install(root: Path, interpreter: str, packages: list[str], index: str | None, venv: str = "venv") -> None:
    env = fresh_env(root, "-uv")  # its own cache: Kiln's build of this round must not warm it
    timed([UV, "venv", "-q", "--python", interpreter, str(root / venv)], env, root)
    timed([UV, "pip", "install", "-q", *index_args(index), "--python", str(root / venv / "bin" / "python"),
           *packages], env, root)


def uv_sync(root: Path, interpreter: str, lock: Path, n: int = 1) -> None:
    env = fresh_env(root, f"-sync{n}")
    venv = root / f"venv-sync{n}"
    timed([UV, "venv", "-q", "--python", interpreter, str(venv)], env, root)
    timed([UV, "pip", "sync", "-q", "--require-hashes", "--python", str(venv / "bin" / "python"), str(lock)], env,
          root)


def pinned(packages: list[str], interpreter: str) -> list[str]:
    out = subprocess.run([UV, "pip", "compile", "-q", "--no-config", "--no-header", "--no-annotate", "--python",
                          interpreter, "-"], input="\n".join(packages), capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if "==" in line]


@contextlib.contextmanager
def index_of(kind: str, packages: list[str], interpreter: str, tmp: Path) -> Iterator[str | None]:
    if kind == "pypi":
        yield None
        return
    wheels = download_wheels(pinned(packages, interpreter), interpreter, tmp / "wheels")
    with LocalIndex(wheels, tmp / "index") as index:
        print(f"local index: {len(list(wheels.glob('*.whl')))} wheels at {index.url}")
        yield index.url


def lock_file(root: Path) -> Path:
    return next((root / "home" / "cache" / "envs-v1").glob("*/lock.txt"))


Sample = tuple[float, float]  # wall seconds, CPU seconds (the commands' user + system, children included)


def measure(kind: str, args: argparse.Namespace, interpreter: str, packages: list[str], keep: Path
            ) -> dict[str, list[Sample]]:
    """The rounds against one index. Every round's folders stay in ``keep`` until the whole run is over: deleting a
    round's ~1 GB while the next is timed slowed that round's commands (see ``main``)."""
    got: dict[str, list[Sample]] = {k: [] for k in ("kiln", "uv", "kiln-lock", "uv-sync", "hit", "warm",
                                                    "own-cold", "own-lock")}
    (keep / kind).mkdir()
    with index_of(kind, packages, interpreter, keep / kind) as index:
        for i in range(args.rounds):
            order = ["kiln", "uv"] if i % 2 == 0 else ["uv", "kiln"]
            root = keep / kind / f"round-{i + 1}"
            root.mkdir()
            kiln_setup(root, args.python, packages, index)
            for tool in order:
                if tool == "uv":
                    with clock(got["uv"]):
                        uv_install(root, interpreter, packages, index)
                    if kind == "pypi" and i == 0:
                        with clock(got["warm"]):
                            uv_install(root, interpreter, packages, index, venv="venv2")
                else:
                    with clock(got["kiln"]):
                        kiln_build(root)
            # the rebuild from the lock this round's Kiln build wrote, twice each, mirrored (Kiln, uv, uv, Kiln or the
            # other way round; fresh caches each time): a load that rises or falls during the round weighs on both
            # sides alike. The round's ratio is of the sums; both pairs' own ratios are printed too.
            singles: dict[str, list[Sample]] = {"kiln": [], "uv": []}
            for n, tool in enumerate([*order, *reversed(order)]):
                if tool == "uv":
                    with clock(singles["uv"]):
                        uv_sync(root, interpreter, lock_file(root), n)
                else:
                    with clock(singles["kiln"]):
                        kiln_build(root, f"-teammate{n}")
            for side, key in (("kiln", "kiln-lock"), ("uv", "uv-sync")):
                got[key].append((sum(w for w, _ in singles[side]), sum(c for _, c in singles[side])))
            pairs = ", ".join(f"{k[0]:.2f} / {u[0]:.2f}" for k, u in zip(singles["kiln"], singles["uv"], strict=True))
            print(f"  {kind} round {i + 1}: cold {got['kiln'][-1][0]:.2f} / {got['uv'][-1][0]:.2f} s = "
                  f"{got['kiln'][-1][0] / got['uv'][-1][0]:.3f} (CPU {got['kiln'][-1][1]:.2f} / "
                  f"{got['uv'][-1][1]:.2f} s); from the lock, twice each {got['kiln-lock'][-1][0]:.2f} / "
                  f"{got['uv-sync'][-1][0]:.2f} s = {got['kiln-lock'][-1][0] / got['uv-sync'][-1][0]:.3f} "
                  f"(pairs {pairs} s; CPU {got['kiln-lock'][-1][1]:.2f} / {got['uv-sync'][-1][1]:.2f} s); "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            if args.trace:  # once more each, stamped (not in the timings above)
                kiln_build(root, "-traced-lock", trace=got["own-lock"])
                kiln_setup(root / "traced", args.python, packages, index)
                kiln_build(root / "traced", trace=got["own-cold"])
                print(f"  Kiln's own time on the critical path (before the first uv venv + after the last "
                      f"install): cold {sum(got['own-cold'][-1]):.3f} s, from the lock "
                      f"{sum(got['own-lock'][-1]):.3f} s", flush=True)
            if kind == "pypi" and i == 0:
                for _ in range(5):
                    with clock(got["hit"]):
                        kiln_build(root)
                disk(root, args.python, packages)
    return got


def disk(root: Path, python: str, packages: list[str]) -> None:
    env = fresh_env(root)
    cache = root / "home" / "cache" / "envs-v1"
    first = disk_usage([cache])
    conda_file(root / "work" / "env2.yml", "bench-env-2", python, [*packages, "six"], None)
    timed([KILN, "env", "register", "-d", "env2.yml"], env, root / "work")
    timed([KILN, "env", "build", "bench-env-2"], env, root / "work")
    both = disk_usage([cache])
    print(f"  disk: first environment {first / 1e6:.1f} MB (hardlinked from uv's cache), second adds "
          f"{(both - first) / 1e6:.2f} MB = {(both - first) / first:.3%} (aim <= 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="numpy pandas scikit-learn")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index", choices=["both", "pypi", "local"], default="both")
    parser.add_argument("--trace", action="store_true",
                        help="also build once more per round, uv's calls stamped: Kiln's own time on the critical path")
    args = parser.parse_args()
    packages = args.packages.split()
    interpreter = select(args.python, discover(), default=args.python).path
    print(f"packages: {' '.join(packages)}; Python {args.python} ({interpreter}); {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    # Kiln as installed: pip writes the bytecode of what it installs; an editable install has it only from ``make``
    # (``make bytecode``), and where PYTHONDONTWRITEBYTECODE is set every ``kiln`` process compiled its modules again
    # (~60 ms of CPU: the 0.14 s of Kiln's own CPU before its first uv process in a rebuild from the lock was 0.08 s
    # with the bytecode)
    compileall.compile_dir(str(Path(kiln_package.__file__).parent), quiet=1)

    rows = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-build-") as tmp:
        # Nothing is deleted until every round is timed: removing the last round's ~1 GB (its caches, hardlinked
        # venvs) before a timed command slowed that command's own system time 2-5x here (the freed blocks are
        # discarded on this VM's disk: ext4 mounted with ``discard``), whichever tool it was.
        for kind in (["pypi", "local"] if args.index == "both" else [args.index]):
            rows += summarise(kind, measure(kind, args, interpreter, packages, Path(tmp)))
        print(f"\n(every round's folders, {disk_usage([Path(tmp)]) / 1e9:.1f} GB, are deleted now, after the timings)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    table(rows)


Row = tuple[str, list[Sample], list[Sample], str]


def summarise(kind: str, got: dict[str, list[Sample]]) -> list[Row]:
    rows: list[Row] = []
    rows.append((f"{kind}: cold build, fresh caches", got["kiln"], got["uv"], "<=1.10"))
    rows.append((f"{kind}: rebuild from the lock vs uv pip sync", got["kiln-lock"], got["uv-sync"], "<=1.05"))
    if got["hit"]:
        rows.append(("cache hit, whole kiln process vs warm uv", got["hit"], got["warm"], "<=0.25"))
    for what in ("own-cold", "own-lock") if got["own-cold"] else ():
        before, after = (statistics.median(x[j] for x in got[what]) for j in (0, 1))
        print(f"{kind}: Kiln's own time, {what[4:]}: {before:.3f} s before the first uv venv, {after:.3f} s "
              "after the last install (medians)")
    return rows


def table(rows: list[Row]) -> None:
    print()
    print(f"{'measure (medians; worst = the worst round)':46} {'kiln s':>7} {'uv s':>7} {'ratio':>6} {'worst':>6} "
          f"{'aim':>6} {'kiln cpu':>9} {'uv cpu':>7} {'ratio':>6}")
    for label, kiln, uv, aim in rows:
        wall_k, wall_u = (statistics.median(w for w, _ in xs) for xs in (kiln, uv))
        cpu_k, cpu_u = (statistics.median(c for _, c in xs) for xs in (kiln, uv))
        pairs = [k[0] / u[0] for k, u in zip(kiln, uv, strict=False)]
        print(f"{label:46} {wall_k:7.3f} {wall_u:7.3f} {wall_k / wall_u:6.3f} {max(pairs):6.3f} {aim:>6} "
              f"{cpu_k:9.3f} {cpu_u:7.3f} {cpu_k / cpu_u:6.3f}")
    print("\nper round (kiln / uv, wall):")
    for label, kiln, uv, _ in rows:
        print(f"  {label:46} " + ", ".join(f"{k[0] / u[0]:.2f}" for k, u in zip(kiln, uv, strict=False)))


if __name__ == "__main__":
    main()
