#!/usr/bin/env bash
# Checks formatting (clang-format) and runs clang-tidy over podshim's own C++.
# Exits non-zero on any finding. Needs a configured build for
# compile_commands.json (default build/debug; override with BUILD_DIR).
#   scripts/lint.sh          check
#   scripts/lint.sh --fix    rewrite files with clang-format first
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build/debug}"
cd "$REPO"

mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
  'agent/*.cc' 'agent/*.h' 'runtime/*.cc' 'runtime/*.h' 'image/*.cc' 'image/*.h' \
  'cni/*.cc' 'cni/*.h' 'kubelet/*.cc' 'kubelet/*.h' 'proto/*.cc' 'streaming/*.cc' 'streaming/*.h' \
  'tests/*.c' \
  'fuzz/*.cc' 'fuzz/*.h' | sort -u)
status=0

if [[ "${1:-}" == "--fix" ]]; then clang-format -i "${files[@]}"; fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "lint: clang-format wants changes (run scripts/lint.sh --fix)" >&2
  status=1
fi

[[ -f "$BUILD_DIR/compile_commands.json" ]] || {
  echo "lint: $BUILD_DIR/compile_commands.json missing; configure the build first" >&2
  exit 1
}
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep -E '\.cc$' | grep -vE '^(tests|fuzz)/')
# Generated headers (api.pb.h) must exist before clang-tidy reads sources.
tidy_log="$(mktemp)"
if ! printf '%s\n' "${sources[@]}" |
  xargs -P "$(nproc)" -n 4 clang-tidy -p "$BUILD_DIR" --quiet --extra-arg=-Wno-unknown-warning-option >"$tidy_log" 2>&1; then
  grep -E 'error:|warning:' "$tidy_log" | sort -u >&2 || cat "$tidy_log" >&2
  echo "lint: clang-tidy found problems" >&2
  status=1
fi
rm -f "$tidy_log"
# The fuzzers are built by the fuzz preset only (clang): tidied with its
# compile commands when that build exists (the test command builds it first).
FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$REPO/build/fuzz}"
mapfile -t fuzz_sources < <(printf '%s\n' "${files[@]}" | grep -E '^fuzz/.*\.cc$')
if [[ -f "$FUZZ_BUILD_DIR/compile_commands.json" ]]; then
  if ! clang-tidy -p "$FUZZ_BUILD_DIR" --quiet "${fuzz_sources[@]}" >"$tidy_log" 2>&1; then
    grep -E 'error:|warning:' "$tidy_log" | sort -u >&2 || cat "$tidy_log" >&2
    echo "lint: clang-tidy found problems in fuzz/" >&2
    status=1
  fi
  rm -f "$tidy_log"
else
  echo "lint: $FUZZ_BUILD_DIR not configured: fuzz/ formatted but not tidied (cmake --preset fuzz)"
fi

# clang's -Wthread-safety over the same sources (ABSL_GUARDED_BY and friends; gcc ignores them).
if ! BUILD_DIR="$BUILD_DIR" python3 "$REPO/scripts/thread_safety.py"; then status=1; fi
((status == 0)) && echo "lint: clang-format, clang-tidy and clang -Wthread-safety clean (${#files[@]} files)"
exit $status
