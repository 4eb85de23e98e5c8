"""A metric across a group's versions as server-side SVG geometry (the template draws it).

No JavaScript and no CDN: Airflow installations are often offline. Approved versions are filled
green, rejected red, the rest hollow; a vertical bar is the gate's interval where it recorded one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_autogluon_cloud.backends.specs import ModelVersion

WIDTH, HEIGHT, MARGIN = 640, 220, 48


def metric_chart(
    versions: list[ModelVersion],
    metric: str,
    interval_of: Callable[[ModelVersion, str], tuple[float, float] | None],
) -> dict[str, Any] | None:
    """Points (x, y, status, label) and interval bars in SVG coordinates, and the axis ticks."""
    points = [(v, float(v.metrics[metric])) for v in versions if metric in v.metrics]
    if not points:
        return None
    intervals = {v.version: interval_of(v, metric) for v, _ in points}
    values = [y for _, y in points] + [b for pair in intervals.values() if pair for b in pair]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    step = (WIDTH - 2 * MARGIN) / max(1, len(points) - 1)

    def y_of(value: float) -> float:
        return round(HEIGHT - MARGIN - (value - low) / (high - low) * (HEIGHT - 2 * MARGIN), 2)

    out_points, bars = [], []
    for index, (version, value) in enumerate(points):
        x = round(MARGIN + index * step if len(points) > 1 else WIDTH / 2, 2)
        out_points.append(
            {
                "x": x,
                "y": y_of(value),
                "version": version.version,
                "value": value,
                "status": version.approval_status,
            }
        )
        pair = intervals[version.version]
        if pair:
            bars.append({"x": x, "y1": y_of(pair[0]), "y2": y_of(pair[1]), "low": pair[0], "high": pair[1]})
    ticks = [{"y": y_of(low + (high - low) * i / 4), "value": low + (high - low) * i / 4} for i in range(5)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "margin": MARGIN,
        "metric": metric,
        "points": out_points,
        "bars": bars,
        "ticks": ticks,
        "line": " ".join(f"{p['x']},{p['y']}" for p in out_points),
    }
