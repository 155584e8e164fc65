#!/usr/bin/env bash
# Runs every tests/crictl/test_*.sh scenario against a private podshimd with
# the crictl built by deploy/setup.sh. Each scenario runs in its own shell;
# the daemon is stopped and its directory removed even when one fails.
#   tests/crictl/run.sh [--podshimd PATH] [--crictl PATH] [scenario names...]
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PODSHIMD="${PODSHIMD:-$REPO/build/debug/agent/podshimd}"
CRICTL_BIN="${CRICTL_BIN:-$REPO/.tools/bin/crictl}"
only=()
while (($#)); do
  case "$1" in
    --podshimd) PODSHIMD="$2"; shift 2 ;;
    --crictl) CRICTL_BIN="$2"; shift 2 ;;
    *) only+=("$1"); shift ;;
  esac
done
[[ -x "$PODSHIMD" ]] || { echo "crictl: podshimd not found at $PODSHIMD" >&2; exit 2; }
[[ -x "$CRICTL_BIN" ]] || { echo "crictl: crictl not found at $CRICTL_BIN" >&2; exit 2; }

work="$(mktemp -d /tmp/podshim-crictl-XXXXXX)"
export PODSHIM_WORK="$work"
export PODSHIM_SOCKET="$work/run/podshim.sock"
# Pods go under a cgroup of this run's own, so scenarios can check it is left empty.
export PODSHIM_CGROUP_PARENT="/podshim-crictl-${work##*-}"
pid="" reg_pid=""
cleanup() {
  # Pods a failed scenario left behind go first (their mounts live under $work).
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ -n "${CRICTL:-}" ]]; then
    $CRICTL rmp -fa >/dev/null 2>&1 || true
  fi
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n "$reg_pid" ]] && kill -TERM "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
  rm -rf "$work"
  for h in /sys/fs/cgroup/*/"${PODSHIM_CGROUP_PARENT#/}"; do [[ -d "$h" ]] && rmdir "$h" 2>/dev/null; done
  true
}
trap cleanup EXIT

# A local registry with the test images; registry.k8s.io resolves to it.
reg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PODSHIM_REGISTRY="127.0.0.1:$reg_port"
python3 "$REPO/tests/helpers/registry.py" --port "$reg_port" --dir "$work/registry" \
  >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do
  curl -fs "http://$PODSHIM_REGISTRY/v2/" >/dev/null && break
  sleep 0.05
done
python3 "$REPO/tests/helpers/images.py" push "$PODSHIM_REGISTRY" >"$work/push.log" 2>&1 ||
  { cat "$work/push.log"; echo "crictl: pushing test images failed" >&2; exit 1; }
cat >"$work/podshim.toml" <<TOML
[registry]
upstream_fallback = false
[registry.mirrors]
"registry.k8s.io" = ["http://$PODSHIM_REGISTRY"]
TOML

# An empty CNI config dir: pods get podshim's embedded default network.
mkdir -p "$work/net.d"
"$PODSHIMD" --socket="$PODSHIM_SOCKET" --state_dir="$work/run" --root_dir="$work/root" \
  --config="$work/podshim.toml" --cgroup_parent="$PODSHIM_CGROUP_PARENT" --log_level=debug \
  --cni_conf_dir="$work/net.d" \
  >"$work/podshimd.log" 2>&1 &
pid=$!

for _ in $(seq 200); do
  [[ -S "$PODSHIM_SOCKET" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/podshimd.log"; echo "crictl: podshimd died" >&2; exit 1; }
  sleep 0.05
done

# A crictl config file of our own, so nothing under /etc is read.
cat >"$work/crictl.yaml" <<YAML
runtime-endpoint: unix://$PODSHIM_SOCKET
image-endpoint: unix://$PODSHIM_SOCKET
timeout: 10
YAML
export CRICTL="$CRICTL_BIN --config $work/crictl.yaml"
# Scenarios find their helper scripts (pty_run.py) here.
export PODSHIM_CRICTL_DIR="$HERE"

passed=0 failed=0
for t in "$HERE"/test_*.sh; do
  name="$(basename "$t" .sh)"
  if ((${#only[@]})) && [[ " ${only[*]} " != *" $name "* ]]; then continue; fi
  if out="$(bash -c "set -euo pipefail; source '$HERE/lib.sh'; source '$t'" 2>&1)"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    sed 's/^/    /' <<<"$out"
    failed=$((failed + 1))
  fi
done
if ((failed)); then
  echo "--- podshimd log (tail) ---"
  tail -n 30 "$work/podshimd.log"
fi
echo "crictl: $passed passed, $failed failed"
((failed == 0))
