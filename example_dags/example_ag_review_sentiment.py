"""Review sentiment with a multimodal (text) predictor: fit on labelled reviews, score new ones.

Every day this DAG:

1. writes the day's data: labelled reviews to learn from and new, unlabelled ones (a bundled
   synthetic generator stands in for the export);
2. fits AutoGluon's ``MultiModalPredictor`` on the review text (``predictor_type="multimodal"``,
   the column declared ``text``), saved standalone so serving needs no model hub;
3. scores the new reviews with it in a batch job, one row per review with the predicted sentiment
   and each class's probability.

The text backbone is ``AG_TEXT_CHECKPOINT``: a Hugging Face hub id (the default, a small pretrained
ELECTRA: the job downloads it, so it needs hub access) or a local checkpoint directory (offline).
On SageMaker the AutoGluon container downloads it. Runs on the local backend with no AWS account;
needs the ``multimodal`` extra (``pip install "airflow-provider-autogluon-cloud[multimodal]"``).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator

PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
CHECKPOINT = os.environ.get("AG_TEXT_CHECKPOINT", "google/electra-small-discriminator")
TRAIN_ROWS = int(os.environ.get("AG_REVIEWS_TRAIN_ROWS", "400"))
PERIOD = "ti.xcom_pull(task_ids='prepare_reviews')"


# --8<-- [start:example_review_sentiment]
with DAG(
    dag_id="ag_review_sentiment",
    description="Learn review sentiment from the text with a multimodal predictor; score the new reviews.",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["autogluon", "example", "multimodal"],
) as dag:

    @task
    def prepare_reviews(**context: Any) -> dict[str, str]:
        """Write the labelled reviews and the new ones to score."""
        from airflow_autogluon_cloud.example_data import make_reviews

        run = context["dag_run"]
        logical = context.get("logical_date")
        period = logical.strftime("%Y-%m-%d") if logical else hashlib.sha256(run.run_id.encode()).hexdigest()[:12]
        seed = int(hashlib.sha256(period.encode()).hexdigest()[:8], 16) % 1000
        out = Path(PERIODS_ROOT) / "reviews" / period
        out.mkdir(parents=True, exist_ok=True)
        paths = {"train": out / "labelled.csv", "new": out / "new.csv"}
        make_reviews(TRAIN_ROWS, seed=seed)[["review", "sentiment"]].to_csv(paths["train"], index=False)
        make_reviews(max(TRAIN_ROWS // 4, 1), seed=seed + 1)[["review"]].to_csv(paths["new"], index=False)
        return {"period": period, **{key: str(path) for key, path in paths.items()}}

    period = prepare_reviews()

    fit = AGFitOperator(
        task_id="fit",
        predictor_type="multimodal",
        train_data="{{ " + PERIOD + "['train'] }}",
        predictor_init_args={"label": "sentiment"},
        predictor_fit_args={
            "column_types": {"review": "text"},
            "hyperparameters": {
                "model.names": ["hf_text"],
                "model.hf_text.checkpoint_name": CHECKPOINT,
                "env.num_gpus": 0,
                "env.num_workers": 0,
                "env.per_gpu_batch_size": 16,
                "optim.max_epochs": int(os.environ.get("AG_REVIEWS_EPOCHS", "3")),
            },
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "600")),
        },
        max_runtime=3600,
        check_interval=5,
    )

    score = AGBatchPredictOperator(
        task_id="score",
        model_uri=fit.output,
        test_data="{{ " + PERIOD + "['new'] }}",
        check_interval=5,
    )

    period >> fit
# --8<-- [end:example_review_sentiment]
