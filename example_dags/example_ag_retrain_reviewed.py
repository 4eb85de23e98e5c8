"""Champion/challenger with a person in the loop: the rule and a reviewer must both approve.

The same lifecycle as ``ag_retrain_and_score`` (this period's data with a labelled holdout, fit,
evaluate challenger and champion on that holdout, register), but before a challenger is
approved a reviewer sees both models' scores on the holdout in Airflow's Required Actions page
(``ApprovalOperator``, Airflow 3.1+) and chooses Approve or Reject. The gate then approves the
challenger only if it also beats the champion by more than ``min_improvement``, and records the
reviewer's name with the decision in the registry. If the reviewer rejects, the gate is skipped
(that is what ``ApprovalOperator`` does on Reject): the challenger stays
``PendingManualApproval``, which is never served, and the champion keeps scoring.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, task

from airflow_autogluon_cloud.operators.batch_predict import AGBatchPredictOperator
from airflow_autogluon_cloud.operators.evaluate import AGEvaluateOperator
from airflow_autogluon_cloud.operators.fit import AGFitOperator
from airflow_autogluon_cloud.operators.registry import AGPromoteModelOperator, AGRegisterModelOperator

DATA_DIR = Path(__file__).resolve().parent / "data"
PERIODS_ROOT = os.environ.get("AG_EXAMPLE_PERIODS_ROOT", str(Path("~/ag_example_periods").expanduser()))
LABEL = "churned"
REGISTRY_GROUP = os.environ.get("AG_EXAMPLE_REVIEWED_GROUP", "ag-churn-reviewed")
CHAMPION = {"registry": REGISTRY_GROUP, "version": "latest-approved"}
PERIOD = "ti.xcom_pull(task_ids='prepare_period_data')"
EVALUATION = "ti.xcom_pull(task_ids='evaluate')"
#: What the reviewer reads: both models on the same holdout (Markdown).
REVIEW_BODY = (
    "Both models were scored on the same {{ " + EVALUATION + "['num_rows'] }} labelled holdout rows "
    "(classes {{ " + EVALUATION + "['class_counts'] }}), kept out of training.\n\n"
    "| model | roc_auc | accuracy | log_loss |\n|---|---|---|---|\n"
    "{% for key, s in " + EVALUATION + "['metrics'].items() %}"
    "| {{ key }} | {{ '%.4f' % s['roc_auc'] }} | {{ '%.4f' % s['accuracy'] }} | {{ '%.4f' % s['log_loss'] }} |\n"
    "{% endfor %}\n"
    "Approve to let the gate promote the challenger if it also beats the champion; reject to keep the champion."
)

with DAG(
    dag_id="ag_retrain_and_score_reviewed",
    description="Retrain a churn model; a reviewer approves the challenger before the gate promotes it.",
    schedule="@weekly",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    # One run at a time, as in ag_retrain_and_score: overlapping runs would be compared with the same
    # champion, and the gate's compare-and-set would reject all but the first to be approved.
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
    tags=["autogluon", "example", "human-in-the-loop"],
) as dag:

    @task
    def prepare_period_data(**context: Any) -> dict[str, str]:
        """This period's training rows and labelled holdout, and the rows to score."""
        import pandas as pd

        when = context.get("logical_date")
        period = when.strftime("%Y-%m-%d") if when else context["dag_run"].run_after.strftime("%Y-%m-%dT%H-%M-%S")
        bundled = pd.read_csv(DATA_DIR / "customer_churn.csv")
        pool = bundled.index % 10 < 6  # training rows and holdout rows never mix, across periods too
        train = bundled[pool].sample(frac=0.8, random_state=len(period))
        rest = bundled[~pool].sample(frac=0.8, random_state=len(period))
        holdout = rest.sample(frac=0.5, random_state=2)
        score = rest.drop(holdout.index).drop(columns=[LABEL])
        out = Path(PERIODS_ROOT) / f"reviewed-{period}"
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (("train", train), ("holdout", holdout), ("score", score)):
            frame.to_csv(out / f"{name}.csv", index=False)
        return {"period": period, **{name: str(out / f"{name}.csv") for name in ("train", "holdout", "score")}}

    fit = AGFitOperator(
        task_id="fit",
        train_data="{{ " + PERIOD + "['train'] }}",
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args={
            "time_limit": int(os.environ.get("AG_EXAMPLE_TIME_LIMIT", "60")),
            "hyperparameters": {"GBM": {}, "CAT": {"iterations": 300}},
        },
        max_runtime=1800,
        check_interval=5,
    )
    evaluate = AGEvaluateOperator(
        task_id="evaluate",
        data="{{ " + PERIOD + "['holdout'] }}",
        models={"challenger": fit.output, "champion": CHAMPION},
        optional_models=["champion"],
        check_interval=2,
    )
    register = AGRegisterModelOperator(
        task_id="register", group=REGISTRY_GROUP, model_uri=fit.output, evaluation=evaluate.output
    )
    review = ApprovalOperator(
        task_id="review",
        subject="Promote churn model version {{ ti.xcom_pull(task_ids='register')['version'] }}?",
        body=REVIEW_BODY,
        response_timeout=timedelta(days=2),  # no answer in two days: no default, the task fails
    )
    gate = AGPromoteModelOperator(
        task_id="gate",
        group=REGISTRY_GROUP,
        challenger_version=register.output,
        evaluation=evaluate.output,
        review=review.output,
        confidence=0.95,  # beyond the noise: the lower end of the 95% interval must be above 0
        guardrails={"log_loss": 0.02},
    )
    score = AGBatchPredictOperator(
        task_id="batch_score",
        model_uri=CHAMPION,
        test_data="{{ " + PERIOD + "['score'] }}",
        trigger_rule="none_failed",  # also after a rejection, which skips the gate
        check_interval=5,
    )

    prepare_period_data() >> fit
    register >> review >> gate >> score
