"""Text and tabular+text multimodal predictors end to end on the local backend, with real AutoGluon
on a tiny BERT built from the training texts (offline): fit, checks before any job, evaluation and
the gate, a real-time endpoint, a batch transform and the local predictor. Every served answer is
compared with ``MultiModalPredictor`` in this process on the same rows."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from tests.multimodal import MULTIMODAL, build_tiny_bert, make_reviews, text_fit_args

pytestmark = MULTIMODAL
LABEL = "sentiment"
TEXT_TYPES = {"review": "text"}


@pytest.fixture(scope="module")
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


@pytest.fixture(scope="module")
def reviews():
    return make_reviews(160, seed=3), make_reviews(60, seed=4)


@pytest.fixture(scope="module")
def checkpoint(reviews, tmp_path_factory):
    train, _ = reviews
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "bert", train["review"].tolist())


def fit(hook, name: str, train, fit_args, label=LABEL, problem_type=None, **kwargs) -> dict:
    init_args = {"label": label, **({"problem_type": problem_type} if problem_type else {})}
    submission = hook.start_training(
        job_name=name,
        train_data=train,
        predictor_type="multimodal",
        predictor_init_args=init_args,
        predictor_fit_args=fit_args,
        max_runtime=900,
        **kwargs,
    )
    hook.wait_for_job("training", submission.job_name, check_interval=1, max_check_interval=3)
    result = hook.training_result(submission.job_name)
    assert result["status"] == "Completed", hook.log_tail("training", submission.job_name, 40)
    return result


@pytest.fixture(scope="module")
def fitted(hook, reviews, checkpoint) -> dict[str, dict]:
    """The champion and a challenger (one epoch, other rows), fitted one after the other."""
    train, _ = reviews
    args = text_fit_args(checkpoint, column_types=TEXT_TYPES)
    jobs = {"champion": fit(hook, "ag-af-test-mm-text", train[["review", LABEL]], args)}
    args["hyperparameters"]["optim.max_epochs"] = 1
    jobs["challenger"] = fit(hook, "ag-af-test-mm-text-b", train[["review", LABEL]].head(80), args)
    # Saved standalone: the models must not need the checkpoint they were fitted from.
    shutil.rmtree(checkpoint)
    return jobs


@pytest.fixture(scope="module")
def text_job(fitted) -> dict:
    return fitted["champion"]


@pytest.fixture(scope="module")
def challenger_job(fitted) -> dict:
    return fitted["challenger"]


@pytest.fixture(scope="module")
def predictor(hook, text_job, tmp_path_factory):
    return hook.to_local_predictor(text_job["model_artifact_uri"], tmp_path_factory.mktemp("mm-predictor"))


def test_the_fit_is_a_standalone_multimodal_text_classifier(text_job, predictor, checkpoint, reviews):
    from autogluon.multimodal import MultiModalPredictor

    assert text_job["predictor_type"] == "multimodal"
    assert text_job["metrics"]["label"] == LABEL
    assert text_job["metrics"]["problem_type"] == "binary"
    assert not checkpoint.exists()
    assert isinstance(predictor, MultiModalPredictor)
    assert sorted(str(c) for c in predictor.class_labels) == ["neg", "pos"]
    _, holdout = reviews
    assert set(predictor.predict(holdout[["review"]]).astype(str)) <= {"neg", "pos"}


def test_bad_text_input_is_refused_before_any_job(hook, reviews, tmp_path):
    train, _ = reviews
    numbers = train[["review", LABEL]].assign(review=range(len(train)))
    with pytest.raises(InvalidParameterError, match="declared text") as err:
        fit(hook, "ag-af-test-mm-bad-text", numbers, {"column_types": TEXT_TYPES})
    assert err.value.parameter == "train_data"
    with pytest.raises(InvalidParameterError) as err:
        fit(hook, "ag-af-test-mm-no-label", train[["review"]], {"column_types": TEXT_TYPES})
    assert LABEL in str(err.value)
    with pytest.raises(InvalidParameterError) as err:
        fit(hook, "ag-af-test-mm-no-text", train[["stars", LABEL]], {"column_types": TEXT_TYPES})
    assert "review" in str(err.value)
    with pytest.raises(InvalidParameterError, match="column_types"):
        fit(hook, "ag-af-test-mm-bad-types", train[["review", LABEL]], {"column_types": ["review"]})
    names = {j.name for j in hook.backend.list_training_jobs()}
    assert not names & {"ag-af-test-mm-bad-text", "ag-af-test-mm-no-label", "ag-af-test-mm-no-text"}


@pytest.fixture(scope="module")
def endpoint(hook, text_job):
    name = "ag-af-test-mm-endpoint"
    result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=text_job["model_artifact_uri"]))
    yield result
    hook.delete_endpoint(name)


def test_real_time_answers_equal_the_predictor(hook, endpoint, predictor, reviews):
    _, holdout = reviews
    rows = holdout[["review"]].head(12)
    got = hook.predict_real_time(endpoint["endpoint_name"], rows)
    assert got.astype(str).tolist() == predictor.predict(rows).astype(str).tolist()
    proba = hook.predict_proba_real_time(endpoint["endpoint_name"], rows)
    expected = predictor.predict_proba(rows, as_pandas=True, as_multiclass=True)
    for cls in ("neg", "pos"):
        np.testing.assert_allclose(proba[cls].to_numpy(float), expected[cls].to_numpy(float), rtol=1e-5, atol=1e-6)


def test_batch_predictions_equal_the_predictor(hook, text_job, predictor, reviews):
    _, holdout = reviews
    submission = hook.start_batch_predict(
        job_name="ag-af-test-mm-batch", model_uri=text_job["model_artifact_uri"], test_data=holdout[["review"]]
    )
    hook.wait_for_job("transform", submission.job_name, check_interval=1, max_check_interval=3)
    assert hook.batch_result(submission.job_name)["status"] == "Completed"
    got = hook.read_predict_results(submission.job_name)
    assert len(got) == len(holdout)
    assert got[LABEL].astype(str).tolist() == predictor.predict(holdout[["review"]]).astype(str).tolist()
    expected = predictor.predict_proba(holdout[["review"]], as_pandas=True, as_multiclass=True)
    np.testing.assert_allclose(got["pos_proba"].to_numpy(float), expected["pos"].to_numpy(float), rtol=1e-5, atol=1e-6)


def test_evaluation_scores_the_holdout_and_the_gate_decides(hook, text_job, challenger_job, predictor, reviews):
    _, holdout = reviews
    uri = text_job["model_artifact_uri"]
    models = {"champion": uri, "challenger": challenger_job["model_artifact_uri"]}
    submission = hook.evaluation.start(job_name="ag-af-test-mm-eval", data=holdout, models=models, metrics=["accuracy"])
    hook.wait_for_job("evaluation", submission.job_name, check_interval=1, max_check_interval=3)
    evaluation = hook.evaluation.result(submission.job_name)
    assert evaluation["status"] == "Completed", hook.log_tail("evaluation", submission.job_name, 40)
    accuracy = float((predictor.predict(holdout[["review"]]).astype(str) == holdout[LABEL]).mean())
    assert evaluation["eval_metric"] == "roc_auc"
    assert evaluation["metrics"]["champion"]["accuracy"] == pytest.approx(accuracy)
    for key in ("champion", "challenger"):
        assert 0 <= evaluation["metrics"][key]["roc_auc"] <= 1
    group = "ag-test-mm-text"
    first = hook.registry.register(group=group, model_uri=uri, registered_by="test")
    hook.registry.set_approval(group, first.version, "Approved", "test", "first champion")
    second = hook.registry.register(
        group=group, model_uri=challenger_job["model_artifact_uri"], metrics=evaluation["metrics"]["challenger"]
    )
    decision = hook.registry.promote(
        group=group,
        challenger_version=second.version,
        evaluation={**evaluation, "model_versions": {"champion": {"group": group, "version": first.version}}},
        set_by="airflow:test/mm/gate",
    )
    assert decision["champion_version"] == first.version
    assert decision["challenger_score"] == pytest.approx(evaluation["metrics"]["challenger"]["roc_auc"])
    assert decision["champion_score"] == pytest.approx(evaluation["metrics"]["champion"]["roc_auc"])
    expected_status = "Approved" if decision["decision"] == "approved" else "Rejected"
    assert hook.registry.get(group, second.version).approval_status == expected_status


def test_tabular_and_text_fusion_regression_fits_and_scores_in_the_job(hook, reviews, tmp_path):
    """hf_text + numerical_mlp + categorical_mlp + fusion_mlp on text, a number and a category;
    ``predict_data`` is scored in the training job by serve.py, as the local predictor scores it."""
    train, holdout = reviews
    checkpoint = build_tiny_bert(tmp_path / "bert", train["review"].tolist())
    names = ["hf_text", "numerical_mlp", "categorical_mlp", "fusion_mlp"]
    columns = ["review", "price", "shop"]
    args = text_fit_args(checkpoint, names=names, column_types={"review": "text", "shop": "categorical"})
    args["hyperparameters"]["optim.max_epochs"] = 1
    train_rows = train[[*columns, "stars"]]
    scored = holdout[columns]
    result = fit(
        hook, "ag-af-test-mm-fusion", train_rows, args, label="stars", problem_type="regression", predict_data=scored
    )
    assert result["metrics"]["problem_type"] == "regression"
    shutil.rmtree(checkpoint)
    local = hook.to_local_predictor(result["model_artifact_uri"], tmp_path / "fusion")
    # The fitted model's own configuration (saved beside its weights) names its parts: the text and
    # number towers fused (AutoGluon 1.6.3 leaves out categorical_mlp for this two-value column).
    config = (tmp_path / "fusion" / "config.yaml").read_text()
    assert all(f"- {name}" in config for name in ("hf_text", "numerical_mlp", "fusion_mlp")), config[:400]
    expected = local.predict(holdout[columns]).to_numpy(float)
    got = pd.read_json(io.BytesIO(hook.training.read_predictions(result["job_name"])), lines=True)
    assert len(got) == len(holdout)
    np.testing.assert_allclose(got["stars"].to_numpy(float), expected, rtol=1e-4, atol=1e-5)
