#!/usr/bin/env bash
# Create .venv-multimodal: the project with its test tools plus the multimodal extra
# (autogluon.multimodal, a CPU build of torch and torchvision), kept apart from .venv and .venv-extras
# because multimodal needs older pins (constraints-multimodal.txt) and is about 3 GB. Idempotent: a
# second run with the same pyproject.toml and constraint files installs nothing. Installs go through
# uv when it can be had (scripts/venv-lib.sh), else pip.
#
# torch is the CPU build this machine kind keeps under /opt/wheels (2.13.0+cpu); PyPI's torchvision is
# a CUDA build, which fails to import beside a CPU torch ("operator torchvision::nms does not exist")
# because it registers fake kernels for C++ ops the CPU torch lacks. This test environment therefore
# gets scripts/multimodal/torchvision_op_schemas.py as a .pth hook that defines those op schemas
# before torchvision loads (image classification works; detection ops do not). The shim lives in this
# environment only, never in the package. The matched CUDA pair (torch 2.14.1 + torchvision 0.29.1,
# 5.5 GB) needs no shim: set AG_MULTIMODAL_TORCH="torch==2.14.1 torchvision==0.29.1" to use it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/venv-lib.sh"
VENV="$ROOT/.venv-multimodal"
WHEELS="${AG_EXTRAS_WHEELS:-/opt/wheels}"
MORE_WHEELS="${AG_MULTIMODAL_WHEELS:-/opt/pypi-more/files}"
TORCH="${AG_MULTIMODAL_TORCH:-torch==2.13.0 torchvision==0.28.0}"
SHIM=0
FIND_LINKS=()
if [ -z "${AG_MULTIMODAL_TORCH:-}" ] && ls "$WHEELS"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  TORCH="torch==2.13.0+cpu torchvision==0.28.0"
  SHIM=1
  FIND_LINKS=(--find-links "$WHEELS")
  [ -d "$MORE_WHEELS" ] && FIND_LINKS+=(--find-links "$MORE_WHEELS")
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> Creating virtual environment in $VENV"
  agc_make_venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" "$ROOT/constraints-multimodal.txt" "$ROOT/overrides-multimodal.txt" \
  "$ROOT/scripts/multimodal/torchvision_op_schemas.py" | sha256sum | cut -c1-16)-$(echo "$TORCH" | sha256sum | cut -c1-8)"
if [ ! -f "$STAMP" ]; then
  # The main pins, less the names constraints-multimodal.txt pins differently, plus those.
  overridden="$(grep -v '^#' "$ROOT/constraints-multimodal.txt" | sed -E 's/[<>=!~ ].*//' | grep -v '^$' | paste -sd'|')"
  grep -v -i -E "^($overridden)[<>=!~ ]" "$ROOT/constraints.txt" > "$VENV/constraints-effective.txt"
  grep -v '^#' "$ROOT/constraints-multimodal.txt" >> "$VENV/constraints-effective.txt"
  echo ">> Installing the project with the multimodal extra and $TORCH into $VENV"
  uv="$(agc_uv)"
  if [ -z "$uv" ]; then
    # pip has no overrides, and without one the test extra and multimodal cannot be resolved together.
    echo "!! $VENV needs uv (overrides-multimodal.txt); see .venv-tools.log" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  "$uv" pip install --quiet --python "$VENV/bin/python" "${FIND_LINKS[@]}" -c "$VENV/constraints-effective.txt" \
    --overrides "$ROOT/overrides-multimodal.txt" $TORCH -e "$ROOT[test,multimodal]"
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -f "$site/agc_torchvision_op_schemas.py" "$site/agc-torchvision-op-schemas.pth"
  if [ "$SHIM" = 1 ]; then
    cp "$ROOT/scripts/multimodal/torchvision_op_schemas.py" "$site/agc_torchvision_op_schemas.py"
    echo "import agc_torchvision_op_schemas; agc_torchvision_op_schemas.install()" > "$site/agc-torchvision-op-schemas.pth"
  fi
  if ! "$VENV/bin/python" -c 'import sys, torch, torchvision; sys.exit(0 if torch.version.cuda is None else 1)'; then
    echo "!! $VENV: torch is a CUDA build or torchvision does not import; expected a CPU torch" >&2
    [ -n "${AG_MULTIMODAL_TORCH:-}" ] || exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
echo ">> $VENV ready: $("$VENV/bin/python" -c 'import torch, torchvision, autogluon.multimodal as m; print("torch", torch.__version__, "torchvision", torchvision.__version__, "autogluon.multimodal", m.__version__)')"
