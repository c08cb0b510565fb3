"""``kiln.serving.pool.Pool``: real worker processes (Kiln's own interpreter) behind the request queue: init(),
answers in order, batches, a worker that dies (503) or stalls (504) replaced, init() failing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from kiln.serving.pool import FAILED, InitFailed, Pool, PoolSettings
from kiln.serving.protocol import ERROR, OK
from kiln.settings import ENV_BATCHING

SCRIPT = """\
    import json, os, time

    def init():
        print("init", os.getpid())

    def run(raw_data):
        data = json.loads(raw_data)
        if data == "die":
            os._exit(9)
        if data == "stall":
            time.sleep(60)
        if data == "fail":
            raise ValueError("bad")
        return {"echo": data, "pid": os.getpid()}

    def run_batch(items):
        return [{"batch": len(items)} for _ in items]
"""


LOG: list[str] = []  # the pools' log lines


def pool_for(tmp_path: Path, script: str = SCRIPT, **options: object) -> Pool:
    (tmp_path / "score.py").write_text(textwrap.dedent(script), encoding="utf-8")
    env = {**os.environ, ENV_BATCHING: "1" if options.get("batching") else ""}
    pool = Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path, env=env,
                             log=LOG.append, **options))  # type: ignore[arg-type]
    return pool


def test_requests_are_answered_and_the_worker_lives_on_after_run_raises(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path, workers=2)
        await pool.start()
        try:
            assert pool.ready and len(pool.pids) == 2
            assert pool.swagger is None and pool.batch is False and pool.params is None
            results = await asyncio.gather(*(pool.submit(json.dumps(i).encode()) for i in range(20)))
            assert [json.loads(r.data)["echo"] for r in results] == list(range(20))
            assert {r.status for r in results} == {200} and {r.kind for r in results} == {OK}
            failed = await pool.submit(b'"fail"')
            assert (failed.status, failed.kind) == (500, ERROR)
            assert json.loads(failed.data)["error"] == "ValueError: bad"
            assert pool.restarts == 0 and pool.inflight == 0
        finally:
            await pool.stop()
        assert not pool.ready

    asyncio.run(main())


def test_a_worker_that_dies_fails_its_request_with_503_and_is_replaced(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path)
        await pool.start()
        try:
            [before] = pool.pids
            died = await pool.submit(b'"die"')
            assert (died.status, died.kind) == (503, FAILED)
            assert b"the worker died" in died.data
            after = await pool.submit(b'"again"')
            assert after.status == 200 and json.loads(after.data)["pid"] != before
            assert pool.restarts == 1
            assert "worker 0 died: restarting it" in LOG
        finally:
            await pool.stop()

    asyncio.run(main())


def test_a_request_past_the_timeout_is_a_504_and_its_worker_is_replaced(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path, timeout=0.5)
        await pool.start()
        try:
            stalled = await pool.submit(b'"stall"')
            assert (stalled.status, stalled.kind) == (504, FAILED)
            assert (await pool.submit(b'"next"')).status == 200
            assert pool.restarts == 1
        finally:
            await pool.stop()

    asyncio.run(main())


def test_big_requests_and_answers_cross_whole(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path)
        await pool.start()
        try:
            text = "z" * (5 * 1024 * 1024)
            result = await pool.submit(json.dumps(text).encode())
            assert result.status == 200 and json.loads(result.data)["echo"] == text
            assert pool.restarts == 0
        finally:
            await pool.stop()

    asyncio.run(main())


def test_queued_requests_go_to_run_batch_together_when_batching(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path, batching=True, max_batch=8)
        await pool.start()
        try:
            assert pool.batch is True
            results = await asyncio.gather(*(pool.submit(b"1") for _ in range(8)))
            sizes = [json.loads(r.data)["batch"] for r in results]
            assert len(sizes) == 8 and max(sizes) > 1  # what queued while the worker was busy went together
        finally:
            await pool.stop()

    asyncio.run(main())


def test_init_failing_fails_the_start(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_for(tmp_path, "def init():\n    raise RuntimeError('no model')\n\ndef run(x):\n    return x\n")
        with pytest.raises(InitFailed, match="RuntimeError: no model"):
            await pool.start()
        assert not pool.ready

    asyncio.run(main())
