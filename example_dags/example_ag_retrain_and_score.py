"""Scheduled retrain-then-score: the README's main job.

Every period this DAG stages that period's training data (templated paths), fits an AutoGluon
predictor, promotes it only if its validation score is at least as good as the model in use,
batch-scores the period's new customers with the model in use, and publishes the scored output
and the model as Airflow Assets, so downstream DAGs can be scheduled on them.

Runs on the local backend with no AWS account. On SageMaker it is configuration only:
``AIRFLOW__AUTOGLUON_CLOUD__BACKEND=sagemaker``,
``AIRFLOW__AUTOGLUON_CLOUD__CLOUD_OUTPUT_PATH=s3://bucket/prefix``, an ``aws_default`` connection
with ``region_name`` and ``role_arn``, and ``AG_EXAMPLE_PERIODS_ROOT=s3://bucket/periods``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Variable, task

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Where each period's input files land (a shared directory here; an s3:// prefix on SageMaker).
PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
LABEL = "churned"
#: Airflow Variable holding the model in use: {"model_uri", "score_val", "job_name", "eval_metric"}.
CHAMPION_VARIABLE = "ag_churn_champion"
# Name-only Assets: a URI scheme would make Airflow load every provider's URI handlers (and boto3)
# at parse time. The artifact locations travel as the asset events' extras instead.
MODEL_ASSET = Asset(name="ag_churn_model")
SCORES_ASSET = Asset(name="ag_churn_scores")

# --8<-- [start:example_retrain_and_score]
with DAG(
    dag_id="ag_retrain_and_score",
    description="Retrain an AutoGluon churn model weekly, promote it if it is at least as good, score new customers.",
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
        return {"train": str(out / "train.csv"), "score": str(out / "score.csv"), "score_rows": str(len(score))}

    fit = AGFitOperator(
        task_id="fit",
        train_data=PERIODS_ROOT + "/{{ ds }}/train.csv",
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args={
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")),
            "presets": "medium_quality",
            "hyperparameters": {"GBM": {}, "CAT": {"iterations": 300}, "XGB": {}},
        },
        max_runtime=1800,
        check_interval=5,
    )

    @task
    def decide_promotion(candidate: dict) -> dict:
        """Promote the new model if its validation score is at least the current model's."""
        champion = Variable.get(CHAMPION_VARIABLE, default=None, deserialize_json=True)
        new_score = candidate["metrics"]["score_val"]
        old_score = champion["score_val"] if champion else None
        promote = old_score is None or (new_score is not None and new_score >= old_score)
        in_use = candidate if promote else champion
        decision = {
            "promoted": promote,
            "candidate_job": candidate["job_name"],
            "candidate_score": new_score,
            "champion_job": champion["job_name"] if champion else None,
            "champion_score": old_score,
            "eval_metric": candidate["metrics"]["eval_metric"],
            "model_uri": in_use["model_artifact_uri"] if promote else in_use["model_uri"],
        }
        print(
            f"Promotion decision: {'PROMOTE' if promote else 'KEEP CURRENT'} "
            f"(new {decision['eval_metric']}={new_score}, current={old_score})"
        )
        if promote:
            Variable.set(
                CHAMPION_VARIABLE,
                {
                    "model_uri": candidate["model_artifact_uri"],
                    "score_val": new_score,
                    "job_name": candidate["job_name"],
                    "eval_metric": decision["eval_metric"],
                },
                serialize_json=True,
            )
        return decision

    decision = decide_promotion(fit.output)

    score = AGBatchPredictOperator(
        task_id="batch_score",
        model_uri="{{ ti.xcom_pull(task_ids='decide_promotion')['model_uri'] }}",
        test_data=PERIODS_ROOT + "/{{ ds }}/score.csv",
        instance_count=2,
        check_interval=5,
    )

    @task(outlets=[MODEL_ASSET, SCORES_ASSET])
    def publish(decision: dict, scored: dict, *, outlet_events=None) -> dict:
        """Publish the model in use and the scored output as Assets (with their URIs as extras)."""
        outlet_events[MODEL_ASSET].extra = {"model_uri": decision["model_uri"], "promoted": decision["promoted"]}
        outlet_events[SCORES_ASSET].extra = {"scores_uri": scored["output_uri"], "job_name": scored["job_name"]}
        return {"model_uri": decision["model_uri"], "scores_uri": scored["output_uri"]}

    @task
    def report(candidate: dict, decision: dict, scored: dict) -> dict:
        """What a person wants to see at the end of the run."""
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        hook = AutoGluonCloudHook(backend=candidate["backend"], cloud_output_path=candidate["cloud_output_path"])
        board = hook.get_leaderboard(candidate["job_name"])
        columns = [c for c in ("model", "score_val", "fit_time", "pred_time_val") if c in board.columns]
        results = hook.read_predict_results(scored["job_name"])
        running = [j.name for j in hook.jobs.list_jobs("transform") if not j.status.is_terminal]
        print("Leaderboard (validation roc_auc, higher is better):\n" + board[columns].head(10).to_string(index=False))
        print(f"Model artifact:   {candidate['model_artifact_uri']}")
        print(f"Training job:     {candidate['job_name']} ({candidate['backend']} backend)")
        print(f"Promotion:        {'promoted' if decision['promoted'] else 'kept the current model'}")
        print(f"Scored output:    {scored['output_uri']} ({len(results)} rows)")
        print("First predictions:\n" + results.head(5).to_string(index=False))
        print(f"Still running:    {', '.join(running) if running else 'nothing'}")
        return {
            "job_name": candidate["job_name"],
            "model_artifact_uri": candidate["model_artifact_uri"],
            "leaderboard": board[columns].head(5).round(4).to_dict(orient="records"),
            "decision": decision,
            "scores_uri": scored["output_uri"],
            "scored_rows": len(results),
            "predictions_head": results.head(5).round(4).to_dict(orient="records"),
            "still_running": running,
        }

    period = prepare_period_data()
    period >> fit
    decision >> score
    publish(decision, score.output)
    report(fit.output, decision, score.output)
# --8<-- [end:example_retrain_and_score]
