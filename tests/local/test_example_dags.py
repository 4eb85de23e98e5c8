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
    "ag_retrain_and_score_reviewed",
    "ag_realtime_endpoint",
    "ag_realtime_endpoint_dev",
    "ag_reattach_sensor",
    "ag_reattach_external_job",
    "ag_ops_teardown",
    "ag_weekly_forecast",
    "ag_review_sentiment",
}

_PARSE_PROBE = """
import json, sys
from airflow_autogluon_cloud.settings import dag_bag_class
DagBag = dag_bag_class()
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
heavy = {"pandas", "numpy", "boto3", "botocore", "sagemaker", "autogluon"}
print(json.dumps({
    "dags": sorted(bag.dag_ids),
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "heavy": sorted({m.split(".")[0] for m in set(sys.modules) - before} & heavy),
}))
"""


@pytest.mark.compat
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
@pytest.mark.compat
def test_retrain_and_score_gates_on_one_holdout_and_runs_when_triggered_by_hand(
    airflow_db, quick_examples, monkeypatch
):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    monkeypatch.setenv("AG_EXAMPLE_REGISTRY_GROUP", "ag-churn-example-test")
    dag_id = "ag_retrain_and_score"
    first = run_dag(dag_id)
    assert first.state == "success", task_states(first)
    fit = xcom(dag_id, "fit", first.run_id)
    registered = xcom(dag_id, "register", first.run_id)
    decision = xcom(dag_id, "gate", first.run_id)
    scored = xcom(dag_id, "batch_score", first.run_id)
    report = xcom(dag_id, "report", first.run_id)
    assert os.path.isfile(fit["model_artifact_uri"])
    assert registered["model_uri"] == fit["model_artifact_uri"]
    assert registered["training_job"] == fit["job_name"]
    # no champion yet: the first challenger is approved and serves; the evaluation recorded that it
    # compared against no champion, which the gate's compare-and-set checked was still so
    assert xcom(dag_id, "evaluate", first.run_id)["absent_models"] == {
        "champion": {"group": "ag-churn-example-test", "version": None}
    }
    assert decision["decision"] == "approved"
    assert decision["champion_score"] is None
    assert decision["latest_approved_version"] == registered["version"]
    assert scored["model_version"]["version"] == registered["version"]
    period = xcom(dag_id, "prepare_period_data", first.run_id)
    assert report["holdout_rows"] == int(period["holdout_rows"]) == len(pd.read_csv(period["holdout"]))
    assert report["scored_rows"] == int(period["score_rows"]) == len(pd.read_csv(period["score"]))
    assert [row["model"] for row in report["evaluation"]] == ["challenger"]
    assert report["still_running"] == []
    # this period's data is drawn like the training data: checked, no violation; every job says what it used
    assert report["data_checks"]["status"] == "checked"
    assert report["data_checks"]["violations"] == 0, report["data_checks"]
    assert report["data_checks"]["rows"] == report["scored_rows"]
    assert all(used["cpu_seconds"] > 0 for used in report["usage"].values()), report["usage"]
    published = xcom(dag_id, "publish", first.run_id)
    assert published == {
        "model_uri": fit["model_artifact_uri"],
        "registry_version": registered["version"],
        "scores_uri": report["scores_uri"],
    }
    with create_session() as session:
        extras = [e.extra for e in session.query(AssetEvent).all()]
    assert {
        "model_uri": fit["model_artifact_uri"],
        "registry_group": "ag-churn-example-test",
        "registry_version": registered["version"],
        "decision": "approved",
    } in extras

    # triggered by hand (no logical date, as `airflow dags trigger` makes it), with a bar no model
    # clears: the challenger is scored beside the champion on the same holdout, rejected, and the
    # champion keeps serving
    monkeypatch.setenv("AG_EXAMPLE_MIN_IMPROVEMENT", "1.0")
    manual = run_dag(dag_id, logical_date=None)
    assert manual.logical_date is None
    assert manual.state == "success", task_states(manual)
    period = xcom(dag_id, "prepare_period_data", manual.run_id)
    assert "None" not in period["train"]
    # when it was triggered, plus a hash of its run id: two manual runs never share a period's files
    assert period["period"].startswith(manual.run_after.strftime("%Y-%m-%dT%H-%M-%S-"))
    evaluation = xcom(dag_id, "evaluate", manual.run_id)
    assert set(evaluation["metrics"]) == {"challenger", "champion"}
    assert evaluation["num_rows"] == int(period["holdout_rows"])
    assert evaluation["model_versions"]["champion"]["version"] == registered["version"]
    kept = xcom(dag_id, "gate", manual.run_id)
    assert kept["decision"] == "rejected"
    # judged on the paired interval at 95%, with the log-loss guardrail, against the champion it saw
    assert kept["confidence"] == 0.95
    low, high = kept["improvement_interval"]
    assert low <= kept["improvement"] <= high
    assert kept["guardrails"]["log_loss"]["tolerance"] == 0.02
    assert f"{low:+.4f}, {high:+.4f}] at 95% on {evaluation['num_rows']} rows" in kept["reason"]
    assert evaluation["comparisons"]["challenger"]["baseline"] == "champion"
    assert kept["challenger_score"] == evaluation["metrics"]["challenger"]["roc_auc"]
    assert kept["champion_score"] == evaluation["metrics"]["champion"]["roc_auc"]
    assert kept["latest_approved_version"] == registered["version"]
    assert xcom(dag_id, "batch_score", manual.run_id)["model_version"]["version"] == registered["version"]
    hook = AutoGluonCloudHook(aws_conn_id=None)
    rejected = hook.registry.get("ag-churn-example-test", kept["challenger_version"])
    assert rejected.approval_status == "Rejected"
    assert rejected.status_set_by == f"airflow:{dag_id}/{manual.run_id}/gate"


def _respond_to_reviews(dag_id: str, chosen: list[str], user: str, stop) -> None:
    """A reviewer answering through the same function the HITL REST API route runs."""
    import time
    from types import SimpleNamespace

    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    reviewer = SimpleNamespace(get_id=lambda: user, get_name=lambda: user)
    while not stop.is_set():
        with create_session() as session:
            waiting = (
                session.query(TaskInstance)
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .filter(TaskInstance.dag_id == dag_id, HITLDetail.responded_at.is_(None))
                .all()
            )
            for ti in waiting:
                payload = UpdateHITLDetailPayload(chosen_options=chosen)
                update_hitl_detail(dag_id, ti.run_id, ti.task_id, payload, user=reviewer, session=session)
        time.sleep(0.5)


@pytest.mark.slow
def test_reviewed_variant_promotes_only_after_a_person_approves(airflow_db, quick_examples, monkeypatch):
    import threading

    monkeypatch.setenv("AG_EXAMPLE_REVIEWED_GROUP", "ag-churn-reviewed-test")
    dag_id = "ag_retrain_and_score_reviewed"
    stop = threading.Event()
    reviewer = threading.Thread(target=_respond_to_reviews, args=(dag_id, ["Approve"], "alice", stop), daemon=True)
    reviewer.start()
    try:
        run = run_dag(dag_id, logical_date=None)
    finally:
        stop.set()
        reviewer.join(timeout=10)
    assert run.state == "success", task_states(run)
    review = xcom(dag_id, "review", run.run_id)
    assert review["chosen_options"] == ["Approve"]
    decision = xcom(dag_id, "gate", run.run_id)
    assert decision["decision"] == "approved"
    assert decision["set_by"] == f"airflow:{dag_id}/{run.run_id}/gate; reviewed by alice"
    version = AutoGluonCloudHook(aws_conn_id=None).registry.get(
        "ag-churn-reviewed-test", decision["challenger_version"]
    )
    assert version.approval_status == "Approved"
    assert "alice" in version.status_set_by
    assert xcom(dag_id, "batch_score", run.run_id)["model_version"]["version"] == version.version


@pytest.mark.slow
@pytest.mark.compat
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
