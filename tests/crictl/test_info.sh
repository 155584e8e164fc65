# crictl info shows both runtime conditions and the effective config.
out="$($CRICTL info)" || fail "crictl info exited $?"
expect_json "$out" '.status.conditions | map(select(.type == "RuntimeReady"))[0].status == true' \
  "RuntimeReady is true"
expect_json "$out" '.status.conditions | map(select(.type == "NetworkReady")) | length == 1' \
  "NetworkReady is reported"
# The private CNI config dir is empty: podshim's embedded default network.
expect_json "$out" '.status.conditions | map(select(.type == "NetworkReady"))[0].status == true' \
  "NetworkReady is true"
expect_json "$out" '.config.cni.conf_dir | endswith("/net.d")' "effective config names the CNI dir"
expect_json "$out" ".config.socket == \"$PODSHIM_SOCKET\"" "effective config names the socket"
