"""Ops teardown: sweep endpoints this provider created that are older than a limit.

Runs daily. Endpoints are found by the provider's tag, so endpoints created by anything else are
never touched. ``dry_run`` (on by default) only reports what would be deleted; ``keep`` lists
endpoints to leave alone whatever their age (e.g. the production endpoint).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_autogluon_cloud.operators.cleanup import AGCleanupOperator

# --8<-- [start:operator_ag_sweep]
with DAG(
    dag_id="ag_ops_teardown",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    params={
        "dry_run": Param(True, type="boolean", description="Only report what would be deleted"),
        "max_age_hours": Param(24, type="number", minimum=0, description="Sweep endpoints older than this"),
        "keep": Param(["ag-af-churn-realtime"], type="array", description="Endpoints never swept"),
    },
    tags=["autogluon", "example", "ops"],
) as dag:
    AGCleanupOperator(
        task_id="sweep_stale_endpoints",
        sweep=True,
        max_age="{{ params.max_age_hours * 3600 }}",
        keep="{{ params.keep }}",
        dry_run="{{ params.dry_run }}",
    )
# --8<-- [end:operator_ag_sweep]
