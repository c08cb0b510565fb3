"""``Pool.submit``'s own safety net (a request no worker answered in time is a 504) and a caller that goes away
(its request is dropped, the others are answered)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from kiln.serving.pool import FAILED, Pool, PoolSettings
from kiln.serving.protocol import OK

SCRIPT = ("import json, time\ndef run(raw_data):\n    time.sleep(json.loads(raw_data))\n"
          "    return json.loads(raw_data)\n")


def make_pool(tmp_path: Path, timeout: float) -> Pool:
    (tmp_path / "score.py").write_text(SCRIPT, encoding="utf-8")
    return Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path,
                             env=dict(os.environ), timeout=timeout))


def test_a_request_no_worker_takes_is_answered_504_and_leaves_no_count(tmp_path: Path) -> None:
    async def main() -> None:
        pool = make_pool(tmp_path, timeout=0.1)  # never started: nothing takes from the queue
        result = await pool.submit(b"0")
        assert (result.status, result.kind) == (504, FAILED)
        assert b"timeout" in result.data and pool.inflight == 0

    asyncio.run(main())


def test_a_caller_that_goes_away_does_not_disturb_the_others(tmp_path: Path) -> None:
    async def main() -> None:
        pool = make_pool(tmp_path, timeout=30)
        await pool.start()
        try:
            busy = asyncio.ensure_future(pool.submit(b"0.3"))  # keeps the worker busy while the others queue
            await asyncio.sleep(0.05)
            gone = asyncio.ensure_future(pool.submit(b"0"))
            stay = [asyncio.ensure_future(pool.submit(json.dumps(i / 1000).encode())) for i in range(3)]
            await asyncio.sleep(0)
            gone.cancel()
            answers = await asyncio.gather(busy, *stay)
            assert [json.loads(r.data) for r in answers] == [0.3, 0.0, 0.001, 0.002]
            assert {r.kind for r in answers} == {OK} and gone.cancelled()
            assert pool.inflight == 0 and pool.restarts == 0
            again = await pool.submit(b"0")  # the worker is fine
            assert again.status == 200
        finally:
            await pool.stop()

    asyncio.run(main())
