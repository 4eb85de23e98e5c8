#!/usr/bin/env bash
# Install the built wheel as a user would and smoke-test it: build the sdist and wheel, check them
# with twine, install the wheel into a clean virtual environment WITHOUT constraints.txt (as
# `pip install airflow-provider-autogluon-cloud` resolves it), then run scripts/smoke/wheel_smoke.py
# there. Installs go through uv when it can be had (scripts/venv-lib.sh), else pip; their cache is
# reused, so a second run downloads nothing. Called by run-tests.sh, which runs the two phases
# apart so the install overlaps other stages:
#   smoke-wheel.sh --install-only   build, check and install (no test)
#   smoke-wheel.sh --test-only      the smoke test in the environment already installed
#   smoke-wheel.sh                  both
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/venv-lib.sh
PHASE="${1:-all}"
started=$(date +%s)
WORK="$ROOT/.venv-wheel"
if [ "$PHASE" != "--test-only" ]; then
  rm -rf "$WORK"
  mkdir -p "$WORK/dist" "$WORK/dags"
  # Build with the project's environment (it has build and twine); the new venv gets only the wheel.
  python -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
  python -m twine check --strict "$WORK"/dist/*
  agc_make_venv "$WORK/venv"
  agc_install "$WORK/venv" "$WORK"/dist/*.whl > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
  echo ">> wheel built and installed in $(( $(date +%s) - started ))s ($(agc_install_count "$WORK/venv") packages resolved without constraints.txt)"
fi
if [ "$PHASE" != "--install-only" ]; then
  cp scripts/smoke/wheel_smoke_dag.py "$WORK/dags/"
  (
    # A throwaway Airflow home; nothing from the source tree on the path.
    cd "$WORK"
    unset PYTHONPATH
    export AIRFLOW_HOME="$WORK/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$WORK/dags"
    export AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT="$WORK/agc-local" AGC_SMOKE_TRAIN_DATA="$WORK/train.csv"
    "$WORK/venv/bin/python" -m airflow db migrate > "$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; exit 1; }
    "$WORK/venv/bin/python" "$ROOT/scripts/leakcheck.py" --stage wheel -- \
      "$WORK/venv/bin/python" "$ROOT/scripts/smoke/wheel_smoke.py"
  )
  echo ">> wheel smoke test passed in $(( $(date +%s) - started ))s"
fi
