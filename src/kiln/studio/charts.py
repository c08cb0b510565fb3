"""Metric series as SVG line charts, rendered on the server: no JavaScript library, nothing from a CDN.

Every label goes through ``markupsafe.escape``; coordinates are numbers this module computes. A series of
100,000 points is thinned to at most ``MAX_POINTS`` (keeping each bucket's min and max, so spikes stay).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

__all__ = ["MAX_POINTS", "line_chart", "numeric_series"]

MAX_POINTS = 800
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 640, 240, 56, 12, 12, 28
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def numeric_series(value: object) -> list[float] | None:
    """``value`` as a list of finite numbers when it is a series (a list of numbers, bools excluded)."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    if set(map(type, value)) <= {int, float}:  # the usual series, converted in C (bool is a type of its own)
        return list(map(float, value))
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        out.append(float(v))
    return out


def _thin(values: Sequence[float]) -> list[tuple[int, float]]:
    finite = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) <= MAX_POINTS:
        return finite
    size = math.ceil(len(finite) / (MAX_POINTS // 2))
    out: list[tuple[int, float]] = []
    for start in range(0, len(finite), size):
        bucket = finite[start:start + size]
        lo, hi = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        out += sorted({lo, hi})
    return out


def _tick(v: float) -> str:
    return f"{v:.4g}"


def line_chart(title: str, series: Mapping[str, Sequence[float]]) -> Markup:
    """An SVG chart of ``series`` (label -> values, x = the step), one line each, with a legend."""
    thinned = {label: _thin(values) for label, values in series.items()}
    points = [p for pts in thinned.values() for p in pts]
    if not points:
        return Markup('<p class="muted">no numeric values</p>')
    x_max = max(max(p[0] for p in points), 1)
    y_min, y_max = min(p[1] for p in points), max(p[1] for p in points)
    if y_min == y_max:
        y_min, y_max = y_min - 1, y_max + 1
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def xy(i: int, v: float) -> str:
        return f"{PAD_L + plot_w * i / x_max:.1f},{PAD_T + plot_h * (1 - (v - y_min) / (y_max - y_min)):.1f}"

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 10}" text-anchor="end" font-size="10">{_tick(y_max)}</text>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + plot_h}" text-anchor="end" font-size="10">{_tick(y_min)}</text>',
             f'<text x="{PAD_L}" y="{HEIGHT - 8}" font-size="10">0</text>',
             f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" text-anchor="end" font-size="10">{x_max}</text>']
    for n, (label, pts) in enumerate(thinned.items()):
        color = COLORS[n % len(COLORS)]
        path = " ".join(xy(i, v) for i, v in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}">'
                     f"<title>{escape(label)}</title></polyline>")
        parts.append(f'<text x="{PAD_L + 6}" y="{PAD_T + 14 + 12 * n}" font-size="11" fill="{color}">'
                     f"{escape(label)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))
