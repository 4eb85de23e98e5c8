"""The housekeeping CLI against a real local backend: list, logs, stop; dead processes shown as Failed."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from airflow_autogluon_cloud.cli import main
from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

pytestmark = pytest.mark.slow


def _wait_for_log(hook, name, text, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and text not in hook.backend.log_tail("training", name, 80):
        time.sleep(0.3)


def test_list_logs_stop_and_stale_detection(tmp_path, churn_frames, trained_job, capsys):
    train, _ = churn_frames
    root = tmp_path / "root"
    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(root))
    slow = {"time_limit": 60, "hyperparameters": {"GBM": {"num_boost_round": 50000, "learning_rate": 0.0005}}}
    running = hook.start_training(
        job_name="ag-af-cli-running",
        train_data=train,
        predictor_init_args={"label": "churned"},
        predictor_fit_args=slow,
    )
    doomed = hook.start_training(
        job_name="ag-af-cli-doomed", train_data=train, predictor_init_args={"label": "churned"}, predictor_fit_args=slow
    )
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-cli-ep", model_uri=trained_job["model_artifact_uri"]))
    _wait_for_log(hook, running.job_name, "Fitting")
    _wait_for_log(hook, doomed.job_name, "Fitting")
    os.killpg(hook.backend.store.get("training", doomed.job_name).pid, signal.SIGKILL)
    time.sleep(0.5)

    capsys.readouterr()  # drop the set-up's log lines
    assert main(["--root", str(root), "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ag-af-cli-running"]["status"] == "InProgress"
    assert rows["ag-af-cli-doomed"]["status"] == "Failed"  # its process died: not shown as running
    assert rows["ag-af-cli-ep"]["status"] == "InService"
    assert rows["ag-af-cli-ep"]["location"].startswith("http://127.0.0.1:")

    assert main(["--root", str(root), "list"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["KIND", "NAME", "STATUS", "AGE", "LOCATION"]

    assert main(["--root", str(root), "logs", "ag-af-cli-running", "--tail", "50"]) == 0
    assert "Fitting" in capsys.readouterr().out

    assert main(["--root", str(root), "stop", "ag-af-cli-running"]) == 0
    assert "Stopped" in capsys.readouterr().out
    assert main(["--root", str(root), "stop", "ag-af-cli-ep"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "ag-af-cli-ep" not in rows
    assert rows["ag-af-cli-running"]["status"] == "Stopped"
