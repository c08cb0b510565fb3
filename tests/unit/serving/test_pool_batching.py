"""Micro-batching (``batching=True`` and a script's ``run_batch``) through a real pool: every caller gets its own
answer in the order it asked, one bad request fails alone, a batch goes as soon as a worker is free."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

from kiln.serving.config import DeploymentConfiguration
from kiln.serving.pool import Pool, PoolSettings
from kiln.serving.protocol import ERROR, OK, UNENCODABLE
from kiln.settings import ENV_BATCHING

SCRIPT = """\
    import json, os

    def run(raw_data):
        return run_batch([raw_data])[0]

    def run_batch(items):
        values = [json.loads(item) for item in items]
        if "fail" in values:  # one bad request makes the whole vectorised call raise, as a model's predict does
            raise ValueError("cannot score 'fail'")
        with open(os.path.join(os.getcwd(), "batches.txt"), "a") as f:
            f.write(json.dumps(values) + "\\n")
        return [object() if v == "unencodable" else {"echo": v, "batch": len(values), "position": i}
                for i, v in enumerate(values)]
"""


def batching_pool(tmp_path: Path, **options: object) -> Pool:
    (tmp_path / "score.py").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    env = {**os.environ, ENV_BATCHING: "1"}
    return Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path, env=env,
                             batching=True, **options))  # type: ignore[arg-type]


def batches(tmp_path: Path) -> list[list[object]]:
    return [json.loads(line) for line in (tmp_path / "batches.txt").read_text().splitlines()]


def test_each_caller_gets_its_own_answer_in_order_from_batched_calls(tmp_path: Path) -> None:
    async def main() -> None:
        pool = batching_pool(tmp_path, max_batch=16)
        await pool.start()
        try:
            assert pool.batch is True
            results = await asyncio.gather(*(pool.submit(json.dumps(i).encode()) for i in range(40)))
            answers = [json.loads(r.data) for r in results]
            assert [a["echo"] for a in answers] == list(range(40))
            assert {r.status for r in results} == {200} and {r.kind for r in results} == {OK}
            seen = batches(tmp_path)
            assert max(len(b) for b in seen) == 16  # queued requests went together, up to max_batch
            assert [v for b in seen for v in b] == list(range(40))  # in the order they were asked
            for a in answers:  # each answer is the one its own row got inside its batch
                assert seen_in(seen, a["echo"]) == (a["batch"], a["position"])
        finally:
            await pool.stop()

    asyncio.run(main())


def seen_in(seen: list[list[object]], value: object) -> tuple[int, int]:
    for b in seen:
        if value in b:
            return len(b), b.index(value)
    raise AssertionError(f"{value!r} was never scored")


def test_a_request_that_makes_run_batch_raise_fails_alone(tmp_path: Path) -> None:
    async def main() -> None:
        pool = batching_pool(tmp_path, max_batch=8)
        await pool.start()
        try:
            asks = [1, 2, "fail", 3, "unencodable", 4]
            results = await asyncio.gather(*(pool.submit(json.dumps(v).encode()) for v in asks))
            kinds = [r.kind for r in results]
            assert kinds == [OK, OK, ERROR, OK, UNENCODABLE, OK]
            assert [r.status for r in results] == [200, 200, 500, 200, 500, 200]
            assert json.loads(results[2].data)["error"] == "ValueError: cannot score 'fail'"
            assert "object" in json.loads(results[4].data)["error"]
            assert [json.loads(results[i].data)["echo"] for i in (0, 1, 3, 5)] == [1, 2, 3, 4]
            # the worker lives on, and batches again
            again = await asyncio.gather(*(pool.submit(json.dumps(v).encode()) for v in (7, 8, 9)))
            assert [json.loads(r.data)["echo"] for r in again] == [7, 8, 9] and pool.restarts == 0
        finally:
            await pool.stop()

    asyncio.run(main())


def test_a_lone_request_goes_alone_and_batching_never_waits_by_default(tmp_path: Path) -> None:
    assert DeploymentConfiguration().max_batch_wait_ms == 0.0

    async def main() -> None:
        pool = batching_pool(tmp_path)
        assert pool.settings.batch_wait == 0.0
        await pool.start()
        try:
            for i in range(3):  # one client, one request at a time: each is a batch of one
                result = await pool.submit(json.dumps(i).encode())
                assert json.loads(result.data) == {"echo": i, "batch": 1, "position": 0}
            assert batches(tmp_path) == [[0], [1], [2]]
        finally:
            await pool.stop()

    asyncio.run(main())


VIA = """\
    import json, os

    def run(raw_data):
        return {"via": "run", "echo": json.loads(raw_data), "pid": os.getpid()}

    def run_batch(items):
        return [{"via": "run_batch", "echo": json.loads(item), "pid": os.getpid()} for item in items]
"""


def via_pool(tmp_path: Path, *, batching: bool, workers: int = 1) -> Pool:
    (tmp_path / "score.py").write_text(textwrap.dedent(VIA), encoding="utf-8")
    env = {**os.environ, ENV_BATCHING: "1" if batching else ""}
    return Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path, env=env,
                             batching=batching, workers=workers))


def test_a_lone_request_goes_to_run_and_company_to_run_batch(tmp_path: Path) -> None:
    async def main() -> None:
        pool = via_pool(tmp_path, batching=True)
        await pool.start()
        try:
            alone = await pool.submit(b"1")
            assert json.loads(alone.data)["via"] == "run"  # batching on costs a lone request nothing
            together = await asyncio.gather(*(pool.submit(json.dumps(i).encode()) for i in range(6)))
            answers = [json.loads(r.data) for r in together]
            assert [a["echo"] for a in answers] == list(range(6))
            assert {a["via"] for a in answers} == {"run_batch"}
        finally:
            await pool.stop()

    asyncio.run(main())


def test_workers_share_what_is_queued(tmp_path: Path) -> None:
    async def main() -> None:
        for batching in (False, True):
            pool = via_pool(tmp_path, batching=batching, workers=2)
            await pool.start()
            try:
                results = await asyncio.gather(*(pool.submit(json.dumps(i).encode()) for i in range(20)))
                answers = [json.loads(r.data) for r in results]
                assert [a["echo"] for a in answers] == list(range(20))
                # both workers got part of the 20 queued at once (one worker used to take them all)
                assert {a["pid"] for a in answers} == set(pool.pids), batching
            finally:
                await pool.stop()

    asyncio.run(main())
