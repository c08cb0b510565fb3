"""The server-side SVG chart: labels escaped, long series thinned with their extremes kept, non-series refused."""

from __future__ import annotations

import re

from kiln.studio.charts import MAX_POINTS, line_chart, numeric_series


def test_labels_are_escaped_and_every_series_is_a_line() -> None:
    svg = str(line_chart("<b>t</b>", {"<script>x</script>": [1.0, 2.0, 3.0], "b\"'": [3.0, 1.0]}))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
    assert svg.count("<polyline") == 2
    assert "&#34;" in svg or "&quot;" in svg


def test_a_long_series_is_thinned_and_keeps_its_spike() -> None:
    values = [0.0] * 100_000
    values[54_321] = 99.0
    svg = str(line_chart("big", {"loss": values}))
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    pairs = points.group(1).split()
    assert len(pairs) <= MAX_POINTS + 2
    ys = {float(p.split(",")[1]) for p in pairs}
    assert min(ys) < 20  # the spike's y (top of the plot) survived the thinning


def test_numeric_series() -> None:
    assert numeric_series([1, 2.5]) == [1.0, 2.5]
    assert numeric_series([1]) is None
    assert numeric_series([True, False]) is None
    assert numeric_series([1, True]) is None and numeric_series([1, None]) is None
    assert numeric_series([3, 2]) == [3.0, 2.0] and all(type(v) is float for v in numeric_series([3, 2]) or [])
    assert numeric_series(["a", "b"]) is None
    assert numeric_series(3) is None
    assert "no numeric values" in str(line_chart("x", {"a": [float("nan")]}))
