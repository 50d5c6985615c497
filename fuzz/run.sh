#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzz/run.sh [seconds per target] [target ...]
#
# Needs atheris (pip install atheris). Targets run one after another unless FUZZ_JOBS=N runs N at once.
# Each target's working corpus is a copy of fuzz/corpus/<target> under $FUZZ_WORK (default: a temp dir),
# so the committed seed corpus is never modified; crashes are written to $FUZZ_WORK/artifacts/<target>/
# and the script exits non-zero if any target found one. The last libFuzzer lines of each run (executions,
# exec/s, coverage) are printed; full logs stay in $FUZZ_WORK/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(jose request_object jarm params metadata); fi
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
WORK=${FUZZ_WORK:-$(mktemp -d -t jarmor-fuzz.XXXXXX)}
JOBS=${FUZZ_JOBS:-1}
[ -f fuzz/keys.json ] && [ -d fuzz/corpus ] || "$PY" fuzz/make_corpus.py  # per-machine keys + seed corpus
mkdir -p "$WORK/artifacts"
echo "fuzzing ${TARGETS[*]} for ${SECONDS_PER_TARGET}s each, $JOBS at a time; work dir $WORK"

run_one() {
  local t=$1
  mkdir -p "$WORK/$t" "$WORK/artifacts/$t"
  cp -n fuzz/corpus/"$t"/* "$WORK/$t"/ 2>/dev/null || true
  local rc=0
  "$PY" fuzz/fuzz_"$t".py "$WORK/$t" fuzz/corpus/"$t" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t/" >"$WORK/$t.log" 2>&1 || rc=$?
  echo "== $t (exit $rc)"
  grep -E "^#[0-9]+ +(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|cov:" \
    "$WORK/$t.log" | tail -4 || true
  ls "$WORK/artifacts/$t" 2>/dev/null | sed "s|^|   finding: $WORK/artifacts/$t/|"
  return $rc
}

status=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
