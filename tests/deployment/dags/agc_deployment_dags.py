"""A DAG the deployment stage needs besides the examples: a fit that waits in its worker
(``deferrable=False``), streaming the training log into the task log, so the worker can be
killed mid-stream and the retry must reattach."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_autogluon_cloud.operators.fit import AGFitOperator

# Many small boosting rounds, bounded by the time limit: long enough to be killed mid-training.
SLOW_FIT = {
    "time_limit": 25,
    "hyperparameters": {"GBM": {"num_boost_round": 20000, "learning_rate": 0.001, "early_stop": 100000}},
    "verbosity": 2,
}

with DAG(
    "agc_deployment_fit_in_worker",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
):

    @task
    def training_data() -> str:
        from airflow_autogluon_cloud.example_data import make_churn

        folder = Path(os.environ.get("AG_EXAMPLE_PERIODS_ROOT") or tempfile.gettempdir()) / "fit-in-worker"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "train.csv"
        make_churn(600, seed=3).to_csv(path, index=False)
        return str(path)

    AGFitOperator(
        task_id="fit",
        train_data=training_data(),
        predictor_init_args={"label": "churned"},
        predictor_fit_args=SLOW_FIT,
        deferrable=False,
        check_interval=1,
        max_check_interval=2,
    )
