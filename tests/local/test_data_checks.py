"""Data checks: the baseline every model carries, and a batch's checks against it (local backend).

The statistical behaviour (no false alarms on the same distribution, each injected change named)
is tested on the profile functions with a real model's baseline and answers, not with 20 batch
jobs; one real batch job proves the whole path (profiles per request, merge, reports, fail mode).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_autogluon_cloud.container import data_checks, data_profile
from airflow_autogluon_cloud.example_data import make_churn
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import LABEL, run_dag, task_states, xcom

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hook():
    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def baseline(hook, trained_job):
    return hook.models.baseline(trained_job["model_artifact_uri"])


@pytest.fixture(scope="module")
def scored_pool(hook, trained_job, tmp_path_factory):
    """Held-out rows from the training distribution, with the real model's answers as serve.py gives them."""
    predictor = hook.to_local_predictor(trained_job["model_artifact_uri"], tmp_path_factory.mktemp("predictor"))
    rows = make_churn(6000, seed=21, with_label=False)
    proba = predictor.predict_proba(rows)
    answers = pd.DataFrame({LABEL: predictor.predict_from_proba(proba).to_numpy()})
    for column in proba.columns:
        answers[f"{column}_proba"] = proba[column].to_numpy()
    return rows, answers


def _check(baseline, rows, answers, parts=1):
    reference = data_profile.sketch_from_statistics(baseline["statistics"])
    chunks = np.array_split(np.arange(len(rows)), parts)
    sketches = [
        data_profile.sketch(rows.iloc[c], answers.iloc[c] if answers is not None else None, reference, (LABEL,))
        for c in chunks
    ]
    return data_checks.compare(reference, baseline["constraints"], data_profile.merge(sketches))


def test_every_model_carries_a_baseline_in_model_monitor_shape(baseline, trained_job):
    assert trained_job["usage"]["cpu_seconds"] > 0  # the fit's own usage, in its XCom
    stats, constraints = baseline["statistics"], baseline["constraints"]
    features = {f["name"]: f for f in stats["features"]}
    assert set(features) == {"tenure_months", "monthly_charges", "plan", "region", "support_tickets", "autopay"}
    charges = features["monthly_charges"]
    assert charges["inferred_type"] == "Fractional"
    numeric = charges["numerical_statistics"]
    assert numeric["common"] == {"num_present": 600, "num_missing": 0}
    assert 40 < numeric["mean"] < 80
    assert 10 < numeric["std_dev"] < 30
    assert numeric["min"] <= numeric["quantiles"]["0.5"] <= numeric["max"]
    buckets = numeric["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10
    assert sum(b["count"] for b in buckets) == 600
    plan = features["plan"]["string_statistics"]
    assert plan["distinct_count"] == 3.0
    assert {b["value"] for b in plan["distribution"]["categorical"]["buckets"]} == {"basic", "standard", "premium"}
    # The model's answers: no tuning data, so the predicted class only (in-sample probabilities left out).
    assert [p["name"] for p in stats["predictions"]] == [LABEL]
    assert stats["predictions_source"].startswith("a sample of train_data")
    by_name = {f["name"]: f for f in constraints["features"]}
    assert by_name["plan"]["string_constraints"]["domains"] == ["basic", "premium", "standard"]
    assert by_name["monthly_charges"]["completeness"] == 1.0
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "JensenShannon"


# (rows, requests): small batches (tests), large ones (distances), and requests over the rows a
# request bins (data_profile.PROFILED_ROWS_PER_REQUEST): counts scaled, tests on the binned rows.
@pytest.mark.parametrize(("rows", "parts"), [(300, 3), (3000, 3), (5000, 1)])
def test_the_same_distribution_raises_no_alarm_in_at_least_19_of_20_resamples(baseline, scored_pool, rows, parts):
    pool, answers = scored_pool
    alarms = []
    for seed in range(20):
        picked = np.random.default_rng(seed).choice(len(pool), rows, replace=False)
        violations, _ = _check(baseline, pool.iloc[picked], answers.iloc[picked], parts=parts)
        if violations["violations"]:
            alarms.append((seed, violations["violations"]))
    assert len(alarms) <= 1, alarms


def _shift(rows, answers):
    rows = rows.copy()
    rows["monthly_charges"] = rows["monthly_charges"] + 2 * rows["monthly_charges"].std()
    return rows, answers


def _new_category(rows, answers):
    rows = rows.copy()
    rows.loc[rows.index[::4], "plan"] = "platinum"
    return rows, answers


def _empty(rows, answers):
    rows = rows.copy()
    rows.loc[rows.index[: int(len(rows) * 0.6)], "tenure_months"] = np.nan
    return rows, answers


def _dropped(rows, answers):
    return rows.drop(columns=["region"]), answers


def _retyped(rows, answers):
    rows = rows.copy()
    rows["support_tickets"] = rows["support_tickets"].map(lambda v: f"{v} tickets")
    return rows, answers


def _prediction_shift(rows, answers):
    # Upstream now sends mostly the customers the model calls churners: the answers' mix moves.
    yes = answers.index[answers[LABEL] == "yes"]
    no = answers.index[answers[LABEL] == "no"][: len(yes) // 4]
    keep = yes.union(no)
    return rows.loc[keep], answers.loc[keep]


@pytest.mark.parametrize(
    ("change", "check", "column"),
    [
        (_shift, "baseline_drift_check", "monthly_charges"),
        (_new_category, "categorical_values_check", "plan"),
        (_empty, "completeness_check", "tenure_months"),
        (_dropped, "missing_column_check", "region"),
        (_retyped, "data_type_check", "support_tickets"),
        (_prediction_shift, "baseline_drift_check", f"prediction:{LABEL}"),
    ],
    ids=["mean+2std", "new category", "60% empty", "dropped column", "numbers as strings", "prediction shift"],
)
@pytest.mark.parametrize("rows", [400, 3000])
def test_each_injected_change_is_detected_and_named(baseline, scored_pool, change, check, column, rows):
    pool, answers = scored_pool
    picked = np.random.default_rng(5).choice(len(pool), rows, replace=False)
    changed, changed_answers = change(pool.iloc[picked], answers.iloc[picked])
    # 3000 rows in one request: more than a request bins, so the scaled counts are what is checked
    violations, report = _check(baseline, changed, changed_answers, parts=2 if rows < 3000 else 1)
    named = {(v["constraint_check_type"], v["feature_name"]) for v in violations["violations"]}
    assert (check, column) in named, violations
    if check == "baseline_drift_check":
        assert column in report["drifted_columns"]


def test_extra_column_is_named_and_a_check_can_be_silenced(baseline, scored_pool):
    pool, answers = scored_pool
    rows = pool.iloc[:500].assign(coupon="x")
    violations, _ = _check(baseline, rows, answers.iloc[:500])
    assert ("extra_column_check", "coupon") in {
        (v["constraint_check_type"], v["feature_name"]) for v in violations["violations"]
    }
    reference = data_profile.sketch_from_statistics(baseline["statistics"])
    batch = data_profile.sketch(rows, None, reference)
    quiet, _ = data_checks.compare(
        reference, baseline["constraints"], batch, {"features": {"coupon": {"skip_checks": ["extra_column_check"]}}}
    )
    assert quiet["violations"] == []


def test_fail_mode_fails_the_task_after_the_output_is_written(airflow_db, hook, trained_job, baseline, monkeypatch):
    data = make_churn(2500, seed=31, with_label=False)
    data["monthly_charges"] = data["monthly_charges"] + 40
    Path(os.environ["AGC_TEST_DATA_DIR"], "shifted.csv").parent.mkdir(parents=True, exist_ok=True)
    data.to_csv(Path(os.environ["AGC_TEST_DATA_DIR"]) / "shifted.csv", index=False)
    monkeypatch.setenv("AGC_TEST_MODEL_URI", trained_job["model_artifact_uri"])
    dag_run = run_dag("agc_test_data_checks_fail")
    states = task_states(dag_run)
    assert states["score"] == "failed"
    assert states["gate"] == "success"
    # Nothing is lost: every row was scored and written, and the reports sit next to the output.
    result = hook.batch_result("ag-af-test-data-checks-fail")
    assert result["status"] == "Completed"
    # What the job used: this machine bills nothing, and says how much CPU and time the job took.
    assert result["usage"]["billable_seconds"] is None
    assert result["usage"]["cpu_seconds"] > 0
    assert result["usage"]["wall_seconds"] > 0
    assert result["usage"]["instance_type"] == "ml.m5.2xlarge"
    assert len(hook.read_predict_results("ag-af-test-data-checks-fail")) == len(data)
    output = Path(result["output_uri"]).parent
    violations = json.loads((output / "constraint_violations.json").read_text())
    assert {"feature_name": "monthly_charges", "constraint_check_type": "baseline_drift_check"}.items() <= next(
        v for v in violations["violations"] if v["feature_name"] == "monthly_charges"
    ).items()
    drift = json.loads((output / "drift.json").read_text())
    assert drift["item_count"] == len(data)
    assert drift["columns"]["monthly_charges"]["method"] in ("js_distance", "psi")
    statistics = json.loads((output / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == len(data)
    # More than one request was profiled (first mini-batch 1000 rows, then the rest), merged into one.
    parts = list((output / "data_profile" / "parts").glob("*.json"))
    assert len(parts) >= 2
    gate = xcom("agc_test_data_checks_fail", "gate", dag_run.run_id)
    assert gate["passed"] is False
    assert "monthly_charges" in gate["counted"]["baseline_drift_check"]
