#!/usr/bin/env bash
# Create .venv-extras: the project with its test tools plus the time-series extra (autogluon.timeseries
# and a CPU build of torch). Kept apart from .venv because it is about 2.5 GB and a few minutes to build.
# Idempotent: a second run with the same pyproject.toml and constraints installs nothing.
# torch is pinned to the CPU wheel pip finds locally; an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-extras"
TORCH_VERSION="${AG_EXTRAS_TORCH_VERSION:-2.13.0}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> Creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)-torch$TORCH_VERSION"
if [ ! -f "$STAMP" ]; then
  echo ">> Installing the project with the timeseries extra and torch $TORCH_VERSION (CPU) into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$ROOT/constraints.txt" \
    "torch==$TORCH_VERSION" -e "$ROOT[test,timeseries]"
  if "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)'; then
    :
  else
    echo "!! $VENV has a CUDA build of torch; expected the CPU wheel" >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
