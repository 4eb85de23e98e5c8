"""Run the example retrain-and-score DAG once on the local backend and print what it produced.

Called by ``scripts/run-example.sh`` after the Airflow home is set up. The DAG's own task logs
stream while it runs (training progress, evaluation, batch progress); the summary at the end
comes from the run's XCom values in Airflow's metadata database: both models scored on the same
holdout, the gate's decision, and the registry version that scored the new customers. On a fresh
registry the first run only makes the first champion, so the DAG runs a second time.
"""

from __future__ import annotations

import os
import sys
import time

DAG_ID = "ag_retrain_and_score"


def _signed(value: object) -> str:
    return f"{value:+.4f}" if isinstance(value, float) else "-"


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def main() -> int:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_autogluon_cloud.settings import load_dag_bag

    started = time.monotonic()
    bag = load_dag_bag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    for attempt in (1, 2):
        print(f">> Running {DAG_ID} with dag.test() on the local backend")
        # logical_date=None: a run like `airflow dags trigger` makes (Airflow 3 manual runs have none)
        dag_run = bag.get_dag(DAG_ID).test(logical_date=None)
        with create_session() as session:
            rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=dag_run.run_id, key="return_value")
            values = {row.task_id: XComModel.deserialize_value(row) for row in rows.all()}
        report = values.get("report")
        if attempt == 1 and report and len(report["evaluation"]) == 1:
            # A fresh registry has no champion: this run's model became the first one. Run once more,
            # so the challenger is measured against it on the same holdout.
            print(">> The registry had no champion yet; running again to compare a challenger with it")
            continue
        break
    print()
    print("=" * 78)
    print(f"{DAG_ID}: {dag_run.state} in {time.monotonic() - started:.0f}s (run {dag_run.run_id})")
    if not report:
        print("The run did not get as far as its report; see the task logs above.")
        return 1
    metric = report["eval_metric"]
    print(
        f"\nEvaluation of both models on the same holdout ({report['holdout_rows']} labelled rows kept out of "
        f"training; classes {report['class_counts']}), job {report['evaluation_job']}:"
    )
    print(f"  {'model':<11} {'version':>7} {metric:>9} {'accuracy':>9} {'log_loss':>9}   own validation {metric}")
    for row in report["evaluation"]:
        own = row[f"own_validation_{metric}"]
        print(
            f"  {row['model']:<11} {str(row['registry_version'] or '-'):>7} {_num(row[f'holdout_{metric}']):>9} "
            f"{_num(row['holdout_accuracy']):>9} {_num(row['holdout_log_loss']):>9}   {_num(own)}"
        )
    decision = report["decision"]
    print(f"\nTraining job:     {report['job_name']}")
    print(f"Model artifact:   {report['model_artifact_uri']}")
    if decision.get("improvement_interval"):
        # the challenger - champion difference with its paired-bootstrap interval: noise or improvement
        low, high = decision["improvement_interval"]
        p_value = f", {decision['test']} p={decision['p_value']:.3g}" if decision.get("p_value") is not None else ""
        print(
            f"Improvement:      {decision['metric']} {decision['improvement']:+.4f} [{low:+.4f}, {high:+.4f}] at "
            f"{decision['confidence']:.0%} on {decision['num_rows']} rows{p_value}"
        )
        for name, rule in (decision.get("guardrails") or {}).items():
            state = "held" if rule["passed"] else "FAILED"
            worse = rule.get("worse_by_up_to")
            print(
                f"Guardrail:        {name} worse by up to {_signed(worse)} (tolerance {rule['tolerance']:g}): {state}"
            )
    print(f"Decision:         {decision['decision']} version {decision['challenger_version']} ({decision['reason']})")
    serving = report["serving_version"]
    print(f"Registry:         {serving['group']} version {serving['version']} is the latest approved and scored")
    print(f"Scored output:    {report['scores_uri']} ({report['scored_rows']} rows)")
    print("A few predictions:")
    for row in report["predictions_head"]:
        print(f"  {row}")
    running = report["still_running"]
    print(f"Left running:     {', '.join(running) if running else 'nothing (no job or endpoint is left running)'}")
    print("=" * 78)
    return 0 if str(dag_run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
