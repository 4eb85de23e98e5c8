"""Training on the local backend with real AutoGluon, real processes and real Airflow runs."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest

from airflow_autogluon_cloud.backends.local.backend import LocalBackend
from airflow_autogluon_cloud.exceptions import InvalidParameterError, ResourceNotFoundError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.status import JobStatus
from tests.conftest import job_in_progress_logging, kill_worker_running_dag_when, run_dag, task_states, xcom

pytestmark = pytest.mark.slow


def test_shared_fit_loads_as_tabular_predictor(trained_job, churn_frames, tmp_path):
    from autogluon.tabular import TabularPredictor

    assert trained_job["status"] == "Completed"
    assert trained_job["backend"] == "local"
    assert trained_job["predictor_type"] == "tabular"
    assert trained_job["metrics"]["eval_metric"] == "roc_auc"
    assert trained_job["metrics"]["score_val"] > 0.6
    hook = AutoGluonCloudHook(aws_conn_id=None)
    predictor = hook.to_local_predictor(trained_job["model_artifact_uri"], tmp_path / "predictor")
    assert isinstance(predictor, TabularPredictor)
    _, test = churn_frames
    assert len(predictor.predict(test)) == len(test)
    board = hook.get_leaderboard(trained_job["job_name"])
    assert "LightGBM" in set(board["model"])


@pytest.mark.compat
def test_deferrable_sensor_reattaches_to_job_started_without_waiting(airflow_db, churn_frames):
    dag_run = run_dag("agc_test_fit_sensor")
    assert dag_run.state == "success", task_states(dag_run)
    started = xcom("agc_test_fit_sensor", "start_fit", dag_run.run_id)
    waited = xcom("agc_test_fit_sensor", "wait_for_fit", dag_run.run_id)
    assert started["status"] == "InProgress"
    assert started["model_artifact_uri"] is None
    assert waited["job_name"] == started["job_name"]
    assert waited["status"] == "Completed"
    assert waited["model_artifact_uri"].endswith("model.tar.gz")


def test_task_retried_after_worker_killed_mid_training_ends_with_one_job(airflow_db, churn_frames, local_root):
    """Kill the process running the fit task mid-training; the retry reattaches instead of starting again."""
    logical = datetime(2026, 11, 5, tzinfo=UTC)
    backend = LocalBackend(local_root)

    training = job_in_progress_logging(backend, "training", "agc-test-fit-retry", "Fitting")
    kill_worker_running_dag_when("agc_test_fit_retry", logical, training)
    [job] = [r.name for r in backend.store.list("training") if "agc-test-fit-retry" in r.name]
    assert backend.describe_training_job(job).status == JobStatus.IN_PROGRESS  # the job outlived its worker

    dag_run = run_dag("agc_test_fit_retry", logical_date=logical, run_after=logical)
    assert dag_run.state == "success", task_states(dag_run)
    result = xcom("agc_test_fit_retry", "fit", dag_run.run_id)
    assert result["job_name"] == job
    assert result["status"] == "Completed"
    jobs = [r.name for r in backend.store.list("training") if "agc-test-fit-retry" in r.name]
    assert jobs == [job], f"expected exactly one training job, found {jobs}"


def test_failed_job_reports_reason_and_log_and_next_try_uses_new_name(tmp_path, churn_frames):
    train, _ = churn_frames
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    # A fit argument AutoGluon rejects at fit time: the job starts, then fails in the container.
    sub = hook.start_training(
        job_name="ag-af-test-bad-fit",
        train_data=train,
        predictor_init_args={"label": "churned"},
        predictor_fit_args={"time_limit": 30, "presets": "no_such_preset"},
    )
    from airflow_autogluon_cloud.exceptions import JobFailedError

    with pytest.raises(JobFailedError) as err:
        hook.wait_for_job("training", sub.job_name, check_interval=0.5, max_check_interval=1)
    assert err.value.status == "Failed"
    assert "no_such_preset" in str(err.value)
    again = hook.start_training(
        job_name="ag-af-test-bad-fit",
        train_data=train,
        predictor_init_args={"label": "churned"},
        predictor_fit_args={"time_limit": 30, "hyperparameters": {"GBM": {"num_boost_round": 10}}},
    )
    assert again.job_name == "ag-af-test-bad-fit-r1"
    assert not again.reattached
    hook.wait_for_job("training", again.job_name, check_interval=0.5, max_check_interval=1)


def test_runner_killed_outside_airflow_is_reported_failed_with_log_tail(tmp_path, churn_frames):
    train, _ = churn_frames
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    sub = hook.start_training(
        job_name="ag-af-test-killed",
        train_data=train,
        predictor_init_args={"label": "churned"},
        predictor_fit_args={
            "time_limit": 60,
            "hyperparameters": {"GBM": {"num_boost_round": 20000, "learning_rate": 0.001}},
        },
    )
    backend = hook.backend
    record = backend.store.get("training", sub.job_name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "Fitting" not in backend.log_tail("training", sub.job_name, 50):
        time.sleep(0.3)
    os.killpg(record.pid, signal.SIGKILL)
    time.sleep(0.5)
    desc = backend.describe_training_job(sub.job_name)
    assert desc.status == JobStatus.FAILED
    assert "exited without reporting" in desc.failure_reason
    assert "Fitting" in desc.failure_reason


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"train_data": "/nonexistent/train.csv"}, "train_data"),
        ({"predictor_type": "vision"}, "predictor_type"),
        ({"predictor_fit_args": {"callback": object()}}, "predictor_fit_args"),
        ({"job_name": "bad_name!"}, "job_name"),
        ({"max_runtime": 0}, "max_runtime"),
        ({"predictor_init_args": {"label": "not_a_column"}}, "train_data"),
    ],
)
def test_bad_fit_input_creates_nothing(tmp_path, churn_frames, kwargs, parameter):
    train, _ = churn_frames
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    args = {
        "job_name": "ag-af-test-bad-input",
        "train_data": train,
        "predictor_init_args": {"label": "churned"},
        "predictor_fit_args": {"time_limit": 10},
        **kwargs,
    }
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(**args)
    assert err.value.parameter == parameter
    assert hook.backend.store.list("training") == []
    assert not (tmp_path / "root" / "artifacts" / "staging").exists()


def test_sensor_on_nonexistent_job_fails_clearly(tmp_path):
    from airflow_autogluon_cloud.sensors.autogluon_cloud import AGFitJobSensor

    sensor = AGFitJobSensor(task_id="s", job_name="ag-af-no-such-job", local_root=str(tmp_path), aws_conn_id=None)
    with pytest.raises(ResourceNotFoundError, match="ag-af-no-such-job"):
        sensor.poke({})


def test_fit_and_score_in_one_job_equals_a_batch_job_on_the_same_model(airflow_db, churn_frames):
    """AGFitOperator(predict_data=...) scores in the training job; the output is what a separate
    batch transform of the same model writes, to the byte, and it is read and downloaded the same way."""
    import pandas as pd

    _, test = churn_frames
    dag_run = run_dag("agc_test_fit_and_score")
    assert dag_run.state == "success", task_states(dag_run)
    result = xcom("agc_test_fit_and_score", "fit", dag_run.run_id)
    assert result["predictions"]["rows"] == len(test)
    assert result["predictions"]["uri"] == result["leaderboard_uri"]  # in the job's output.tar.gz
    assert result["predictions"]["member"] == "predictions.jsonl"

    hook = AutoGluonCloudHook(aws_conn_id=None)
    batch = hook.start_batch_predict(
        job_name="ag-af-test-fit-and-score-batch",
        model_uri=result["model_artifact_uri"],
        test_data=os.environ["AGC_TEST_DATA_DIR"] + "/test.csv",
    )
    hook.wait_for_job("transform", batch.job_name, check_interval=1, max_check_interval=2)
    hook.cleanup_batch_model(batch.job_name)
    batch_output = hook.batch_result(batch.job_name)["output_uri"]
    in_job = hook.training.read_predictions(result["job_name"])
    assert in_job == hook.storage(batch_output).read_bytes(batch_output)
    assert in_job.count(b"\n") == len(test)
    pd.testing.assert_frame_equal(
        hook.read_predict_results(result["job_name"]), hook.read_predict_results(batch.job_name)
    )
    saved = pd.read_csv(result["local_predictions_path"])
    assert list(saved.columns) == ["churned", "no", "yes"]
    assert len(saved) == len(test)


def test_reading_predictions_of_a_fit_that_scored_nothing_or_of_no_job_is_a_clear_error(trained_job):
    hook = AutoGluonCloudHook(aws_conn_id=None)
    with pytest.raises(InvalidParameterError, match="scored no data"):
        hook.read_predict_results(trained_job["job_name"])
    with pytest.raises(ResourceNotFoundError, match="Transform or training job"):
        hook.read_predict_results("ag-af-no-such-job")
