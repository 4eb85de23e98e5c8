#!/usr/bin/env bash
# The fault-injection and deployment stages on a busy machine: a competing load keeps every core
# busy (one Python busy loop per core, at normal priority) while the two stages run, each under
# the leak check as in .ci/run. Both must pass. Prints each stage's result and seconds, and the
# load's share of the CPU, at the end. Extra arguments go to pytest.
#   bash scripts/stress-suite.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-env.sh || exit 1
export PATH="$ROOT/.venv/bin:$PATH"
CORES="$(nproc)"
LOAD_PIDS=()
stop_load() { [ "${#LOAD_PIDS[@]}" -gt 0 ] && kill "${LOAD_PIDS[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_load EXIT
for _ in $(seq "$CORES"); do
  python3 -c 'while True: pass' &
  LOAD_PIDS+=("$!")
done
echo ">> competing load: $CORES busy loop(s), pids ${LOAD_PIDS[*]}"

ROWS=()
FAILED=0
run() {
  local name="$1" started=$SECONDS code
  shift
  echo
  echo ">> [$name] under load"
  python scripts/leakcheck.py --stage "$name" -- python -m pytest -p no:cacheprovider "$@"
  code=$?
  [ "$code" -eq 5 ] && code=0
  [ "$code" -ne 0 ] && FAILED=1
  ROWS+=("$(printf '%-12s %8s  %s' "$name" $((SECONDS - started)) "$([ "$code" -eq 0 ] && echo ok || echo "FAILED ($code)")")")
}
run faults -m faults "$@"
run deployment -m deployment "$@"
load_cpu=0
for pid in "${LOAD_PIDS[@]}"; do
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  load_cpu=$((load_cpu + ticks))
done
echo
echo ">> stress suite ($(date -u +%FT%TZ), $CORES cores, load used $((load_cpu / $(getconf CLK_TCK))) CPU-seconds)"
printf '%-12s %8s  %s\n' "stage" "seconds" "result"
printf '%s\n' "${ROWS[@]}"
exit "$FAILED"
