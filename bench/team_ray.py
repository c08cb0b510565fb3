"""Ray as a compute target: submit-to-first-output on a warm cluster, Kiln against Ray's own pip runtime env.

Starts a throwaway Ray head on 127.0.0.1 (its own temp folder, stopped by its pids), warms it with one job,
then for each round a new set of pins (so a new environment for both):

- Kiln, first run: ``ScriptRunConfig(compute_target="ray-dev")``; locks here (resolving), the node builds
  from the lock (its build cache is cold for this lock);
- Kiln, second run of the same environment: the lock is stored, the node's build is a cache hit;
- Ray, first job with ``runtime_env={"pip": [...]}`` of the same pins (Ray installs into a new virtualenv
  for each new runtime-env hash, and locks nothing);
- Ray, second job with the same ``pip`` list (Ray's runtime-env cache).

Each time is from the submit call to the script's first line in the job's log. Prints medians over the
rounds and ratios against Ray's pip job, side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kiln.runs.targets.ray_client import TERMINAL, JobsClient

RAY_VARIABLES = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
#: one pin set per round: each is a new environment (a new lock for Kiln, a new runtime-env hash for Ray)
PINS = [("six==1.16.0", "attrs==23.2.0"), ("six==1.15.0", "attrs==23.1.0"), ("six==1.14.0", "attrs==22.2.0"),
        ("six==1.13.0", "attrs==22.1.0"), ("six==1.12.0", "attrs==21.4.0")]
MARK = "first-output"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pids(leader: int, folder: Path) -> list[int]:
    found, mark = [], str(folder).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z" and (int(fields[3]) == leader or mark in cmdline or mark in environ):
            found.append(int(entry))
    return found


@contextmanager
def ray_head(folder: Path) -> Iterator[str]:
    """A Ray head (the dashboard's address), stopped by its pids at the end (never `ray stop`)."""
    ray = Path(sys.executable).parent / "ray"
    gcs, dashboard = _port(), _port()
    env = {**os.environ, **RAY_VARIABLES, "KILN_HOME": str(folder / "node-home"),
           "KILN_CACHE_DIR": str(folder / "node-home" / "cache"), "UV_PYTHON_DOWNLOADS": "never",
           "PATH": f"{ray.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(folder / "head.log", "wb") as log:
        head = subprocess.Popen([str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                                 "--num-cpus=2", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                                 f"--dashboard-port={dashboard}", f"--temp-dir={folder}", "--disable-usage-stats"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{address}/api/jobs/", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline or head.poll() is not None:
                raise SystemExit(f"the Ray head did not start: {(folder / 'head.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=15)
        for _ in range(50):
            pids = _pids(head.pid, folder)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        head.wait()


def _until(predicate: Callable[[], bool], what: str, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def ray_pip_job(client: JobsClient, pins: tuple[str, ...]) -> float:
    """Seconds from ``submit_job`` to the script's first line, with Ray's own pip runtime env (the same Jobs
    API client as Kiln's: Ray's own ``JobSubmissionClient`` would add its import time to neither)."""

    code = "import six, attr; print('" + MARK + "', six.__version__, attr.__version__, flush=True)"
    started = time.monotonic()
    job = client.submit_job(entrypoint=f'python -c "{code}"', runtime_env={"pip": list(pins)})

    def said() -> bool:
        status = client.job_status(job)
        if MARK in client.job_logs(job):
            return True
        if status in TERMINAL:
            info = client.job_info(job)
            raise SystemExit(f"the Ray job failed: {info.get('message')}\n{client.job_logs(job)[-2000:]}")
        return False

    _until(said, "Ray's pip job")
    seconds = time.monotonic() - started
    _until(lambda: client.job_status(job) in TERMINAL, "Ray's job to end")
    return seconds


def kiln_run(ws: object, source: Path, pins: tuple[str, ...]) -> float:
    """Seconds from ``Experiment.submit`` to the script's first line, on the attached cluster."""
    from kiln import CondaDependencies, Environment, Experiment, ScriptRunConfig

    env = Environment("bench-" + "-".join(p.replace("==", "").replace(".", "") for p in pins))
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(pins))
    config = ScriptRunConfig(source_directory=str(source), script="train.py", compute_target="ray-dev",
                             environment=env)
    started = time.monotonic()
    run = Experiment(ws, "bench-ray").submit(config)  # type: ignore[arg-type]
    _until(lambda: MARK in run.get_output() or run.status in ("Failed", "Canceled"), "Kiln's run")
    seconds = time.monotonic() - started
    details = run.wait_for_completion(raise_on_error=False)
    if details["status"] != "Completed":
        raise SystemExit(f"the Kiln run failed: {run.get_output()[-2000:]}")
    return seconds


def measure(rounds: int) -> dict[str, list[float]]:
    from kiln import ComputeTarget, RayCompute, Workspace

    times: dict[str, list[float]] = {"kiln first": [], "kiln second": [], "ray pip first": [], "ray pip second": []}
    folder = Path(tempfile.mkdtemp(prefix="kiln-bray-"))  # short: Ray's socket paths
    os.environ.update({"KILN_HOME": str(folder / "home"), "KILN_CACHE_DIR": str(folder / "cache")})
    try:
        with ray_head(folder) as address:
            client = JobsClient(address)
            warm = client.submit_job(entrypoint="python -c 'print(1)'")  # once the head's job agent is up
            _until(lambda: client.job_status(warm) in TERMINAL, "the warm-up job")
            ws = Workspace.create("bench", path=folder / "ws")
            ComputeTarget.attach(ws, "ray-dev", RayCompute.attach_configuration(address=address))
            source = folder / "src"
            source.mkdir()
            (source / "train.py").write_text(textwrap.dedent(f"""\
                import six, attr
                print("{MARK}", six.__version__, attr.__version__, flush=True)
            """))
            for pins in PINS[:rounds]:
                # alternate who goes first, so neither always meets a quieter machine
                order = ["kiln", "ray"] if len(times["kiln first"]) % 2 == 0 else ["ray", "kiln"]
                for who in order:
                    if who == "kiln":
                        times["kiln first"].append(kiln_run(ws, source, pins))
                        times["kiln second"].append(kiln_run(ws, source, pins))
                    else:
                        times["ray pip first"].append(ray_pip_job(client, pins))
                        times["ray pip second"].append(ray_pip_job(client, pins))
                print(" ".join(f"{k}={v[-1]:.2f}s" for k, v in times.items()), flush=True)
            ws.close()
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return times


def report(times: dict[str, list[float]]) -> None:
    base = statistics.median(times["ray pip first"])
    print(f"{'submit -> first output (warm cluster)':40} {'median s':>9} {'min s':>7} {'max s':>7} "
          f"{'/ ray pip first':>15}")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label:40} {median:9.2f} {min(values):7.2f} {max(values):7.2f} {median / base:15.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"pin sets to run (1-{len(PINS)}; default 3)")
    args = parser.parse_args(argv)
    report(measure(max(1, min(args.rounds, len(PINS)))))


if __name__ == "__main__":
    main()
