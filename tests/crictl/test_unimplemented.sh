# Commands whose RPCs have not landed fail cleanly with Unimplemented naming the RPC.
if out="$($CRICTL pods 2>&1)"; then fail "crictl pods succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl pods status code"
expect_contains "$out" "ListPodSandbox" "crictl pods names the RPC"
if out="$($CRICTL images 2>&1)"; then fail "crictl images succeeded: $out"; fi
expect_contains "$out" "Unimplemented" "crictl images status code"
expect_contains "$out" "ImageService/ListImages" "crictl images names the RPC"
