"""A retried evaluate or register task, after its worker was SIGKILLed or the run was repeated
under the same task-instance identity, leaves one evaluation job and one registry version."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airflow_autogluon_cloud.backends.local.backend import LocalBackend
from airflow_autogluon_cloud.example_data import make_churn
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import job_in_progress_logging, kill_worker_running_dag_when, run_dag, task_states, xcom

DAG_ID = "agc_test_evaluate_register_retry"


@pytest.mark.slow
def test_killed_evaluate_and_repeated_register_leave_one_job_and_one_version(
    airflow_db, trained_job, local_root, monkeypatch
):
    monkeypatch.setenv("AGC_TEST_MODEL_URI", trained_job["model_artifact_uri"])
    make_churn(200, seed=5).to_csv(Path(os.environ["AGC_TEST_DATA_DIR"]) / "holdout.csv", index=False)
    backend = LocalBackend(local_root)
    logical = datetime(2026, 11, 9, tzinfo=UTC)

    def evaluations() -> list[str]:
        return [r.name for r in backend.store.list("evaluation") if "agc-test-evaluate-register" in r.name]

    # the worker dies while its evaluation job runs; the job outlives it
    running = job_in_progress_logging(backend, "evaluation", "agc-test-evaluate-register", "Running evaluate.py")
    kill_worker_running_dag_when(DAG_ID, logical, running)
    [job] = evaluations()

    retried = run_dag(DAG_ID, logical_date=logical, run_after=logical)
    assert retried.state == "success", task_states(retried)
    evaluation = xcom(DAG_ID, "evaluate", retried.run_id)
    assert evaluation["job_name"] == job  # reattached to (or reused) the job the killed try started
    assert evaluation["num_rows"] == 200
    version = xcom(DAG_ID, "register", retried.run_id)

    # the same task instances once more (register already ran): still one job, one version
    again = run_dag(DAG_ID, logical_date=logical, run_after=logical)
    assert again.state == "success", task_states(again)
    assert xcom(DAG_ID, "register", again.run_id)["version"] == version["version"]
    assert evaluations() == [job]
    versions = AutoGluonCloudHook(aws_conn_id=None).registry.versions("agc-test-retry")
    assert [v.version for v in versions] == [version["version"]]
    assert versions[0].metrics["roc_auc"] == evaluation["metrics"]["challenger"]["roc_auc"]
    assert versions[0].dataset == f"{evaluation['data_uri']} ({job})"
