"""Scheduled retrain-then-score: the README's main job.

Every period: stage that period's training data (templated paths), fit an AutoGluon predictor,
and report the leaderboard, where the model artifact is, and the job name.

Runs on the local backend with no AWS account. To run it on SageMaker, change configuration only:
``AIRFLOW__AUTOGLUON_CLOUD__BACKEND=sagemaker``, ``AIRFLOW__AUTOGLUON_CLOUD__CLOUD_OUTPUT_PATH=s3://bucket/prefix``
and an ``aws_default`` connection with ``region_name`` and ``role_arn``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_autogluon_cloud.operators.fit import AGFitOperator

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Where each period's input files land (a shared directory, or an s3:// prefix on SageMaker).
PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
LABEL = "churned"

with DAG(
    dag_id="ag_retrain_and_score",
    description="Retrain an AutoGluon churn model every week and report what it learned.",
    schedule="@weekly",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["autogluon", "example"],
) as dag:

    @task
    def prepare_period_data(ds: str | None = None) -> dict[str, str]:
        """Write this period's training and scoring files (stands in for the upstream export)."""
        import pandas as pd

        bundled = pd.read_csv(DATA_DIR / "customer_churn.csv")
        seed = int((ds or "2026-11-01").replace("-", ""))
        period = bundled.sample(frac=0.8, random_state=seed % (2**32))
        train = period.sample(frac=0.75, random_state=1)
        score = period.drop(train.index).drop(columns=[LABEL])
        out = Path(PERIODS_ROOT) / str(ds)
        out.mkdir(parents=True, exist_ok=True)
        train.to_csv(out / "train.csv", index=False)
        score.to_csv(out / "score.csv", index=False)
        return {"train": str(out / "train.csv"), "score": str(out / "score.csv")}

    period = prepare_period_data()

    fit = AGFitOperator(
        task_id="fit",
        train_data=PERIODS_ROOT + "/{{ ds }}/train.csv",
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args={
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")),
            "presets": "medium_quality",
            "hyperparameters": {"GBM": {}, "CAT": {"iterations": 200}, "XGB": {}},
        },
        max_runtime=1800,
        check_interval=5,
    )

    @task
    def report(fit_result: dict) -> dict:
        """Log the leaderboard, the model artifact and the job name."""
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        hook = AutoGluonCloudHook(backend=fit_result["backend"], cloud_output_path=fit_result["cloud_output_path"])
        board = hook.get_leaderboard(fit_result["job_name"])
        columns = [c for c in ("model", "score_val", "fit_time", "pred_time_val") if c in board.columns]
        print("Leaderboard:\n" + board[columns].head(10).to_string(index=False))
        print(f"Model artifact: {fit_result['model_artifact_uri']}")
        print(f"Training job:   {fit_result['job_name']} ({fit_result['backend']} backend)")
        return {
            "job_name": fit_result["job_name"],
            "model_artifact_uri": fit_result["model_artifact_uri"],
            "leaderboard": board[columns].head(5).to_dict(orient="records"),
        }

    period >> fit
    report(fit.output)
