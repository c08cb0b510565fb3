"""A busy worker holds a second message in its pipe (``pool.IN_FLIGHT``), through a real pool: it takes one only
when no other worker is idle, answers come back in order, and a message behind one that killed or stalled its
worker goes back to the queue and is served."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

from kiln.serving.pool import IN_FLIGHT, KEEP_WHOLE, Pool, PoolSettings

SCRIPT = """\
    import json, os, time

    def run(raw_data):
        data = json.loads(raw_data)
        if data.get("sleep"):
            time.sleep(data["sleep"])
        if data.get("exit"):
            os._exit(3)
        return {"pid": os.getpid(), "id": data.get("id")}
"""


def pool_of(tmp_path: Path, workers: int, timeout: float = 30.0) -> Pool:
    (tmp_path / "score.py").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    return Pool(PoolSettings(python=sys.executable, entry_script=tmp_path / "score.py", cwd=tmp_path,
                             env=dict(os.environ), workers=workers, timeout=timeout))


def ask(pool: Pool, **body: object) -> asyncio.Future[object]:
    return asyncio.ensure_future(pool.submit(json.dumps(body).encode()))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def test_a_busy_worker_holds_the_next_message_and_answers_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_of(tmp_path, workers=1)
        await pool.start()
        try:
            first = ask(pool, id=0, sleep=0.5)
            await settle()
            rest = [ask(pool, id=i) for i in range(1, 4)]
            await settle()
            worker = pool.workers[0]
            # the one it runs, and the three that came meanwhile, waiting in its pipe as one message
            assert IN_FLIGHT == 2 and [len(batch) for batch in worker.inflight] == [1, 3]
            answers = [json.loads((await f).data) for f in [first, *rest]]  # type: ignore[attr-defined]
            assert [a["id"] for a in answers] == [0, 1, 2, 3]
            assert not worker.inflight and pool.inflight == 0
        finally:
            await pool.stop()

    asyncio.run(main())


def test_an_idle_worker_is_served_before_a_busy_one_takes_more(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_of(tmp_path, workers=2)
        await pool.start()
        try:
            slow = ask(pool, id="slow", sleep=0.5)
            await settle()
            quick = ask(pool, id="quick")  # the other worker is idle: it goes there, not behind the slow one
            answer = json.loads((await asyncio.wait_for(quick, 0.4)).data)  # type: ignore[attr-defined]
            assert answer["pid"] != json.loads((await slow).data)["pid"]  # type: ignore[attr-defined]
            # once both are busy, more go behind them rather than wait in the queue
            held = [ask(pool, id=i, sleep=1.0) for i in range(2)]
            await settle()
            more = [ask(pool, id=i) for i in range(2, 6)]
            await settle()
            assert [len(w.inflight) for w in pool.workers] == [2, 2]
            assert [json.loads((await f).data)["id"] for f in [*held, *more]] == list(range(6))  # type: ignore[attr-defined]
        finally:
            await pool.stop()

    asyncio.run(main())


def test_the_message_behind_one_that_kills_the_worker_is_served(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_of(tmp_path, workers=1)
        await pool.start()
        try:
            dying = ask(pool, id="bad", sleep=1.0, exit=True)
            await settle()
            behind = [ask(pool, id=i) for i in range(3)]
            await settle()
            assert [len(batch) for batch in pool.workers[0].inflight] == [1, 3]
            assert (await dying).status == 503  # type: ignore[attr-defined]
            answers = [await f for f in behind]
            assert [a.status for a in answers] == [200, 200, 200]  # type: ignore[attr-defined]
            assert [json.loads(a.data)["id"] for a in answers] == [0, 1, 2]  # type: ignore[attr-defined]
            assert pool.restarts == 1
        finally:
            await pool.stop()

    asyncio.run(main())


def test_the_message_behind_one_that_stalls_past_the_timeout_is_served(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_of(tmp_path, workers=1, timeout=1.5)
        await pool.start()
        try:
            stalled = ask(pool, id="slow", sleep=30)
            await asyncio.sleep(0.5)
            behind = [ask(pool, id=i) for i in range(2)]  # their own deadlines leave them time after the cut
            assert (await stalled).status == 504  # type: ignore[attr-defined]
            assert [(await f).status for f in behind] == [200, 200]  # type: ignore[attr-defined]
        finally:
            await pool.stop()

    asyncio.run(main())


def test_cheap_requests_go_whole_to_one_worker_and_costly_ones_in_shares(tmp_path: Path) -> None:
    async def main() -> None:
        pool = pool_of(tmp_path, workers=2)
        await pool.start()
        try:
            assert pool.cost is None  # unknown: what is queued goes in shares (the forest's lesson)
            first = await asyncio.gather(*(ask(pool, id=i) for i in range(20)))
            assert len({json.loads(r.data)["pid"] for r in first}) == 2  # type: ignore[attr-defined]
            for _ in range(5):  # under load (messages of many requests) the average settles on run()'s own cost
                await asyncio.gather(*(ask(pool, id="warm") for _ in range(30)))
            assert pool.cost is not None and pool.cost * 21 <= KEEP_WHOLE  # a trivial run() costs µs
            cheap = await asyncio.gather(*(ask(pool, id=i) for i in range(20)))
            assert len({json.loads(r.data)["pid"] for r in cheap}) == 1  # one message: no split for the front
            costly = await asyncio.gather(*(ask(pool, id=i, sleep=0.01) for i in range(20)))
            assert pool.cost * 20 > KEEP_WHOLE  # type: ignore[operator]
            again = await asyncio.gather(*(ask(pool, id=i, sleep=0.01) for i in range(20)))
            assert len({json.loads(r.data)["pid"] for r in again}) == 2  # type: ignore[attr-defined]
            assert [json.loads(r.data)["id"] for r in costly] == list(range(20))  # type: ignore[attr-defined]
        finally:
            await pool.stop()

    asyncio.run(main())
