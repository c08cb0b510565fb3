"""``kiln.serving.workqueue.WorkQueue``: requests first in, first out; the worker that went idle last is woken first
(through a real pool: one client at a time keeps to one hot worker)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from kiln.serving.pool import Pool, PoolSettings
from kiln.serving.workqueue import WorkQueue


def test_items_in_order_and_the_last_idle_getter_woken_first() -> None:
    async def main() -> None:
        queue: WorkQueue[int] = WorkQueue()
        got: list[tuple[str, int]] = []

        async def worker(name: str) -> None:
            got.append((name, await queue.get()))

        first = asyncio.ensure_future(worker("first idle"))
        await asyncio.sleep(0)
        last = asyncio.ensure_future(worker("last idle"))
        await asyncio.sleep(0)
        queue.put_nowait(1)
        await asyncio.sleep(0)
        assert got == [("last idle", 1)] and not first.done()
        for n in (2, 3):
            queue.put_nowait(n)
        await first
        await last
        assert got == [("last idle", 1), ("first idle", 2)] and queue.qsize() == 1 and queue.get_nowait() == 3
        with pytest.raises(asyncio.QueueEmpty):
            queue.get_nowait()

    asyncio.run(main())


def test_a_getter_cancelled_after_its_wake_up_passes_it_on() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        other = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        woken = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait("job")  # wakes `woken` (idle last) ...
        woken.cancel()  # ... which goes away before it runs
        assert await asyncio.wait_for(other, 5) == "job"
        assert queue.empty()

    asyncio.run(main())


def test_one_client_at_a_time_keeps_to_one_worker(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text("import os\ndef run(raw_data):\n    return os.getpid()\n", encoding="utf-8")

    async def main() -> None:
        pool = Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path,
                                 env=dict(os.environ), workers=2))
        await pool.start()
        try:
            pids = [int((await pool.submit(b"1")).data) for _ in range(6)]
            assert len(set(pids)) == 1 and pids[0] in pool.pids  # not each worker in turn
        finally:
            await pool.stop()

    asyncio.run(main())
