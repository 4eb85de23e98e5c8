"""Small DAGs the test suite runs with dag.test(); data paths come from $AGC_TEST_DATA_DIR."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_autogluon_cloud.operators.cleanup import AGCleanupOperator
from airflow_autogluon_cloud.operators.deploy import AGDeployOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.operators.predict import AGPredictOperator
from airflow_autogluon_cloud.sensors.autogluon_cloud import AGFitJobSensor

DATA = os.environ.get("AGC_TEST_DATA_DIR", "/tmp/agc-test-data")
LABEL = "churned"
FAST_FIT = {"time_limit": 60, "hyperparameters": {"GBM": {"num_boost_round": 40}}, "verbosity": 1}
# Long enough to be killed mid-training: many small boosting rounds, bounded by the time limit.
SLOW_FIT = {
    "time_limit": 25,
    "hyperparameters": {"GBM": {"num_boost_round": 20000, "learning_rate": 0.001, "early_stop": 100000}},
    "verbosity": 2,
}
START = datetime(2026, 11, 1)

with DAG("agc_test_fit_sensor", schedule=None, start_date=START, catchup=False) as fit_sensor_dag:
    start = AGFitOperator(
        task_id="start_fit",
        train_data=DATA + "/train.csv",
        predictor_init_args={"label": LABEL},
        predictor_fit_args=FAST_FIT,
        wait_for_completion=False,
    )
    AGFitJobSensor(
        task_id="wait_for_fit",
        job_name="{{ ti.xcom_pull(task_ids='start_fit')['job_name'] }}",
        deferrable=True,
        poke_interval=1,
        max_poke_interval=2,
    ).set_upstream(start)

with DAG("agc_test_fit_retry", schedule=None, start_date=START, catchup=False) as fit_retry_dag:
    AGFitOperator(
        task_id="fit",
        train_data=DATA + "/train.csv",
        predictor_init_args={"label": LABEL},
        predictor_fit_args=SLOW_FIT,
        check_interval=1,
        max_check_interval=2,
        retries=1,
    )

with DAG("agc_test_teardown", schedule=None, start_date=START, catchup=False) as teardown_dag:
    endpoint = os.environ.get("AGC_TEST_ENDPOINT", "ag-af-test-teardown")
    deploy = AGDeployOperator(
        task_id="deploy",
        model_uri=os.environ.get("AGC_TEST_MODEL_URI", "missing"),
        endpoint_name=endpoint,
        check_interval=1,
    )
    smoke = AGPredictOperator(task_id="smoke_test", endpoint_name=endpoint, data=DATA + "/test.csv")

    @task
    def broken_step() -> None:
        raise RuntimeError("this middle task fails on purpose")

    cleanup = AGCleanupOperator(task_id="cleanup", endpoint_name=endpoint)
    deploy >> smoke >> broken_step() >> cleanup.as_teardown(setups=deploy)

with DAG("agc_test_secrets", schedule=None, start_date=START, catchup=False) as secrets_dag:
    # Artifacts on an S3-compatible server reached through a connection holding (fake) secrets.
    secret_fit = AGFitOperator(
        task_id="fit",
        aws_conn_id="aws_secrets",
        cloud_output_path="s3://agc-secrets/runs",
        train_data=DATA + "/train.csv",
        predictor_init_args={"label": LABEL},
        predictor_fit_args=FAST_FIT,
        check_interval=1,
    )
    AGDeployOperator(
        task_id="deploy",
        aws_conn_id="aws_secrets",
        cloud_output_path="s3://agc-secrets/runs",
        model_uri=secret_fit.output,
        endpoint_name="ag-af-secrets-ep",
        check_interval=1,
    ) >> AGCleanupOperator(task_id="cleanup", aws_conn_id="aws_secrets", endpoint_name="ag-af-secrets-ep")

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator  # noqa: E402

with DAG("agc_test_batch_retry", schedule=None, start_date=START, catchup=False) as batch_retry_dag:
    AGBatchPredictOperator(
        task_id="score",
        model_uri=os.environ.get("AGC_TEST_MODEL_URI", "missing"),
        test_data=DATA + "/big.csv",
        check_interval=1,
        max_check_interval=2,
        retries=1,
    )

with DAG("agc_test_deploy_retry", schedule=None, start_date=START, catchup=False) as deploy_retry_dag:
    AGDeployOperator(
        task_id="deploy",
        model_uri=os.environ.get("AGC_TEST_MODEL_URI", "missing"),
        endpoint_name="ag-af-deploy-retry",
        check_interval=1,
        retries=1,
    )

with DAG("agc_test_fit_and_score", schedule=None, start_date=START, catchup=False) as fit_and_score_dag:
    # Train and score in one job; the predictions are downloaded as a batch job's would be.
    AGFitOperator(
        task_id="fit",
        train_data=DATA + "/train.csv",
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args=FAST_FIT,
        predict_data=DATA + "/test.csv",
        predict_proba=True,
        download_predictions=True,
        predictions_save_path=DATA + "/fit-and-score/{{ run_id | replace(':', '_') }}.csv",
        check_interval=1,
        max_check_interval=2,
    )
