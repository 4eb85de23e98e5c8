"""Faults on the local backend with real processes: workers, runners, triggers and endpoints killed."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from airflow_autogluon_cloud.backends.local.backend import LocalBackend
from airflow_autogluon_cloud.exceptions import EndpointError, JobFailedError
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from airflow_autogluon_cloud.status import JobStatus
from tests.conftest import (
    job_in_progress_logging,
    kill_worker_paused_at,
    kill_worker_running_dag_when,
    run_dag,
    task_states,
    xcom,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def big_input(churn_frames) -> Path:
    """Scoring data large enough that a batch job is still running when it is killed."""
    from airflow_autogluon_cloud.example_data import make_churn

    path = Path(os.environ["AGC_TEST_DATA_DIR"]) / "big.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_churn(300_000, seed=21, with_label=False).to_csv(path, index=False)
    return path


def test_worker_killed_mid_batch_retry_reattaches(airflow_db, trained_job, big_input, local_root, monkeypatch):
    monkeypatch.setenv("AGC_TEST_MODEL_URI", trained_job["model_artifact_uri"])
    backend = LocalBackend(local_root)
    logical = datetime(2026, 11, 7, tzinfo=UTC)

    # Window: the transform job is scoring (its log says so); the worker waiting for it is killed.
    scoring = job_in_progress_logging(backend, "transform", "agc-test-batch-retry", "Scoring")
    kill_worker_running_dag_when("agc_test_batch_retry", logical, scoring)
    killed_at = time.time()
    [job] = [r.name for r in backend.store.list("transform") if "agc-test-batch-retry" in r.name]
    # The job outlived its worker: still scoring, or finished after the kill (on any machine speed).
    status = backend.describe_transform_job(job).status
    ended_at = backend.store.get("transform", job).ended_at
    assert status == JobStatus.IN_PROGRESS or (status == JobStatus.COMPLETED and ended_at >= killed_at)

    dag_run = run_dag("agc_test_batch_retry", logical_date=logical, run_after=logical)
    assert dag_run.state == "success", task_states(dag_run)
    result = xcom("agc_test_batch_retry", "score", dag_run.run_id)
    assert result["job_name"] == job
    assert [r.name for r in backend.store.list("transform") if "agc-test-batch-retry" in r.name] == [job]
    assert sum(1 for _ in open(result["output_uri"])) == 300_000


def _deploy_retry_after_kill(tmp_path, monkeypatch, trained_job, logical, target, when) -> tuple[dict, LocalBackend]:
    """Kill the worker deploying ``ag-af-deploy-retry`` in the window ``when`` ``target``, run the
    DAG again (Airflow's retry) and check what must hold in every window: the run succeeds with one
    endpoint, one configuration and one model, and the endpoint answers."""
    root = tmp_path / "root"
    monkeypatch.setenv("AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT", str(root))
    monkeypatch.setenv("AGC_TEST_MODEL_URI", trained_job["model_artifact_uri"])
    kill_worker_paused_at("agc_test_deploy_retry", logical, target, when=when, marker=tmp_path / "paused")
    backend = LocalBackend(root)
    assert backend.store.get("endpoint", "ag-af-deploy-retry") is not None  # the killed try had begun

    dag_run = run_dag("agc_test_deploy_retry", logical_date=logical, run_after=logical)
    assert dag_run.state == "success", task_states(dag_run)
    result = xcom("agc_test_deploy_retry", "deploy", dag_run.run_id)
    assert [r.name for r in backend.store.list("endpoint")] == ["ag-af-deploy-retry"]
    configs = [r.name for r in backend.store.list("endpoint_config") if r.name.startswith("ag-af-deploy-retry")]
    models = [r.name for r in backend.store.list("model") if r.name.startswith("ag-af-deploy-retry")]
    assert len(configs) == 1
    assert len(models) == 1
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(root))
    test = pd.read_csv(Path(os.environ["AGC_TEST_DATA_DIR"]) / "test.csv").head(3)
    assert len(hook.predict_real_time("ag-af-deploy-retry", test)) == 3
    return result, backend


def test_worker_killed_after_the_endpoint_server_started_retry_reattaches(
    airflow_db, trained_job, churn_frames, tmp_path, monkeypatch
):
    """Window: the endpoint's server process has been started and its PID recorded; the worker dies
    before the deploy finishes. The retry must reattach to that server, not start another."""
    result, _ = _deploy_retry_after_kill(
        tmp_path,
        monkeypatch,
        trained_job,
        datetime(2026, 11, 8, tzinfo=UTC),
        "airflow_autogluon_cloud.backends.local.endpoints:LocalEndpoints._spawn_server",
        "after",
    )
    assert result["action"] == "reattach"


def test_worker_killed_before_the_endpoint_server_started_retry_serves(
    airflow_db, trained_job, churn_frames, tmp_path, monkeypatch
):
    """Window: the endpoint is recorded as Creating, but the worker dies before the model is unpacked
    and any server started. Replacing the endpoint that never served (recreate) would be correct
    too, but only after the endpoint was given up for lost; the retry sees that the process which
    was preparing the server is gone, and finishes its work at once (reattach)."""
    result, _ = _deploy_retry_after_kill(
        tmp_path,
        monkeypatch,
        trained_job,
        datetime(2026, 11, 9, tzinfo=UTC),
        "airflow_autogluon_cloud.backends.local.endpoints:LocalEndpoints._prepare_server",
        "before",
    )
    assert result["action"] == "reattach"


def test_batch_killed_midway_leaves_no_partial_output_and_retry_matches(trained_job, big_input, tmp_path):
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    # Small mini-batches keep the job scoring long enough to be killed in the middle of it.
    sub = hook.start_batch_predict(
        job_name="ag-af-killed-batch",
        model_uri=trained_job["model_artifact_uri"],
        test_data=str(big_input),
        environment={"AG_BATCH_CHUNK_ROWS": "500"},
    )
    record = hook.backend.store.get("transform", sub.job_name)
    partial = Path(record.workdir) / "test_data.csv.out.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (partial.exists() and partial.stat().st_size > 0):
        time.sleep(0.05)
    assert hook.backend.describe_transform_job(sub.job_name).status == JobStatus.IN_PROGRESS  # still scoring
    record = hook.backend.store.get("transform", sub.job_name)
    os.killpg(record.pid, signal.SIGKILL)
    time.sleep(0.5)
    desc = hook.backend.describe_transform_job(sub.job_name)
    assert desc.status == JobStatus.FAILED
    assert partial.exists()  # it was killed with part of its output written...
    output_dir = Path(desc.artifact_uri)
    assert not output_dir.exists() or not any(output_dir.iterdir())  # ...none of which reached the output path
    retry = hook.start_batch_predict(
        job_name="ag-af-killed-batch", model_uri=trained_job["model_artifact_uri"], test_data=str(big_input)
    )
    assert retry.job_name == "ag-af-killed-batch-r1"
    hook.wait_for_job("transform", retry.job_name, check_interval=1, max_check_interval=2)
    retried = hook.read_predict_results(retry.job_name)
    uninterrupted = hook.to_local_predictor(trained_job["model_artifact_uri"], tmp_path / "p").predict(
        pd.read_csv(big_input)
    )
    assert retried["churned"].tolist() == uninterrupted.tolist()


def test_training_runner_killed_is_reported_within_one_poll(churn_frames, tmp_path, monkeypatch):
    from airflow_autogluon_cloud.operators.fit import AGFitOperator

    train, _ = churn_frames
    op = AGFitOperator(
        task_id="fit",
        train_data=train,
        predictor_init_args={"label": "churned"},
        local_root=str(tmp_path / "root"),
        predictor_fit_args={
            "time_limit": 120,
            "hyperparameters": {"GBM": {"num_boost_round": 100000, "learning_rate": 0.0001}},
        },
        job_name="ag-af-fault-fit",
        check_interval=2,
        max_check_interval=2,
        aws_conn_id=None,
        deferrable=False,
    )
    outcome: dict = {}

    def run():
        from types import SimpleNamespace

        try:
            op.execute({"ti": SimpleNamespace(xcom_push=lambda **kw: None)})
        except Exception as err:
            outcome["error"] = err
            outcome["at"] = time.monotonic()

    polls: list[float] = []
    describe = LocalBackend.describe_training_job

    def counting(self, name):
        polls.append(time.monotonic())
        return describe(self, name)

    monkeypatch.setattr(LocalBackend, "describe_training_job", counting)
    thread = threading.Thread(target=run)
    thread.start()
    backend = LocalBackend(tmp_path / "root")
    # Window: the runner is fitting (its log says so) when it is killed.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and "Fitting" not in backend.log_tail("training", "ag-af-fault-fit", 50):
        time.sleep(0.2)
    assert "Fitting" in backend.log_tail("training", "ag-af-fault-fit", 50), "the fit never started"
    os.killpg(backend.store.get("training", "ag-af-fault-fit").pid, signal.SIGKILL)
    killed_at = time.monotonic()
    thread.join(timeout=600)
    error = outcome["error"]
    assert isinstance(error, JobFailedError)
    assert "exited without reporting" in str(error)
    assert "Fitting" in str(error)  # the log tail
    # Noticed at the next poll, not after a long wait: at most the poll in flight and the next one
    # (counted, not timed, so a busy machine cannot fail it).
    assert len([at for at in polls if killed_at <= at <= outcome["at"]]) <= 2, polls


def test_trigger_stopped_and_restarted_resumes_without_burst(churn_frames, tmp_path, monkeypatch):
    from airflow_autogluon_cloud.triggers.autogluon_cloud import AutoGluonJobTrigger

    train, _ = churn_frames
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    sub = hook.start_training(
        job_name="ag-af-trigger-restart",
        train_data=train,
        predictor_init_args={"label": "churned"},
        predictor_fit_args={
            "time_limit": 12,
            "hyperparameters": {"GBM": {"num_boost_round": 100000, "learning_rate": 0.0001}},
        },
    )
    trigger = AutoGluonJobTrigger("training", sub.job_name, hook.hook_params(), poll_interval=1, max_poll_interval=2)
    calls: list[float] = []
    original = AutoGluonCloudHook.describe_job

    def counting(self, kind, name):
        calls.append(time.monotonic())
        return original(self, kind, name)

    monkeypatch.setattr(AutoGluonCloudHook, "describe_job", counting)

    async def first_life():
        task = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(3)
        assert not task.done()
        task.cancel()  # the triggerer goes away
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(first_life())
    classpath, kwargs = trigger.serialize()
    calls.clear()
    restarted_at = time.monotonic()
    reborn = AutoGluonJobTrigger(**kwargs)

    async def second_life():
        return await reborn.run().__anext__()

    event = asyncio.run(second_life())
    assert event.payload["status"] == "success"
    assert event.payload["job_name"] == sub.job_name
    early = [c for c in calls if c - restarted_at < 1.5]
    assert len(early) <= 2, f"{len(early)} status calls right after the restart"


def _wait_gone(pid: int, timeout: float = 60) -> None:
    """Wait until ``pid`` has exited (a zombie nobody reaped yet counts as exited)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs {timeout:.0f} s after SIGKILL")


def test_killed_endpoint_sensor_reports_failed(trained_job, tmp_path):
    from airflow_autogluon_cloud.sensors.autogluon_cloud import AGEndpointSensor

    root = tmp_path / "root"
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(root))
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-fault-ep", model_uri=trained_job["model_artifact_uri"]))
    pid = hook.backend.store.get("endpoint", "ag-af-fault-ep").pid
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    sensor = AGEndpointSensor(task_id="s", endpoint_name="ag-af-fault-ep", local_root=str(root), aws_conn_id=None)
    with pytest.raises(EndpointError, match="ag-af-fault-ep.*not running"):
        sensor.poke({})
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-fault-ep", model_uri=trained_job["model_artifact_uri"]))
    assert sensor.poke({}).is_done
    hook.delete_endpoint("ag-af-fault-ep")
