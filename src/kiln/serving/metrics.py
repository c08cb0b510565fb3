"""The scoring server's metrics: request counters and a latency histogram, written as Prometheus text
(``GET /metrics``)."""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate
from typing import Protocol

__all__ = ["BUCKETS", "Metrics", "PoolGauges"]

#: upper bounds (seconds) of the latency histogram's buckets
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAST = BUCKETS[-1]


class PoolGauges(Protocol):
    """What the metrics read of the worker pool (``kiln.serving.pool.Pool`` is one)."""

    @property
    def restarts(self) -> int: ...

    @property
    def pids(self) -> list[int]: ...

    @property
    def inflight(self) -> int: ...


class Metrics:
    """Counters and a latency histogram, written as Prometheus text."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if route == "/score":
            self.count += 1
            self.total += seconds
            if seconds <= _LAST:  # the smallest bucket it fits; cumulated when rendered
                self.buckets[bisect_left(BUCKETS, seconds)] += 1

    def render(self, pool: PoolGauges) -> str:
        lines = ["# HELP kiln_requests_total HTTP requests by route and status.", "# TYPE kiln_requests_total counter"]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'kiln_requests_total{{route="{route}",status="{status}"}} {n}')
        errors = sum(n for (route, status), n in self.requests.items() if route == "/score" and status >= 500)
        lines += ["# HELP kiln_score_errors_total Scoring requests that failed (5xx).",
                  "# TYPE kiln_score_errors_total counter", f"kiln_score_errors_total {errors}",
                  "# HELP kiln_score_latency_seconds Time to answer requests to /score.",
                  "# TYPE kiln_score_latency_seconds histogram"]
        for bound, n in zip(BUCKETS, accumulate(self.buckets), strict=True):
            lines.append(f'kiln_score_latency_seconds_bucket{{le="{bound}"}} {n}')
        lines += [f'kiln_score_latency_seconds_bucket{{le="+Inf"}} {self.count}',
                  f"kiln_score_latency_seconds_sum {self.total:.6f}", f"kiln_score_latency_seconds_count {self.count}",
                  "# HELP kiln_worker_restarts_total Workers replaced after dying or timing out.",
                  "# TYPE kiln_worker_restarts_total counter", f"kiln_worker_restarts_total {pool.restarts}",
                  "# HELP kiln_workers Workers running.", "# TYPE kiln_workers gauge", f"kiln_workers {len(pool.pids)}",
                  "# HELP kiln_inflight_requests Scoring requests queued or running.",
                  "# TYPE kiln_inflight_requests gauge", f"kiln_inflight_requests {pool.inflight}"]
        return "\n".join(lines) + "\n"
