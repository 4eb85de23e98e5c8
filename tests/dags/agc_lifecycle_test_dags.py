"""A small lifecycle DAG the retry tests run with dag.test(): evaluate one model, register it.

The model comes from $AGC_TEST_MODEL_URI and the labelled holdout from $AGC_TEST_DATA_DIR."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_autogluon_cloud.operators.evaluate import AGEvaluateOperator
from airflow_autogluon_cloud.operators.registry import AGRegisterModelOperator

DATA = os.environ.get("AGC_TEST_DATA_DIR", "/tmp/agc-test-data")
MODEL_URI = os.environ.get("AGC_TEST_MODEL_URI", "/nonexistent/model.tar.gz")

with DAG("agc_test_evaluate_register_retry", schedule=None, start_date=datetime(2026, 11, 1), catchup=False) as dag:
    evaluate = AGEvaluateOperator(
        task_id="evaluate",
        data=DATA + "/holdout.csv",
        models={"challenger": MODEL_URI},
        deferrable=False,
        check_interval=1,
    )
    AGRegisterModelOperator(task_id="register", group="agc-test-retry", model_uri=MODEL_URI, evaluation=evaluate.output)
