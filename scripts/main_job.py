"""Run the example retrain-and-score DAG once on the local backend and print what it produced.

Called by ``scripts/run-example.sh`` after the Airflow home is set up. The DAG's own task logs
stream while it runs (training progress, batch progress); the summary at the end comes from the
run's XCom values in Airflow's metadata database.
"""

from __future__ import annotations

import os
import sys
import time

DAG_ID = "ag_retrain_and_score"


def main() -> int:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_autogluon_cloud.settings import load_dag_bag

    started = time.monotonic()
    bag = load_dag_bag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    print(f">> Running {DAG_ID} with dag.test() on the local backend")
    dag_run = bag.get_dag(DAG_ID).test()

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=dag_run.run_id, key="return_value").all()
        values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    report = values.get("report")
    print()
    print("=" * 78)
    print(f"{DAG_ID}: {dag_run.state} in {time.monotonic() - started:.0f}s (run {dag_run.run_id})")
    if not report:
        print("The run did not get as far as its report; see the task logs above.")
        return 1
    print("\nLeaderboard (validation roc_auc, higher is better):")
    for row in report["leaderboard"]:
        print(f"  {row['model']:<28} score_val={row['score_val']:.4f}")
    decision = report["decision"]
    print(f"\nTraining job:     {report['job_name']}")
    print(f"Model artifact:   {report['model_artifact_uri']}")
    verdict = "promoted" if decision["promoted"] else "kept the current model"
    print(
        f"Promotion:        {verdict} (new {decision['eval_metric']}={decision['candidate_score']}, "
        f"current={decision['champion_score']})"
    )
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
