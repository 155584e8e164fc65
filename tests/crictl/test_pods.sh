# A pod's life through crictl: runp, create, start, ps, exec -s, logs, inspect, stats, stop, rm,
# stopp, rmp (each twice where the CRI says idempotent), then nothing of it is left on the host.
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
$CRICTL pull "$image" >/dev/null || fail "pull"
dir="$(mktemp -d "$PODSHIM_WORK/crictl-pod-XXXX")"
cat >"$dir/pod.json" <<JSON
{"metadata":{"name":"crictl-pod","namespace":"crictl","uid":"u-crictl-pod"},
 "hostname":"crictl-host","log_directory":"$dir/logs","linux":{}}
JSON
cat >"$dir/ctr.json" <<JSON
{"metadata":{"name":"talker"},"image":{"image":"$image"},"log_path":"talker.log",
 "command":["sh","-c","echo hello from \$(hostname); echo oops >&2; exec sleep 1000"],
 "labels":{"role":"talker"},"linux":{"resources":{"memory_limit_in_bytes":67108864}}}
JSON

pod="$($CRICTL runp "$dir/pod.json")" || fail "runp"
out="$($CRICTL pods -o json)" || fail "pods"
expect_json "$out" ".items | map(select(.id == \"$pod\" and .state == \"SANDBOX_READY\")) | length == 1" \
  "pod listed as ready"
out="$($CRICTL inspectp "$pod")" || fail "inspectp"
expect_json "$out" '.status.metadata.name == "crictl-pod"' "inspectp metadata"

ctr="$($CRICTL create "$pod" "$dir/ctr.json" "$dir/pod.json")" || fail "create"
out="$($CRICTL ps -a -o json)" || fail "ps -a"
expect_json "$out" ".containers | map(select(.id == \"$ctr\" and .state == \"CONTAINER_CREATED\")) | length == 1" \
  "created container listed"
$CRICTL start "$ctr" >/dev/null || fail "start"
out="$($CRICTL ps --label role=talker -q)" || fail "ps --label"
[[ "$out" == "$ctr" ]] || fail "ps --label: got '$out'"

out="$($CRICTL exec -s "$ctr" cat /etc/hostname)" || fail "exec -s"
[[ "$out" == "crictl-host" ]] || fail "exec -s hostname: '$out'"
if $CRICTL exec -s "$ctr" sh -c 'exit 4' >/dev/null 2>&1; then fail "exit 4 reported as success"; fi

for _ in $(seq 50); do
  out="$($CRICTL logs "$ctr" 2>&1)" && [[ "$out" == *oops* ]] && break
  sleep 0.1
done
expect_contains "$out" "hello from crictl-host" "crictl logs stdout"
expect_contains "$out" "oops" "crictl logs stderr"
raw="$(cat "$dir/logs/talker.log")"
[[ "$raw" =~ [0-9T:.-]+Z\ stdout\ F\ hello ]] || fail "CRI log format: $raw"

out="$($CRICTL inspect "$ctr")" || fail "inspect"
expect_json "$out" '.info.pid > 0' "inspect shows the host pid"
expect_json "$out" '.status.resources.linux.memoryLimitInBytes == "67108864"' "inspect shows resources"
cpid="$(jq -r .info.pid <<<"$out")"
[[ -d "/proc/$cpid" ]] || fail "pid $cpid not running"

out="$($CRICTL stats -o json "$ctr")" || fail "stats"
expect_json "$out" '.stats[0].memory.workingSetBytes.value | tonumber > 0' "stats memory"

$CRICTL stop -t 1 "$ctr" >/dev/null || fail "stop"
$CRICTL stop "$ctr" >/dev/null || fail "second stop"
out="$($CRICTL inspect "$ctr")" || fail "inspect after stop"
# crictl pods default to pid=POD: sleep is not PID 1 there, so SIGTERM ends it (128+15).
expect_json "$out" '.status.state == "CONTAINER_EXITED" and .status.exitCode == 143' "exit after stop"
[[ ! -d "/proc/$cpid" ]] || fail "pid $cpid still there after stop"
$CRICTL rm "$ctr" >/dev/null || fail "rm"
$CRICTL rm "$ctr" >/dev/null 2>&1 || true   # crictl itself refuses an unknown ID; podshim answers OK

$CRICTL stopp "$pod" >/dev/null || fail "stopp"
$CRICTL stopp "$pod" >/dev/null || fail "second stopp"
$CRICTL rmp "$pod" >/dev/null || fail "rmp"
out="$($CRICTL pods -q)" || fail "pods after rmp"
[[ -z "$out" ]] || fail "pods left: $out"

# Nothing of the pod is left: mounts, cgroups, state, processes.
if grep -q "$PODSHIM_WORK/run/pods" /proc/self/mountinfo; then fail "pod mounts left"; fi
for h in /sys/fs/cgroup/{cpu,memory,pids}/"${PODSHIM_CGROUP_PARENT#/}"; do
  [[ ! -d "$h" ]] || [[ -z "$(find "$h" -mindepth 1 -type d)" ]] || fail "cgroups left under $h"
done
[[ -z "$(find "$PODSHIM_WORK/run/pods" "$PODSHIM_WORK/run/containers" -mindepth 1)" ]] || fail "state left"
# A monitor is podshim-monitor while it starts the container, podshim-monitor-loop after.
if pgrep -f "podshim-monitor(-loop)? (start )?--bundle $PODSHIM_WORK" >/dev/null; then fail "monitor left"; fi
