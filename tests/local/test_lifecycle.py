"""The model lifecycle on the local backend, with real AutoGluon: evaluate on one holdout,
register, gate, serve the latest approved version, roll back."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest

from airflow_autogluon_cloud.example_data import make_churn
from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.conftest import LABEL

#: A challenger that learned noise but grades itself on its own training rows: its validation
#: score is near perfect, its score on a real holdout is a coin toss.
LUCKY_FIT_ARGS = {"time_limit": 60, "hyperparameters": {"RF": {"n_estimators": 40}}, "verbosity": 1}


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def holdout():
    """Labelled rows no model was trained on: the one dataset both models are scored on."""
    return make_churn(300, seed=11)


@pytest.fixture(scope="module")
def lucky_job(hook, churn_frames) -> dict:
    train, _ = churn_frames
    noisy = train.copy()
    noisy[LABEL] = noisy[LABEL].sample(frac=1.0, random_state=0).to_numpy()
    submission = hook.start_training(
        job_name="ag-af-test-lucky-fit",
        train_data=noisy,
        tuning_data=noisy,  # "validation" on the rows it memorised: an optimistic score_val
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args=LUCKY_FIT_ARGS,
        max_runtime=600,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=2)
    return hook.training_result(submission.job_name)


def evaluate(hook, name, data, models, **kwargs) -> dict:
    submission = hook.evaluation.start(job_name=name, data=data, models=models, **kwargs)
    hook.wait_for_job("evaluation", submission.job_name, check_interval=1, max_check_interval=2)
    return hook.evaluation.result(submission.job_name)


@pytest.fixture(scope="module")
def evaluation(hook, holdout, trained_job, lucky_job) -> dict:
    models = {"champion": trained_job["model_artifact_uri"], "challenger": lucky_job["model_artifact_uri"]}
    return evaluate(hook, "ag-af-test-eval-lucky", holdout, models)


@pytest.mark.slow
def test_evaluation_scores_every_model_on_the_same_rows(evaluation, trained_job, lucky_job, holdout):
    assert evaluation["status"] == "Completed"
    assert evaluation["eval_metric"] == "roc_auc"
    assert evaluation["higher_is_better"] is True
    assert evaluation["num_rows"] == len(holdout)
    assert evaluation["class_counts"] == holdout[LABEL].value_counts().sort_index().to_dict()
    assert evaluation["metric_directions"]["log_loss"] is False
    champion, challenger = evaluation["metrics"]["champion"], evaluation["metrics"]["challenger"]
    # the lucky model grades itself higher than the champion does, and is worse on the shared holdout
    assert lucky_job["metrics"]["score_val"] > trained_job["metrics"]["score_val"]
    assert evaluation["score_val"]["challenger"] == lucky_job["metrics"]["score_val"]
    assert challenger["roc_auc"] < champion["roc_auc"] - 0.1
    assert champion["roc_auc"] > 0.75
    assert 0 < champion["log_loss"] < challenger["log_loss"]
    assert json.dumps(evaluation)  # a small JSON XCom


@pytest.mark.slow
def test_evaluation_metrics_match_autogluon_scoring_the_predictor_here(hook, evaluation, trained_job, holdout):
    predictor = hook.to_local_predictor(trained_job["model_artifact_uri"])
    scores = predictor.evaluate(holdout, silent=True)
    assert evaluation["metrics"]["champion"]["roc_auc"] == pytest.approx(scores["roc_auc"], abs=1e-9)
    assert evaluation["metrics"]["champion"]["accuracy"] == pytest.approx(scores["accuracy"], abs=1e-9)


def _evaluation_jobs(hook) -> int:
    return len(hook.jobs.list_jobs("evaluation"))


@pytest.mark.slow
def test_bad_input_fails_before_any_job(hook, holdout, trained_job, tmp_path):
    uri = trained_job["model_artifact_uri"]
    before = _evaluation_jobs(hook)
    with pytest.raises(InvalidParameterError, match="churned") as missing:
        hook.evaluation.start(job_name="ag-af-test-eval-bad", data=holdout.drop(columns=[LABEL]), models=[uri])
    assert missing.value.parameter == "data"
    with pytest.raises(InvalidParameterError, match="not a metric for a binary problem") as metric:
        hook.evaluation.start(job_name="ag-af-test-eval-bad", data=holdout, models=[uri], eval_metric="rmse")
    assert metric.value.parameter == "eval_metric"
    # a model of another task: same artifact, a training summary that names another label
    other = tmp_path / "model" / "ag-af-other" / "output"
    other.mkdir(parents=True)
    shutil.copy(uri, other / "model.tar.gz")
    summary = json.dumps({**hook.models.summary(uri), "label": "plan", "problem_type": "multiclass"}).encode()
    with tarfile.open(other / "output.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("training_summary.json")
        info.size = len(summary)
        tar.addfile(info, io.BytesIO(summary))
    with pytest.raises(InvalidParameterError, match="disagree on label") as disagree:
        hook.evaluation.start(
            job_name="ag-af-test-eval-bad",
            data=holdout,
            models={"champion": uri, "challenger": str(other / "model.tar.gz")},
        )
    assert disagree.value.parameter == "models"
    assert _evaluation_jobs(hook) == before


@pytest.mark.slow
def test_a_second_start_reuses_the_completed_evaluation(hook, evaluation, holdout, trained_job, lucky_job):
    before = _evaluation_jobs(hook)
    models = {"champion": trained_job["model_artifact_uri"], "challenger": lucky_job["model_artifact_uri"]}
    again = hook.evaluation.start(job_name="ag-af-test-eval-lucky", data=holdout, models=models)
    assert again.reattached is True
    assert again.job_name == evaluation["job_name"]
    assert _evaluation_jobs(hook) == before


def _deploy(hook, name: str, reference) -> dict:
    from airflow_autogluon_cloud.operators.deploy import resolve_model

    uri, version, used = resolve_model(hook, reference)  # what AGDeployOperator does when it runs
    plan = hook.start_deploy(endpoint_name=name, model_uri=uri, framework_version=version)
    hook.wait_for_endpoint(name, check_interval=0.5)
    return {**hook.finish_deploy(plan), "model_version": used}


@pytest.mark.slow
def test_gate_rejects_a_challenger_that_is_worse_on_the_holdout_despite_a_higher_validation_score(
    hook, evaluation, trained_job, lucky_job
):
    group = "ag-test-churn-reject"
    champion = hook.registry.register(group=group, model_uri=trained_job["model_artifact_uri"], registered_by="test")
    hook.registry.set_approval(group, champion.version, "Approved", "test", "first champion")
    challenger = hook.registry.register(
        group=group,
        model_uri=lucky_job["model_artifact_uri"],
        metrics=evaluation["metrics"]["challenger"],
        dataset=evaluation["data_uri"],
        registered_by="airflow:test/run/register",
    )
    assert challenger.approval_status == "PendingManualApproval"
    assert challenger.training_job == lucky_job["job_name"]
    scored = {**evaluation, "model_versions": {"champion": {"group": group, "version": champion.version}}}
    decision = hook.registry.promote(
        group=group, challenger_version=challenger.version, evaluation=scored, set_by="airflow:test/run/gate"
    )
    assert decision["decision"] == "rejected"
    assert decision["challenger_score"] < decision["champion_score"]
    assert decision["champion_version"] == champion.version
    assert decision["latest_approved_version"] == champion.version
    rejected = hook.registry.get(group, challenger.version)
    assert rejected.approval_status == "Rejected"
    assert rejected.status_set_by == "airflow:test/run/gate"
    assert "does not beat" in rejected.status_reason
    assert hook.registry.resolve({"registry": group, "version": "latest-approved"})[0] == champion.model_uri


@pytest.mark.slow
def test_a_better_challenger_is_approved_served_and_rolled_back(hook, evaluation, trained_job, lucky_job, holdout):
    group = "ag-test-churn-serve"
    # the lucky model is the current champion here, and the real one challenges it
    old = hook.registry.register(group=group, model_uri=lucky_job["model_artifact_uri"])
    hook.registry.set_approval(group, old.version, "Approved", "test", "first champion")
    new = hook.registry.register(group=group, model_uri=trained_job["model_artifact_uri"])
    scored = {**evaluation, "model_versions": {"challenger": {"group": group, "version": old.version}}}
    decision = hook.registry.promote(
        group=group,
        challenger_version=new.version,
        evaluation=scored,
        challenger="champion",  # the keys the shared evaluation scored them under
        champion="challenger",
        min_improvement=0.05,
        set_by="airflow:test/run/gate",
    )
    assert decision["decision"] == "approved"
    assert decision["improvement"] > 0.05
    assert decision["latest_approved_version"] == new.version
    name = "ag-af-test-lifecycle-ep"
    try:
        served = _deploy(hook, name, "registry://ag-test-churn-serve/latest-approved")
        assert served["model_uri"] == trained_job["model_artifact_uri"]
        assert served["model_version"]["version"] == new.version
        predictions = hook.predict_real_time(name, holdout.drop(columns=[LABEL]))
        assert (predictions.to_numpy() == holdout[LABEL].to_numpy()).mean() > 0.75
        # roll back: the new version is rejected, the one before it is served again
        back = hook.registry.rollback(group, set_by="oncall", reason="complaints after release")
        assert back.version == old.version
        assert hook.registry.get(group, new.version).approval_status == "Rejected"
        rolled = _deploy(hook, name, {"registry": group, "version": "latest-approved"})
        assert rolled["model_uri"] == lucky_job["model_artifact_uri"]
        assert rolled["model_version"]["version"] == old.version
        assert hook.describe_endpoint(name).status.value == "InService"
    finally:
        hook.delete_endpoint(name)


@pytest.mark.slow
def test_registering_again_returns_the_same_version(hook, trained_job):
    group = "ag-test-churn-retry"
    first = hook.registry.register(group=group, model_uri=trained_job["model_artifact_uri"], metrics={"roc_auc": 0.9})
    second = hook.registry.register(group=group, model_uri=trained_job["model_artifact_uri"], metrics={"roc_auc": 0.9})
    assert second.version == first.version
    assert len(hook.registry.versions(group)) == 1
