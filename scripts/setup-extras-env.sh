#!/usr/bin/env bash
# Create .venv-extras: the project with its test tools plus the time-series extra (autogluon.timeseries
# and a CPU build of torch), kept apart from .venv because it is about 2.5 GB. Idempotent: a second run
# with the same pyproject.toml and constraints.txt installs nothing. Installs go through uv when it can
# be had (scripts/venv-lib.sh), else pip.
#
# torch is pinned to a CPU build: this machine kind keeps torch 2.13.0+cpu under /opt/wheels, where
# pip (through its configured find-links) and uv (told here) take it from; an unpinned torch would pull
# a CUDA build of several GB. Elsewhere set AG_EXTRAS_TORCH to a CPU torch your index serves.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/venv-lib.sh"
VENV="$ROOT/.venv-extras"
WHEELS="${AG_EXTRAS_WHEELS:-/opt/wheels}"
TORCH="${AG_EXTRAS_TORCH:-torch==2.13.0}"
FIND_LINKS=()
if [ -d "$WHEELS" ] && ls "$WHEELS"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && [ -z "${AG_EXTRAS_TORCH:-}" ]; then
  TORCH="torch==2.13.0+cpu"
  FIND_LINKS=(--find-links "$WHEELS")
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> Creating virtual environment in $VENV"
  agc_make_venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)-$(echo "$TORCH" | sha256sum | cut -c1-8)"
if [ ! -f "$STAMP" ]; then
  echo ">> Installing the project with the timeseries extra and $TORCH into $VENV"
  agc_install "$VENV" "${FIND_LINKS[@]}" -c "$ROOT/constraints.txt" "$TORCH" -e "$ROOT[test,timeseries]"
  if ! "$VENV/bin/python" -c 'import sys, torch; sys.exit(0 if torch.version.cuda is None else 1)'; then
    echo "!! $VENV has a CUDA build of torch; expected a CPU build" >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
echo ">> $VENV ready: $("$VENV/bin/python" -c 'import torch, autogluon.timeseries as t; print("torch", torch.__version__, "autogluon.timeseries", t.__version__)')"
