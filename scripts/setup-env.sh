#!/usr/bin/env bash
# Create .venv and install the project with pinned dependencies. Idempotent: a second run with the
# same pyproject.toml and constraints.txt installs nothing. Sourced by run-example.sh, run by
# run-tests.sh. Installs go through uv when it can be had (scripts/venv-lib.sh), else pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/venv-lib.sh"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo ">> Creating virtual environment in $ROOT/.venv"
  agc_make_venv "$ROOT/.venv"
fi
STAMP="$ROOT/.venv/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo ">> Installing airflow-provider-autogluon-cloud and its pinned dependencies (a minute or a few the first time)"
  agc_install "$ROOT/.venv" -c "$ROOT/constraints.txt" -e "$ROOT[test]"
  rm -f "$ROOT"/.venv/.installed-*
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
