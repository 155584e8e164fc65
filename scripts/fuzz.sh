#!/usr/bin/env bash
# Runs podshim's libFuzzer targets (fuzz/, built by the fuzz preset) for a
# bounded time each: first every input of fuzz/regressions/<target>/ (each
# once: what once failed must pass), then fuzzing for FUZZ_SECONDS (default 30)
# from a copy of the seed corpus fuzz/corpus/<target>/, two targets at a time.
# A crash, leak, timeout, memory blow-up or failed check fails the target; its
# input and log are kept in $FUZZ_OUT/<target>/ (default build/test-logs/fuzz)
# so it can be replayed (build/fuzz/fuzz/<target> <input>) and become a
# regression input and a unit test. Needs root: unpack_fuzz unpacks layers as
# root, confined to a tmpfs (fuzz/confine.h).
#   scripts/fuzz.sh [TARGET...]       default: every target
# Last line: "fuzz: N passed, M failed".
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FUZZ_BIN:-$REPO/build/fuzz/fuzz}"
OUT="${FUZZ_OUT:-$REPO/build/test-logs/fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-30}"
targets=("$@")
((${#targets[@]})) || targets=(requests reference manifest unpack cni config cri_log streaming)

run_one() {
  local t="$1" exe="$BIN/${1}_fuzz" out="$OUT/$1"
  rm -rf "$out"
  mkdir -p "$out/corpus" "$out/artifacts" "$out/scratch"
  cp "$REPO/fuzz/corpus/$t/"* "$out/corpus/" 2>/dev/null
  local env=(PODSHIM_FUZZ_SCRATCH="$out/scratch" PODSHIM_FUZZ_WRITABLE="$out/corpus:$out/artifacts")
  local status=0 regressions=()
  if [[ -d "$REPO/fuzz/regressions/$t" ]]; then
    mapfile -t regressions < <(find "$REPO/fuzz/regressions/$t" -type f | sort)
  fi
  if ((${#regressions[@]})) &&
    ! env "${env[@]}" "$exe" -timeout=10 "${regressions[@]}" >"$out/regressions.log" 2>&1; then
    echo "fuzz: $t: a regression input fails again (log: $out/regressions.log)"
    status=1
  fi
  if ! env "${env[@]}" "$exe" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/fuzz.log" 2>&1; then
    echo "fuzz: $t: FAILED: $(grep -m1 -E 'ERROR|_fuzz: ' "$out/fuzz.log")"
    echo "fuzz: $t: input kept: $(ls "$out/artifacts/" | head -3 | tr '\n' ' ') log: $out/fuzz.log"
    status=1
  fi
  rmdir "$out/scratch" 2>/dev/null
  local runs cov
  runs="$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$out/fuzz.log" | grep -oE '[0-9]+$')"
  cov="$(grep -oE 'cov: [0-9]+' "$out/fuzz.log" | tail -1)"
  printf 'fuzz: %-10s %s: %s runs in %s s, %s, %s regression inputs, corpus %s\n' "$t" \
    "$([[ $status == 0 ]] && echo ok || echo FAILED)" "${runs:-?}" "$SECONDS_EACH" "${cov:-cov: ?}" \
    "${#regressions[@]}" "$(ls "$out/corpus" | wc -l)"
  return $status
}

if [[ $EUID -ne 0 ]]; then
  echo "fuzz: needs root (unpack_fuzz confines itself in a mount namespace of its own)" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  [[ -x "$BIN/${t}_fuzz" ]] || {
    echo "fuzz: $BIN/${t}_fuzz missing: cmake --preset fuzz && cmake --build --preset fuzz" >&2
    exit 1
  }
done

passed=0 failed=0
declare -A pid_of
for t in "${targets[@]}"; do
  # Two at a time: the machine has two cores.
  while (($(jobs -rp | wc -l) >= 2)); do wait -n; done
  run_one "$t" &
  pid_of[$t]=$!
done
for t in "${targets[@]}"; do
  if wait "${pid_of[$t]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
