#!/usr/bin/env bash
# The main job: set everything up, then run the example retrain-and-score DAG on the local backend.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup-env.sh
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
export AG_EXAMPLE_PERIODS_ROOT="${AG_EXAMPLE_PERIODS_ROOT:-$AIRFLOW_HOME/example_periods}"
echo ">> Preparing the Airflow home at $AIRFLOW_HOME (SQLite metadata database)"
mkdir -p "$AIRFLOW_HOME"
airflow db migrate > "$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log"; exit 1; }
python scripts/main_job.py "$@"
