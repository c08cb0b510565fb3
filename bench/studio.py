"""The studio's server time per page and the bytes each sends, on a big workspace.

    .venv/bin/python bench/studio.py [--names 1000] [--versions 10] [--runs 1000] [--points 100] [--big 100000]

Fills a fresh workspace: ``names x versions`` environment versions (through the store, as
``bench/registry.py``), ``runs`` interactive runs with ``points`` values of one metric each, and one run
with ``big`` points. Then requests each page in-process (Starlette's TestClient: the app's own time, no
network) and prints median and p99 in ms and the bytes of the answer. Aims (issue 14): list pages
(paginated) under 100 ms, a chart page under 200 ms.

Then the big run's first request, cold (a new app, the metrics file not parsed yet), ``--cold`` rounds, and
the parse of its metrics file by the reader against the line-by-line parse it replaced, side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from registry import make_env
from starlette.testclient import TestClient

from kiln import Experiment, Workspace
from kiln.runs import metrics
from kiln.runs.layout import RunLayout
from kiln.studio.app import create_app


def timed(client: TestClient, url: str, repeat: int) -> tuple[float, float, int]:
    samples, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        r = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (url, r.status_code)
        size = len(r.content)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--cold", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KILN_HOME"] = str(Path(tmp) / "home")
        os.environ["KILN_CACHE_DIR"] = str(Path(tmp) / "home" / "cache")
        ws = Workspace.create("bench", path=Path(tmp) / "ws")
        start = time.perf_counter()
        for n in range(args.names):
            for v in range(1, args.versions + 1):
                env = make_env(f"env-{n:05d}", v)
                ws.store.register_environment(name=env.name, definition=env.definition_text(), hash=env.hash)
        exp = Experiment(ws, "bench")
        run_ids = []
        for _ in range(args.runs):
            run = exp.start_logging(outputs=False)
            for i in range(args.points):
                run.log("loss", 1.0 / (i + 1))
            run.complete()
            run_ids.append(run.id)
        big = Experiment(ws, "big").start_logging(outputs=False)
        for i in range(args.big):
            big.log("loss", (i % 1000) / 1000)
        big.complete()
        print(f"filled {args.names * args.versions} versions, {args.runs} runs x {args.points} points and one run "
              f"of {args.big} points in {time.perf_counter() - start:.1f} s")
        client = TestClient(create_app(ws), base_url="http://127.0.0.1:8790")
        pages = [
            ("environments (page 1 of the latest)", "/environments", 100.0),
            ("environments, search", "/environments?q=env-0099", 100.0),
            ("an environment (10 versions)", "/environments/env-00042", 100.0),
            ("a diff of two versions", "/environments/env-00042/diff?old=1&new=10", 100.0),
            (f"runs (page 1 of {args.runs + 1})", "/runs", 100.0),
            (f"a run, {args.points} points", f"/runs/{run_ids[len(run_ids) // 2]}", 200.0),
            (f"a run, {args.big} points", f"/runs/{big.id}", 200.0),
            ("models", "/models", 100.0),
            ("cache", "/cache", 100.0),
        ]
        print(f"{'page':40} {'median ms':>10} {'p99 ms':>10} {'bytes':>9} {'aim ms':>7} {'median/aim':>10}")
        for label, url, aim in pages:
            median, p99, size = timed(client, url, args.repeat)
            print(f"{label:40} {median:10.1f} {p99:10.1f} {size:9d} {aim:7.0f} {median / aim:10.2f}")
        cold(ws, big.id, args.cold)


def cold(ws: Workspace, run_id: str, rounds: int) -> None:
    """The big run's page on a fresh app, its metrics file not read in this process yet: with the index its run
    left beside it (``metrics.jsonl.index``, written when it ended) and without; the parse alone, both ways."""
    path = RunLayout(ws.path, run_id, None).metrics
    index = path.with_name(path.name + metrics.INDEX_SUFFIX)
    saved = index.read_bytes()
    first: dict[bool, list[float]] = {True: [], False: []}
    one_pass, by_line = [], []
    for n in range(rounds * 2):
        with_index = n % 2 == 0
        if with_index:
            index.write_bytes(saved)
        else:
            index.unlink(missing_ok=True)
        metrics._CACHE.clear()
        client = TestClient(create_app(ws), base_url="http://127.0.0.1:8790")
        client.get("/models")  # the app's own first-request costs (templates) are not the chart's
        start = time.perf_counter()
        assert client.get(f"/runs/{run_id}").status_code == 200
        first[with_index].append((time.perf_counter() - start) * 1000)
    text = path.read_text(encoding="utf-8")
    for _ in range(rounds):
        start = time.perf_counter()
        fast = metrics._records(text)
        one_pass.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        slow = metrics._records_by_line(text)
        by_line.append((time.perf_counter() - start) * 1000)
        assert fast == slow
    index.write_bytes(saved)
    print(f"\ncold first request of the big run's page ({path.stat().st_size} bytes of metrics), {rounds} rounds each:")
    for with_index, label in ((True, "with its index (as left when the run ended)"), (False, "without an index")):
        median = statistics.median(first[with_index])
        print(f"  {label:45} median {median:7.1f} ms  max {max(first[with_index]):7.1f} ms  median/aim(200) "
              f"{median / 200:.2f}")
    fast_ms, slow_ms = statistics.median(one_pass), statistics.median(by_line)
    print(f"parse of the whole file: one pass {fast_ms:.1f} ms, line by line (before) {slow_ms:.1f} ms, "
          f"ratio {fast_ms / slow_ms:.2f}")


if __name__ == "__main__":
    main()
