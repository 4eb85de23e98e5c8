#!/usr/bin/env bash
# The whole test suite, as stages: the environment, lint, types, pytest (fault injection, the rest,
# a real deployment), then the install checks: the built wheel in a clean environment, and the oldest
# supported Airflow and Amazon provider in a second one (scripts/compat-oldest.sh).
#
# Every stage runs even when an earlier one failed, so one run shows every failure; the run exits
# non-zero if any stage failed, and ends with a table of each stage's seconds. Each pytest stage
# runs under scripts/leakcheck.py: a process it leaves running fails it, and is killed by pid.
# The install-check environments are built in the background while the pytest stages run.
# Extra arguments go to every pytest stage; AGC_SKIP_INSTALL_CHECKS=1 skips the install checks.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="$ROOT/.ci-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
RUN_STARTED=$SECONDS
STAGE_ROWS=()
FAILED=0

record() {
  # record NAME EXIT-STATUS SECONDS
  local result="ok"
  if [ "$2" -ne 0 ]; then result="FAILED ($2)"; FAILED=1; fi
  STAGE_ROWS+=("$(printf '%-72s %8s  %s' "$1" "$3" "$result")")
}

stage() {
  # stage NAME COMMAND...: run one stage in the foreground and record it.
  local name="$1" started=$SECONDS code
  shift
  echo
  echo ">> [$name]"
  "$@"
  code=$?
  record "$name" "$code" $((SECONDS - started))
  return 0
}

pytest_stage() {
  # pytest_stage NAME PYTEST-ARGUMENTS...: pytest under the leak check; exit 5 (nothing collected) is a pass.
  local name="$1" code
  shift
  python scripts/leakcheck.py --stage "$name" -- \
    python -m pytest -p no:cacheprovider --junitxml="$LOGS/pytest-$name.xml" "$@"
  code=$?
  if [ "$code" -eq 5 ]; then echo ">> no test was selected in this stage"; return 0; fi
  return "$code"
}

timeseries_stage() {
  # The extra's own environment: its python runs pytest, and with it the local backend's runners.
  ( export PATH="$ROOT/.venv-extras/bin:$PATH"; pytest_stage "timeseries" -m timeseries "$@" )
}

multimodal_stage() {
  ( export PATH="$ROOT/.venv-multimodal/bin:$PATH"; pytest_stage "multimodal" -m multimodal "$@" )
}

slug() { echo "$1" | tr -cs 'A-Za-z0-9.' '-' | sed 's/-$//'; }

background() {
  # background NAME COMMAND...: start a stage now; finish_background NAME waits for it and records it.
  local name="$1" log
  shift
  log="$LOGS/$(slug "$name")"
  echo ">> [$name] started in the background (log: ${log#"$ROOT/"}.log)"
  ( started=$SECONDS; "$@" > "$log.log" 2>&1; echo "$? $((SECONDS - started))" > "$log.status" ) &
}

finish_background() {
  local name="$1" log code seconds
  log="$LOGS/$(slug "$name")"
  while [ ! -f "$log.status" ]; do sleep 1; done
  read -r code seconds < "$log.status"
  echo
  echo ">> [$name] (ran in the background)"
  if [ "$code" -ne 0 ]; then cat "$log.log"; else tail -n 5 "$log.log"; fi
  record "$name (background)" "$code" "$seconds"
  return "$code"
}

print_table() {
  echo
  echo ">> stages"
  printf '%-72s %8s  %s\n' "stage" "seconds" "result"
  printf '%s\n' "${STAGE_ROWS[@]}"
  printf '%-72s %8s\n' "whole run (wall clock)" $((SECONDS - RUN_STARTED))
}

stage "install: project environment (.venv)" bash scripts/setup-env.sh
export PATH="$ROOT/.venv/bin:$PATH"
source scripts/venv-lib.sh
agc_uv > /dev/null  # installed once here, before the background installs would race to install it

INSTALL_CHECKS=1
[ "${AGC_SKIP_INSTALL_CHECKS:-0}" = "1" ] && INSTALL_CHECKS=0
if [ "$INSTALL_CHECKS" = 1 ]; then
  background "install: wheel built, clean venv without constraints" bash scripts/smoke-wheel.sh --install-only
  background "install: oldest Airflow and Amazon provider (.venv-oldest)" bash scripts/compat-oldest.sh --install-only
fi
background "install: time-series extra with CPU torch (.venv-extras)" bash scripts/setup-extras-env.sh
background "install: multimodal extra with CPU torch (.venv-multimodal)" bash scripts/setup-multimodal-env.sh
background "install: browser for the UI tests (chromium, playwright)" bash scripts/setup-browser.sh

stage "ruff" bash -c 'ruff check . && ruff format --check .'
stage "mypy" mypy
stage "pytest: fault injection (kills processes on purpose)" pytest_stage "faults" -m faults "$@"
stage "pytest: main suite" pytest_stage "main" -m "not faults and not deployment and not timeseries and not multimodal and not ui" "$@"
stage "pytest: deployment (scheduler, triggerer, api-server, dag-processor)" pytest_stage "deployment" -m deployment "$@"
if finish_background "install: time-series extra with CPU torch (.venv-extras)"; then
  stage "pytest: time series (.venv-extras)" timeseries_stage "$@"
else
  record "pytest: time series (not run: install failed)" 1 0
fi
if finish_background "install: browser for the UI tests (chromium, playwright)"; then
  export AGC_SCREENSHOTS_DIR="$LOGS/screenshots"
  stage "pytest: UI in a real browser (chromium, Playwright)" pytest_stage "ui" -m ui "$@"
else
  record "pytest: UI in a real browser (not run: install failed)" 1 0
fi
if finish_background "install: multimodal extra with CPU torch (.venv-multimodal)"; then
  stage "pytest: multimodal (.venv-multimodal)" multimodal_stage "$@"
else
  record "pytest: multimodal (not run: install failed)" 1 0
fi

if [ "$INSTALL_CHECKS" = 1 ]; then
  if finish_background "install: wheel built, clean venv without constraints"; then
    stage "wheel: smoke test of the installed wheel" bash scripts/smoke-wheel.sh --test-only
  else
    record "wheel: smoke test of the installed wheel (not run: install failed)" 1 0
  fi
  if finish_background "install: oldest Airflow and Amazon provider (.venv-oldest)"; then
    stage "compat: tests marked compat on the oldest pair" \
      bash scripts/compat-oldest.sh --test-only --junitxml="$LOGS/pytest-compat.xml" "$@"
  else
    record "compat: tests marked compat on the oldest pair (not run: install failed)" 1 0
  fi
fi

test_counts() {
  # Every pytest stage's results added up, as one closing line.
  python3 - "$LOGS" <<'PY'
import glob, sys
import xml.etree.ElementTree as ET

total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in glob.glob(f"{sys.argv[1]}/pytest-*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in total:
            total[key] += int(suite.get(key, 0))
failed = total["failures"] + total["errors"]
passed = total["tests"] - failed - total["skipped"]
print(f"tests: {passed} passed, {failed} failed, {total['skipped']} skipped")
PY
}

print_table
if [ "$FAILED" -ne 0 ]; then
  echo ">> at least one stage failed (see the table above)"
else
  echo ">> every stage passed"
fi
test_counts
exit "$FAILED"
