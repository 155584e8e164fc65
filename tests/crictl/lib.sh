# Shared helpers for crictl scenarios. Sourced by run.sh; scenarios get
# $CRICTL (crictl pointed at the podshimd under test) and these functions.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect_contains HAYSTACK NEEDLE WHAT
expect_contains() {
  if [[ "$1" != *"$2"* ]]; then
    fail "$3: expected to find '$2' in:"$'\n'"$1"
  fi
}

# expect_json OUTPUT JQ_EXPR WHAT: the jq expression must be true.
expect_json() {
  local got
  got="$(jq -e "$2" <<<"$1")" || fail "$3: jq '$2' is not true for:"$'\n'"$1"
}
