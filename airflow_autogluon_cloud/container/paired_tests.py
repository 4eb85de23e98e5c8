"""Tests with p-values for paired comparisons on one holdout (shipped beside ``paired_stats.py``).

* DeLong's test that two correlated ROC AUCs on the same rows are equal, in Sun and Xu's fast
  midrank form (O(n log n), no pairwise matrix);
* McNemar's exact test on the rows exactly one of two models classifies right (a two-sided
  binomial test with p = 1/2, summed in log space so it holds for any number of rows).

NumPy and the standard library only.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

#: The levels of DeLong's normal intervals (the bootstrap's, ``paired_stats.LEVELS``).
DEFAULT_LEVELS = (0.8, 0.9, 0.95, 0.99)


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def delong(
    scores_model: np.ndarray,
    scores_baseline: np.ndarray,
    positive: np.ndarray,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
) -> dict[str, Any]:
    """DeLong's test that two correlated ROC AUCs on the same rows are equal (fast midrank form)."""
    positive = np.asarray(positive, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        return {"test": "DeLong", "p_value": None, "note": "needs two rows of each class"}
    aucs, v10, v01 = [], [], []
    for scores in (np.asarray(scores_model, float), np.asarray(scores_baseline, float)):
        x, y = scores[positive], scores[~positive]
        tx, ty, tz = midranks(x), midranks(y), midranks(np.concatenate([x, y]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)  # per positive: share of negatives it outranks
        v01.append(1.0 - (tz[m:] - ty) / m)  # per negative: share of positives that outrank it
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = float((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n)
    difference = float(aucs[0] - aucs[1])
    if variance <= 0:
        return {"test": "DeLong", "p_value": 1.0 if difference == 0 else 0.0, "difference": difference, "se": 0.0}
    se = math.sqrt(variance)
    return {
        "test": "DeLong",
        "p_value": float(math.erfc(abs(difference) / se / math.sqrt(2))),
        "difference": difference,
        "se": se,
        "intervals": {f"{level:g}": _normal_interval(difference, se, level) for level in levels},
    }


def _normal_interval(center: float, se: float, level: float) -> list[float]:
    half = NormalDist().inv_cdf(0.5 + level / 2) * se
    return [center - half, center + half]


def mcnemar_exact(model_correct: np.ndarray, baseline_correct: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test: of the rows exactly one model gets right, is each half as likely?"""
    model_correct, baseline_correct = np.asarray(model_correct, bool), np.asarray(baseline_correct, bool)
    b = int((model_correct & ~baseline_correct).sum())
    c = int((~model_correct & baseline_correct).sum())
    total, low = b + c, min(b, c)
    if total == 0:
        p = 1.0
    else:  # 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), summed in log space
        k = np.arange(1, low + 1)
        log_pmf = np.concatenate([[0.0], np.cumsum(np.log((total - k + 1) / k))]) - total * math.log(2)
        p = min(1.0, 2.0 * float(np.exp(log_pmf).sum()))
    return {"test": "McNemar exact", "p_value": p, "model_only_correct": b, "baseline_only_correct": c}
