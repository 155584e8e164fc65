# crictl imagefsinfo shows the measured image filesystem under the root dir.
out="$($CRICTL imagefsinfo -o json)" || fail "crictl imagefsinfo exited $?"
expect_json "$out" '.status.imageFilesystems[0].fsId.mountpoint | endswith("/root/snapshots")' \
  "image filesystem mountpoint"
expect_json "$out" '.status.imageFilesystems[0].inodesUsed.value | tonumber >= 1' "inodes measured"
expect_json "$out" '.status.containerFilesystems[0].fsId.mountpoint | endswith("/root/containers")' \
  "container filesystem mountpoint"
