# Streaming RPCs that have not landed fail cleanly with Unimplemented naming the RPC.
$CRICTL pull registry.k8s.io/e2e-test-images/busybox:1.29-2 >/dev/null || fail "pull"
pod="$($CRICTL runp <(echo '{"metadata":{"name":"unimpl","namespace":"crictl","uid":"u-unimpl"}}'))" ||
  fail "runp"
ctr="$($CRICTL create "$pod" <(echo '{"metadata":{"name":"c"},"image":{"image":"registry.k8s.io/e2e-test-images/busybox:1.29-2"},"command":["sleep","1000"]}') \
  <(echo '{"metadata":{"name":"unimpl","namespace":"crictl","uid":"u-unimpl"}}'))" || fail "create"
$CRICTL start "$ctr" >/dev/null || fail "start"
if out="$($CRICTL exec "$ctr" true 2>&1)"; then fail "crictl exec (streaming) succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl exec status code"
expect_contains "$out" "RuntimeService/Exec" "crictl exec names the RPC"
if out="$($CRICTL attach "$ctr" 2>&1 </dev/null)"; then fail "crictl attach succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl attach status code"
$CRICTL rmp -f "$pod" >/dev/null || fail "rmp"
