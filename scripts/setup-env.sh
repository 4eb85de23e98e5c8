#!/usr/bin/env bash
# Create .venv and install the project with pinned dependencies. Idempotent: a second run with the
# same pyproject.toml and constraints.txt installs nothing. Sourced by run-example.sh and run-tests.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo ">> Creating virtual environment in $ROOT/.venv"
  "$PY" -m venv "$ROOT/.venv"
fi
STAMP="$ROOT/.venv/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo ">> Installing airflow-provider-autogluon-cloud and its pinned dependencies (a few minutes the first time)"
  "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$ROOT[test]"
  rm -f "$ROOT"/.venv/.installed-*
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
