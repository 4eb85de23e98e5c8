#!/usr/bin/env bash
# The compatibility stage: install the project with the OLDEST supported Airflow and Amazon provider
# (pinned, with everything else, by constraints-oldest.txt) into .venv-oldest, then run the tests
# marked `compat` there: imports and parse cost, trigger serialize() round trips, local
# fit/deploy/batch DAGs through dag.test() (HITL included), the local backend through an AWS
# connection, and the SageMaker tests under moto. The newest pair is what .venv (constraints.txt) runs.
#
# Idempotent like setup-env.sh: a stamp keyed on pyproject.toml and constraints-oldest.txt means a
# second run installs nothing; the installer's cache is reused. Called by run-tests.sh (skipped with
# AGC_SKIP_INSTALL_CHECKS=1), which runs the two phases apart so the install overlaps other stages:
#   compat-oldest.sh --install-only          the environment, no test
#   compat-oldest.sh --test-only [ARGS...]   the tests, in the environment already installed
#   compat-oldest.sh [ARGS...]               both
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/venv-lib.sh
PHASE="all"
case "${1:-}" in --install-only|--test-only) PHASE="$1"; shift ;; esac
started=$SECONDS
VENV="$ROOT/.venv-oldest"
CONSTRAINTS="$ROOT/constraints-oldest.txt"
if [ "$PHASE" != "--test-only" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    echo ">> Creating the oldest-pair virtual environment in $VENV"
    agc_make_venv "$VENV"
  fi
  STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$CONSTRAINTS" | sha256sum | cut -c1-16)"
  if [ ! -f "$STAMP" ]; then
    echo ">> Installing the project with constraints-oldest.txt (a minute or a few the first time)"
    agc_install "$VENV" -c "$CONSTRAINTS" -e "$ROOT[test]" \
      > "$VENV/install.log" 2>&1 || { grep -v "^WARNING: Location" "$VENV/install.log"; exit 1; }
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
  fi
  echo ">> oldest-pair environment ready in $((SECONDS - started)) s"
fi
[ "$PHASE" = "--install-only" ] && exit 0

# The environment must hold exactly the pinned pair, or this stage would prove nothing.
"$VENV/bin/python" - "$CONSTRAINTS" <<'EOF'
import sys
from importlib.metadata import version

pins = dict(
    line.strip().split("==", 1) for line in open(sys.argv[1]) if "==" in line and not line.startswith("#")
)
for name in ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-amazon"):
    if version(name) != pins[name]:
        sys.exit(f"{name} {version(name)} is installed, constraints-oldest.txt pins {pins[name]}")
print(">> oldest pair: " + ", ".join(f"{n} {version(n)}" for n in ("apache-airflow", "apache-airflow-providers-amazon")))
EOF

tests_started=$SECONDS
set +e
# A clean PATH: the test subprocesses (airflow db migrate, detached runners) use this venv's python.
# Under the leak check (scripts/leakcheck.py): anything the tests leave running fails the stage.
PATH="$VENV/bin:$PATH" "$VENV/bin/python" scripts/leakcheck.py --stage compat -- \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -m compat "$@"
code=$?
set -e
echo ">> compat tests took $((SECONDS - tests_started)) s"
# pytest exits 5 when a selection collects no tests; that is not a failure of the suite.
if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then exit "$code"; fi
