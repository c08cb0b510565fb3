"""Serving: Kiln's scoring server against azmlinfsrv, MLflow and BentoML, side by side, and against the limit.

    .venv/bin/python bench/serve.py [--seconds 3] [--rounds 3] [--workers 1,2] [--concurrency 1,8,64]
                                    [--servers azmlinfsrv,mlflow,bentoml,kiln] [--no-memory]

Every server wraps the same predict (``serve_peers.PREDICT``): a trivial 4-weight linear model in pure Python, and
a scikit-learn random forest (50 trees, iris), on the same one-row input; each in its own venv (cached under
bench/.cache/serve, made with uv on first use), in its recommended production settings (``serve_peers``'s
docstring says which). For each script and worker count, every server is started (one at a time: the cold start,
process start to the first good answer), warmed up, measured (memory: RSS and PSS of the process and all its
children), then the rounds go server after server (wrk on 127.0.0.1, 2 threads) so that the machine's noise
falls on all of them alike; medians of the rounds are printed. Then each server once more with 4 workers, for
its memory.

The limit: the same predict called in a tight loop in one process on the same input (calls/s per worker); each
row prints its req/s as a fraction of limit x workers. The batching rows (Kiln ``--batching`` with
``run_batch``, BentoML adaptive batching) may pass 1: a batch pays for one predict call.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import KILN, UV
from serve_peers import (
    BODY,
    FEATURES,
    MLFLOW_BODY,
    PREDICT,
    SKLEARN,
    bentoml_service,
    entry_script,
    mlflow_model,
    peer_venv,
)

KINDS = ("trivial", "forest")
LIMIT = '''
import json, sys, time
{predict}
predict = load_predict(sys.argv[1], sys.argv[2])
rows = json.loads(sys.argv[3])
for _ in range(200):
    predict(rows)
rates = []
for _ in range(int(sys.argv[4])):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < float(sys.argv[5]):
        for _ in range(20):
            predict(rows)
        n += 20
    rates.append(n / (time.perf_counter() - start))
print(json.dumps(rates))
'''


@dataclass
class Server:
    label: str
    url: str
    body: str
    stop: Callable[[], None]
    root: int  # the process whose tree is measured
    cold: float
    runs: dict[int, list[tuple[float, float, float, int]]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_answer(url: str, body: str, started: float, proc: subprocess.Popen[bytes] | None,
                 timeout: float = 300.0) -> float:
    """Seconds from ``started`` to the first 200 from ``url`` (POST ``body``)."""
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    while time.perf_counter() - started < timeout:
        if proc is not None and proc.poll() not in (None, 0):
            raise SystemExit(f"the server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} never answered")


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def memory(root: int) -> tuple[float, float, int]:
    """RSS and PSS (MB) of ``root`` and all its descendants, and how many processes that is. PSS shares each page
    among the processes mapping it (forked workers share much): the honest sum; RSS counts shared pages again."""
    rss = pss = 0
    pids = descendants(root)
    for pid in pids:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
            pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return rss / 1024, pss / 1024, len(pids)


def wrk(url: str, concurrency: int, seconds: int, script: Path) -> tuple[float, float, float, int]:
    out = subprocess.run(["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert m is not None, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    failed = int(bad.group(1)) if bad else 0
    if errors:
        failed += sum(int(n) for n in re.findall(r"(\d+)", errors.group(0)))
    return rps, ms("50"), ms("99"), failed


def stop_group(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return stop


class Bench:
    def __init__(self, root: Path, env: dict[str, str], python: str, venvs: dict[str, Path]) -> None:
        self.root = root
        self.env = env
        self.python = python
        self.venvs = venvs
        self.app = root / "app"
        self.model_dir = root / "models" / "forest" / "1"
        self.mlflow_models: dict[str, Path] = {}
        self.lua = {"data": root / "data.lua", "mlflow": root / "mlflow.lua"}
        for name, body in (("data", BODY), ("mlflow", MLFLOW_BODY)):
            self.lua[name].write_text(f"wrk.method = \"POST\"\nwrk.body = '{body}'\n"
                                      "wrk.headers[\"Content-Type\"] = \"application/json\"\n")

    def peer_env(self, venv: Path) -> dict[str, str]:
        return {**self.env, "PATH": f"{venv / 'bin'}{os.pathsep}{self.env['PATH']}", "VIRTUAL_ENV": str(venv)}

    def start(self, label: str, kind: str, workers: int) -> Server:
        port = free_port()
        started = time.perf_counter()
        if label == "azmlinfsrv":
            venv = self.venvs[label]
            proc = subprocess.Popen([str(venv / "bin" / "azmlinfsrv"), "--entry_script", str(self.app / f"{kind}.py"),
                                     "--model_dir", str(self.model_dir), "--port", str(port), "--worker_count",
                                     str(workers)], cwd=self.app, env=self.peer_env(venv), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            url, body = f"http://127.0.0.1:{port}/score", BODY
        elif label == "mlflow":
            venv = self.venvs[label]
            proc = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m",
                                     str(self.mlflow_models[kind]), "--env-manager", "local", "-h", "127.0.0.1", "-p",
                                     str(port), "--workers", str(workers)], cwd=self.root, env=self.peer_env(venv),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            url, body = f"http://127.0.0.1:{port}/invocations", MLFLOW_BODY
        elif label.startswith("bentoml"):
            venv = self.venvs["bentoml"]
            folder = self.root / "bentoml" / f"{kind}-{workers}-{label}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "service.py").write_text(bentoml_service(kind, self.model_dir, workers=workers,
                                                               batching=label.endswith("batching")))
            proc = subprocess.Popen([str(venv / "bin" / "bentoml"), "serve", "service:Scorer", "--host", "127.0.0.1",
                                     "--port", str(port)], cwd=folder, env=self.peer_env(venv),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            url, body = f"http://127.0.0.1:{port}/score", BODY
        else:
            name = f"{kind}-{workers}-{label.replace('+', '-')}"
            proc = subprocess.Popen([KILN, "service", "deploy", "--name", name, "--entry-script", f"{kind}.py",
                                     "--source-dir", str(self.app), "--env", "serve-bench", "--port", str(port),
                                     "--workers", str(workers), "--model", "forest"]
                                    + (["--batching"] if label.endswith("batching") else []),
                                    env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            url = f"http://127.0.0.1:{port}/score"
            cold = first_answer(url, BODY, started, None)
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise SystemExit(f"kiln service deploy failed: {err.decode()}")
            shown = subprocess.run([KILN, "service", "show", name, "-o", "json"], env=self.env, check=True,
                                   capture_output=True, text=True).stdout
            pid = int(json.loads(shown)["data"]["pid"])

            def delete() -> None:
                subprocess.run([KILN, "service", "delete", name], env=self.env, capture_output=True, check=False)
            return Server(label, url, BODY, delete, pid, cold)
        cold = first_answer(url, body, started, proc)
        return Server(label, url, body, stop_group(proc), proc.pid, cold)

    def lua_for(self, server: Server) -> Path:
        return self.lua["mlflow" if server.body == MLFLOW_BODY else "data"]

    def limit(self, kind: str, rounds: int) -> list[float]:
        """Calls/s of the predict in a tight loop, ``rounds`` seconds, one figure a second."""
        out = subprocess.run([self.python, "-c", LIMIT.format(predict=PREDICT), kind, str(self.model_dir),
                              json.dumps(FEATURES), str(rounds), "1.0"], check=True, capture_output=True,
                             text=True).stdout
        return [float(x) for x in json.loads(out)]


def setup(root: Path, env: dict[str, str], servers: list[str]) -> Bench:
    print("setting up: the Kiln environment, the model, the peers' venvs (cached in bench/.cache/serve) ...",
          flush=True)
    subprocess.run([KILN, "workspace", "create", "bench", "-d", str(root / "ws"), "--no-config"], env=env,
                   check=True, capture_output=True)
    (root / "env.yml").write_text("name: serve-bench\ndependencies:\n  - python=3.11\n  - pip:\n"
                                  + "".join(f"    - {p}\n" for p in SKLEARN))
    subprocess.run([KILN, "env", "register", "-d", str(root / "env.yml")], env=env, check=True, capture_output=True)
    python = subprocess.run([KILN, "env", "python", "serve-bench"], env=env, check=True, capture_output=True,
                            text=True).stdout.strip()
    venvs = {name: peer_venv(name, UV, "3.11", env) for name in ("azmlinfsrv", "mlflow", "bentoml")
             if any(s.startswith(name) for s in servers)}
    bench = Bench(root, env, python, venvs)
    bench.app.mkdir()
    for kind in KINDS:
        (bench.app / f"{kind}.py").write_text(entry_script(kind))
    bench.model_dir.mkdir(parents=True)
    target = str(bench.model_dir / "model.pkl")
    subprocess.run([python, "-c", "import pickle; from sklearn.datasets import load_iris; "
                    "from sklearn.ensemble import RandomForestClassifier as R; X, y = load_iris(return_X_y=True); "
                    f"pickle.dump(R(n_estimators=50, random_state=0).fit(X, y), open({target!r}, 'wb'))"],
                   check=True)
    subprocess.run([KILN, "model", "register", target, "--name", "forest"], env=env, check=True, capture_output=True)
    if "mlflow" in venvs:
        for kind in KINDS:
            code = root / "mlflow" / f"{kind}_model.py"
            code.parent.mkdir(exist_ok=True)
            code.write_text(mlflow_model(kind, bench.model_dir))
            bench.mlflow_models[kind] = root / "mlflow" / kind
            subprocess.run([str(venvs["mlflow"] / "bin" / "python"), "-W", "ignore", "-c",
                            "import sys, mlflow; mlflow.pyfunc.save_model(sys.argv[1], python_model=sys.argv[2])",
                            str(bench.mlflow_models[kind]), str(code)], env=bench.peer_env(venvs["mlflow"]),
                           cwd=root, check=True, capture_output=True)
    return bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--servers", default="azmlinfsrv,mlflow,bentoml,bentoml+batching,kiln,kiln+batching")
    parser.add_argument("--scripts", default=",".join(KINDS))
    parser.add_argument("--no-memory", action="store_true", help="skip the 4-worker memory pass")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    labels = args.servers.split(",")
    kinds = args.scripts.split(",")
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="kiln-bench-serve-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "KILN_HOME": str(root / "home"), "KILN_CACHE_DIR": str(root / "home" / "cache"),
               "UV_PYTHON_DOWNLOADS": "never", "KILN_WORKSPACE": str(root / "ws"),
               "BENTOML_HOME": str(root / "bentoml-home"), "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1",
               "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"file://{root / 'mlruns'}"}
        bench = setup(root, env, labels)
        # the limit is measured again in every round, beside the servers: the machine's noise falls on it too
        samples = {kind: bench.limit(kind, 2) for kind in kinds}
        print("limit (calls/s, one process): " + ", ".join(f"{k} {statistics.median(v):,.0f}"
                                                            for k, v in samples.items()), flush=True)
        table: list[tuple[str, int, int, str, list[tuple[float, float, float, int]]]] = []
        starts: dict[tuple[str, str, int], tuple[float, float, float, int]] = {}
        for kind in kinds:
            for workers in worker_counts:
                running: list[Server] = []
                try:
                    for label in labels:
                        server = bench.start(label, kind, workers)
                        running.append(server)
                        wrk(server.url, 8, 1, bench.lua_for(server))  # warm-up
                        starts[(label, kind, workers)] = (server.cold, *memory(server.root))
                        print(f"  {kind} {label} x{workers}: first answer {server.cold:.2f} s", flush=True)
                    for r in range(args.rounds):
                        for server in running if r % 2 == 0 else reversed(running):
                            for c in levels:
                                server.runs.setdefault(c, []).append(
                                    wrk(server.url, c, args.seconds, bench.lua_for(server)))
                        samples[kind] += bench.limit(kind, 1)
                finally:
                    for server in running:
                        server.stop()
                for server in running:
                    for c in levels:
                        table.append((kind, workers, c, server.label, server.runs[c]))
        if not args.no_memory:
            for kind in kinds:
                for label in labels:
                    if label.endswith("batching"):
                        continue
                    server = bench.start(label, kind, 4)
                    try:
                        wrk(server.url, 8, 2, bench.lua_for(server))
                        starts[(label, kind, 4)] = (server.cold, *memory(server.root))
                    finally:
                        server.stop()
        limits = {kind: float(statistics.median(v)) for kind, v in samples.items()}
        report(table, starts, limits, labels, kinds)


def med(runs: list[tuple[float, float, float, int]], i: int) -> float:
    return float(statistics.median(r[i] for r in runs))


def report(table: list[tuple[str, int, int, str, list[tuple[float, float, float, int]]]],
           starts: dict[tuple[str, str, int], tuple[float, float, float, int]], limits: dict[str, float],
           labels: list[str], kinds: list[str]) -> None:
    rps = {(k, w, c, s): med(runs, 0) for k, w, c, s, runs in table}
    print(f"\nmedians of {len(table[0][4]) if table else 0} rounds; limit = the predict in a loop, calls/s per worker: "
          + ", ".join(f"{k} {v:,.0f}" for k, v in limits.items()))
    print(f"{'script':8} {'wk':>2} {'conc':>4} {'server':17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5} "
          f"{'x azml':>7} {'/limit':>7}")
    for kind, workers, c, label, runs in table:
        base = rps.get((kind, workers, c, "azmlinfsrv"))
        ratio = f"{rps[(kind, workers, c, label)] / base:7.2f}" if base else f"{'-':>7}"
        of_limit = rps[(kind, workers, c, label)] / (limits[kind] * workers)
        print(f"{kind:8} {workers:2d} {c:4d} {label:17} {med(runs, 0):8.0f} {med(runs, 1):8.2f} {med(runs, 2):8.2f} "
              f"{sum(r[3] for r in runs):5d} {ratio} {of_limit:7.3f}")
    print("\nratios (median req/s)")
    for kind, workers, c in sorted({(k, w, c) for k, w, c, _ in rps}, key=lambda t: (kinds.index(t[0]), t[1], t[2])):
        parts = []
        kiln = rps.get((kind, workers, c, "kiln"))
        peers = {s: v for (k, w, cc, s), v in rps.items() if (k, w, cc) == (kind, workers, c)
                 and s not in ("kiln", "kiln+batching") and not s.endswith("batching")}
        if kiln and peers:
            best = max(peers, key=peers.__getitem__)
            parts.append(f"kiln / best peer ({best}) {kiln / peers[best]:.2f}")
        batched = rps.get((kind, workers, c, "kiln+batching"))
        if kiln and batched:
            parts.append(f"kiln+batching / kiln {batched / kiln:.2f}")
        bento = rps.get((kind, workers, c, "bentoml+batching"))
        if batched and bento:
            parts.append(f"kiln+batching / bentoml+batching {batched / bento:.2f}")
        print(f"  {kind:8} x{workers} c={c:<3} " + "; ".join(parts))
    print(f"\n{'script':8} {'server':17} {'wk':>2} {'first answer s':>14} {'RSS MB':>8} {'PSS MB':>8} {'procs':>5}")
    for (label, kind, workers), (cold, rss, pss, procs) in sorted(
            starts.items(), key=lambda kv: (kinds.index(kv[0][1]), labels.index(kv[0][0]), kv[0][2])):
        print(f"{kind:8} {label:17} {workers:2d} {cold:14.2f} {rss:8.0f} {pss:8.0f} {procs:5d}")
    print(json.dumps({"limits": limits, "runs": {f"{k}|{w}|{c}|{s}": runs for k, w, c, s, runs in table},
                      "starts": {f"{s}|{k}|{w}": v for (s, k, w), v in starts.items()}}))


if __name__ == "__main__":
    main()
