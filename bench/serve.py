"""Serving throughput and latency: Kiln's scoring server against Azure ML's (azmlinfsrv), side by side.

    .venv/bin/python bench/serve.py [--seconds 5] [--workers 1] [--concurrency 1,8,64]

The same entry scripts, the same number of workers, one run: a trivial ``run()`` and a
scikit-learn random forest (50 trees, iris), each at the given concurrencies, measured with wrk
(installed with apt-get if missing) on 127.0.0.1. Then Kiln's opt-in micro-batching
(``run_batch``) on the random forest. Prints requests/s, p50 and p99 for both, and the ratios.
Aims (issue #5): trivial >= 5x azmlinfsrv at concurrency 8 with a lower p99; random forest >= 1.3x
at concurrency 64, >= 3x with micro-batching.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
KILN = str(BIN / "kiln")
UV = str(BIN / "uv")
SKLEARN = ["scikit-learn==1.9.1", "numpy==2.4.6"]

TRIVIAL = '''import json
def init():
    pass
def run(raw_data):
    return {"echo": json.loads(raw_data)}
'''
FOREST = '''import json, os, pickle
import numpy as np
model = None
def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as f:
        model = pickle.load(f)
def run(raw_data):
    return model.predict(np.array(json.loads(raw_data)["data"])).tolist()
def run_batch(raws):
    rows = [json.loads(r)["data"] for r in raws]
    sizes = [len(r) for r in rows]
    flat = model.predict(np.array([x for r in rows for x in r])).tolist()
    out, i = [], 0
    for n in sizes:
        out.append(flat[i:i + n])
        i += n
    return out
'''
BODY = '{"data": [[5.1, 3.5, 1.4, 0.2]]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never became healthy")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", default="1,8,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        if shutil.which("wrk") is None:
            subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="kiln-bench-serve-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "KILN_HOME": str(root / "home"), "KILN_CACHE_DIR": str(root / "home" / "cache"),
               "UV_PYTHON_DOWNLOADS": "never", "KILN_WORKSPACE": str(root / "ws")}
        app = root / "app"
        app.mkdir()
        (app / "trivial.py").write_text(TRIVIAL)
        (app / "forest.py").write_text(FOREST)
        lua = root / "post.lua"
        lua.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                       'wrk.headers["Content-Type"] = "application/json"\n')

        print("setting up: azmlinfsrv venv, Kiln environment, model ...", flush=True)
        base = subprocess.run([KILN, "env", "python", "Kiln-minimal-py311"], env=env, capture_output=True, text=True)
        del base
        subprocess.run([KILN, "workspace", "create", "bench", "-d", str(root / "ws"), "--no-config"], env=env,
                       check=True, capture_output=True)
        (root / "env.yml").write_text("name: serve-bench\ndependencies:\n  - python=3.11\n  - pip:\n"
                                      + "".join(f"    - {p}\n" for p in SKLEARN))
        subprocess.run([KILN, "env", "register", "-d", str(root / "env.yml")], env=env, check=True,
                       capture_output=True)
        python = subprocess.run([KILN, "env", "python", "serve-bench"], env=env, check=True, capture_output=True,
                                text=True).stdout.strip()
        model_dir = root / "models" / "forest" / "1"
        model_dir.mkdir(parents=True)
        target = str(model_dir / "model.pkl")
        subprocess.run([python, "-c", "import pickle; from sklearn.datasets import load_iris; "
                        "from sklearn.ensemble import RandomForestClassifier as R; X, y = load_iris(return_X_y=True); "
                        f"pickle.dump(R(n_estimators=50, random_state=0).fit(X, y), open({target!r}, 'wb'))"],
                       check=True)
        subprocess.run([KILN, "model", "register", str(model_dir / "model.pkl"), "--name", "forest"], env=env,
                       check=True, capture_output=True)
        azml = root / "azml"
        subprocess.run([UV, "venv", "-q", "--python", python.replace("/bin/python", "/bin/python3"), str(azml)],
                       env=env, check=True)
        subprocess.run([UV, "pip", "install", "-q", "--python", str(azml / "bin" / "python"),
                        "azureml-inference-server-http==1.5.1", *SKLEARN], env=env, check=True)

        results: dict[tuple[str, str, int], tuple[float, float, float, int]] = {}
        for script in ("trivial", "forest"):
            # Azure ML's server
            port = free_port()
            proc = subprocess.Popen([str(azml / "bin" / "azmlinfsrv"), "--entry_script", str(app / f"{script}.py"),
                                     "--model_dir", str(model_dir), "--port", str(port), "--worker_count",
                                     str(args.workers)], cwd=app, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_healthy(f"http://127.0.0.1:{port}/")
                for c in levels:
                    results[("azmlinfsrv", script, c)] = wrk(f"http://127.0.0.1:{port}/score", c, args.seconds, lua)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            # Kiln's server, then (forest) with micro-batching
            modes = [("kiln", False)] + ([("kiln+batching", True)] if script == "forest" else [])
            for label, batching in modes:
                port = free_port()
                cmd = [KILN, "service", "deploy", "--name", f"{script}-{int(batching)}", "--entry-script",
                       f"{script}.py", "--source-dir", str(app), "--env", "serve-bench", "--port", str(port),
                       "--workers", str(args.workers), "--model", "forest"] + (["--batching"] if batching else [])
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                try:
                    for c in levels:
                        results[(label, script, c)] = wrk(f"http://127.0.0.1:{port}/score", c, args.seconds, lua)
                finally:
                    subprocess.run([KILN, "service", "delete", f"{script}-{int(batching)}"], env=env,
                                   capture_output=True)

        print(f"\n{'script':8} {'server':14} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5} "
              f"{'x azml':>7}")
        for (server, script, c), (rps, p50, p99, failed) in sorted(results.items(), key=lambda kv: (kv[0][1],
                                                                                                  kv[0][2], kv[0][0])):
            ratio = rps / results[("azmlinfsrv", script, c)][0]
            print(f"{script:8} {server:14} {c:5d} {rps:9.0f} {p50:8.2f} {p99:8.2f} {failed:5d} {ratio:7.2f}")
        print(json.dumps({f"{s}|{k}|{c}": v for (s, k, c), v in results.items()}))


if __name__ == "__main__":
    main()
