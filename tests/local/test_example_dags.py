"""Every example DAG: parses light, and runs end to end with dag.test() on the local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import ResourceNotFoundError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import REPO, run_dag, task_states, xcom

EXAMPLE_DAGS = {
    "ag_retrain_and_score",
    "ag_realtime_endpoint",
    "ag_realtime_endpoint_dev",
    "ag_reattach_sensor",
    "ag_reattach_external_job",
    "ag_ops_teardown",
}

_PARSE_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
heavy = {"pandas", "numpy", "boto3", "botocore", "sagemaker", "autogluon"}
print(json.dumps({
    "dags": sorted(bag.dag_ids),
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "heavy": sorted({m.split(".")[0] for m in set(sys.modules) - before} & heavy),
}))
"""


def test_example_dags_import_without_error_and_load_nothing_heavy():
    out = subprocess.run(
        [sys.executable, "-c", _PARSE_PROBE, str(REPO / "example_dags")],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert set(report["dags"]) == EXAMPLE_DAGS
    assert report["heavy"] == [], f"parsing the example DAGs imported {report['heavy']}"


@pytest.fixture
def quick_examples(monkeypatch):
    monkeypatch.setenv("AG_EXAMPLE_TIME_LIMIT", "15")


@pytest.mark.slow
def test_retrain_and_score_promotes_scores_and_publishes(airflow_db, quick_examples):
    from airflow.models.variable import Variable  # the metadata DB directly: this runs outside a task

    first = run_dag("ag_retrain_and_score")
    assert first.state == "success", task_states(first)
    fit = xcom("ag_retrain_and_score", "fit", first.run_id)
    decision = xcom("ag_retrain_and_score", "decide_promotion", first.run_id)
    report = xcom("ag_retrain_and_score", "report", first.run_id)
    assert os.path.isfile(fit["model_artifact_uri"])
    assert decision["promoted"] is True
    assert decision["champion_score"] is None
    assert decision["model_uri"] == fit["model_artifact_uri"]
    period = xcom("ag_retrain_and_score", "prepare_period_data", first.run_id)
    assert report["scored_rows"] == int(period["score_rows"]) == len(pd.read_csv(period["score"]))
    assert os.path.isfile(report["scores_uri"])
    assert report["leaderboard"]
    assert report["still_running"] == []
    published = xcom("ag_retrain_and_score", "publish", first.run_id)
    assert published == {"model_uri": fit["model_artifact_uri"], "scores_uri": report["scores_uri"]}
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).all()
        extras = [e.extra for e in events]
    assert {"model_uri": fit["model_artifact_uri"], "promoted": True} in extras

    # a champion that scores better than any new model is kept, and scoring uses it
    champion = {
        "model_uri": fit["model_artifact_uri"],
        "score_val": 1.5,
        "job_name": "best-ever",
        "eval_metric": "roc_auc",
    }
    Variable.set("ag_churn_champion", champion, serialize_json=True)
    second = run_dag("ag_retrain_and_score")
    assert second.state == "success", task_states(second)
    kept = xcom("ag_retrain_and_score", "decide_promotion", second.run_id)
    assert kept["promoted"] is False
    assert kept["champion_score"] == 1.5
    assert kept["model_uri"] == fit["model_artifact_uri"]
    assert Variable.get("ag_churn_champion", deserialize_json=True)["job_name"] == "best-ever"


@pytest.mark.slow
def test_realtime_endpoint_dev_variant_tears_down(airflow_db, quick_examples):
    dag_run = run_dag("ag_realtime_endpoint_dev")
    assert dag_run.state == "success", task_states(dag_run)
    smoke = xcom("ag_realtime_endpoint_dev", "smoke_test", dag_run.run_id)
    assert smoke["rows"] == 8
    assert set(smoke["predictions"][0]) == {"no", "yes"}
    deploy = xcom("ag_realtime_endpoint_dev", "deploy", dag_run.run_id)
    assert deploy["action"] == "create"
    assert task_states(dag_run)["cleanup"] == "success"
    with pytest.raises(ResourceNotFoundError):
        AutoGluonCloudHook(aws_conn_id=None).backend.describe_endpoint("ag-af-churn-realtime-dev")


@pytest.mark.slow
def test_reattach_dags(airflow_db, quick_examples):
    dag_run = run_dag("ag_reattach_sensor")
    assert dag_run.state == "success", task_states(dag_run)
    assert xcom("ag_reattach_sensor", "wait_for_fit", dag_run.run_id)["status"] == "Completed"

    # a job started outside Airflow, picked up by name
    hook = AutoGluonCloudHook(aws_conn_id=None)
    outside = hook.start_training(
        job_name="ag-af-started-in-a-notebook",
        train_data=str(REPO / "example_dags" / "data" / "customer_churn.csv"),
        predictor_init_args={"label": "churned"},
        predictor_fit_args={"time_limit": 15, "hyperparameters": {"GBM": {"num_boost_round": 50}}},
    )
    dag_run = run_dag("ag_reattach_external_job", run_conf={"job_name": outside.job_name})
    assert dag_run.state == "success", task_states(dag_run)
    fitted = xcom("ag_reattach_external_job", "wait_for_external_fit", dag_run.run_id)
    assert fitted["job_name"] == outside.job_name
    scored = xcom("ag_reattach_external_job", "wait_for_scoring", dag_run.run_id)
    assert scored["status"] == "Completed"
    assert len(hook.read_predict_results(scored["job_name"])) == 8


@pytest.mark.slow
def test_ops_teardown_dry_run_then_sweep(airflow_db, trained_job):
    hook = AutoGluonCloudHook(aws_conn_id=None)
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-forgotten", model_uri=trained_job["model_artifact_uri"]))
    others = [e.name for e in hook.backend.list_endpoints() if e.name != "ag-af-forgotten"]
    conf = {"dry_run": True, "max_age_hours": 0, "keep": others}
    dag_run = run_dag("ag_ops_teardown", run_conf=conf)
    assert dag_run.state == "success", task_states(dag_run)
    report = xcom("ag_ops_teardown", "sweep_stale_endpoints", dag_run.run_id)
    assert report["dry_run"] is True
    assert [(e["endpoint_name"], e["deleted"]) for e in report["endpoints"]] == [("ag-af-forgotten", False)]
    assert hook.backend.describe_endpoint("ag-af-forgotten").status.value == "InService"

    dag_run = run_dag("ag_ops_teardown", run_conf={**conf, "dry_run": False})
    report = xcom("ag_ops_teardown", "sweep_stale_endpoints", dag_run.run_id)
    assert [(e["endpoint_name"], e["deleted"]) for e in report["endpoints"]] == [("ag-af-forgotten", True)]
    with pytest.raises(ResourceNotFoundError):
        hook.backend.describe_endpoint("ag-af-forgotten")
