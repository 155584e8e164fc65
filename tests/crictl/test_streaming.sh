# Streaming through crictl: exec over WebSocket (`--transport websocket`) and over SPDY/3.1
# (crictl's default transport), each with stdin and with a terminal (driven through a
# pseudo-terminal); attach and port-forward are not there yet and fail cleanly.
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

# Not yet: attach and port-forward.
if out="$($CRICTL attach "$ctr" 2>&1 </dev/null)"; then fail "crictl attach succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl attach status code"
if out="$($CRICTL port-forward "$pod" 18080:80 2>&1 </dev/null)"; then
  fail "crictl port-forward succeeded: $out"
fi
expect_contains "$out" "Unimplemented" "crictl port-forward status code"
$CRICTL rmp -f "$pod" >/dev/null || fail "rmp"
