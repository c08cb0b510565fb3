"""Scoring bodies of every size: the largest request (and answer) that round-trips through a real service.

    .venv/bin/python bench/payload.py [--workers 1] [--max-mb 100]

Deploys an echo ``score.py`` (it answers the body's length and, for ``{"echo": N}``, N bytes) with
``max_payload_bytes`` at the default limit (100 MB), then sends JSON bodies from 64 KB doubling up to the
limit, one just under it and one just over it (413 expected), and asks for answers of 1, 10 and 50 MB.
Prints, per size: status, seconds, MB/s; and the largest body that round-tripped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import KILN, kiln_env

SCORE = """\
import json

def init():
    pass

def run(raw_data):
    data = json.loads(raw_data)
    if isinstance(data, dict) and "echo" in data:
        return "x" * int(data["echo"])
    return {"length": len(raw_data)}
"""
LIMIT = 100 * 1024 * 1024


def post(port: int, body: bytes) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return resp.status, data, elapsed


def body_of(size: int) -> bytes:
    """A valid JSON document of exactly ``size`` bytes: a string of x's."""
    return b'"' + b"x" * (size - 2) + b'"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-mb", type=int, default=100)
    args = parser.parse_args()
    limit = args.max_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="kiln-bench-payload-") as tmp:
        root = Path(tmp)
        env = kiln_env(root, KILN_WORKSPACE=str(root / "ws"))
        app = root / "app"
        app.mkdir()
        (app / "score.py").write_text(SCORE)
        (app / "model.txt").write_text("none\n")
        subprocess.run([KILN, "workspace", "create", "bench", "-d", str(root / "ws"), "--no-config"], env=env,
                       check=True, capture_output=True)
        subprocess.run([KILN, "model", "register", str(app / "model.txt"), "--name", "none"], env=env, check=True,
                       capture_output=True)
        deploy = subprocess.run([KILN, "-o", "json", "service", "deploy", "--name", "payload", "--entry-script",
                                 "score.py", "--source-dir", str(app), "--model", "none", "--workers",
                                 str(args.workers)], env=env, capture_output=True, text=True, check=False)
        if deploy.returncode != 0:
            raise SystemExit(deploy.stderr)
        port = json.loads(deploy.stdout)["data"]["port"]
        try:
            sizes = []
            size = 64 * 1024
            while size < limit:
                sizes.append(size)
                size *= 2
            sizes += [limit - 1024, limit + 1]
            largest = 0
            print(f"{'request':>12} {'status':>6} {'seconds':>8} {'MB/s':>7}")
            for size in sizes:
                status, data, elapsed = post(port, body_of(size))
                ok = status == 200 and json.loads(data) == {"length": size}
                largest = max(largest, size) if ok else largest
                print(f"{size:12d} {status:6d} {elapsed:8.3f} {size / elapsed / 1e6:7.1f}"
                      + ("" if ok or status == 413 else "  WRONG ANSWER"))
            print(f"{'answer':>12}")
            for mb in (1, 10, 50):
                status, data, elapsed = post(port, json.dumps({"echo": mb * 1024 * 1024}).encode())
                ok = status == 200 and len(data) == mb * 1024 * 1024 + 2
                print(f"{mb * 1024 * 1024:12d} {status:6d} {elapsed:8.3f} {mb * 1.048576 / elapsed:7.1f}"
                      + ("" if ok else "  WRONG ANSWER"))
            print(f"largest request that round-tripped: {largest} bytes ({largest / 1024 / 1024:.1f} MiB) of a "
                  f"{limit} byte limit; one byte over it: 413")
        finally:
            subprocess.run([KILN, "service", "delete", "payload"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
