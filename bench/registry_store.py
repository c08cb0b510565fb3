"""Registry store speed: 10,000 environment versions (1,000 names x 10 versions) in SQLite.

    .venv/bin/python bench/registry_store.py [--names 1000] [--versions 10] [--keep DIR]

Prints the median and p99 of each operation in milliseconds. Aims: ``get_environment`` under
2 ms median, ``list_environments`` (the latest of every name) under 100 ms, opening an existing
store and answering one ``get`` well under 5 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kiln.workspace.store import SqliteStore

PACKAGES = [
    "numpy", "pandas", "scikit-learn", "scipy", "torch", "torchvision", "transformers", "datasets",
    "azureml-defaults", "azureml-core", "mlflow", "matplotlib", "seaborn", "pyarrow", "onnxruntime",
    "lightgbm", "xgboost", "joblib", "requests", "pydantic", "fastapi", "uvicorn", "tqdm", "pillow",
]  # fmt: skip


def definition(name: str, version: int) -> str:
    """A realistic canonical definition of about 2 KB."""
    rng = random.Random(f"{name}-{version}")
    pip = sorted(f"{p}=={rng.randint(0, 3)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}" for p in rng.sample(PACKAGES, 18))
    body = {
        "docker": {
            "base_image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20240101.v1",
            "base_dockerfile": None,
            "arguments": [],
            "enabled": False,
            "shm_size": "2g",
        },
        "python": {
            "interpreter_path": "python",
            "user_managed_dependencies": False,
            "conda_dependencies": {
                "name": "project_environment",
                "channels": ["conda-forge", "defaults"],
                "dependencies": [
                    f"python=3.{rng.randint(8, 12)}",
                    "pip=23.3.1",
                    {"pip": pip},
                    "cudatoolkit=11.8",
                    "nccl",
                ],
            },
        },
        "environment_variables": {
            "EXAMPLE_ENV_VAR": "EXAMPLE_VALUE",
            "AZUREML_ENTRY_SCRIPT": "score.py",
            "OMP_NUM_THREADS": str(rng.randint(1, 16)),
        },
        "spark": {"repositories": [], "packages": [], "precache_packages": True},
        "r": None,
        "databricks": {"maven_libraries": [], "pypi_libraries": [], "egg_libraries": []},
        "inferencing_stack_version": None,
        "build": {"notes": "x" * rng.randint(700, 1000)},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def measure(label: str, repeat: int, op: Callable[[], object]) -> None:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        op()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{label:<44} median {statistics.median(times):8.3f} ms   p99 {p99:8.3f} ms   (n={repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="put the database in this folder and keep it")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="kiln-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kiln.db"
    path.unlink(missing_ok=True)
    names = [f"env-{i:05d}" for i in range(args.names)]

    store = SqliteStore(path)
    sizes = []
    start = time.perf_counter()
    for version in range(1, args.versions + 1):
        for name in names:
            text = definition(name, version)
            sizes.append(len(text))
            store.register_environment(name=name, definition=text, hash=f"sha256:{name}:{version}")
    fill = time.perf_counter() - start
    total = len(names) * args.versions
    print(f"filled {total} versions (definitions ~{statistics.mean(sizes) / 1024:.1f} KB) in {fill:.1f} s "
          f"({fill / total * 1000:.2f} ms per register); file {path.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    store.close()

    store = SqliteStore(path)
    rng = random.Random(0)
    measure("get_environment(latest)", 5000, lambda: store.get_environment(name=rng.choice(names)))
    measure(
        "get_environment(version=N)",
        5000,
        lambda: store.get_environment(name=rng.choice(names), version=rng.randint(1, args.versions)),
    )
    measure("list_environment_versions", 1000, lambda: store.list_environment_versions(name=rng.choice(names)))
    measure(f"list_environments ({len(names)} latest)", 100, store.list_environments)
    latest = [(name, definition(name, args.versions)) for name in names]

    def register_identical() -> None:
        name, text = rng.choice(latest)
        store.register_environment(name=name, definition=text, hash="x")

    measure("register_environment(identical)", 2000, register_identical)
    store.close()

    def open_and_get() -> None:
        opened = SqliteStore(path)
        opened.get_environment(name=names[0])
        opened.close()

    measure("open existing store + one get", 500, open_and_get)

    counter = iter(range(10**9))
    store = SqliteStore(path)
    measure(
        "register_environment(new version)",
        300,
        lambda: store.register_environment(name="bench-new", definition=f"{next(counter)}" * 500, hash="x"),
    )
    store.close()
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        folder.rmdir()


if __name__ == "__main__":
    main()
