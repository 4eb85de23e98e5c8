"""Scheduled retrain, champion/challenger on one holdout, registry, scoring: the README's main job.

Every period this DAG:

1. works out the period it covers (its logical date, or when it was triggered: manual runs in
   Airflow 3 have no logical date) and writes that period's data: training rows, a **labelled
   holdout kept out of training**, and the new customers to score;
2. fits an AutoGluon predictor (the challenger);
3. evaluates the challenger and the current champion (the registry's latest approved version)
   **on the same holdout**, with AutoGluon's scorers, in one evaluation job;
4. registers the challenger in the model registry with those metrics and the holdout they were
   measured on;
5. gates it: approved only if it beats the champion on the holdout **beyond the noise** (the
   lower end of the 95% paired-bootstrap interval of its ROC AUC improvement is above
   ``min_improvement``) and its log loss is not worse by more than the guardrail's tolerance;
   otherwise rejected (the champion stays). The approval is a compare-and-set against the
   champion the evaluation compared with;
6. batch-scores the new customers with the latest approved version;
7. publishes the model in use and the scores as Airflow Assets.

No Airflow Variable: the registry holds the versions, their metrics, lineage and approvals.
Runs on the local backend with no AWS account. On SageMaker it is configuration only:
``AIRFLOW__AUTOGLUON_CLOUD__BACKEND=sagemaker``, ``AIRFLOW__AUTOGLUON_CLOUD__CLOUD_OUTPUT_PATH=s3://bucket/prefix``,
an ``aws_default`` connection with ``region_name`` and ``role_arn``, and
``AG_EXAMPLE_PERIODS_ROOT=s3://bucket/periods`` (the registry is then SageMaker Model Registry).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, task

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.evaluate import AGEvaluateOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.operators.registry import AGPromoteModelOperator, AGRegisterModelOperator

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Where each period's input files land (a shared directory here; an s3:// prefix on SageMaker).
PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
LABEL = "churned"
#: The registry group (a SageMaker model package group) holding every version of the churn model.
REGISTRY_GROUP = os.environ.get("AG_EXAMPLE_REGISTRY_GROUP", "ag-churn")
#: The model in use: resolved when a task runs, so a rollback in the registry takes effect at once.
CHAMPION = {"registry": REGISTRY_GROUP, "version": "latest-approved"}
#: How much better (in roc_auc) a challenger must be than the champion, on the same holdout: the
#: lower end of the improvement's interval at CONFIDENCE must be above it.
MIN_IMPROVEMENT = float(os.environ.get("AG_EXAMPLE_MIN_IMPROVEMENT", "0.0"))
CONFIDENCE = 0.95
#: A better ROC AUC must not come with a worse calibration: the challenger's log loss may be worse
#: than the champion's by at most this much, judged on the worse end of its 95% interval.
LOG_LOSS_GUARDRAIL = 0.02
# Name-only Assets: a URI scheme would make Airflow load every provider's URI handlers (and boto3)
# at parse time. The artifact locations travel as the asset events' extras instead.
MODEL_ASSET = Asset(name="ag_churn_model")
SCORES_ASSET = Asset(name="ag_churn_scores")
PERIOD = "ti.xcom_pull(task_ids='prepare_period_data')"


def period_key(logical_date: datetime | None, run_after: datetime, run_id: str) -> str:
    """The period a run covers: its logical date, or, for a manual run (no logical date), when it
    was triggered plus a hash of its run id, so two manual runs never share a period's files."""
    if logical_date is not None:
        return logical_date.strftime("%Y-%m-%d")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{run_after.strftime('%Y-%m-%dT%H-%M-%S')}-{digest}"


# --8<-- [start:example_retrain_and_score]
with DAG(
    dag_id="ag_retrain_and_score",
    description="Retrain a churn model weekly; promote it only if it beats the champion on the same holdout.",
    schedule="@weekly",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    # One run at a time: two overlapping runs would each evaluate against the same champion, and
    # only one of them can then be approved (the gate's compare-and-set rejects the other with
    # "champion changed since evaluation"). This is the first line of defence; the gate is the last.
    # (The test suite's deployment stage raises it to let runs overlap and test the gate itself.)
    max_active_runs=int(os.environ.get("AG_EXAMPLE_MAX_ACTIVE_RUNS", "1")),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["autogluon", "example"],
) as dag:

    @task
    def prepare_period_data(**context: Any) -> dict[str, str]:
        """Write this period's training rows, labelled holdout and rows to score (stands in for the export)."""
        import pandas as pd

        run = context["dag_run"]
        period = period_key(context.get("logical_date"), run.run_after, run.run_id)
        bundled = pd.read_csv(DATA_DIR / "customer_churn.csv")
        seed = sum(ord(c) * 31**i for i, c in enumerate(period)) % (2**32)
        # Every period draws from one bundled file, so training rows come from one part of it and
        # holdout and scoring rows from the other: no model, this period's or an earlier champion,
        # has seen a holdout row (real periods are disjoint in time and get this for free).
        pool = bundled.index % 10 < 6
        train = bundled[pool].sample(frac=0.8, random_state=seed)
        rest = bundled[~pool].sample(frac=0.8, random_state=seed)
        holdout = rest.sample(frac=0.5, random_state=2)  # labelled, kept out of every fit
        score = rest.drop(holdout.index).drop(columns=[LABEL])
        out = Path(PERIODS_ROOT) / period
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (("train", train), ("holdout", holdout), ("score", score)):
            frame.to_csv(out / f"{name}.csv", index=False)
        return {
            "period": period,
            "train": str(out / "train.csv"),
            "holdout": str(out / "holdout.csv"),
            "score": str(out / "score.csv"),
            "holdout_rows": str(len(holdout)),
            "score_rows": str(len(score)),
        }

    period = prepare_period_data()

    fit = AGFitOperator(
        task_id="fit",
        train_data="{{ " + PERIOD + "['train'] }}",
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args={
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")),
            "presets": "medium_quality",
            "hyperparameters": {"GBM": {}, "CAT": {"iterations": 300}, "XGB": {}},
        },
        max_runtime=1800,
        check_interval=5,
    )

    evaluate = AGEvaluateOperator(
        task_id="evaluate",
        data="{{ " + PERIOD + "['holdout'] }}",
        models={"challenger": fit.output, "champion": CHAMPION},
        optional_models=["champion"],  # the first run has no champion yet
        max_runtime=1800,
        check_interval=2,
    )

    register = AGRegisterModelOperator(
        task_id="register",
        group=REGISTRY_GROUP,
        model_uri=fit.output,
        evaluation=evaluate.output,
        model_key="challenger",
        description="Weekly churn model, period {{ " + PERIOD + "['period'] }}",
    )

    gate = AGPromoteModelOperator(
        task_id="gate",
        group=REGISTRY_GROUP,
        challenger_version=register.output,
        evaluation=evaluate.output,
        confidence=CONFIDENCE,
        min_improvement=MIN_IMPROVEMENT,
        guardrails={"log_loss": LOG_LOSS_GUARDRAIL},
    )

    score = AGBatchPredictOperator(
        task_id="batch_score",
        model_uri=CHAMPION,  # after the gate: the challenger if it was approved, else the champion
        test_data="{{ " + PERIOD + "['score'] }}",
        instance_count=2,
        check_interval=5,
        # Checked against the serving model's training baseline while scored: a warning (and the
        # summary in the XCom) on a violation; "fail" would fail the task once the output is written.
        data_checks="warn",
    )

    @task(outlets=[MODEL_ASSET, SCORES_ASSET])
    def publish(decision: dict, scored: dict, *, outlet_events=None) -> dict:
        """Publish the model in use and the scored output as Assets (with their URIs as extras)."""
        in_use = scored["model_version"]
        outlet_events[MODEL_ASSET].extra = {
            "model_uri": in_use["model_uri"],
            "registry_group": in_use["group"],
            "registry_version": in_use["version"],
            "decision": decision["decision"],
        }
        outlet_events[SCORES_ASSET].extra = {"scores_uri": scored["output_uri"], "job_name": scored["job_name"]}
        return {
            "model_uri": in_use["model_uri"],
            "registry_version": in_use["version"],
            "scores_uri": scored["output_uri"],
        }

    @task
    def report(candidate: dict, evaluation: dict, decision: dict, scored: dict) -> dict:
        """What a person wants to see at the end of the run: both models on the same holdout, the decision."""
        from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

        hook = AutoGluonCloudHook(backend=candidate["backend"], cloud_output_path=candidate["cloud_output_path"])
        metric = evaluation["eval_metric"]
        table = [
            {
                "model": key,
                "registry_version": (evaluation["model_versions"].get(key) or {}).get("version"),
                f"holdout_{metric}": scores.get(metric),
                "holdout_accuracy": scores.get("accuracy"),
                "holdout_log_loss": scores.get("log_loss"),
                f"own_validation_{metric}": evaluation["score_val"].get(key),
            }
            for key, scores in evaluation["metrics"].items()
        ]
        if "challenger" in evaluation["metrics"]:
            table[[row["model"] for row in table].index("challenger")]["registry_version"] = decision[
                "challenger_version"
            ]
        results = hook.read_predict_results(scored["job_name"])
        running = [
            j.name
            for kind in ("transform", "evaluation")
            for j in hook.jobs.list_jobs(kind)
            if not j.status.is_terminal
        ]
        print(f"Evaluation on the same holdout ({evaluation['num_rows']} rows, {evaluation['class_counts']}):")
        for row in table:
            print("  " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if decision.get("improvement_interval"):
            low, high = decision["improvement_interval"]
            print(
                f"Improvement:      {decision['metric']} {decision['improvement']:+.4f} [{low:+.4f}, {high:+.4f}] "
                f"at {decision['confidence']:.0%} on {decision['num_rows']} rows"
            )
        print(f"Decision:         {decision['decision']} ({decision['reason']})")
        print(f"Serving version:  {scored['model_version']['group']} v{scored['model_version']['version']}")
        print(f"Scored output:    {scored['output_uri']} ({len(results)} rows)")
        checks = scored.get("data_checks") or {}
        found = "; ".join(f"{check}: {', '.join(cols)}" for check, cols in (checks.get("checks") or {}).items())
        print(
            f"Data checks:      {checks.get('violations', 0)} violation(s) on {checks.get('rows')} rows "
            f"({found or 'none'})"
        )
        usage = {"fit": candidate, "evaluation": evaluation, "batch_score": scored}
        for job, xcom in usage.items():
            used = xcom.get("usage") or {}
            billed = used.get("billable_seconds")
            print(
                f"Job {job + ':':<13} billable {'-' if billed is None else f'{billed:.0f}'}s on "
                f"{used.get('instance_count')} x {used.get('instance_type')}; CPU {used.get('cpu_seconds', '-')}s, "
                f"wall {used.get('wall_seconds', '-')}s"
                + (f", about ${used['estimated_cost_usd']:.4f}" if "estimated_cost_usd" in used else "")
            )
        print(f"Still running:    {', '.join(running) if running else 'nothing'}")
        return {
            "job_name": candidate["job_name"],
            "model_artifact_uri": candidate["model_artifact_uri"],
            "evaluation_job": evaluation["job_name"],
            "holdout_uri": evaluation["data_uri"],
            "holdout_rows": evaluation["num_rows"],
            "class_counts": evaluation["class_counts"],
            "eval_metric": metric,
            "evaluation": table,
            "decision": decision,
            "serving_version": scored["model_version"],
            "scores_uri": scored["output_uri"],
            "scored_rows": len(results),
            "predictions_head": results.head(5).round(4).to_dict(orient="records"),
            "still_running": running,
            "data_checks": checks,
            "usage": {job: xcom.get("usage") for job, xcom in usage.items()},
        }

    period >> fit
    gate >> score
    publish(gate.output, score.output)
    report(fit.output, evaluate.output, gate.output, score.output)
# --8<-- [end:example_retrain_and_score]
