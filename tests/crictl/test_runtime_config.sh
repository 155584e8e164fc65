# crictl runtime-config shows the cgroupfs driver.
out="$($CRICTL runtime-config 2>&1)" || fail "crictl runtime-config exited $?: $out"
expect_contains "$out" "CGROUPFS" "cgroup driver"
