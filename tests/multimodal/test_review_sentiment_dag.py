"""The ``ag_review_sentiment`` example under ``dag.test()`` on the local backend, with real AutoGluon
on a tiny BERT built at test time (offline): data generated at run time, fit, batch scoring."""

from __future__ import annotations

import pytest

from tests.conftest import run_dag, task_states, xcom
from tests.multimodal import MULTIMODAL, build_tiny_bert, make_reviews

pytestmark = [*MULTIMODAL, pytest.mark.slow]
ROWS = 120


def test_review_sentiment_fits_on_text_and_scores_the_new_reviews(airflow_db, monkeypatch, tmp_path):
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    # The DAG reads these when it is parsed (run_dag parses it afresh).
    checkpoint = build_tiny_bert(tmp_path / "bert", make_reviews(ROWS, seed=5)["review"].tolist())
    monkeypatch.setenv("AG_TEXT_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("AG_REVIEWS_TRAIN_ROWS", str(ROWS))
    monkeypatch.setenv("AG_REVIEWS_EPOCHS", "1")
    monkeypatch.setenv("AG_EXAMPLE_TIME_LIMIT", "300")
    run = run_dag("ag_review_sentiment")
    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    fitted = xcom(run.dag_id, "fit", run.run_id)
    assert fitted["predictor_type"] == "multimodal"
    assert fitted["metrics"]["problem_type"] == "binary"
    scored = xcom(run.dag_id, "score", run.run_id)
    frame = AutoGluonCloudHook(aws_conn_id=None).read_predict_results(scored["job_name"])
    assert len(frame) == ROWS // 4
    assert list(frame.columns) == ["sentiment", "neg_proba", "pos_proba"]
    assert set(frame["sentiment"].astype(str)) <= {"neg", "pos"}
    assert ((frame["neg_proba"] + frame["pos_proba"]) - 1).abs().max() < 1e-5
