"""``kiln.serving.metrics.Metrics``: counters and the latency histogram, written as Prometheus text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kiln.serving.metrics import Metrics

SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? (-?[0-9.]+(e-?[0-9]+)?)$')


@dataclass
class FakePool:
    """What ``render`` reads of a pool."""

    restarts: int = 0
    pids: list[int] = field(default_factory=list)
    inflight: int = 0


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, checking that every line is a comment or a well-formed sample and that
    each metric's samples follow its HELP and TYPE lines."""
    out: dict[str, float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:]
            assert kind in ("counter", "gauge", "histogram")
            typed.add(name)
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        base = re.sub(r"_(bucket|sum|count)$", "", match.group(1))
        assert match.group(1) in typed or base in typed, f"{line!r} comes before its # TYPE"
        key = match.group(1) + (match.group(2) or "")
        assert key not in out, f"{key} twice"
        out[key] = float(match.group(4))
    return out


def test_an_idle_server_renders_zeros() -> None:
    values = samples(Metrics().render(FakePool(pids=[11])))
    assert values["kiln_score_errors_total"] == 0
    assert values['kiln_score_latency_seconds_bucket{le="+Inf"}'] == 0
    assert values["kiln_score_latency_seconds_count"] == 0
    assert values["kiln_score_latency_seconds_sum"] == 0
    assert values["kiln_worker_restarts_total"] == 0
    assert values["kiln_workers"] == 1
    assert values["kiln_inflight_requests"] == 0
    assert not any(k.startswith("kiln_requests_total") for k in values)


def test_requests_are_counted_by_route_and_status() -> None:
    metrics = Metrics()
    for route, status in [("/score", 200), ("/score", 200), ("/score", 500), ("/score", 503), ("/score", 400),
                          ("/", 200), ("other", 404), ("/metrics", 200)]:
        metrics.observe(route, status, 0.001)
    text = metrics.render(FakePool(restarts=2, pids=[1, 2, 3], inflight=4))
    values = samples(text)
    assert {k: v for k, v in values.items() if k.startswith("kiln_requests_total")} == {
        'kiln_requests_total{route="/",status="200"}': 1,
        'kiln_requests_total{route="/metrics",status="200"}': 1,
        'kiln_requests_total{route="/score",status="200"}': 2,
        'kiln_requests_total{route="/score",status="400"}': 1,
        'kiln_requests_total{route="/score",status="500"}': 1,
        'kiln_requests_total{route="/score",status="503"}': 1,
        'kiln_requests_total{route="other",status="404"}': 1,
    }
    # sorted by route, then status, so that two scrapes of the same counts are the same text
    lines = [line for line in text.splitlines() if line.startswith("kiln_requests_total")]
    assert lines == sorted(lines)
    assert values["kiln_score_errors_total"] == 2  # 5xx of /score only: a 400 is the client's error
    assert values["kiln_worker_restarts_total"] == 2
    assert values["kiln_workers"] == 3
    assert values["kiln_inflight_requests"] == 4


def test_the_latency_histogram_is_cumulative_and_counts_only_scoring() -> None:
    metrics = Metrics()
    for seconds in (0.0005, 0.005, 0.007, 0.3, 20.0):
        metrics.observe("/score", 200, seconds)
    metrics.observe("/", 200, 0.0001)  # liveness probes don't make scoring look fast
    values = samples(metrics.render(FakePool()))
    buckets = {k: v for k, v in values.items() if k.startswith("kiln_score_latency_seconds_bucket")}
    assert buckets == {
        'kiln_score_latency_seconds_bucket{le="0.001"}': 1,
        'kiln_score_latency_seconds_bucket{le="0.0025"}': 1,
        'kiln_score_latency_seconds_bucket{le="0.005"}': 2,  # a bound holds the values equal to it
        'kiln_score_latency_seconds_bucket{le="0.01"}': 3,
        'kiln_score_latency_seconds_bucket{le="0.025"}': 3,
        'kiln_score_latency_seconds_bucket{le="0.05"}': 3,
        'kiln_score_latency_seconds_bucket{le="0.1"}': 3,
        'kiln_score_latency_seconds_bucket{le="0.25"}': 3,
        'kiln_score_latency_seconds_bucket{le="0.5"}': 4,
        'kiln_score_latency_seconds_bucket{le="1.0"}': 4,
        'kiln_score_latency_seconds_bucket{le="2.5"}': 4,
        'kiln_score_latency_seconds_bucket{le="5.0"}': 4,
        'kiln_score_latency_seconds_bucket{le="10.0"}': 4,
        'kiln_score_latency_seconds_bucket{le="+Inf"}': 5,
    }
    assert values["kiln_score_latency_seconds_count"] == 5
    assert values["kiln_score_latency_seconds_sum"] == round(0.0005 + 0.005 + 0.007 + 0.3 + 20.0, 6)


def test_every_metric_has_help_and_type() -> None:
    text = Metrics().render(FakePool())
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")]
    types = dict(line.split()[2:] for line in text.splitlines() if line.startswith("# TYPE "))
    assert helps == list(types)
    assert types == {"kiln_requests_total": "counter", "kiln_score_errors_total": "counter",
                     "kiln_score_latency_seconds": "histogram", "kiln_worker_restarts_total": "counter",
                     "kiln_workers": "gauge", "kiln_inflight_requests": "gauge"}
