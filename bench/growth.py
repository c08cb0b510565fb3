"""Growth curves: how Kiln's cost grows with the work, at three sizes or more, per unit of work.

    .venv/bin/python bench/growth.py [--rounds 3] [--only registry,snapshot,gc,lock] [--small]

- registry: ``Environment.get`` (latest, and a version) and ``Environment.list`` with 1k, 10k and 100k
  versions registered (10 versions a name: 100, 1,000, 10,000 names), SQLite;
- snapshot: ``take_snapshot`` of a source folder of 100, 1,000 and 10,000 files (~1 KB each, 50 a
  folder), first into an empty blob store, then the same folder again unchanged;
- gc: ``prune`` of a build cache of 10, 100 and 1,000 entries (half referenced: the other half removed),
  and its dry run;
- lock: resolving a definition of 10, 50 and 200 packages (tiny generated wheels, 2 versions each, each
  depending on the previous three) against a local index on 127.0.0.1, fresh uv cache each time, Kiln's
  ``resolve`` next to ``uv pip compile --generate-hashes`` of the same requirements.

Every table prints the median of ``--rounds``, the cost per unit (per call for ``get``, per name, file,
entry or package otherwise) and its growth from the size before: a per-unit cost that grows more than
1.5x over a 10x (or 4x, 5x) step is flagged ``WORSE THAN LINEAR``. ``--small`` stops at the middle sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import UV
from localindex import LocalIndex

from kiln import CondaDependencies, Environment, Workspace

Row = tuple[str, int, float, float, float]  # (operation, size, median wall s, median CPU s, units of work)
FLAG = 1.5  # a per-unit cost growing more than this over one step is worse than linear


def cpu() -> float:
    """CPU seconds of this process and of the children it waited for (uv)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Samples:
    """Wall and CPU seconds of repeated blocks: ``with samples: ...``; medians of both."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Samples:
        self._start = (time.perf_counter(), cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(cpu() - self._start[1])

    def row(self, op: str, size: int, units: float) -> Row:
        return (op, size, statistics.median(self.wall), statistics.median(self.cpu), units)


def median_of(op: str, size: int, units: float, fn: Callable[[], object], rounds: int) -> Row:
    samples = Samples()
    for _ in range(rounds):
        with samples:
            fn()
    return samples.row(op, size, units)


def report(title: str, unit: str, rows: list[Row]) -> list[str]:
    """Print one table; return the flagged steps (judged on CPU time: wall time here waits on a shared disk)."""
    print(f"\n{title}")
    print(f"{'operation':42} {'size':>7} {'wall':>9} {'CPU':>9} {'wall/' + unit:>12} {'CPU/' + unit:>12} "
          f"{'CPU growth':>10}")
    flagged = []
    previous: dict[str, float] = {}
    for op, size, wall, cpu_s, units in rows:
        per = cpu_s / units
        growth = per / previous[op] if previous.get(op) else None
        flag = growth is not None and growth > FLAG
        if flag:
            flagged.append(f"{title}: {op} at {size:,}")
        print(f"{op:42} {size:7,} {wall * 1000:7.1f}ms {cpu_s * 1000:7.1f}ms {wall / units * 1e6:9.1f} us "
              f"{per * 1e6:9.1f} us {'' if growth is None else f'{growth:9.2f}x'}"
              f"{'  WORSE THAN LINEAR' if flag else ''}")
        previous[op] = per
    return flagged


# ---- registry ------------------------------------------------------------------------------------


def registry(rounds: int, sizes: list[int]) -> list[str]:
    rows: list[Row] = []
    for total in sizes:
        with tempfile.TemporaryDirectory(prefix="kiln-growth-") as tmp:
            rows += registry_at(total, rounds, Path(tmp) / "ws")
    return report("Registry (SQLite), by versions registered (10 a name)", "unit", rows)


def registry_at(total: int, rounds: int, folder: Path) -> list[Row]:
    names = total // 10
    ws = Workspace.create("growth", path=folder)
    store = ws.store
    # the fill only: SQLite without fsync (reads are unaffected), each version through the store's API
    store._connection().execute("PRAGMA synchronous=OFF")  # type: ignore[attr-defined]
    start = time.perf_counter()
    for n in range(names):
        env = Environment(f"env-{n:05d}")
        env.python.conda_dependencies = CondaDependencies.create(
            pip_packages=["numpy==1.26.4", "pandas==2.2.2", f"pkg{n}==1.0"], python_version="3.11")
        env.environment_variables = {"VERSION": "@V@"}
        template = env.definition_text()
        for v in range(1, 11):
            store.register_environment(name=env.name, definition=template.replace("@V@", str(v)),
                                       hash=f"sha256:{n}:{v}")
    print(f"registry: {total:,} versions filled in {time.perf_counter() - start:.1f} s", flush=True)
    ws.close()
    ws = Workspace(folder)
    rng = random.Random(0)
    calls = 500

    def get_latest() -> None:
        for _ in range(calls):
            Environment.get(ws, f"env-{rng.randrange(names):05d}")

    def get_version() -> None:
        for _ in range(calls):
            Environment.get(ws, f"env-{rng.randrange(names):05d}", str(rng.randint(1, 10)))

    get_latest()  # warm the page cache and the connection
    rows = [median_of("Environment.get(name) [a call]", total, calls, get_latest, rounds),
            median_of("Environment.get(name, version) [a call]", total, calls, get_version, rounds),
            median_of("Environment.list [a name]", total, names, lambda: Environment.list(ws), rounds)]
    ws.close()
    return rows


# ---- snapshots -----------------------------------------------------------------------------------


def snapshot(rounds: int, sizes: list[int]) -> list[str]:
    from kiln.workspace.snapshot import take_snapshot

    rows: list[Row] = []
    for files in sizes:
        with tempfile.TemporaryDirectory(prefix="kiln-growth-") as tmp:
            source = Path(tmp) / "src"
            rng = random.Random(files)
            for i in range(files):
                path = source / f"pkg{i // 50:04d}" / f"module_{i:05d}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f"# {i}\n".encode() + rng.randbytes(1000))
            first, again = Samples(), Samples()
            for r in range(rounds):
                ws = Workspace.create(f"growth{r}", path=Path(tmp) / f"ws{r}")
                with first:
                    shot = take_snapshot(source, ws.blobs)
                assert shot.files == files, shot
                with again:
                    same = take_snapshot(source, ws.blobs)
                assert same.new_bytes == 0 and same.id == shot.id
                ws.close()
            rows.append(first.row("first snapshot [a file]", files, files))
            rows.append(again.row("same folder again, unchanged [a file]", files, files))
    return report("Snapshots of a source folder, by files", "file", rows)


# ---- cache GC ------------------------------------------------------------------------------------


def gc(rounds: int, sizes: list[int]) -> list[str]:
    from kiln.builds.cache import BuildCache
    from kiln.builds.gc import prune

    rows: list[Row] = []
    for entries in sizes:
        dry, real = Samples(), Samples()
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="kiln-growth-") as tmp:
                cache = BuildCache(Path(tmp) / "cache")
                references = set()
                for i in range(entries):
                    key = hashlib.sha256(str(i).encode()).hexdigest()[:32]
                    with cache.locked(key):
                        stage = cache.stage(key)
                        for f in range(5):  # a tiny environment: a few files
                            (stage / "env" / "lib").mkdir(parents=True, exist_ok=True)
                            (stage / "env" / "lib" / f"f{f}.py").write_text("x = 1\n" * 100)
                        cache.publish(stage, key, {"lock_hash": f"lock{i}", "label": f"env{i}:1"})
                    os.utime(cache.root / "used" / key, (1e9 + i, 1e9 + i))
                    if i % 2:
                        references.add(f"lock{i}")
                with dry:
                    planned = prune(cache, references=references, dry_run=True)
                with real:
                    done = prune(cache, references=references)
                assert len(planned.removed) == len(done.removed) == entries - len(references)
                assert len(cache.entries()) == len(references)
        rows.append(dry.row("prune --dry-run [an entry]", entries, entries))
        rows.append(real.row("prune, half removed [an entry]", entries, entries))
    return report("Build cache GC, by entries", "entry", rows)


# ---- lock resolution -----------------------------------------------------------------------------


def tiny_wheel(folder: Path, name: str, version: str, requires: list[str]) -> None:
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n", f"{info}/METADATA": meta,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{m},,\n" for m in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for member, text in files.items():
            z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)


def lock(rounds: int, sizes: list[int]) -> list[str]:
    from kiln.builds.interpreters import discover, select
    from kiln.builds.resolver import resolve

    interpreter = select("3.11", discover(), default="3.11")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kiln-growth-") as tmp:
        wheels = Path(tmp) / "wheels"
        wheels.mkdir()
        top = max(sizes)
        for i in range(top):
            for version in ("1.0", "1.1"):
                tiny_wheel(wheels, f"gpkg{i:03d}", version, [f"gpkg{j:03d}>=1.0" for j in range(max(0, i - 3), i)])
        with LocalIndex(wheels, Path(tmp) / "index") as index:
            for size in sizes:
                packages = [f"gpkg{i:03d}" for i in range(size)]
                env = Environment(f"growth-{size}")
                env.python.conda_dependencies = CondaDependencies.create(pip_packages=packages, python_version="3.11")
                env.python.conda_dependencies.set_pip_option(f"--index-url {index.url}")
                kiln_s, uv_s = Samples(), Samples()
                for r in range(rounds):
                    for tool in (["kiln", "uv"] if r % 2 == 0 else ["uv", "kiln"]):
                        cache = Path(tmp) / f"uv-cache-{size}-{r}-{tool}"
                        os.environ["UV_CACHE_DIR"] = str(cache)  # a fresh one: run_uv passes it on
                        if tool == "kiln":
                            with kiln_s:
                                got = resolve(env, interpreter, cache_dir=Path(tmp) / "kiln-cache")
                            assert len(got.packages) == size
                        else:
                            with uv_s:
                                subprocess.run([UV, "pip", "compile", "-q", "--no-config", "--generate-hashes",
                                                "--index-url", index.url, "--python", interpreter.path, "-"],
                                               input="\n".join(packages), capture_output=True, text=True, check=True)
                        shutil.rmtree(cache, ignore_errors=True)
                os.environ.pop("UV_CACHE_DIR", None)
                k, u = kiln_s.row("Kiln resolve (a lock) [a package]", size, size), uv_s.row(
                    "uv pip compile --generate-hashes [a package]", size, size)
                print(f"lock: {size} packages: Kiln {k[2]:.3f} s, uv pip compile {u[2]:.3f} s, ratio {k[2] / u[2]:.3f}"
                      f" (CPU {k[3]:.3f} / {u[3]:.3f} s)", flush=True)
                rows += [k, u]
    return report("Lock resolution against a local index, by packages (fresh uv cache)", "package", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="registry,snapshot,gc,lock")
    parser.add_argument("--small", action="store_true", help="stop at the middle sizes (a quick look)")
    args = parser.parse_args()
    parts = {
        "registry": (registry, [1_000, 10_000, 100_000]),
        "snapshot": (snapshot, [100, 1_000, 10_000]),
        "gc": (gc, [10, 100, 1_000]),
        "lock": (lock, [10, 50, 200]),
    }
    flagged: list[str] = []
    started = time.perf_counter()
    for name in args.only.split(","):
        fn, sizes = parts[name]
        flagged += fn(args.rounds, sizes[:2] if args.small else sizes)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s; worse than linear: {', '.join(flagged) or 'none'}")


if __name__ == "__main__":
    main()
