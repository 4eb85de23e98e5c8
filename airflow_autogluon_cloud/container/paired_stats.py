"""Paired statistics of challenger - champion on one holdout (shipped beside ``evaluate.py``).

Self-contained (NumPy and the standard library only), so it runs inside the AutoGluon container
as it does here. Every model was scored on the same rows, so the comparison is *paired*:

* a **paired bootstrap**: each resample draws rows (with replacement, within each class for
  classification, so every resample keeps the holdout's class counts) and scores *both* models on
  those same rows; the percentile interval of the differences is reported at several levels. It is
  vectorised: a resample is a row of an index matrix of shape ``(resamples, rows)`` per stratum,
  turned into a count per row, so a metric of many resamples is one matrix product (no Python
  loop per resample). Resamples are taken in blocks only to bound memory;
* for ROC AUC, **DeLong's** test of two correlated AUCs (Sun and Xu's fast midrank algorithm);
* for accuracy, **McNemar's** exact test on the discordant rows (binomial, p = 1/2);
  both in ``paired_tests.py``.

Differences are ``model - baseline`` in the metric's own units (``log_loss`` and errors are
positive numbers, lower is better); the reader applies the metric's direction.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from paired_tests import delong, mcnemar_exact  # shipped beside this module

#: Interval levels reported for every metric; the promotion gate picks one.
LEVELS = (0.8, 0.9, 0.95, 0.99)
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
#: Elements of a (resamples, rows) block held at once: bounds memory at ~100 MB for any holdout.
BLOCK_ELEMENTS = 2_000_000
#: A metric's bootstrap is used only if its value on the whole holdout matches AutoGluon's score.
MATCH_TOLERANCE = 1e-6
LOG_LOSS_EPS = 1e-15
ALIASES = {
    "acc": "accuracy",
    "nll": "log_loss",
    "mse": "mean_squared_error",
    "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error",
}


# ---- metrics of many resamples at once: ``weights`` is (resamples, rows) of row counts -----------


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def confusion(weights: np.ndarray, y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """Weighted confusion matrices, (resamples, true class, predicted class)."""
    onehot = np.zeros((len(y), classes * classes))
    onehot[np.arange(len(y)), y * classes + pred] = 1.0
    return (weights @ onehot).reshape(len(weights), classes, classes)


def _per_class(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diagonal(conf, axis1=1, axis2=2)
    return tp, conf.sum(axis=2), conf.sum(axis=1)  # true positives, true count, predicted count


def _averaged(conf: np.ndarray, *, kind: str, average: str) -> np.ndarray:
    tp, true, predicted = _per_class(conf)
    if average == "micro":
        return tp.sum(1) / conf.sum(axis=(1, 2))
    if kind == "precision":
        per_class = _safe_div(tp, predicted)
    elif kind == "recall":
        per_class = _safe_div(tp, true)
    else:
        per_class = _safe_div(2 * tp, true + predicted)
    present = (true + predicted) > 0  # sklearn averages over the labels seen in y_true or y_pred
    if average == "weighted":
        return _safe_div((per_class * true).sum(1), true.sum(1))
    return _safe_div((per_class * present).sum(1), present.sum(1))


def _mcc(conf: np.ndarray) -> np.ndarray:
    tp, true, predicted = _per_class(conf)
    total, correct = conf.sum(axis=(1, 2)), tp.sum(1)
    cov_tp = correct * total - (true * predicted).sum(1)
    cov_pp = total**2 - (predicted**2).sum(1)
    cov_tt = total**2 - (true**2).sum(1)
    return _safe_div(cov_tp, np.sqrt(cov_tt * cov_pp))


def roc_auc_function(scores: np.ndarray, positive: np.ndarray) -> Any:
    """``f(weights)``: ROC AUC of each resample (ties count one half), from one sort of the scores.

    In score order, a running sum of the negatives' weights gives, for each positive row, the
    weight of negatives below its score (before its group of tied scores) and up to it (the end of
    that group); the difference is the tied negatives, which count one half.
    """
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, pos = scores[order], np.asarray(positive, bool)[order]
    starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:] - 1, len(scores) - 1]
    positives = np.flatnonzero(pos)
    before = first[group[positives]] - 1  # -1: no row below the group
    through = last[group[positives]]
    negative = (~pos).astype(float)

    def auc(weights: np.ndarray) -> np.ndarray:
        w = np.take(weights, order, axis=1)
        negatives_so_far = np.cumsum(w * negative, axis=1)
        below = np.take(negatives_so_far, np.maximum(before, 0), axis=1) * (before >= 0)
        tied = np.take(negatives_so_far, through, axis=1) - below
        positive_w = np.take(w, positives, axis=1)
        beaten = (positive_w * (below + 0.5 * tied)).sum(1)
        return _safe_div(beaten, positive_w.sum(1) * negatives_so_far[:, -1])

    return auc


def weighted_roc_auc(weights: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    return roc_auc_function(scores, positive)(weights)


class ModelRows:
    """One model's per-row evidence on the holdout, in AutoGluon's internal label encoding.

    :param pred: predicted class codes (classification) or values (regression).
    :param proba: the positive class's probability (binary) or (rows, classes) (multiclass).
    """

    def __init__(self, pred: np.ndarray, proba: np.ndarray | None = None) -> None:
        self.pred = np.asarray(pred)
        self.proba = None if proba is None else np.asarray(proba, dtype=float)
        self._confusion: tuple[np.ndarray | None, np.ndarray | None] = (None, None)

    def confusion(self, weights: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
        """:func:`confusion` of these predictions, computed once per block of resamples."""
        seen, value = self._confusion
        if seen is not weights or value is None:
            value = confusion(weights, y, self.pred.astype(int), classes)
            self._confusion = (weights, value)
        return value


def metric_function(name: str, problem_type: str, y: np.ndarray, rows: ModelRows, classes: int) -> Any:
    """``f(weights) -> values`` for one model and metric, or ``None`` when no vectorised form exists."""
    name = ALIASES.get(name, name)
    n = len(y)
    if problem_type == "regression":
        error = rows.pred.astype(float) - y.astype(float)
        pointwise = {"mean_squared_error": error**2, "mean_absolute_error": np.abs(error)}
        if name in pointwise:
            column = pointwise[name]
            return lambda w: (w @ column) / n
        if name == "root_mean_squared_error":
            return lambda w: np.sqrt((w @ error**2) / n)
        if name == "r2":
            yf = y.astype(float)
            return lambda w: 1.0 - _safe_div(w @ error**2, w @ yf**2 - (w @ yf) ** 2 / n)
        return None
    if name == "log_loss" and rows.proba is not None:
        proba = rows.proba
        p_true = np.where(y == 1, proba, 1 - proba) if proba.ndim == 1 else proba[np.arange(n), y]
        column = -np.log(np.clip(p_true, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS))
        return lambda w: (w @ column) / n
    if name == "roc_auc" and problem_type == "binary" and rows.proba is not None:
        scores = rows.proba if rows.proba.ndim == 1 else rows.proba[:, 1]
        return roc_auc_function(scores, y == 1)
    on_confusion = {
        "accuracy": lambda c: np.trace(c, axis1=1, axis2=2) / c.sum(axis=(1, 2)),
        "balanced_accuracy": lambda c: _balanced(c),
        "mcc": _mcc,
    }
    if problem_type == "binary":
        on_confusion["precision"] = lambda c: _safe_div(c[:, 1, 1], c[:, 1, 1] + c[:, 0, 1])
        on_confusion["recall"] = lambda c: _safe_div(c[:, 1, 1], c[:, 1, 1] + c[:, 1, 0])
        on_confusion["f1"] = lambda c: _safe_div(2 * c[:, 1, 1], 2 * c[:, 1, 1] + c[:, 0, 1] + c[:, 1, 0])
    for kind in ("precision", "recall", "f1"):
        for average in ("macro", "micro", "weighted"):
            on_confusion[f"{kind}_{average}"] = functools.partial(_averaged, kind=kind, average=average)
    if name not in on_confusion:
        return None
    function = on_confusion[name]
    return lambda w: function(rows.confusion(w, y, classes))


def _balanced(conf: np.ndarray) -> np.ndarray:
    tp, true, _ = _per_class(conf)
    present = true > 0
    return _safe_div((_safe_div(tp, true) * present).sum(1), present.sum(1))


# ---- resampling ------------------------------------------------------------------------------


def resample_weights(strata: list[np.ndarray], n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Row counts of ``count`` resamples: one index matrix (count, stratum size) per stratum.

    Each index matrix is counted per resample with one ``bincount`` (offsetting each resample's
    indices into its own range) and the counts are scattered to the stratum's rows.
    """
    weights = np.zeros((count, n))
    for rows in strata:
        size = len(rows)
        indices = rng.integers(0, size, (count, size), dtype=np.int32).astype(np.int64)
        indices += (np.arange(count, dtype=np.int64) * size)[:, None]
        counts = np.bincount(indices.ravel(), minlength=count * size).reshape(count, size)
        if size == n:
            weights[:] = counts
        else:
            weights[:, rows] = counts
    return weights


def bootstrap_differences(
    functions: tuple[Any, Any], n: int, strata: list[np.ndarray] | None, n_resamples: int, seed: int
) -> np.ndarray:
    """``f_model - f_baseline`` over ``n_resamples`` paired resamples (the same rows for both)."""
    return bootstrap_many({"metric": functions}, n, strata, n_resamples, seed)["metric"]


def bootstrap_many(
    pairs: dict[str, tuple[Any, Any]], n: int, strata: list[np.ndarray] | None, n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """:func:`bootstrap_differences` for several metrics on the same resamples (drawn once)."""
    rng = np.random.default_rng(seed)
    groups = strata if strata else [np.arange(n)]
    block = max(1, min(n_resamples, BLOCK_ELEMENTS // max(n, 1)))
    out: dict[str, list[np.ndarray]] = {name: [] for name in pairs}
    for start in range(0, n_resamples, block):
        weights = resample_weights(groups, n, min(block, n_resamples - start), rng)
        for name, (model, baseline) in pairs.items():
            out[name].append(model(weights) - baseline(weights))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def percentile_intervals(differences: np.ndarray, levels: tuple[float, ...] = LEVELS) -> dict[str, list[float]]:
    intervals = {}
    for level in levels:
        low, high = np.percentile(differences, [50 * (1 - level), 50 * (1 + level)])
        intervals[f"{level:g}"] = [float(low), float(high)]
    return intervals


# ---- the report --------------------------------------------------------------------------------


def compare(
    *,
    problem_type: str,
    y: np.ndarray,
    model: ModelRows,
    baseline: ModelRows,
    metrics: list[str],
    scores: dict[str, dict[str, float | None]] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Every metric's paired difference ``model - baseline`` with its intervals (and p-value where one exists).

    :param scores: ``{"model": {metric: value}, "baseline": {...}}``, AutoGluon's scores on these rows;
        ``None`` (a slice of the holdout): the scores recomputed here, for the metrics that have a
        vectorised form.
    """
    y = np.asarray(y)
    n = len(y)
    classification = problem_type != "regression"
    classes = int(max(y.max(), model.pred.max(), baseline.pred.max())) + 1 if classification and n else 0
    strata = [np.flatnonzero(y == c) for c in np.unique(y)] if classification else None
    everywhere = np.ones((1, n))
    out: dict[str, Any] = {}
    to_bootstrap: dict[str, tuple[Any, Any]] = {}
    for name in metrics:
        functions = tuple(metric_function(name, problem_type, y, rows, classes) for rows in (model, baseline))
        model_score: float | None
        baseline_score: float | None
        if scores is None:
            if functions[0] is None or functions[1] is None or not n:
                continue
            model_score, baseline_score = (float(f(everywhere)[0]) for f in functions)
        else:
            model_score, baseline_score = scores["model"].get(name), scores["baseline"].get(name)
        entry: dict[str, Any] = {
            "model": model_score,
            "baseline": baseline_score,
            "difference": None if model_score is None or baseline_score is None else model_score - baseline_score,
            "num_rows": n,
            "intervals": None,
            "p_value": None,
            "test": None,
        }
        out[name] = entry
        if entry["difference"] is None:
            continue
        if functions[0] is None or functions[1] is None:
            entry["note"] = "no paired bootstrap for this metric"
        else:
            here = [float(f(everywhere)[0]) for f in functions]
            reported = (float(entry["model"]), float(entry["baseline"]))
            if all(
                math.isclose(h, r, rel_tol=MATCH_TOLERANCE, abs_tol=MATCH_TOLERANCE)
                for h, r in zip(here, reported, strict=True)
            ):
                to_bootstrap[name] = functions
            else:
                entry["note"] = f"not bootstrapped: recomputed {here} differ from AutoGluon's scores"
        name_ = ALIASES.get(name, name)
        if name_ == "roc_auc" and problem_type == "binary" and model.proba is not None and baseline.proba is not None:
            found = delong(_positive_scores(model), _positive_scores(baseline), y == 1, LEVELS)
            entry.update(test=found["test"], p_value=found["p_value"])
        elif name_ == "accuracy" and classification:
            found = mcnemar_exact(model.pred == y, baseline.pred == y)
            entry.update(test=found["test"], p_value=found["p_value"])
            entry["discordant"] = [found["model_only_correct"], found["baseline_only_correct"]]
    for name, differences in bootstrap_many(to_bootstrap, n, strata, n_resamples, seed).items():
        out[name]["intervals"] = percentile_intervals(differences)
        out[name]["method"] = "paired stratified bootstrap" if strata else "paired bootstrap"
    return out


def _positive_scores(rows: ModelRows) -> np.ndarray:
    assert rows.proba is not None
    return rows.proba if rows.proba.ndim == 1 else rows.proba[:, 1]


# ---- what evaluate.py calls ------------------------------------------------------------------

#: Slice values reported per column at most (the most frequent ones), to keep the report small.
MAX_SLICE_VALUES = 50


def comparisons(
    *,
    problem_type: str,
    y: np.ndarray,
    rows: dict[str, ModelRows],
    scores: dict[str, dict[str, float | None]],
    metrics: list[str],
    baseline: str,
    slices: dict[str, np.ndarray] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """``{model key: comparison with baseline}`` for every model but the baseline ({} without one)."""
    if baseline not in rows:
        return {}
    out: dict[str, Any] = {}
    y = np.asarray(y)
    for key in sorted(k for k in rows if k != baseline):
        pair = {"model": scores[key], "baseline": scores[baseline]}
        found: dict[str, Any] = {
            "baseline": baseline,
            "num_rows": len(y),
            "n_resamples": n_resamples,
            "seed": seed,
            "levels": [f"{level:g}" for level in LEVELS],
            "metrics": compare(
                problem_type=problem_type,
                y=y,
                model=rows[key],
                baseline=rows[baseline],
                metrics=metrics,
                scores=pair,
                n_resamples=n_resamples,
                seed=seed,
            ),
            "slices": {},
        }
        for column, values in (slices or {}).items():
            found["slices"][column] = _slice_report(
                problem_type, y, rows[key], rows[baseline], metrics, np.asarray(values), n_resamples, seed
            )
        out[key] = found
    return out


def _slice_report(
    problem_type: str,
    y: np.ndarray,
    model: ModelRows,
    baseline: ModelRows,
    metrics: list[str],
    values: np.ndarray,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    labels = np.array(["<missing>" if v is None or v != v else str(v) for v in values.tolist()], dtype=object)
    kinds, counts = np.unique(labels, return_counts=True)
    report: dict[str, Any] = {}
    for value in [str(v) for v in kinds[np.argsort(-counts, kind="stable")][:MAX_SLICE_VALUES]]:
        mask = labels == value
        report[value] = {
            "num_rows": int(mask.sum()),
            "metrics": compare(
                problem_type=problem_type,
                y=y[mask],
                model=_subset(model, mask),
                baseline=_subset(baseline, mask),
                metrics=metrics,
                n_resamples=n_resamples,
                seed=seed,
            ),
        }
    return report


def _subset(rows: ModelRows, mask: np.ndarray) -> ModelRows:
    return ModelRows(rows.pred[mask], None if rows.proba is None else rows.proba[mask])


def evidence_frame(
    y: np.ndarray, rows: dict[str, ModelRows], class_labels: list[Any] | None, slices: dict[str, np.ndarray]
) -> Any:
    """Every model's per-row predictions (and probabilities) keyed by ``row``, the holdout's position."""
    import pandas as pd

    columns: dict[str, Any] = {"row": np.arange(len(y)), "label": np.asarray(y)}
    for column, values in slices.items():
        columns[f"slice__{column}"] = np.asarray(values)
    for key, model in sorted(rows.items()):
        columns[f"{key}__pred"] = model.pred
        if model.proba is None:
            continue
        if model.proba.ndim == 1:
            columns[f"{key}__proba"] = model.proba
        else:
            for i in range(model.proba.shape[1]):
                name = class_labels[i] if class_labels and i < len(class_labels) else i
                columns[f"{key}__proba__{name}"] = model.proba[:, i]
    return pd.DataFrame(columns)
