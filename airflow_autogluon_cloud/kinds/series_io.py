"""Time-series requests as they travel: the JSON envelope (history, known covariates, static
features) that ``container/kind_timeseries.py`` reads, and batch input partitioned by item.

Values keep their exact text (Python's shortest repr for floats), so the container rebuilds the
same frames the caller holds and a forecast equals ``TimeSeriesPredictor.predict`` on them.
Imports pandas when called, never at parse time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: A batch part stays under this much JSON: SageMaker's SplitType=None sends a file as one request.
PART_MAX_BYTES = 5 * 1024 * 1024


def _split(frame: Any, timestamp_column: str | None) -> dict[str, Any]:
    import pandas as pd

    frame = frame.copy()
    stamps = {c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])}
    if timestamp_column and timestamp_column in frame.columns:
        stamps.add(timestamp_column)
    for column in stamps:
        frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame.to_dict(orient="split", index=False)


def envelope(history: Any, known_covariates: Any, static_features: Any, timestamp_column: str | None = None) -> bytes:
    """One request: ``{"history": split, "known_covariates": split, "static_features": split}``."""
    body: dict[str, Any] = {"history": _split(history, timestamp_column)}
    if known_covariates is not None:
        body["known_covariates"] = _split(known_covariates, timestamp_column)
    if static_features is not None:
        body["static_features"] = _split(static_features, None)
    return json.dumps(body, separators=(",", ":")).encode()


def write_parts(
    history: Any,
    known_covariates: Any,
    static_features: Any,
    layout: dict[str, Any],
    directory: Path,
    max_bytes: int | None = None,
    min_parts: int = 1,
) -> list[Path]:
    """Envelopes of whole items, each under ``max_bytes`` where an item allows: ``part-00000.json``...

    No series is ever split across parts; items keep their order of first appearance. With
    ``min_parts``, the parts are made smaller (never split below one item) so that there are at
    least that many: one per instance (or local worker) of the job that scores them.
    """
    max_bytes = PART_MAX_BYTES if max_bytes is None else max_bytes
    id_column, timestamp_column = layout["id_column"], layout["timestamp_column"]
    items = list(dict.fromkeys(history[id_column].tolist()))
    sample = envelope(history.head(1000), None, None, timestamp_column)
    per_row = max(1, len(sample) // max(1, min(len(history), 1000)))
    if min_parts > 1:
        max_bytes = min(max_bytes, max(1, -(-len(history) * per_row // min_parts)))
    sizes = history.groupby(id_column, sort=False).size()
    groups: list[list[Any]] = [[]]
    used = 0
    for item in items:
        cost = int(sizes[item]) * per_row
        if groups[-1] and used + cost > max_bytes:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += cost
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    width = max(5, int(math.log10(len(groups))) + 1)
    for number, group in enumerate(groups):
        path = directory / f"part-{number:0{width}d}.json"
        parts = [_items(frame, id_column, set(group)) for frame in (history, known_covariates, static_features)]
        path.write_bytes(envelope(parts[0], parts[1], parts[2], timestamp_column))
        paths.append(path)
    return paths


def _items(frame: Any, id_column: str, items: set[Any]) -> Any:
    return None if frame is None else frame[frame[id_column].isin(items)]
