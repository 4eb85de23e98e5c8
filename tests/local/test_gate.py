"""The promotion gate with real AutoGluon models on the local backend: noise is rejected, a clear
improvement approved, a guardrail, a slice and a too-small holdout each reject, and regression
and multiclass work too.

The models are real fits (LightGBM, 40 rounds) on the synthetic churn data, started together and
shared by every test in the module. The binary ones are scored against one champion in a single
evaluation job (every challenger against the ``champion`` baseline), so each test promotes from
the same report:

* ``retrained``: the champion's configuration and row count, another sample (seed): noise;
* ``five_times``: five times the champion's rows: clearly better;
* ``miscalibrated``: as many rows, with every churner repeated ten times: it ranks better (ROC AUC)
  and its probabilities are far too high (log loss): a real model, not constructed statistics;
* ``premium_broken``: ten times the rows, with the labels of premium-plan customers shuffled:
  better overall, significantly worse on the ``plan=premium`` slice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_autogluon_cloud.example_data import make_churn
from tests.conftest import LABEL

pytestmark = pytest.mark.slow

FIT_ARGS = {"time_limit": 60, "hyperparameters": {"GBM": {"num_boost_round": 40}}, "verbosity": 1}
CHAMPION_ROWS = 150


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


def with_regression_label(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.drop(columns=[LABEL])
    out["spend"] = (
        20
        + 0.8 * out["tenure_months"]
        + 15 * out["support_tickets"]
        + 25 * (out["plan"] == "premium")
        - 10 * out["autopay"]
        + rng.normal(0, 8, len(out))
    )
    return out


def with_multiclass_label(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.drop(columns=[LABEL])
    value = (
        0.05 * out["tenure_months"] + 0.6 * out["support_tickets"] - 0.8 * out["autopay"] + rng.normal(0, 0.6, len(out))
    )
    out["segment"] = np.select([value < 1.0, value < 2.2], ["low", "mid"], "high")
    return out


def training_sets() -> dict[str, tuple[pd.DataFrame, str, str]]:
    """name -> (training rows, label, eval metric)."""
    oversampled = make_churn(5 * CHAMPION_ROWS, seed=4)
    oversampled = pd.concat([oversampled, *[oversampled[oversampled[LABEL] == "yes"]] * 9], ignore_index=True)
    broken = make_churn(10 * CHAMPION_ROWS, seed=4)
    premium = broken["plan"] == "premium"
    broken.loc[premium, LABEL] = np.random.default_rng(0).permutation(broken.loc[premium, LABEL].to_numpy())
    return {
        "champion": (make_churn(CHAMPION_ROWS, seed=3), LABEL, "roc_auc"),
        "retrained": (make_churn(CHAMPION_ROWS, seed=5), LABEL, "roc_auc"),
        "five_times": (make_churn(5 * CHAMPION_ROWS, seed=4), LABEL, "roc_auc"),
        "miscalibrated": (oversampled, LABEL, "roc_auc"),
        "premium_broken": (broken, LABEL, "roc_auc"),
        "reg_small": (with_regression_label(make_churn(CHAMPION_ROWS, seed=3), 3), "spend", "rmse"),
        "reg_big": (with_regression_label(make_churn(5 * CHAMPION_ROWS, seed=4), 4), "spend", "rmse"),
        "multi_small": (with_multiclass_label(make_churn(CHAMPION_ROWS, seed=3), 3), "segment", "accuracy"),
        "multi_big": (with_multiclass_label(make_churn(5 * CHAMPION_ROWS, seed=4), 4), "segment", "accuracy"),
    }


@pytest.fixture(scope="module")
def models(hook) -> dict[str, str]:
    """Every model's ``model.tar.gz``: the fits are started together, then waited for."""
    started = {}
    for name, (frame, label, metric) in training_sets().items():
        submission = hook.start_training(
            job_name=f"ag-af-test-gate-{name.replace('_', '-')}",
            train_data=frame,
            predictor_init_args={"label": label, "eval_metric": metric},
            predictor_fit_args=FIT_ARGS,
            max_runtime=900,
        )
        started[name] = submission.job_name
    uris = {}
    for name, job in started.items():
        hook.wait_for_job("training", job, check_interval=1, max_check_interval=3)
        uris[name] = hook.training_result(job)["model_artifact_uri"]
    return uris


def evaluate(hook, name: str, data: pd.DataFrame, models: dict[str, str], **kwargs) -> dict:
    submission = hook.evaluation.start(job_name=name, data=data, models=models, **kwargs)
    hook.wait_for_job("evaluation", submission.job_name, check_interval=1, max_check_interval=3)
    return hook.evaluation.result(submission.job_name)


@pytest.fixture(scope="module")
def binary_evaluation(hook, models) -> dict:
    keys = ("champion", "retrained", "five_times", "miscalibrated", "premium_broken")
    result = evaluate(
        hook, "ag-af-test-gate-eval-binary", make_churn(3000, seed=11), {k: models[k] for k in keys}, slices=["plan"]
    )
    assert result["status"] == "Completed"
    return result


def promote(hook, group: str, models: dict[str, str], evaluation: dict, challenger: str, champion="champion", **gate):
    """A fresh group: the champion approved, the challenger registered, then the gate."""
    first = hook.registry.register(group=group, model_uri=models[champion], registered_by="test")
    hook.registry.set_approval(group, first.version, "Approved", "test", "first champion")
    version = hook.registry.register(group=group, model_uri=models[challenger], registered_by="test")
    decision = hook.registry.promote(
        group=group,
        challenger_version=version.version,
        evaluation=evaluation,
        challenger=challenger,
        champion=champion,
        set_by=f"airflow:test/{group}/gate",
        **gate,
    )
    assert decision["champion_version"] == first.version
    return decision


def test_the_same_model_retrained_with_another_seed_is_noise(hook, models, binary_evaluation):
    decision = promote(hook, "ag-test-gate-seed", models, binary_evaluation, "retrained")
    assert decision["decision"] == "rejected"
    low, high = decision["improvement_interval"]
    assert low <= 0 <= high
    assert "at 95% on 3000 rows" in decision["reason"]
    assert decision["reason"].endswith("champion kept")
    assert decision["test"] == "DeLong"
    assert decision["p_value"] > 0.05
    # the rule of before (point estimates) is still there, and would have gone by the sign alone
    assert (decision["improvement"] > 0) == (
        promote(hook, "ag-test-gate-seed-point", models, binary_evaluation, "retrained", confidence=None)["decision"]
        == "approved"
    )
    record = hook.registry.get("ag-test-gate-seed", decision["challenger_version"])
    assert record.approval_status == "Rejected"
    assert "interval=" in record.status_audit["metric:roc_auc"]
    assert record.status_audit["metric:roc_auc"].endswith("FAILED")


def test_a_model_trained_on_five_times_the_rows_is_approved(hook, models, binary_evaluation):
    decision = promote(
        hook, "ag-test-gate-five", models, binary_evaluation, "five_times", guardrails={"log_loss": 0.02}
    )
    assert decision["decision"] == "approved", decision["reason"]
    assert decision["improvement_interval"][0] > 0
    assert decision["p_value"] < 0.05
    assert decision["guardrails"]["log_loss"]["passed"]
    assert decision["latest_approved_version"] == decision["challenger_version"]
    accuracy = binary_evaluation["comparisons"]["five_times"]["metrics"]["accuracy"]
    assert accuracy["test"] == "McNemar exact"
    assert 0 <= accuracy["p_value"] <= 1


def test_better_ranking_with_far_worse_log_loss_is_stopped_by_the_guardrail(hook, models, binary_evaluation):
    compared = binary_evaluation["comparisons"]["miscalibrated"]["metrics"]
    assert compared["roc_auc"]["intervals"]["0.95"][0] > 0  # it does rank better
    decision = promote(
        hook, "ag-test-gate-guard", models, binary_evaluation, "miscalibrated", guardrails={"log_loss": 0.02}
    )
    assert decision["decision"] == "rejected"
    assert decision["rules"][0]["passed"]  # the ROC AUC rule itself passed
    guard = decision["guardrails"]["log_loss"]
    assert not guard["passed"]
    assert guard["worse_by_up_to"] > 0.05
    assert "a significant improvement; guardrail log_loss worse by up to" in decision["reason"]
    # a guardrail metric the evaluation did not report fails the gate too
    missing = promote(
        hook, "ag-test-gate-guard-missing", models, binary_evaluation, "five_times", guardrails={"r2": 0.1}
    )
    assert missing["decision"] == "rejected"
    assert "guardrail r2 is missing from the evaluation" in missing["reason"]


def test_better_overall_but_worse_on_one_slice_is_rejected_naming_it(hook, models, binary_evaluation):
    slices = binary_evaluation["comparisons"]["premium_broken"]["slices"]["plan"]
    assert set(slices) == {"basic", "standard", "premium"}
    decision = promote(hook, "ag-test-gate-slice", models, binary_evaluation, "premium_broken", slices=["plan"])
    assert decision["decision"] == "rejected"
    assert decision["rules"][0]["passed"]  # better overall
    [failed] = [s for s in decision["slices"] if not s["passed"]]
    assert (failed["column"], failed["value"]) == ("plan", "premium")
    assert "slice plan=premium is worse: roc_auc" in decision["reason"]
    # without the slice rule the same challenger goes through
    assert promote(hook, "ag-test-gate-noslice", models, binary_evaluation, "premium_broken")["decision"] == "approved"


def test_a_holdout_too_small_to_tell_is_rejected_saying_so(hook, models):
    small = evaluate(
        hook,
        "ag-af-test-gate-eval-small",
        make_churn(60, seed=12),
        {"champion": models["champion"], "five_times": models["five_times"]},
    )
    decision = promote(hook, "ag-test-gate-small", models, small, "five_times", min_rows=500)
    assert decision["decision"] == "rejected"
    assert "a holdout of 60 rows is below min_rows=500: too small to tell" in decision["reason"]
    assert decision["rules"][0] == {"rule": "min_rows", "num_rows": 60, "min_rows": 500, "passed": False}


def test_regression_on_rmse(hook, models):
    pair = {"champion": models["reg_small"], "challenger": models["reg_big"]}
    evaluation = evaluate(hook, "ag-af-test-gate-eval-reg", with_regression_label(make_churn(2000, seed=13), 13), pair)
    assert evaluation["eval_metric"] == "root_mean_squared_error"  # AutoGluon's name for rmse
    rmse = evaluation["comparisons"]["challenger"]["metrics"]["root_mean_squared_error"]
    assert rmse["intervals"]["0.95"][1] < 0  # lower is better: the bigger fit's errors are smaller
    assert rmse["method"] == "paired bootstrap"  # regression: no strata
    decision = promote(hook, "ag-test-gate-reg", pair, evaluation, "challenger")
    assert decision["decision"] == "approved", decision["reason"]
    assert decision["higher_is_better"] is False
    assert decision["improvement"] == pytest.approx(-rmse["difference"])
    assert decision["improvement_interval"] == pytest.approx(sorted(-x for x in rmse["intervals"]["0.95"]))


@pytest.fixture(scope="module")
def multiclass_models(models) -> dict[str, str]:
    return {"champion": models["multi_small"], "challenger": models["multi_big"]}


def test_multiclass_on_accuracy_with_a_log_loss_guardrail(hook, multiclass_models):
    evaluation = evaluate(
        hook,
        "ag-af-test-gate-eval-multi",
        with_multiclass_label(make_churn(2000, seed=13), 13),
        multiclass_models,
        metrics=["log_loss", "balanced_accuracy"],
    )
    assert evaluation["problem_type"] == "multiclass"
    compared = evaluation["comparisons"]["challenger"]["metrics"]
    assert compared["accuracy"]["test"] == "McNemar exact"
    assert compared["accuracy"]["method"] == "paired stratified bootstrap"
    for name in ("accuracy", "log_loss", "balanced_accuracy"):
        low, high = compared[name]["intervals"]["0.95"]
        assert low <= compared[name]["difference"] <= high
    decision = promote(
        hook, "ag-test-gate-multi", multiclass_models, evaluation, "challenger", guardrails={"log_loss": 0.05}
    )
    # five times the rows: significantly more accurate, and no worse calibrated
    assert decision["decision"] == "approved", decision["reason"]
    assert decision["improvement_interval"][0] > 0
    assert decision["guardrails"]["log_loss"]["passed"]
    assert decision["guardrails"]["log_loss"]["worse_by_up_to"] <= 0.05
