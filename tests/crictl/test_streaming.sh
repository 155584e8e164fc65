# Streaming through crictl: exec and attach over WebSocket (`--transport websocket`) and over
# SPDY/3.1 (crictl's default transport), each with stdin and with a terminal (driven through a
# pseudo-terminal); port-forward over both.
$CRICTL pull registry.k8s.io/e2e-test-images/busybox:1.29-2 >/dev/null || fail "pull"
pod="$($CRICTL runp <(echo '{"metadata":{"name":"stream","namespace":"crictl","uid":"u-stream"}}'))" ||
  fail "runp"
ctr="$($CRICTL create "$pod" <(echo '{"metadata":{"name":"c"},"image":{"image":"registry.k8s.io/e2e-test-images/busybox:1.29-2"},"command":["sleep","1000"]}') \
  <(echo '{"metadata":{"name":"stream","namespace":"crictl","uid":"u-stream"}}'))" || fail "create"
$CRICTL start "$ctr" >/dev/null || fail "start"
ws=(exec --transport websocket)

out="$($CRICTL "${ws[@]}" "$ctr" sh -c 'echo out; echo err >&2' 2>&1)" || fail "exec: $out"
expect_contains "$out" "out" "exec stdout"
expect_contains "$out" "err" "exec stderr"
# crictl reports a command's non-zero exit (from the exec's status) and fails.
if out="$($CRICTL "${ws[@]}" "$ctr" sh -c 'exit 3' 2>&1)"; then fail "exec of 'exit 3' succeeded"; fi
expect_contains "$out" "exit code 3" "exec reports the exit code"

out="$(printf 'typed line\n' | $CRICTL "${ws[@]}" -i "$ctr" sh -c 'read x; echo "got: $x"' 2>&1)" ||
  fail "exec -i: $out"
expect_contains "$out" "got: typed line" "exec -i passes stdin"

# exec -it: a shell on a terminal. The terminal's size reaches it (crictl sends the size of the
# pseudo-terminal pty_run.py made) and `exit 5` ends the session with that code.
rc=0
out="$(python3 "$PODSHIM_CRICTL_DIR/pty_run.py" --expect '#' 'test -t 0 \&\& echo TTY-YES; exit 5\r' \
  -- $CRICTL "${ws[@]}" -it "$ctr" sh 2>&1)" || rc=$?
expect_contains "$out" "TTY-YES" "exec -it runs on a terminal"
expect_contains "$out" "exit code 5" "exec -it reports the exit code"
[[ $rc != 124 ]] || fail "exec -it did not end: $out"

# The same over SPDY/3.1, crictl's default transport (and the kubelet's).
out="$($CRICTL exec "$ctr" sh -c 'echo out; echo err >&2' 2>&1)" || fail "exec over SPDY: $out"
expect_contains "$out" "out" "exec over SPDY: stdout"
expect_contains "$out" "err" "exec over SPDY: stderr"
if out="$($CRICTL exec "$ctr" sh -c 'exit 3' 2>&1)"; then
  fail "exec over SPDY of 'exit 3' succeeded"
fi
expect_contains "$out" "exit code 3" "exec over SPDY reports the exit code"
out="$(printf 'typed line\n' | $CRICTL exec -i "$ctr" sh -c 'read x; echo "got: $x"' 2>&1)" ||
  fail "exec -i over SPDY: $out"
expect_contains "$out" "got: typed line" "exec -i over SPDY passes stdin"
# stdin's end (a FIN on the stdin stream) reaches the command.
out="$(printf 'a\nb\n' | $CRICTL exec -i "$ctr" wc -l 2>&1)" || fail "exec -i wc over SPDY: $out"
[[ "${out//[[:space:]]/}" == 2 ]] || fail "exec -i over SPDY: wc -l saw: $out"
rc=0
out="$(python3 "$PODSHIM_CRICTL_DIR/pty_run.py" --expect '#' 'test -t 0 \&\& echo TTY-YES; exit 5\r' \
  -- $CRICTL exec -it "$ctr" sh 2>&1)" || rc=$?
expect_contains "$out" "TTY-YES" "exec -it over SPDY runs on a terminal"
expect_contains "$out" "exit code 5" "exec -it over SPDY reports the exit code"
[[ $rc != 124 ]] || fail "exec -it over SPDY did not end: $out"

# port-forward, over SPDY/3.1 (crictl's default) and through the WebSocket tunnel: a local port
# of crictl's reaches busybox httpd on the pod's loopback-reachable port 8080.
web="$($CRICTL create "$pod" <(echo '{"metadata":{"name":"web"},"image":{"image":"registry.k8s.io/e2e-test-images/busybox:1.29-2"},"command":["sh","-c","mkdir -p /www && echo forwarded-ok >/www/index.html && exec httpd -f -p 8080 -h /www"]}') \
  <(echo '{"metadata":{"name":"stream","namespace":"crictl","uid":"u-stream"}}'))" || fail "create web"
$CRICTL start "$web" >/dev/null || fail "start web"
for transport in spdy websocket; do
  local_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  $CRICTL port-forward --transport "$transport" "$pod" "$local_port:8080" >"$PODSHIM_WORK/pf.log" 2>&1 &
  pf=$!
  got=""
  for _ in $(seq 100); do
    # Each try is a new forwarded connection; the first ones may come before httpd listens.
    got="$(curl -fsS --max-time 5 "http://127.0.0.1:$local_port/" 2>&1)" && break
    kill -0 "$pf" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pf" 2>/dev/null || true
  wait "$pf" 2>/dev/null || true
  [[ "$got" == forwarded-ok ]] ||
    fail "port-forward over $transport: curl got '$got'; crictl said: $(cat "$PODSHIM_WORK/pf.log")"
done
# A port the pod does not listen on: crictl reports the pod's refusal for that connection.
local_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
$CRICTL port-forward "$pod" "$local_port:8081" >"$PODSHIM_WORK/pf.log" 2>&1 &
pf=$!
for _ in $(seq 100); do
  curl -fsS --max-time 5 "http://127.0.0.1:$local_port/" >/dev/null 2>&1 || true
  grep -q "connection refused\|Connection refused" "$PODSHIM_WORK/pf.log" && break
  kill -0 "$pf" 2>/dev/null || break
  sleep 0.1
done
kill "$pf" 2>/dev/null || true
wait "$pf" 2>/dev/null || true
expect_contains "$(cat "$PODSHIM_WORK/pf.log")" "error forwarding port 8081 to pod $pod" \
  "port-forward to a closed port"

# attach -i to a container with stdin and stdin_once (critest's case): what is piped in reaches
# its shell, the end of it closes the container's stdin, the shell exits and crictl with it.
for transport in spdy websocket; do
  once="$($CRICTL create "$pod" <(echo '{"metadata":{"name":"once-'$transport'"},"image":{"image":"registry.k8s.io/e2e-test-images/busybox:1.29-2"},"command":["sh"],"stdin":true,"stdin_once":true}') \
    <(echo '{"metadata":{"name":"stream","namespace":"crictl","uid":"u-stream"}}'))" || fail "create once"
  $CRICTL start "$once" >/dev/null || fail "start once"
  out="$(printf 'echo attached-ok\n' | timeout 60 $CRICTL attach --transport "$transport" -i "$once" 2>&1)" ||
    fail "attach -i over $transport: $out"
  expect_contains "$out" "attached-ok" "attach -i over $transport passes stdin and shows output"
  state="$($CRICTL inspect -o go-template --template '{{.status.state}}' "$once")"
  for _ in $(seq 100); do
    [[ "$state" == CONTAINER_EXITED ]] && break
    sleep 0.1
    state="$($CRICTL inspect -o go-template --template '{{.status.state}}' "$once")"
  done
  [[ "$state" == CONTAINER_EXITED ]] || fail "attach over $transport: stdin_once did not end sh: $state"
done
# attach -it to a container with a terminal: its size reaches the container, `exit 6` ends it.
for transport in spdy websocket; do
  tty_ctr="$($CRICTL create "$pod" <(echo '{"metadata":{"name":"tty-'$transport'"},"image":{"image":"registry.k8s.io/e2e-test-images/busybox:1.29-2"},"command":["sh","-c","read l; test -t 0 && echo TTY-$l; stty size; exit 6"],"stdin":true,"tty":true}') \
    <(echo '{"metadata":{"name":"stream","namespace":"crictl","uid":"u-stream"}}'))" || fail "create tty"
  $CRICTL start "$tty_ctr" >/dev/null || fail "start tty"
  rc=0
  out="$(python3 "$PODSHIM_CRICTL_DIR/pty_run.py" --expect '' 'yes\r' \
    -- $CRICTL attach --transport "$transport" -it "$tty_ctr" 2>&1)" || rc=$?
  expect_contains "$out" "TTY-yes" "attach -it over $transport reaches the container's terminal"
  [[ $rc != 124 ]] || fail "attach -it over $transport did not end: $out"
done
# Attach's checks: a terminal the container does not have.
if out="$($CRICTL attach -it "$ctr" 2>&1 </dev/null)"; then fail "attach -it to a non-tty container succeeded: $out"; fi
expect_contains "$out" "tty" "attach -it to a container without a terminal names tty"
$CRICTL rmp -f "$pod" >/dev/null || fail "rmp"
