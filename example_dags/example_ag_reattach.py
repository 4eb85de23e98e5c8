"""Reattaching to long jobs with deferrable sensors.

``ag_reattach_sensor``: start a long fit without waiting, then a deferrable sensor picks the job
up by the name in XCom; no worker slot is held while it trains.

``ag_reattach_external_job``: wait for a training job started outside Airflow (a notebook, a
script, the console), given by name as a DAG parameter, then batch-score with its model.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.sensors.autogluon_cloud import AGBatchPredictJobSensor, AGFitJobSensor

DATA_DIR = Path(__file__).resolve().parent / "data"
FIT_ARGS = {"time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")), "presets": "medium_quality"}

# --8<-- [start:sensor_ag_fit_job]
with DAG(
    dag_id="ag_reattach_sensor",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["autogluon", "example", "sensor"],
) as reattach_sensor:
    start = AGFitOperator(
        task_id="start_fit",
        train_data=str(DATA_DIR / "customer_churn.csv"),
        predictor_init_args={"label": "churned"},
        predictor_fit_args=FIT_ARGS,
        wait_for_completion=False,  # return as soon as the job is running
    )
    wait = AGFitJobSensor(
        task_id="wait_for_fit",
        job_name="{{ ti.xcom_pull(task_ids='start_fit')['job_name'] }}",
        deferrable=True,  # waits in the triggerer
        poke_interval=10,
    )
    start >> wait
# --8<-- [end:sensor_ag_fit_job]

# --8<-- [start:sensor_ag_external_job]
with DAG(
    dag_id="ag_reattach_external_job",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    params={"job_name": Param("", type="string", description="Training job started outside Airflow")},
    tags=["autogluon", "example", "sensor"],
) as reattach_external:
    fitted = AGFitJobSensor(
        task_id="wait_for_external_fit",
        job_name="{{ params.job_name }}",
        deferrable=True,
        poke_interval=10,
    )
    score = AGBatchPredictOperator(
        task_id="start_scoring",
        model_uri=fitted.output,
        test_data=str(DATA_DIR / "smoke_rows.csv"),
        wait_for_completion=False,
    )
    scored = AGBatchPredictJobSensor(
        task_id="wait_for_scoring",
        job_name="{{ ti.xcom_pull(task_ids='start_scoring')['job_name'] }}",
        deferrable=True,
        poke_interval=5,
    )
    fitted >> score >> scored
# --8<-- [end:sensor_ag_external_job]
