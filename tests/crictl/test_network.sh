# Pod networking through crictl: two pods on podshim's default network (the private CNI config
# dir is empty), one serving HTTP with a hostPort; pod to pod by IP, host to pod, the hostPort on
# 127.0.0.1; stopp/rmp twice; afterwards no veth, IP allocation or NAT entry of theirs is left.
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
$CRICTL pull "$image" >/dev/null || fail "pull"
dir="$(mktemp -d "$PODSHIM_WORK/crictl-net-XXXX")"
port=$((21000 + RANDOM % 4000))
veths_before="$(ip -o link show type veth | wc -l)"
cat >"$dir/web-pod.json" <<JSON
{"metadata":{"name":"crictl-web","namespace":"crictl","uid":"u-crictl-web"},
 "log_directory":"$dir/logs","linux":{},
 "port_mappings":[{"container_port":80,"host_port":$port}]}
JSON
cat >"$dir/client-pod.json" <<JSON
{"metadata":{"name":"crictl-client","namespace":"crictl","uid":"u-crictl-client"},
 "log_directory":"$dir/logs","linux":{}}
JSON
cat >"$dir/web.json" <<JSON
{"metadata":{"name":"web"},"image":{"image":"$image"},"log_path":"web.log",
 "command":["sh","-c","mkdir -p /www && echo crictl-served > /www/index.html && exec httpd -f -p 80 -h /www"]}
JSON
cat >"$dir/client.json" <<JSON
{"metadata":{"name":"client"},"image":{"image":"$image"},"log_path":"client.log",
 "command":["sleep","1000"]}
JSON

web="$($CRICTL runp "$dir/web-pod.json")" || fail "runp web"
client="$($CRICTL runp "$dir/client-pod.json")" || fail "runp client"
web_ip="$($CRICTL inspectp "$web" | jq -r .status.network.ip)"
client_ip="$($CRICTL inspectp "$client" | jq -r .status.network.ip)"
[[ "$web_ip" == 10.88.* && "$client_ip" == 10.88.* ]] || fail "pod IPs: '$web_ip' '$client_ip'"
[[ "$web_ip" != "$client_ip" ]] || fail "two pods got one IP: $web_ip"
ctr="$($CRICTL create "$web" "$dir/web.json" "$dir/web-pod.json")" || fail "create web"
$CRICTL start "$ctr" >/dev/null || fail "start web"
cli="$($CRICTL create "$client" "$dir/client.json" "$dir/client-pod.json")" || fail "create client"
$CRICTL start "$cli" >/dev/null || fail "start client"

for _ in $(seq 50); do
  out="$($CRICTL exec -s "$cli" wget -q -O - "http://$web_ip/" 2>/dev/null)" && break
  sleep 0.1
done
[[ "$out" == "crictl-served" ]] || fail "pod to pod: '$out'"
out="$(curl -s --noproxy '*' -m 3 "http://$web_ip/")" || fail "host to pod"
[[ "$out" == "crictl-served" ]] || fail "host to pod: '$out'"
out="$(curl -s --noproxy '*' -m 3 "http://127.0.0.1:$port/")" || fail "hostPort on 127.0.0.1"
[[ "$out" == "crictl-served" ]] || fail "hostPort: '$out'"

for pod in "$web" "$client"; do
  $CRICTL stopp "$pod" >/dev/null || fail "stopp"
  $CRICTL stopp "$pod" >/dev/null || fail "second stopp"
  $CRICTL rmp "$pod" >/dev/null || fail "rmp"
done
if curl -s --noproxy '*' -m 1 "http://127.0.0.1:$port/" >/dev/null; then fail "hostPort still answers"; fi
[[ "$(ip -o link show type veth | wc -l)" -le "$veths_before" ]] || fail "veth left"
if grep -rqs -e "$web" -e "$client" /run/cni/podshim-ipam; then fail "IP allocation left"; fi
if nft list ruleset | grep -q -e "$web_ip" -e "$client_ip"; then fail "NAT entry left"; fi
[[ -z "$(find "$PODSHIM_WORK/run/cni" -mindepth 1 2>/dev/null)" ]] || fail "CNI cache left"
