#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test:
# unit tests (ctest), lint (clang-format, clang-tidy), the proto wire check
# and Python end-to-end tests (pytest), crictl scenarios and critest.
# Every stage runs even when an earlier one fails (except after a failed
# build); the exit code is non-zero if any stage failed.
#   tests/run.sh                 everything
#   tests/run.sh unit e2e        only the named stages (setup and build always run)
# Stages: unit lint pytest crictl critest
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PRESET="${PODSHIM_PRESET:-debug}"
export PODSHIMD="$REPO/build/$PRESET/agent/podshimd"
PY="$REPO/.tools/venv/bin/python"
LOGS="$REPO/build/test-logs"
stages=("$@")
((${#stages[@]})) || stages=(unit lint pytest crictl critest)

declare -A result
passed_total=0
failed_total=0
notes=()

banner() { printf '\n==== %s ====\n' "$*"; }
want() { [[ " ${stages[*]} " == *" $1 "* ]]; }
# run_stage NAME CMD...: runs CMD with its output shown and kept in $LOGS/NAME.log.
run_stage() {
  local name="$1"
  shift
  banner "$name: $*"
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  result[$name]=$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")
  return "$rc"
}
# count NAME PASSED FAILED: adds a stage's test counts to the totals.
count() {
  passed_total=$((passed_total + ${2:-0}))
  failed_total=$((failed_total + ${3:-0}))
}

banner "setup"
if ! deploy/setup.sh; then
  echo "tests: setup failed" >&2
  exit 1
fi
mkdir -p "$LOGS"
if ! run_stage build bash -c "cmake --preset $PRESET >/dev/null && cmake --build --preset $PRESET"; then
  echo "tests: build failed; nothing else runs"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

if want unit; then
  run_stage unit ctest --preset "$PRESET" --output-on-failure -j2
  line="$(grep -E 'tests passed, [0-9]+ tests failed out of' "$LOGS/unit.log" | tail -1)"
  if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    count unit $((BASH_REMATCH[2] - BASH_REMATCH[1])) "${BASH_REMATCH[1]}"
  else
    count unit 0 1
  fi
fi

if want lint; then
  BUILD_DIR="$REPO/build/$PRESET" run_stage lint scripts/lint.sh
fi

if want pytest; then
  run_stage pytest "$PY" -m pytest -p no:cacheprovider -v tests/proto tests/e2e
  line="$(tail -1 "$LOGS/pytest.log")"
  p=0 f=0
  [[ $line =~ ([0-9]+)\ passed ]] && p=${BASH_REMATCH[1]}
  [[ $line =~ ([0-9]+)\ failed ]] && f=${BASH_REMATCH[1]}
  [[ $line =~ ([0-9]+)\ error ]] && f=$((f + BASH_REMATCH[1]))
  [[ ${result[pytest]} == ok || $f -gt 0 ]] || f=1
  count pytest "$p" "$f"
fi

if want crictl; then
  run_stage crictl tests/crictl/run.sh --podshimd "$PODSHIMD"
  if [[ "$(tail -1 "$LOGS/crictl.log")" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    count crictl "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else
    count crictl 0 1
  fi
fi

if want critest; then
  run_stage critest "$PY" tests/critest/run.py --podshimd "$PODSHIMD"
  crit="$(grep -E '^critest: [0-9]+ passed' "$LOGS/critest.log" | tail -1)"
  exp="$(grep -E '^failures: [0-9]+ expected, [0-9]+ unexpected' "$LOGS/critest.log" | tail -1)"
  if [[ $crit =~ ([0-9]+)\ passed,\ [0-9]+\ failed,\ ([0-9]+)\ skipped ]]; then
    cp_passed=${BASH_REMATCH[1]} cp_skipped=${BASH_REMATCH[2]}
    [[ $exp =~ ([0-9]+)\ expected,\ ([0-9]+)\ unexpected ]]
    known=${BASH_REMATCH[1]:-0} unexpected=${BASH_REMATCH[2]:-0}
    # A listed spec that now passes or vanished fails the stage too.
    if [[ ${result[critest]} != ok ]] && ((unexpected == 0)); then unexpected=1; fi
    count critest "$cp_passed" "$unexpected"
    notes+=("critest: $known known failures (tests/critest/expected-failures.txt) and $cp_skipped skipped specs are not counted below")
  else
    count critest 0 1
  fi
fi

banner "summary"
status=0
for name in build unit lint pytest crictl critest; do
  [[ -n "${result[$name]:-}" ]] || continue
  printf '  %-8s %s\n' "$name" "${result[$name]}"
  [[ ${result[$name]} == ok ]] || status=1
done
for n in "${notes[@]}"; do echo "  $n"; done
if ((status != 0 && failed_total == 0)); then failed_total=1; fi # e.g. lint findings
echo "tests: $passed_total passed, $failed_total failed"
exit $status
