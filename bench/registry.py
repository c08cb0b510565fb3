"""Registry speed through the public API: 10,000 registered environment versions.

    .venv/bin/python bench/registry.py [--names 1000] [--versions 10]

Fills a fresh SQLite workspace (through the store, to keep the fill quick; the definitions are
real ``Environment`` definitions), then times ``Environment.get`` (latest and by version) and
``Environment.list`` (the latest of every name, curated included), printing median and p99 in ms.
Aims (issue #2): get under 2 ms median; list of all latest under 100 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kiln import CondaDependencies, Environment, Workspace

PACKAGES = ["numpy", "pandas", "scikit-learn", "scipy", "matplotlib", "requests", "pyarrow", "lightgbm",
            "xgboost", "joblib", "pydantic", "fastapi", "uvicorn", "tqdm", "pillow", "mlflow", "onnxruntime"]


def make_env(name: str, version: int) -> Environment:
    rng = random.Random(f"{name}:{version}")
    env = Environment(name)
    pip = [f"{p}=={rng.randint(0, 3)}.{rng.randint(0, 30)}.{version}" for p in rng.sample(PACKAGES, 12)]
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=pip, python_version="3.11")
    env.environment_variables = {"OMP_NUM_THREADS": str(rng.randint(1, 16))}
    return env


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create("bench", path=Path(tmp) / "ws")
        start = time.perf_counter()
        for n in range(args.names):
            for v in range(1, args.versions + 1):
                env = make_env(f"env-{n:05d}", v)
                ws.store.register_environment(name=env.name, definition=env.definition_text(), hash=env.hash)
        fill = time.perf_counter() - start
        total = args.names * args.versions
        print(f"filled {total} versions ({args.names} names x {args.versions}) in {fill:.1f} s")
        rng = random.Random(0)
        names = [f"env-{rng.randrange(args.names):05d}" for _ in range(2000)]
        it = iter(names)
        rows = [
            ("Environment.get(name) latest", *timed(lambda: Environment.get(ws, next(it)), 1000), 2.0),
            ("Environment.get(name, version)",
             *timed(lambda: Environment.get(ws, next(it), str(rng.randint(1, args.versions))), 1000), 2.0),
            (f"Environment.list ({args.names} + curated)", *timed(lambda: Environment.list(ws), 20), 100.0),
        ]
        print(f"{'operation':42} {'median ms':>10} {'p99 ms':>10} {'aim ms':>8} {'median/aim':>11}")
        for label, median, p99, aim in rows:
            print(f"{label:42} {median:10.3f} {p99:10.3f} {aim:8.1f} {median / aim:11.3f}")


if __name__ == "__main__":
    main()
