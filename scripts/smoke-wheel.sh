#!/usr/bin/env bash
# Install the built wheel as a user would and smoke-test it: build the sdist and wheel, check them
# with twine, install the wheel into a clean virtual environment WITHOUT constraints.txt (as
# `pip install airflow-provider-autogluon-cloud` resolves it), then run scripts/smoke/wheel_smoke.py
# there. pip's cache is reused, so a second run downloads nothing. Called by run-tests.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)
WORK="$ROOT/.venv-wheel"
rm -rf "$WORK"
mkdir -p "$WORK/dist" "$WORK/dags"
# Build with the project's environment (it has build and twine); the new venv gets only the wheel.
python -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
python -m twine check --strict "$WORK"/dist/*
BASE_PY="$(python -c 'import sys; print(sys._base_executable)')"
"$BASE_PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$WORK"/dist/*.whl \
  > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
cp scripts/smoke/wheel_smoke_dag.py "$WORK/dags/"
(
  # A throwaway Airflow home; nothing from the source tree on the path.
  cd "$WORK"
  unset PYTHONPATH
  export AIRFLOW_HOME="$WORK/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$WORK/dags"
  export AIRFLOW__AUTOGLUON_CLOUD__LOCAL_ROOT="$WORK/agc-local" AGC_SMOKE_TRAIN_DATA="$WORK/train.csv"
  "$WORK/venv/bin/python" -m airflow db migrate > "$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; exit 1; }
  "$WORK/venv/bin/python" "$ROOT/scripts/smoke/wheel_smoke.py"
)
echo ">> wheel smoke test passed in $(( $(date +%s) - started ))s ($("$WORK/venv/bin/python" -m pip list 2>/dev/null | tail -n +3 | wc -l) packages resolved without constraints.txt)"
