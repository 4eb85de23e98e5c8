"""The interpreter the local backend runs a kind's entry scripts with: ``[autogluon_cloud]
local_python_<kind>``, checked before anything is created, and used by the endpoint it starts."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds import get_kind
from airflow_autogluon_cloud.settings import resolve_local_python

KEY = get_kind("tabular").local_python_key
ENV = f"AIRFLOW__AUTOGLUON_CLOUD__{KEY.upper()}"


@pytest.fixture
def hook():
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None)


def wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """An executable that records each start in a file, then runs this interpreter."""
    marker = tmp_path / "started.txt"
    script = tmp_path / "python-wrapper"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{marker}"\nexec "{sys.executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def test_the_setting_is_per_kind_and_defaults_to_this_interpreter(monkeypatch):
    assert {get_kind(name).local_python_key for name in ("tabular", "timeseries", "multimodal")} == {
        "local_python_tabular",
        "local_python_timeseries",
        "local_python_multimodal",
    }
    monkeypatch.delenv(ENV, raising=False)
    assert resolve_local_python(KEY) == sys.executable


@pytest.mark.parametrize("problem", ["missing", "not executable", "directory"])
def test_a_bad_interpreter_is_refused_naming_the_setting(problem, tmp_path, monkeypatch):
    path = tmp_path / "python"
    if problem == "not executable":
        path.write_text("#!/bin/sh\n")
    elif problem == "directory":
        path.mkdir()
    monkeypatch.setenv(ENV, str(path))
    with pytest.raises(InvalidParameterError) as err:
        resolve_local_python(KEY)
    assert err.value.parameter == KEY
    assert str(path) in str(err.value)


def test_a_bad_interpreter_is_refused_before_any_job(hook, churn_frames, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "nope" / "python"))
    train, _ = churn_frames
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(
            job_name="ag-af-test-bad-python", train_data=train, predictor_init_args={"label": "churned"}
        )
    assert err.value.parameter == KEY
    assert "ag-af-test-bad-python" not in {j.name for j in hook.backend.list_training_jobs()}


def test_the_endpoint_runs_with_the_kinds_interpreter(hook, trained_job, churn_frames, tmp_path, monkeypatch):
    script, marker = wrapper(tmp_path)
    monkeypatch.setenv(ENV, str(script))
    name = "ag-af-test-own-python"
    try:
        result = hook.finish_deploy(hook.start_deploy(endpoint_name=name, model_uri=trained_job["model_artifact_uri"]))
        _, test = churn_frames
        answer = hook.predict_real_time(result["endpoint_name"], test.head(5))
        assert len(answer) == 5
    finally:
        hook.delete_endpoint(name)
    started = marker.read_text()
    assert "local_endpoint.py" in started
    assert "--model-dir" in started
