"""The local backend runs on one machine: a job it has no record of says so, and where to go instead."""

from __future__ import annotations

import pytest

from airflow_autogluon_cloud.backends.local.backend import LocalBackend
from airflow_autogluon_cloud.exceptions import ResourceNotFoundError


def test_a_job_with_no_local_record_points_to_one_machine_or_sagemaker(tmp_path):
    backend = LocalBackend(tmp_path / "root")
    with pytest.raises(ResourceNotFoundError) as err:
        backend.describe_job("training", "ag-af-started-elsewhere")
    message = str(err.value)
    assert "ag-af-started-elsewhere" in message
    assert str(tmp_path / "root" / "state.db") in message
    assert "one machine" in message
    assert "sagemaker backend" in message


def test_the_sensor_reports_it_too(tmp_path):
    from airflow_autogluon_cloud.sensors.autogluon_cloud import AGFitJobSensor

    sensor = AGFitJobSensor(task_id="s", job_name="ag-af-missing", local_root=str(tmp_path), aws_conn_id=None)
    with pytest.raises(ResourceNotFoundError, match="sagemaker backend"):
        sensor.poke({})
