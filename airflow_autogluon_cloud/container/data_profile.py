"""Data profiles: mergeable per-column sketches, and SageMaker Model Monitor's statistics/constraints.

Shipped beside the entry scripts (see ``ag_kinds.CODE_MODULES``); standard library, NumPy and
pandas only; imports nothing from the provider package.

A *sketch* is the profile of some rows, in a form that adds up: counts, sums, sums of squares,
extremes, histogram counts on fixed bin edges, category counts. ``train.py`` sketches the training
data (the bin edges are its deciles) and renders ``statistics.json`` and ``constraints.json`` in
Model Monitor's documented shape. ``serve.py`` sketches each batch request on the baseline's edges
while it scores it, and writes the sketch as one small JSON part; the parts are merged with
:func:`merge` when the job is done (sums of counts: the merge is exact, whatever the split).

Everything is vectorised over whole columns (``searchsorted`` + ``bincount`` on the fixed edges,
``value_counts`` for categories): profiling costs a small fraction of scoring.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SKETCH_VERSION = 1
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
#: Decile edges for numeric columns: ten bins of equal mass on the training data.
QUANTILE_EDGES = tuple(i / 10 for i in range(1, 10))
#: Quantiles reported in the baseline's statistics.
REPORTED_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Probabilities are binned on fixed edges in [0, 1].
UNIT_EDGES = tuple(i / 10 for i in range(1, 10))
#: Categories counted per column; rarer ones are summed as ``other`` (the domain is then open).
MAX_CATEGORIES = 1000
#: A batch request bins (and counts categories of) at most this many evenly spaced rows; its
#: counts are scaled by present rows / profiled rows, so every row of the batch weighs the same
#: in the merge, and the tests take the profiled rows as their sample size. Counts of rows, and
#: of numbers' missing values, sums and extremes are over every row (text columns' missing values
#: are counted on the binned rows, scaled). The baseline profiles every row.
PROFILED_ROWS_PER_REQUEST = 2000
NUMERIC_TYPES = ("Integral", "Fractional")
#: Environment of a batch transform: where serve.py writes its per-request sketches (path or s3://).
PROFILE_ENV = "AG_DATA_PROFILE_URI"
PARTS_DIR = "parts"
BASELINE_DIR = "baseline"


# --------------------------------------------------------------------------- sketches


def inferred_type(series: pd.Series) -> str:
    """Model Monitor's type names: ``Integral``, ``Fractional``, ``String`` (flags and text) or ``Unknown``."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "String"
    if pd.api.types.is_integer_dtype(dtype):
        return "Integral"
    if pd.api.types.is_float_dtype(dtype):
        return "Fractional"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "Unknown"
    return "String"


def _stride(present: int, baseline: bool) -> int:
    return 1 if baseline or present <= PROFILED_ROWS_PER_REQUEST else -(-present // PROFILED_ROWS_PER_REQUEST)


def _numeric_sketch(series: pd.Series, kind: str, edges: list[float] | None, baseline: bool) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    present = values[~np.isnan(values)]
    if edges is None:  # the baseline: deciles of the data itself
        edges = np.unique(np.quantile(present, QUANTILE_EDGES)).tolist() if len(present) else []
    profiled = present[:: _stride(len(present), baseline)]
    hist = np.bincount(np.searchsorted(np.asarray(edges), profiled, side="right"), minlength=len(edges) + 1)
    scale = len(present) / len(profiled) if len(profiled) else 1.0
    sketch: dict[str, Any] = {
        "type": kind,
        "count": int(len(values)),
        "missing": int(len(values) - len(present)),
        "sum": float(present.sum()) if len(present) else 0.0,
        "sum_sq": float(np.square(present).sum()) if len(present) else 0.0,
        "min": float(present.min()) if len(present) else None,
        "max": float(present.max()) if len(present) else None,
        "edges": [float(e) for e in edges],
        "hist": hist.tolist() if scale == 1.0 else (hist * scale).round(3).tolist(),
        "profiled": int(len(profiled)),
    }
    if baseline and len(present):  # exact only where all rows are at hand
        sketch["quantiles"] = {
            str(q): float(v) for q, v in zip(REPORTED_QUANTILES, np.quantile(present, REPORTED_QUANTILES), strict=False)
        }
        sketch["distinct"] = int(len(np.unique(present)))
    return sketch


def _categorical_sketch(series: pd.Series, kind: str, baseline: bool) -> dict[str, Any]:
    # Text columns count their missing values on the binned rows too (scaled): finding missing
    # values in a whole column of Python objects costs more than counting the sample's categories.
    stride = _stride(len(series), baseline)
    sample = series if stride == 1 else series.iloc[::stride]
    counts = sample.value_counts(dropna=True, sort=True)
    profiled = int(counts.sum())
    scale = len(series) / len(sample) if stride > 1 else 1.0
    present = profiled if stride == 1 else min(len(series), round(profiled * scale))
    kept = counts.iloc[:MAX_CATEGORIES]
    values: dict[str, float] = {}
    for key, count in zip(kept.index, kept.to_numpy(), strict=False):
        name = str(key)
        values[name] = values.get(name, 0) + (int(count) if scale == 1.0 else round(float(count) * scale, 3))
    return {
        "type": kind,
        "count": int(len(series)),
        "missing": int(len(series) - present),
        "values": values,
        "other": (present - sum(values.values())) if counts.iloc[MAX_CATEGORIES:].size else 0,
        "distinct": int(len(counts)),
        "profiled": profiled,
    }


def sketch_column(
    series: pd.Series,
    reference: dict[str, Any] | None = None,
    *,
    unit: bool = False,
    categorical: bool = False,
    baseline: bool = False,
) -> dict[str, Any]:
    """One column's sketch; numeric columns are binned on the reference's edges when it has them.

    :param unit: probabilities: binned on fixed edges in [0, 1].
    :param categorical: counted as categories whatever the dtype (a classifier's predicted labels).
    """
    kind = inferred_type(series)
    if kind in NUMERIC_TYPES and not categorical:
        edges = list(UNIT_EDGES) if unit else (reference or {}).get("edges")
        if edges is None and not baseline:
            edges = []  # no baseline edges: one bin, so that every request's sketch merges
        return _numeric_sketch(series, kind, edges, baseline)
    return _categorical_sketch(series, kind if not categorical else "String", baseline)


def sketch_frame(
    frame: pd.DataFrame,
    reference: dict[str, Any] | None = None,
    categorical: tuple[str, ...] = (),
    baseline: bool = False,
) -> dict[str, dict[str, Any]]:
    """Sketches of every column; ``reference``: the baseline's sketches by column (their bin edges)."""
    reference = reference or {}
    return {
        str(name): sketch_column(
            frame[name],
            reference.get(str(name)) if (reference.get(str(name)) or {}).get("type") in NUMERIC_TYPES else None,
            unit=str(name).endswith("_proba"),
            categorical=str(name) in categorical,
            baseline=baseline,
        )
        for name in frame.columns
    }


def sketch(
    features: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    reference: dict[str, Any] | None = None,
    categorical_predictions: tuple[str, ...] = (),
    baseline: bool = False,
) -> dict[str, Any]:
    """The sketch of some rows: their features and the model's answers for them."""
    reference = reference or {}
    return {
        "version": SKETCH_VERSION,
        "item_count": int(len(features)),
        "features": sketch_frame(features, reference.get("features"), baseline=baseline),
        "predictions": sketch_frame(
            predictions, reference.get("predictions"), categorical_predictions, baseline=baseline
        )
        if predictions is not None
        else {},
    }


def _merge_column(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if a["type"] != b["type"] and {a["type"], b["type"]} <= set(NUMERIC_TYPES):
        a = {**a, "type": "Fractional"}  # integers with a gap in one part read as floats
    if a["type"] != b["type"] or ("hist" in a) != ("hist" in b):
        # A column that changed type between requests: the text wins (it is what failed to parse).
        return a if a["type"] == "String" else b
    merged = {**a, "count": a["count"] + b["count"], "missing": a["missing"] + b["missing"]}
    merged["profiled"] = _profiled(a) + _profiled(b)
    if "hist" in a:
        if a["edges"] != b["edges"]:
            raise ValueError("sketches binned on different edges cannot be merged")
        merged.update(
            sum=a["sum"] + b["sum"],
            sum_sq=a["sum_sq"] + b["sum_sq"],
            min=min((v for v in (a["min"], b["min"]) if v is not None), default=None),
            max=max((v for v in (a["max"], b["max"]) if v is not None), default=None),
            hist=[x + y for x, y in zip(a["hist"], b["hist"], strict=False)],
        )
        merged.pop("quantiles", None)
        merged.pop("distinct", None)
        return merged
    values = dict(a["values"])
    for key, count in b["values"].items():
        values[key] = values.get(key, 0) + count
    ordered = sorted(values.items(), key=lambda kv: -kv[1])
    kept = dict(ordered[:MAX_CATEGORIES])
    merged.update(
        values=kept,
        other=a["other"] + b["other"] + sum(c for _, c in ordered[MAX_CATEGORIES:]),
        distinct=max(len(values), a["distinct"], b["distinct"]),  # a lower bound once truncated
    )
    return merged


def _profiled(column: dict[str, Any]) -> int:
    """The rows a column's histogram or categories were counted on (all present rows if not said)."""
    return int(column.get("profiled", column["count"] - column["missing"]))


def merge(sketches: list[dict[str, Any]]) -> dict[str, Any]:
    """One sketch of all the rows of ``sketches`` (parts of one batch, in any order)."""
    if not sketches:
        raise ValueError("no sketch to merge")
    total = json.loads(json.dumps(sketches[0]))
    for part in sketches[1:]:
        total["item_count"] += part["item_count"]
        for section in ("features", "predictions"):
            for name, column in part.get(section, {}).items():
                mine = total[section].get(name)
                total[section][name] = column if mine is None else _merge_column(mine, column)
    return total


# --------------------------------------------------------------------------- Model Monitor's files


def _mean_std(column: dict[str, Any]) -> tuple[float | None, float | None]:
    present = column["count"] - column["missing"]
    if present <= 0:
        return None, None
    mean = column["sum"] / present
    variance = max(column["sum_sq"] / present - mean * mean, 0.0)
    return mean, math.sqrt(variance * present / (present - 1)) if present > 1 else 0.0


def _feature_statistics(name: str, column: dict[str, Any]) -> dict[str, Any]:
    common = {"num_present": column["count"] - column["missing"], "num_missing": column["missing"]}
    if "hist" in column:
        mean, std = _mean_std(column)
        edges = column["edges"]
        lows = [column["min"], *edges]
        highs = [*edges, column["max"]]
        buckets = [
            {"lower_bound": lo, "upper_bound": hi, "count": c}
            for lo, hi, c in zip(lows, highs, column["hist"], strict=True)
        ]
        stats: dict[str, Any] = {
            "common": common,
            "mean": mean,
            "sum": column["sum"],
            "std_dev": std,
            "min": column["min"],
            "max": column["max"],
            "distribution": {"kll": {"buckets": buckets}},
        }
        if "quantiles" in column:
            stats["quantiles"] = column["quantiles"]
        if "distinct" in column:
            stats["distinct_count"] = float(column["distinct"])
        return {"name": name, "inferred_type": column["type"], "numerical_statistics": stats}
    buckets = [{"value": value, "count": count} for value, count in column["values"].items()]
    return {
        "name": name,
        "inferred_type": column["type"],
        "string_statistics": {
            "common": common,
            "distinct_count": float(column["distinct"]),
            "other_count": column["other"],
            "distribution": {"categorical": {"buckets": buckets}},
        },
    }


def statistics(total: dict[str, Any]) -> dict[str, Any]:
    """``statistics.json`` in Model Monitor's shape; the model's answers under ``predictions``."""
    return {
        "version": 0.0,
        "dataset": {"item_count": total["item_count"]},
        "features": [_feature_statistics(n, c) for n, c in total["features"].items()],
        "predictions": [_feature_statistics(n, c) for n, c in total.get("predictions", {}).items()],
    }


def _column_from_statistics(feature: dict[str, Any]) -> dict[str, Any]:
    """The sketch a statistics entry was rendered from (what a batch is compared with)."""
    kind = feature["inferred_type"]
    if "numerical_statistics" in feature:
        stats = feature["numerical_statistics"]
        buckets = stats["distribution"]["kll"]["buckets"]
        present, missing = stats["common"]["num_present"], stats["common"]["num_missing"]
        mean, std = stats.get("mean") or 0.0, stats.get("std_dev") or 0.0
        return {
            "type": kind,
            "count": present + missing,
            "missing": missing,
            "sum": mean * present,
            "sum_sq": (std * std * (present - 1) / present + mean * mean) * present if present else 0.0,
            "min": stats.get("min"),
            "max": stats.get("max"),
            "edges": [b["upper_bound"] for b in buckets[:-1]],
            "hist": [b["count"] for b in buckets],
        }
    stats = feature["string_statistics"]
    values = {b["value"]: b["count"] for b in stats["distribution"]["categorical"]["buckets"]}
    present, missing = stats["common"]["num_present"], stats["common"]["num_missing"]
    return {
        "type": kind,
        "count": present + missing,
        "missing": missing,
        "values": values,
        "other": int(stats.get("other_count", 0)),
        "distinct": int(stats.get("distinct_count", len(values))),
    }


def sketch_from_statistics(stats: dict[str, Any]) -> dict[str, Any]:
    """The baseline's sketch, from its ``statistics.json`` (bin edges, counts, categories)."""
    return {
        "version": SKETCH_VERSION,
        "item_count": stats.get("dataset", {}).get("item_count", 0),
        "features": {f["name"]: _column_from_statistics(f) for f in stats.get("features", [])},
        "predictions": {f["name"]: _column_from_statistics(f) for f in stats.get("predictions", [])},
    }


def constraints(total: dict[str, Any], monitoring_config: dict[str, Any]) -> dict[str, Any]:
    """``constraints.json`` in Model Monitor's shape: types, completeness, domains of small cardinality."""
    features = []
    for name, column in total["features"].items():
        entry: dict[str, Any] = {
            "name": name,
            "inferred_type": column["type"],
            "completeness": round((column["count"] - column["missing"]) / column["count"], 6)
            if column["count"]
            else 1.0,
        }
        if "hist" in column:
            entry["num_constraints"] = {"is_non_negative": column["min"] is not None and column["min"] >= 0}
        elif column["other"] == 0:  # the whole domain was seen
            entry["string_constraints"] = {"domains": sorted(column["values"])}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": monitoring_config}


# --------------------------------------------------------------------------- parts of a batch


def write_part(destination: str, total: dict[str, Any]) -> str:
    """One request's sketch as ``<destination>/parts/<unique>.json`` (a path or ``s3://``)."""
    name = f"{os.getpid()}-{uuid.uuid4().hex}.json"
    text = json.dumps(total, separators=(",", ":"))
    return _put(destination, f"{PARTS_DIR}/{name}", text)


def write_baseline(destination: str, model_dir: str | Path) -> None:
    """Copy the model's baseline beside the parts, so the merge needs nothing but the profile prefix."""
    for file_name in (STATISTICS_FILE, CONSTRAINTS_FILE):
        path = Path(model_dir) / file_name
        if path.is_file():
            _put(destination, f"{BASELINE_DIR}/{file_name}", path.read_text(encoding="utf-8"))


def _put(destination: str, key: str, text: str) -> str:
    if destination.startswith("s3://"):
        import boto3  # in the AWS containers; the transform job's role writes under its output path

        bucket, _, prefix = destination[5:].partition("/")
        full = f"{prefix.rstrip('/')}/{key}" if prefix else key
        boto3.client("s3").put_object(Bucket=bucket, Key=full, Body=text.encode("utf-8"))
        return f"s3://{bucket}/{full}"
    path = Path(destination) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # whole parts only: a merge never reads half of one
    return str(path)


# --------------------------------------------------------------------------- the baseline, and a batch's parts

#: ``constraints.json``'s ``monitoring_config``, in Model Monitor's terms (the checks' own options
#: are ``data_checks.DEFAULTS``, overridable per job).
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Disabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 0.99,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "JensenShannon",
    },
}


def baseline_files(
    features: pd.DataFrame, answers: pd.DataFrame | None, categorical: tuple[str, ...], answers_source: str
) -> dict[str, str]:
    """``statistics.json`` and ``constraints.json`` of the training rows and the model's answers."""
    total = sketch(features, answers, categorical_predictions=categorical, baseline=True)
    stats = statistics(total)
    stats["predictions_source"] = answers_source
    return {
        STATISTICS_FILE: json.dumps(stats, indent=1),
        CONSTRAINTS_FILE: json.dumps(constraints(total, MONITORING_CONFIG), indent=1),
    }


class BatchProfiler:
    """serve.py's, in a batch transform: each request's sketch (on the baseline's edges), one part each.

    :param destination: the job's profile prefix (``AG_DATA_PROFILE_URI``): a path or ``s3://``.
    """

    def __init__(self, destination: str, model_dir: str | Path) -> None:
        self.destination = destination
        path = Path(model_dir) / STATISTICS_FILE
        self.reference = sketch_from_statistics(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}
        write_baseline(destination, model_dir)

    def add(self, model: Any, rows: pd.DataFrame, answers: pd.DataFrame) -> None:
        """Sketch one request's rows and answers (already in memory: no second read) and write it."""
        profiled, categorical = model.kind.profiled_answers(model, answers)
        write_part(self.destination, sketch(rows, profiled, self.reference, categorical))


def batch_profiler(model_dir: str | Path, kind: Any) -> BatchProfiler | None:
    """The profiler when this is a batch transform asked to profile (and the kind's requests are rows)."""
    destination = os.environ.get(PROFILE_ENV, "").strip()
    if not destination or not getattr(kind, "profiles_rows", False):
        return None
    return BatchProfiler(destination, model_dir)


def write_baseline_files(
    features: pd.DataFrame,
    answers: pd.DataFrame | None,
    categorical: tuple[str, ...],
    from_tuning: bool,
    directories: tuple[Path, ...],
) -> float | None:
    """train.py's: write the baseline into each directory; the seconds it took (``None``: it failed,
    and the fitted model is kept all the same, without a baseline)."""
    import time

    started = time.monotonic()
    source = "tuning_data" if from_tuning else "a sample of train_data (in-sample: probabilities left out)"
    try:
        files = baseline_files(features, answers, categorical, source)
        for directory in directories:
            for name, text in files.items():
                (Path(directory) / name).write_text(text, encoding="utf-8")
    except Exception as err:  # a profile must never cost the fit
        print(f"Could not profile the training data ({type(err).__name__}: {err}); no baseline", flush=True)
        return None
    seconds = time.monotonic() - started
    print(
        f"Profiled {len(features)} training rows and {0 if answers is None else len(answers)} answers "
        f"({source}) in {seconds:.2f}s: {STATISTICS_FILE}, {CONSTRAINTS_FILE}",
        flush=True,
    )
    return round(seconds, 3)
