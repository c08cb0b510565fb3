"""A first build from a team's private index (pypiserver with basic auth, credentials as ``${VAR}``) against
the same packages from PyPI, and from the same index without auth: what the private path costs.

    .venv/bin/python bench/team_index.py [--rounds 3]

The packages (requests and its dependencies, pinned); their ``py3-none-any``
wheels are fetched from PyPI into a throwaway pypiserver's folder on 127.0.0.1 (the same files as PyPI
serves). Each round builds one definition per source with ``Environment.build_local`` in a fresh workspace,
a fresh Kiln cache and a fresh uv cache (so every build downloads everything), the order rotating from
round to round; medians are printed side by side with the ratio to PyPI. The servers are stopped by pid.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.uv import uv_binary

PACKAGES = ["requests==2.32.3", "urllib3==2.2.3", "idna==3.10", "certifi==2024.8.30", "six==1.16.0",
            "attrs==24.2.0", "packaging==24.1"]


def fetch_wheels(folder: Path) -> None:
    """The pure (``py3``, ``none-any``) wheel of each pin, from PyPI's JSON simple API, checked against its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    for pin in PACKAGES:
        name, version = pin.split("==")
        request = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            files = json.load(answer)["files"]
        prefix = f"{name.replace('-', '_')}-{version}-"
        (wheel,) = [f for f in files if f["filename"].lower().startswith(prefix)
                    and f["filename"].endswith("-none-any.whl") and "py3" in f["filename"]][:1]
        with urllib.request.urlopen(wheel["url"], timeout=120) as answer:
            data = answer.read()
        assert hashlib.sha256(data).hexdigest() == wheel["hashes"]["sha256"], wheel["filename"]
        (folder / wheel["filename"]).write_bytes(data)


@contextmanager
def pypiserver(packages: Path, *, user: str | None, token: str | None) -> Iterator[str]:
    """pypiserver on 127.0.0.1 (basic auth on every request when ``user`` is given); yields ``host:port``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    auth = ["-P", ".", "-a", "."]
    if user is not None and token is not None:
        htpasswd = packages.parent / "htpasswd"
        sha = base64.b64encode(hashlib.sha1(token.encode()).digest()).decode()
        htpasswd.write_text(f"{user}:{{SHA}}{sha}\n", encoding="utf-8")
        auth = ["-P", str(htpasswd), "-a", "download,list,update"]
    proc = subprocess.Popen([sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port), *auth,
                             str(packages)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=5)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("pypiserver didn't start") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def build_once(root: Path, label: str, options: list[str]) -> float:
    """Seconds for a first build of the pins with ``options``, with every cache empty."""
    os.environ["KILN_CACHE_DIR"] = str(root / "kiln-cache")
    os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")
    ws = Workspace.create("bench", path=root / "ws")
    env = Environment(f"bench-{label}")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=PACKAGES, python_version="3.12")
    for option in options:
        env.python.conda_dependencies.set_pip_option(option)
    registered = env.register(ws)
    start = time.perf_counter()
    result = registered.build_local(ws)
    elapsed = time.perf_counter() - start
    assert not result.cache_hit and result.lock is not None and len(result.lock.packages) >= len(PACKAGES)
    ws.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uv_binary()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-index-") as tmp:
        root = Path(tmp)
        os.environ["KILN_HOME"] = str(root / "home")
        packages = root / "packages"
        fetch_wheels(packages)
        os.environ["BENCH_INDEX_USER"], os.environ["BENCH_INDEX_TOKEN"] = "team", "bench-token"
        with pypiserver(packages, user="team", token="bench-token") as private, \
                pypiserver(packages, user=None, token=None) as open_index:
            sources = {
                "PyPI (public)": [],
                "private index, basic auth": [f"--index-url http://${{BENCH_INDEX_USER}}:${{BENCH_INDEX_TOKEN}}@"
                                              f"{private}/simple"],
                "same index, no auth": [f"--index-url http://{open_index}/simple"],
            }
            times: dict[str, list[float]] = {label: [] for label in sources}
            labels = list(sources)
            for n in range(args.rounds):
                for i in range(len(labels)):
                    label = labels[(n + i) % len(labels)]
                    folder = root / f"r{n}-{i}"
                    seconds = build_once(folder, f"{n}-{i}", sources[label])
                    times[label].append(seconds)
                    print(f"round {n + 1}: {label}: {seconds:.2f} s", flush=True)
    public = statistics.median(times["PyPI (public)"])
    print(f"\n{'source':28} {'median s':>9} {'vs PyPI':>8}   "
          f"({args.rounds} rounds, {len(PACKAGES)} pins, empty caches)")
    for label, samples in times.items():
        median = statistics.median(samples)
        print(f"{label:28} {median:9.2f} {median / public:8.2f}")


if __name__ == "__main__":
    main()
