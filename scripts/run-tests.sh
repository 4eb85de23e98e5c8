#!/usr/bin/env bash
# The whole test suite: lint, types, docs build, then pytest (the fault-injection tests in a second step).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup-env.sh

echo ">> ruff"
ruff check .
ruff format --check .
echo ">> mypy"
mypy

run_pytest() {
  # pytest exits 5 when a selection collects no tests; that is not a failure of the suite.
  set +e
  python -m pytest "$@"
  code=$?
  set -e
  if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then exit "$code"; fi
}
echo ">> pytest: fault injection (kills processes on purpose)"
run_pytest -p no:cacheprovider -m faults "$@"
echo ">> pytest"
run_pytest -p no:cacheprovider -m "not faults" "$@"
