#!/usr/bin/env bash
# Benchmarks (not part of the test suite): sets up the project environment, the AWS CLI used as a
# comparison in its own virtual environment, then runs every section and writes
# benchmarks/results.json, benchmarks/results.md and the table in README.md.
# Pass --quick for a fast check with small sizes, --only <sections> for some of them. Exits 1
# while any target is missed (the tables say which, with the measured numbers).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup-env.sh
WORK="$ROOT/benchmarks/.work"
mkdir -p "$WORK"
# Checked by running it: a virtual environment copied from elsewhere keeps scripts whose first
# line names the old location's interpreter, and they no longer start.
if ! "$WORK/awscli/bin/aws" --version >/dev/null 2>&1; then
  echo ">> Installing the AWS CLI (the staging comparison) into $WORK/awscli"
  rm -rf "$WORK/awscli"
  python -m venv "$WORK/awscli"
  "$WORK/awscli/bin/python" -m pip install --quiet --disable-pip-version-check "awscli==1.46.3"
fi
export AIRFLOW_HOME="$WORK/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
# The time-series section runs in .venv-extras (autogluon.timeseries and torch); built when it is selected.
if [[ " $* " != *" --only "* || " $* " == *timeseries* ]]; then
  bash scripts/setup-extras-env.sh
fi
python benchmarks/run_benchmarks.py "$@"
