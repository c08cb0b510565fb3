"""Big bodies both ways through a real local web service: framing between the server and its workers is
exact at any size up to the configured limits (a 220 KB body once killed the worker that read it).

One service per worker count, its ``max_payload_bytes`` set low (12 MB) so that "near the limit" is
quick to send; an answer may be larger than any request (50 MB here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from serving_support import *  # noqa: F403 - the shared fixtures and helpers (see serving_support)
from serving_support import JSON, Deploy, metric, post, write_source

from kiln import Environment, LocalWebservice, Workspace

pytestmark = pytest.mark.integration

LIMIT = 12 * 1024 * 1024

SIZES = """\
    import json, os

    INITS = []

    def init():
        INITS.append(os.getpid())

    def run(raw_data):
        data = json.loads(raw_data)
        if "answer" in data:  # an answer of this many bytes (a JSON string: its quotes included)
            return "y" * (data["answer"] - 2)
        return {"length": len(raw_data), "tail": raw_data[-12:], "inits": len(INITS)}
"""


def body_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes, its end recognisable."""
    head, tail = b'{"pad": "', b'end-marker"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def sized(request: pytest.FixtureRequest, ws: Workspace, env: Environment,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWebservice]:
    deployer = Deploy(ws)
    source = write_source(tmp_path_factory.mktemp("sizes"), SIZES)
    yield deployer(f"sizes-{request.param}", source, env=env, workers=request.param, max_payload_bytes=LIMIT,
                   timeout_seconds=120)
    deployer.clean_up()


@pytest.mark.parametrize("size", [200 * 1024, 220 * 1024, 1024 * 1024, 10 * 1024 * 1024, LIMIT - 1, LIMIT],
                         ids=["200KB", "220KB", "1MB", "10MB", "limit-1", "limit"])
def test_a_body_of_any_size_up_to_the_limit_is_scored(sized: LocalWebservice, size: int) -> None:
    reply = post(sized, body_of(size), JSON)
    assert reply.status == 200, reply.body[:500]
    assert reply.json() == {"length": size, "tail": 'end-marker"}', "inits": 1}
    assert metric(sized.scoring_uri, "kiln_worker_restarts_total") == 0  # no worker died on the way


def test_a_body_just_over_the_limit_is_a_413(sized: LocalWebservice) -> None:
    reply = post(sized, body_of(LIMIT + 1), JSON)
    assert reply.status == 413
    assert reply.json() == {"message": f"the body is larger than {LIMIT} bytes"}
    assert post(sized, {"after": 1}).json()["length"] == len(json.dumps({"after": 1}))  # the service goes on


def test_an_answer_of_50_mb_comes_whole(sized: LocalWebservice) -> None:
    size = 50 * 1024 * 1024
    reply = post(sized, {"answer": size}, timeout=120)
    assert reply.status == 200
    assert reply.headers["content-length"] == str(size)
    assert reply.body == b'"' + b"y" * (size - 2) + b'"'
    assert metric(sized.scoring_uri, "kiln_worker_restarts_total") == 0


def test_small_bodies_still_work_after_big_ones(sized: LocalWebservice) -> None:
    replies = [post(sized, {"n": i}) for i in range(20)]
    assert [r.status for r in replies] == [200] * 20
    assert {r.json()["inits"] for r in replies} == {1}  # no init() ran twice in a worker
