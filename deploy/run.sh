#!/usr/bin/env bash
# The run command: installs what is missing, builds podshimd and the toy
# kubelet (release preset), imports a busybox image from a local OCI layout
# (no registry), starts podshimd with its embedded defaults (no config file)
# and podshim-kubelet with the pod manifests in deploy/examples/, then shows
# the pods as the kubelet reports them. Ctrl-C stops everything: the kubelet
# removes its pods (grace periods honoured), then podshimd stops.
# Runs as root; a non-root user with sudo is re-run through sudo.
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
  # preflight: optional (only for a non-root user, who then has sudo)
  if command -v sudo >/dev/null 2>&1; then exec sudo --preserve-env=PODSHIM_TOOLS "$0" "$@"; fi
  echo "deploy/run.sh: needs root (namespaces, mounts, cgroups); run it as root" >&2
  exit 1
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SOCKET=/run/podshim/podshim.sock
STATUS_URL=http://127.0.0.1:10255
IMAGE=localhost/podshim/busybox:demo
CRICTL=("$REPO/.tools/bin/crictl" --config "$REPO/deploy/crictl.yaml")

deploy/setup.sh --run-only
export CCACHE_BASEDIR="$REPO" # reuse objects built from another checkout on this machine
cmake --preset release >/dev/null
cmake --build --preset release --target podshimd podshim-kubelet
PODSHIMD="$REPO/build/release/agent/podshimd"
KUBELET="$REPO/build/release/kubelet/podshim-kubelet"

# The demo image: Debian's busybox-static in an OCI layout, imported while
# podshimd is not running (the image store has one owner).
layout="$(python3 -c 'import sys; sys.path.insert(0, "tests/helpers"); import images
print(images.build_image(images.STANDINS["busybox"]).rsplit(":", 1)[0])')"
"$PODSHIMD" import "$layout" --name="$IMAGE"

echo "run: starting $PODSHIMD with its embedded defaults"
# Own sessions for the daemons: a Ctrl-C reaches only this script, which
# then stops them in order (the kubelet removes its pods while podshimd
# still serves).
setsid "$PODSHIMD" &
podshimd_pid=$!
kubelet_pid=
manifests="$(mktemp -d /tmp/podshim-demo.XXXXXX)"
stop() {
  trap - INT TERM EXIT
  echo
  if [[ -n "$kubelet_pid" ]] && kill -0 "$kubelet_pid" 2>/dev/null; then
    echo "run: stopping podshim-kubelet (it removes its pods)"
    kill -TERM "$kubelet_pid"
    wait "$kubelet_pid" || true
  fi
  if kill -0 "$podshimd_pid" 2>/dev/null; then
    echo "run: stopping podshimd"
    kill -TERM "$podshimd_pid"
    wait "$podshimd_pid" || true
  fi
  rm -rf "$manifests"
}
trap stop INT TERM EXIT

for _ in $(seq 200); do
  [[ -S "$SOCKET" ]] && break
  kill -0 "$podshimd_pid" 2>/dev/null || { echo "run: podshimd exited" >&2; exit 1; }
  sleep 0.05
done

# Manifests that say they need pod networking (hostPort, probes from the
# node) run when podshim reports NetworkReady (its embedded default network
# needs nothing installed; a broken config in /etc/cni/net.d makes it false);
# otherwise they are listed and left out.
network_ready="$("${CRICTL[@]}" info 2>/dev/null | python3 -c '
import json, sys
conds = json.load(sys.stdin)["status"]["conditions"]
print("true" if any(c["type"] == "NetworkReady" and c["status"] for c in conds) else "false")
' || echo false)"
skipped=()
for m in deploy/examples/*.yaml; do
  if grep -q '^# needs: pod-network' "$m" && [[ $network_ready != true ]]; then
    skipped+=("$m")
  else
    cp "$m" "$manifests/"
  fi
done

echo "run: starting podshim-kubelet with $(ls "$manifests" | tr '\n' ' ')"
setsid "$KUBELET" --manifests "$manifests" --remove_pods_on_exit &
kubelet_pid=$!

show_pods() {
  curl -fsS "$STATUS_URL/pods" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
items = doc.get("items", []) if isinstance(doc, dict) else doc
for pod in items:
    st = pod.get("status", {})
    cs = st.get("containerStatuses", [])
    ready = bool(cs) and all(c.get("ready") for c in cs)
    print("  pod %-6s phase %-8s ready %-5s IP %s" % (
        pod["metadata"]["name"], st.get("phase", "?"), ready, st.get("podIP", "-")))
    for c in cs:
        state = next(iter(c.get("state") or {"?": 0}))
        print("      container %-8s %-10s restarts %s" % (c["name"], state, c.get("restartCount", 0)))
'
}

# Wait until every pod's containers are ready (or 60 s pass).
for _ in $(seq 120); do
  if curl -fsS "$STATUS_URL/pods" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
items = doc.get("items", []) if isinstance(doc, dict) else doc
ok = bool(items) and all(c.get("ready") for p in items for c in p.get("status", {}).get("containerStatuses", [{}]))
sys.exit(0 if ok else 1)' 2>/dev/null; then
    break
  fi
  sleep 0.5
done

echo
echo "==== pods, as podshim-kubelet reports them ($STATUS_URL/pods) ===="
show_pods || true
echo
echo "==== containers, as crictl sees them ===="
"${CRICTL[@]}" ps 2>/dev/null || true
pair_client="$("${CRICTL[@]}" ps -q --name client 2>/dev/null | head -1 || true)"
if [[ -n "$pair_client" ]]; then
  echo
  echo "==== the pair pod's client, talking to its server over localhost ===="
  "${CRICTL[@]}" logs --tail 3 "$pair_client" 2>/dev/null || true
fi
cat <<MSG

podshimd serves the CRI on unix://$SOCKET; podshim-kubelet runs the manifests
of deploy/examples/ and reports them on $STATUS_URL/pods (and /pods/default/NAME).
  ${CRICTL[*]} pods
  ${CRICTL[*]} logs -f $pair_client
MSG
if ((${#skipped[@]})); then
  echo "Left out because NetworkReady is false (see: ${CRICTL[*]} info): ${skipped[*]}"
else
  echo "The web pod answers on its hostPort: curl http://127.0.0.1:18080/"
fi
echo "Press Ctrl-C to stop."
wait "$kubelet_pid"
