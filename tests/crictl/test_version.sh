# crictl version reports podshim and CRI v1.
out="$($CRICTL version)" || fail "crictl version exited $?"
expect_contains "$out" "RuntimeName:  podshim" "runtime name"
expect_contains "$out" "RuntimeApiVersion:  v1" "CRI API version"
expect_contains "$out" "Version:  0.1.0" "kubelet API version"
