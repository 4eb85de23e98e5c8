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
