#!/usr/bin/env bash
# The run command: installs what is missing, builds podshimd (release
# preset), starts it with its embedded defaults (no config file) on
# unix:///run/podshim/podshim.sock and shows what crictl sees. Ctrl-C stops
# it cleanly.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SOCKET=/run/podshim/podshim.sock
# crictl reads the endpoints from deploy/crictl.yaml (the socket above).
CRICTL=("$REPO/.tools/bin/crictl" --config "$REPO/deploy/crictl.yaml")

deploy/setup.sh --run-only
cmake --preset release >/dev/null
cmake --build --preset release --target podshimd
PODSHIMD="$REPO/build/release/agent/podshimd"

echo "run: starting $PODSHIMD with its embedded defaults"
"$PODSHIMD" &
pid=$!
stop() {
  trap - INT TERM EXIT
  if kill -0 "$pid" 2>/dev/null; then
    echo
    echo "run: stopping podshimd"
    kill -TERM "$pid"
    wait "$pid" || true
  fi
}
trap stop INT TERM EXIT

for _ in $(seq 200); do
  [[ -S "$SOCKET" ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "run: podshimd exited" >&2; exit 1; }
  sleep 0.05
done

echo
echo "==== crictl version ===="
"${CRICTL[@]}" version
echo
echo "==== crictl info ===="
"${CRICTL[@]}" info
cat <<MSG

podshimd is serving the CRI on unix://$SOCKET
Talk to it with crictl:
  ${CRICTL[*]} info
Pods, containers and images arrive with their issues (see README.md's feature table).
Press Ctrl-C to stop.
MSG
wait "$pid"
