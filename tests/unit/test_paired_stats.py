"""``container/paired_stats.py`` against independent implementations: scipy's ``bootstrap`` and
``binomtest``, sklearn's metrics, a DeLong variance from the O(n^2) structural components, and
small hand-made cases whose answers are worked out in the comments."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import airflow_autogluon_cloud

CONTAINER = Path(airflow_autogluon_cloud.__file__).parent / "container"


def load(name: str):
    """A container module as the job imports it: its directory first on the path (only while loading)."""
    sys.path.insert(0, str(CONTAINER))
    try:
        spec = importlib.util.spec_from_file_location(name, CONTAINER / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(CONTAINER))


@pytest.fixture(scope="module")
def ps():
    return load("paired_stats")


@pytest.fixture(scope="module")
def tests_module(ps):
    return sys.modules["paired_tests"]


def delong_by_structural_components(a: np.ndarray, b: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """DeLong (1988) as written: psi over every (positive, negative) pair, O(m n). Returns (diff, p)."""
    components = []
    aucs = []
    for scores in (a, b):
        x, y = scores[positive], scores[~positive]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        aucs.append(psi.mean())
        components.append((psi.mean(axis=1), psi.mean(axis=0)))  # V10 per positive, V01 per negative
    m, n = int(positive.sum()), int((~positive).sum())
    s10 = np.cov(np.vstack([components[0][0], components[1][0]]))
    s01 = np.cov(np.vstack([components[0][1], components[1][1]]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    diff = aucs[0] - aucs[1]
    return diff, math.erfc(abs(diff) / math.sqrt(var) / math.sqrt(2))


def test_midranks_share_ties(tests_module):
    assert tests_module.midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_delong_on_a_hand_made_case(tests_module):
    # positives 0.9 0.8 0.7, negatives 0.1 0.2 0.75: model A ranks 8 of 9 pairs right (0.7 < 0.75);
    # model B ranks all 9 right. AUCs 8/9 and 1, difference -1/9.
    positive = np.array([True, True, True, False, False, False])
    a = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.75])
    b = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    found = tests_module.delong(a, b, positive)
    assert found["difference"] == pytest.approx(8 / 9 - 1)
    # by hand: V10(A) = (1, 1, 2/3), V01(A) = (1, 1, 2/3), B's are all 1, so each covariance with B
    # is 0 and var = 2 * var([1, 1, 2/3]) / 3 = 2 * (1/27) / 3 = 2/81
    assert found["se"] == pytest.approx(math.sqrt(2 / 81))
    expected_diff, expected_p = delong_by_structural_components(a, b, positive)
    assert found["p_value"] == pytest.approx(expected_p)
    assert found["difference"] == pytest.approx(expected_diff)


def test_delong_matches_the_structural_components_with_ties(tests_module):
    rng = np.random.default_rng(3)
    positive = rng.random(120) < 0.4
    a = np.round(positive * 0.8 + rng.normal(0, 0.6, 120), 1)  # rounded: many ties
    b = np.round(positive * 0.5 + rng.normal(0, 0.6, 120), 1)
    found = tests_module.delong(a, b, positive)
    diff, p = delong_by_structural_components(a, b, positive)
    assert found["difference"] == pytest.approx(diff, abs=1e-12)
    assert found["p_value"] == pytest.approx(p, rel=1e-9)
    assert 0 < found["p_value"] < 1


def test_identical_models_give_p_one_and_a_zero_interval(ps):
    y = np.array([0, 1] * 30)
    scores = np.linspace(0, 1, 60)
    rows = ps.ModelRows((scores > 0.5).astype(int), scores)
    auc = float(ps.weighted_roc_auc(np.ones((1, 60)), scores, y == 1)[0])
    out = ps.compare(
        problem_type="binary",
        y=y,
        model=rows,
        baseline=rows,
        metrics=["roc_auc", "accuracy"],
        scores={"model": {"roc_auc": auc, "accuracy": 0.5}, "baseline": {"roc_auc": auc, "accuracy": 0.5}},
        n_resamples=50,
    )
    assert out["roc_auc"]["intervals"]["0.95"] == [0.0, 0.0]
    assert out["roc_auc"]["p_value"] == 1.0
    assert out["accuracy"]["p_value"] == 1.0


@pytest.mark.parametrize(("b", "c"), [(0, 0), (7, 1), (3, 3), (40, 25), (1, 12), (300, 250)])
def test_mcnemar_exact_is_scipys_binomtest(tests_module, b, c):
    from scipy.stats import binomtest

    model = np.array([True] * b + [False] * c + [True] * 5 + [False] * 4)
    baseline = np.array([False] * b + [True] * c + [True] * 5 + [False] * 4)
    found = tests_module.mcnemar_exact(model, baseline)
    assert (found["model_only_correct"], found["baseline_only_correct"]) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert found["p_value"] == pytest.approx(expected, rel=1e-9)


def test_mcnemar_hand_made(tests_module):
    # 5 discordant rows, all won by the model: p = 2 * (1/2)^5 = 1/16
    found = tests_module.mcnemar_exact(np.array([True] * 5), np.array([False] * 5))
    assert found["p_value"] == pytest.approx(1 / 16)


def test_unstratified_bootstrap_is_scipys_paired_percentile_bootstrap(ps):
    """Same seed, same draws: scipy's paired bootstrap resamples row indices as this module does."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(5)
    n = 200
    y = rng.normal(size=n)
    a, b = y + rng.normal(0, 0.5, n), y + rng.normal(0, 0.7, n)
    functions = tuple(ps.metric_function("mean_squared_error", "regression", y, ps.ModelRows(p), 0) for p in (a, b))
    differences = ps.bootstrap_differences(functions, n, None, 400, seed=11)
    mine = ps.percentile_intervals(differences, (0.9, 0.95))

    def statistic(y_, a_, b_, axis=-1):
        return ((a_ - y_) ** 2).mean(axis=axis) - ((b_ - y_) ** 2).mean(axis=axis)

    for level in (0.9, 0.95):
        theirs = bootstrap(
            (y, a, b),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=400,
            confidence_level=level,
            method="percentile",
            random_state=np.random.default_rng(11),
        ).confidence_interval
        assert mine[f"{level:g}"] == pytest.approx([theirs.low, theirs.high], rel=1e-9)


def test_stratified_bootstrap_keeps_class_counts_and_agrees_with_a_loop(ps):
    rng = np.random.default_rng(2)
    y = (rng.random(90) < 0.3).astype(int)
    strata = [np.flatnonzero(y == c) for c in (0, 1)]
    weights = ps.resample_weights(strata, len(y), 25, np.random.default_rng(4))
    assert weights.shape == (25, 90)
    assert (weights @ (y == 1)).tolist() == [float((y == 1).sum())] * 25
    assert (weights.sum(1) == 90).all()
    # the same draws, resample by resample, with sklearn's accuracy on the materialised rows
    from sklearn.metrics import accuracy_score

    a = np.where(rng.random(90) < 0.8, y, 1 - y)
    b = np.where(rng.random(90) < 0.7, y, 1 - y)
    functions = tuple(ps.metric_function("accuracy", "binary", y, ps.ModelRows(p), 2) for p in (a, b))
    differences = ps.bootstrap_differences(functions, 90, strata, 25, seed=4)
    draw = np.random.default_rng(4)
    expected = []
    index_blocks = [rows[draw.integers(0, len(rows), (25, len(rows)))] for rows in strata]
    for i in range(25):
        rows = np.concatenate([block[i] for block in index_blocks])
        expected.append(accuracy_score(y[rows], a[rows]) - accuracy_score(y[rows], b[rows]))
    assert differences == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "problem_type"),
    [
        ("accuracy", "multiclass"),
        ("balanced_accuracy", "multiclass"),
        ("mcc", "multiclass"),
        ("mcc", "binary"),
        ("f1", "binary"),
        ("precision", "binary"),
        ("recall", "binary"),
        ("f1_macro", "multiclass"),
        ("precision_weighted", "multiclass"),
        ("recall_micro", "multiclass"),
        ("log_loss", "multiclass"),
        ("log_loss", "binary"),
        ("roc_auc", "binary"),
        ("root_mean_squared_error", "regression"),
        ("mean_absolute_error", "regression"),
        ("r2", "regression"),
    ],
)
def test_each_vectorised_metric_is_sklearns_on_weighted_rows(ps, name, problem_type):
    from sklearn import metrics

    rng = np.random.default_rng(7)
    n = 150
    classes = 3 if problem_type == "multiclass" else 2
    if problem_type == "regression":
        y = rng.normal(size=n)
        rows = ps.ModelRows(y + rng.normal(0, 0.5, n))
    else:
        y = rng.integers(0, classes, n)
        logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[y]
        proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        rows = ps.ModelRows(proba.argmax(1), proba[:, 1] if classes == 2 else proba)
    function = ps.metric_function(name, problem_type, y, rows, classes)
    counts = np.bincount(rng.integers(0, n, n), minlength=n)  # one resample, materialised below
    idx = np.repeat(np.arange(n), counts)
    got = float(function(counts[None, :].astype(float))[0])
    yt, pred = y[idx], rows.pred[idx]
    sk = {
        "accuracy": lambda: metrics.accuracy_score(yt, pred),
        "balanced_accuracy": lambda: metrics.balanced_accuracy_score(yt, pred),
        "mcc": lambda: metrics.matthews_corrcoef(yt, pred),
        "f1": lambda: metrics.f1_score(yt, pred),
        "precision": lambda: metrics.precision_score(yt, pred),
        "recall": lambda: metrics.recall_score(yt, pred),
        "f1_macro": lambda: metrics.f1_score(yt, pred, average="macro"),
        "precision_weighted": lambda: metrics.precision_score(yt, pred, average="weighted"),
        "recall_micro": lambda: metrics.recall_score(yt, pred, average="micro"),
        "log_loss": lambda: metrics.log_loss(yt, rows.proba[idx], labels=list(range(classes))),
        "roc_auc": lambda: metrics.roc_auc_score(yt, rows.proba[idx]),
        "root_mean_squared_error": lambda: math.sqrt(metrics.mean_squared_error(yt, pred)),
        "mean_absolute_error": lambda: metrics.mean_absolute_error(yt, pred),
        "r2": lambda: metrics.r2_score(yt, pred),
    }[name]()
    assert got == pytest.approx(sk, rel=1e-9, abs=1e-12)


def test_weighted_roc_auc_counts_ties_one_half_as_sklearn_does(ps):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    scores = np.round(y * 0.3 + rng.random(300), 1)  # eleven distinct values: ties everywhere
    counts = np.bincount(rng.integers(0, 300, 300), minlength=300)
    idx = np.repeat(np.arange(300), counts)
    got = ps.weighted_roc_auc(np.vstack([np.ones(300), counts]), scores, y == 1)
    assert got == pytest.approx([roc_auc_score(y, scores), roc_auc_score(y[idx], scores[idx])], rel=1e-12)


def test_compare_leaves_metrics_without_a_vectorised_form_without_an_interval(ps):
    y = np.arange(40, dtype=float)
    model, baseline = ps.ModelRows(y + 1), ps.ModelRows(y - 2)
    out = ps.compare(
        problem_type="regression",
        y=y,
        model=model,
        baseline=baseline,
        metrics=["mean_absolute_error", "median_absolute_error"],
        scores={
            "model": {"mean_absolute_error": 1.0, "median_absolute_error": 1.0},
            "baseline": {"mean_absolute_error": 2.0, "median_absolute_error": 2.0},
        },
        n_resamples=100,
    )
    # every row's error is exactly 1 and 2: every resample's difference is -1
    assert out["mean_absolute_error"]["intervals"]["0.95"] == pytest.approx([-1.0, -1.0])
    assert out["median_absolute_error"]["intervals"] is None
    assert out["median_absolute_error"]["difference"] == -1.0


def test_compare_refuses_to_bootstrap_a_metric_it_does_not_reproduce(ps):
    y = np.arange(40, dtype=float)
    out = ps.compare(
        problem_type="regression",
        y=y,
        model=ps.ModelRows(y + 1),
        baseline=ps.ModelRows(y - 2),
        metrics=["mean_absolute_error"],
        scores={"model": {"mean_absolute_error": 1.5}, "baseline": {"mean_absolute_error": 2.0}},
        n_resamples=10,
    )
    assert out["mean_absolute_error"]["intervals"] is None
    assert "differ from AutoGluon" in out["mean_absolute_error"]["note"]


def test_slices_are_reported_per_value(ps):
    y = np.array([0, 1] * 50)
    good = ps.ModelRows(y.copy(), y * 0.8 + 0.1)
    region = np.array(["north"] * 40 + ["south"] * 60)
    flipped = y.copy()
    flipped[:40] = 1 - flipped[:40]  # wrong on every northern row
    worse_north = ps.ModelRows(flipped, flipped * 0.8 + 0.1)
    out = ps.comparisons(
        problem_type="binary",
        y=y,
        rows={"challenger": worse_north, "champion": good},
        scores={"challenger": {"accuracy": 0.6}, "champion": {"accuracy": 1.0}},
        metrics=["accuracy"],
        baseline="champion",
        slices={"region": region},
        n_resamples=100,
    )
    found = out["challenger"]["slices"]["region"]
    assert found["north"]["num_rows"] == 40
    assert found["north"]["metrics"]["accuracy"]["difference"] == pytest.approx(-1.0)
    assert found["south"]["metrics"]["accuracy"]["difference"] == pytest.approx(0.0)
    assert out["challenger"]["metrics"]["accuracy"]["intervals"]["0.95"][1] < 0
