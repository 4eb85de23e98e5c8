"""The DAG ``scripts/smoke-wheel.sh`` runs in the wheel's clean environment: one short local fit."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_autogluon_cloud.operators.fit import AGFitOperator

with DAG("agc_wheel_smoke", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AGFitOperator(
        task_id="fit",
        train_data=os.environ.get("AGC_SMOKE_TRAIN_DATA", "train.csv"),
        predictor_init_args={"label": "churned", "eval_metric": "roc_auc"},
        predictor_fit_args={"time_limit": 10, "hyperparameters": {"GBM": {"num_boost_round": 20}}, "verbosity": 1},
        max_runtime=300,
        deferrable=False,
    )
