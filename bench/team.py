"""A team's store: PostgreSQL against SQLite, for the same 10,000 versions and 16 concurrent writers.

    .venv/bin/python bench/team.py [--names 1000] [--versions 10] [--writers 16] [--each 20] [--url URL] [--ray ROUNDS]

Without ``--url`` a throwaway PostgreSQL server (Debian's ``postgresql`` package, as the tests
start it) runs on 127.0.0.1 in a temp folder and is stopped at the end; with it, ``URL`` must name
an empty database. For each store: fill 10,000 versions (through the store), time
``Environment.get`` (latest and by version), ``Environment.list``, registering a new version, and
the throughput of ``--writers`` processes each registering ``--each`` new versions at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry import make_env, timed

from kiln import Environment, Workspace

PG_BIN = Path(os.environ.get("KILN_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))

WRITER = """
import sys, time
from kiln import Environment, Workspace
folder, go, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ws = Workspace(folder)
ws.store.schema_version
import os
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(count):
    env = Environment(name="team-shared")
    env.environment_variables["WHO"] = "%s-%d" % (worker, i)
    env.register(workspace=ws)
"""


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway server; yields the URL of an empty database on it."""
    folder = Path(tempfile.mkdtemp(prefix="kiln-pg-bench-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pid = 0
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "kiln", "--auth=trust",
                                     "--no-locale", "-E", "UTF8"]), check=True, capture_output=True)
        # fsync stays on: the figures are those of a server that keeps what it acknowledged
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                                     "-o", options, "start"]), check=True, capture_output=True)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql://kiln@127.0.0.1:{port}/postgres"
    finally:
        if pid:
            os.kill(pid, signal.SIGINT)
            while (data / "postmaster.pid").exists():
                time.sleep(0.05)
        shutil.rmtree(folder, ignore_errors=True)


def concurrent(ws: Workspace, writers: int, each: int) -> float:
    """Versions registered per second by ``writers`` processes at once."""
    go = ws.path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(ws.path), str(go), str(n), str(each)])
             for n in range(writers)]
    time.sleep(2.0)  # every process started and connected
    start = time.perf_counter()
    go.touch()
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a writer failed")
    elapsed = time.perf_counter() - start
    versions = [r.version for r in ws.store.list_environment_versions(name="team-shared")]
    assert versions == list(range(1, writers * each + 1)), "versions lost or repeated"
    return writers * each / elapsed


def measure(label: str, ws: Workspace, args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    import random

    start = time.perf_counter()
    for n in range(args.names):
        for v in range(1, args.versions + 1):
            env = make_env(f"env-{n:05d}", v)
            ws.store.register_environment(name=env.name, definition=env.definition_text(), hash=env.hash)
    print(f"{label}: filled {args.names * args.versions} versions in {time.perf_counter() - start:.1f} s",
          flush=True)
    rng = random.Random(0)
    names = iter([f"env-{rng.randrange(args.names):05d}" for _ in range(3000)])
    counter = iter(range(1, 10_000))

    def register() -> None:
        env = make_env("env-new", next(counter))
        env.register(workspace=ws)

    rows = [
        (label, "Environment.get(name) latest", *timed(lambda: Environment.get(ws, next(names)), 500)),
        (label, "Environment.get(name, version)",
         *timed(lambda: Environment.get(ws, next(names), str(rng.randint(1, args.versions))), 500)),
        (label, "store.get_environment (one query)", *timed(lambda: ws.store.get_environment(name=next(names)), 500)),
        (label, f"Environment.list ({args.names} + curated)", *timed(lambda: Environment.list(ws), 10)),
        (label, "register a new version", *timed(register, 200)),
    ]
    per_second = concurrent(ws, args.writers, args.each)
    rows.append((label, f"{args.writers} writers at once: versions/s", per_second, float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--each", type=int, default=20)
    parser.add_argument("--url", help="an empty PostgreSQL database (default: start a throwaway server)")
    parser.add_argument("--ray", type=int, metavar="ROUNDS", default=0,
                        help="also Ray as a compute target, ROUNDS pin sets (bench/team_ray.py; needs kiln[ray])")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("KILN_HOME", str(Path(tmp) / "home"))
        sqlite = Workspace.create("bench", path=Path(tmp) / "sqlite")
        rows += measure("SQLite", sqlite, args)
        sqlite.close()
        with (postgres_server() if args.url is None else _given(args.url)) as url:
            pg = Workspace.create("bench", path=Path(tmp) / "pg", store=url)
            rows += measure("PostgreSQL", pg, args)
            pg.close()
    print(f"{'store':11} {'operation':42} {'median':>10} {'p99 ms':>10}")
    for label, operation, median, p99 in rows:
        print(f"{label:11} {operation:42} {median:10.3f} {p99:10.3f}")
    if args.ray:
        import team_ray

        team_ray.main(["--rounds", str(args.ray)])


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
