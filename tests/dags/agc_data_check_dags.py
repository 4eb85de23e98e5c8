"""DAGs for the data-check tests: a batch scored with data_checks="fail", then a check operator."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.data_checks import AGDataCheckOperator

DATA = os.environ.get("AGC_TEST_DATA_DIR", "/tmp/agc-test-data")
SCORED = Asset("agc-test://scored-batch")

with DAG("agc_test_data_checks_fail", schedule=None, start_date=datetime(2026, 11, 1), catchup=False):
    scored = AGBatchPredictOperator(
        task_id="score",
        model_uri=os.environ.get("AGC_TEST_MODEL_URI", "missing"),
        test_data=DATA + "/shifted.csv",
        job_name="ag-af-test-data-checks-fail",
        data_checks="fail",
        outlets=[SCORED],
        check_interval=1,
        max_check_interval=2,
    )
    (
        AGDataCheckOperator(
            task_id="gate",
            job_name="ag-af-test-data-checks-fail",
            checks=["baseline_drift_check"],
            trigger_rule="all_done",
        )
        << scored
    )
