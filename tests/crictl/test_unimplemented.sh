# Commands whose RPCs have not landed fail cleanly with Unimplemented naming the RPC.
if out="$($CRICTL pods 2>&1)"; then fail "crictl pods succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl pods status code"
expect_contains "$out" "ListPodSandbox" "crictl pods names the RPC"
if out="$($CRICTL ps -a 2>&1)"; then fail "crictl ps succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl ps status code"
expect_contains "$out" "ListContainers" "crictl ps names the RPC"
