"""A real-time endpoint kept on the newest model.

Fit, deploy to a stable endpoint name (created the first time, updated in place without downtime
after), and smoke-test it with a few real-time predictions. The development variant tears the
endpoint down at the end, as a teardown task that runs even when the smoke test fails, so nothing
is left running and billing.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_autogluon_cloud.operators.cleanup import AGCleanupOperator
from airflow_autogluon_cloud.operators.deploy import AGDeployOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.operators.predict import AGPredictOperator
from airflow_autogluon_cloud.sensors.autogluon_cloud import AGEndpointSensor

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN = str(DATA_DIR / "customer_churn.csv")
SMOKE_ROWS = str(DATA_DIR / "smoke_rows.csv")
FIT_ARGS = {"time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")), "presets": "medium_quality"}


def endpoint_dag(dag_id: str, endpoint_name: str, teardown: bool) -> DAG:
    with DAG(
        dag_id=dag_id,
        description="Keep a real-time AutoGluon endpoint on the newest model.",
        schedule="@daily" if not teardown else None,
        start_date=datetime(2026, 11, 1),
        catchup=False,
        tags=["autogluon", "example", "endpoint"],
    ) as dag:
        # --8<-- [start:operator_ag_deploy]
        fit = AGFitOperator(
            task_id="fit",
            train_data=TRAIN,
            predictor_init_args={"label": "churned", "eval_metric": "roc_auc"},
            predictor_fit_args=FIT_ARGS,
            check_interval=5,
        )
        deploy = AGDeployOperator(
            task_id="deploy",
            model_uri=fit.output,  # the fit task's XCom dict: its model_artifact_uri is deployed
            endpoint_name=endpoint_name,  # stable: the first run creates it, later runs update it in place
            instance_type="ml.m5.large",
            check_interval=5,
        )
        in_service = AGEndpointSensor(task_id="endpoint_in_service", endpoint_name=endpoint_name, poke_interval=5)
        smoke_test = AGPredictOperator(
            task_id="smoke_test", endpoint_name=endpoint_name, data=SMOKE_ROWS, predict_proba=True
        )
        fit >> deploy >> in_service >> smoke_test
        # --8<-- [end:operator_ag_deploy]
        if teardown:
            # --8<-- [start:operator_ag_cleanup_teardown]
            cleanup = AGCleanupOperator(task_id="cleanup", endpoint_name=endpoint_name)
            smoke_test >> cleanup.as_teardown(setups=deploy)
            # --8<-- [end:operator_ag_cleanup_teardown]
    return dag


production = endpoint_dag("ag_realtime_endpoint", "ag-af-churn-realtime", teardown=False)
development = endpoint_dag("ag_realtime_endpoint_dev", "ag-af-churn-realtime-dev", teardown=True)
