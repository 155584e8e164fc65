"""Pod networking end to end: podshimd runs CNI ADD/DEL for each pod, real veths on a real
bridge, real addresses and host ports.

The whole module runs twice: with podshim's own plugin (the embedded default network, since the
daemon's CNI config dir is empty) and with Debian's standard plugins (bridge + host-local +
portmap + loopback, from /usr/lib/cni). Traffic stays on this machine: loopback, the host's own address,
and the test pods' addresses.
"""

import concurrent.futures
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402

from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_IPAM_DIR = Path("/run/cni/podshim-ipam")
DEBIAN_BRIDGE = "psdeb0"
DEFAULT_BRIDGE = "podshim0"  # podshim's embedded default network
DEBIAN_SUBNET = "10.89.0.0/24"
# httpd in a pod: a page naming the pod, served on port 80.
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-$(hostname) > /www/index.html && "
         "exec httpd -f -p 80 -h /www"]


def debian_conflist(ipam_dir):
    return {
        "cniVersion": "1.0.0",
        "name": "e2e-debian",
        "plugins": [
            {"type": "bridge", "bridge": DEBIAN_BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": DEBIAN_SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(ipam_dir)}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            # Chained last, the loopback plugin brings lo up and passes the result on.
            {"type": "loopback"},
        ],
    }


def host_address():
    """The machine's own (first global) IPv4 address, not one of a pod bridge."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        dev, cidr = fields[1], fields[3]
        if dev.startswith(("podshim", "psdeb", "cni", "veth", "pstest")):
            continue
        return cidr.split("/")[0]
    pytest.fail("no global IPv4 address on this machine")


def http_get(url, timeout=2.0):
    # No proxy: the request must go straight to the address.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return r.read().decode()


def eventually(fn, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
            time.sleep(interval)
    raise AssertionError(f"not within {timeout}s: {last!r}")


class Net:
    """One podshimd with one pod network (kind 'podshim' or 'debian')."""

    def __init__(self, kind, daemon, client, cgroup_parent, ipam_dir):
        self.kind = kind
        self.d = daemon
        self.c = client
        self.pb = client.pb
        self.cgroup_parent = cgroup_parent
        self.ipam_dir = ipam_dir
        self.subnet = ipaddress.ip_network(DEBIAN_SUBNET if kind == "debian" else "10.88.0.0/16")
        self.bridge = DEBIAN_BRIDGE if kind == "debian" else DEFAULT_BRIDGE
        self.made = []

    def pod_config(self, name=None, port_mappings=()):
        name = name or f"net-{uuid.uuid4().hex[:8]}"
        return self.pb.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, namespace="e2e-net",
                                                uid=uuid.uuid4().hex),
            hostname=name, log_directory=str(Path(self.d.dir) / "logs" / name),
            port_mappings=[self.pb.PortMapping(protocol=self.pb.TCP, container_port=cp,
                                               host_port=hp) for cp, hp in port_mappings])

    def run_pod(self, cfg):
        pod_id = self.c.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg),
                                              timeout=60).pod_sandbox_id
        self.made.append(pod_id)
        return pod_id

    def remove_pod(self, pod_id):
        self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)
        self.c.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                        timeout=60)

    def pod_status(self, pod_id, verbose=False):
        return self.c.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose)).status

    def pod_ip(self, pod_id):
        return self.pod_status(pod_id).network.ip

    def run(self, pod_id, pod_cfg, name, command):
        cfg = self.pb.ContainerConfig(metadata=self.pb.ContainerMetadata(name=name),
                                      image=self.pb.ImageSpec(image=IMAGE), command=command,
                                      log_path=f"{name}.log")
        cid = self.c.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id
        self.c.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid

    def exec(self, cid, cmd, timeout=10):
        return self.c.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                               timeout=timeout),
                                       timeout=timeout + 10)

    def web_pod(self, port_mappings=()):
        cfg = self.pod_config(port_mappings=port_mappings)
        pod_id = self.run_pod(cfg)
        self.run(pod_id, cfg, "web", HTTPD)
        return pod_id, cfg


def veths(bridge=DEFAULT_BRIDGE):
    """The veths attached to `bridge`: only the network under test, so that pods another
    podshimd or plugin on this machine makes meanwhile on other bridges are not counted."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth", "master", bridge],
                         capture_output=True, text=True).stdout  # no such bridge: none
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def nat_rules():
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    ipt = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    return nft + ipt


def ipam_files(net):
    """Every file under the IPAM state dirs with its content."""
    out = {}
    root = net.ipam_dir if net.kind == "debian" else OWN_IPAM_DIR
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            try:
                out[str(p)] = p.read_text(errors="replace")
            except OSError:
                pass
    return out


def assert_no_trace(net, pod_ids, ips=(), veths_before=None):
    """Nothing of these pods is left: no veth, IP allocation, NAT rule, netns or cache."""
    if veths_before is not None:
        assert veths(net.bridge) <= veths_before, veths(net.bridge) - veths_before
    for path, content in ipam_files(net).items():
        for pod_id in pod_ids:
            assert pod_id not in content, f"IP allocation left in {path}"
    rules = nat_rules()
    for pod_id in pod_ids:
        assert pod_id not in rules
    for ip in ips:
        assert f"{ip} " not in rules and f"{ip}:" not in rules and f"{ip}\n" not in rules, ip
    mounts = Path("/proc/self/mountinfo").read_text()
    for pod_id in pod_ids:
        assert pod_id not in mounts
    cache = Path(net.d.state_dir) / "cni"
    if cache.exists():
        left = [f for f in os.listdir(cache) if any(p in f for p in pod_ids)]
        assert not left, left


@pytest.fixture(scope="module", params=["podshim", "debian"])
def net(request, tmp_path_factory):
    kind = request.param
    path = podshimd_binary()
    if not path.exists():
        pytest.fail(f"podshimd not built at {path}")
    parent = f"/podshim-net-{uuid.uuid4().hex[:8]}"
    d = Podshimd(path, extra_args=[f"--cgroup_parent={parent}"])
    ipam_dir = tmp_path_factory.mktemp("ipam")
    os.makedirs(d.cni_conf_dir, exist_ok=True)
    if kind == "debian":
        Path(d.cni_conf_dir, "10-debian.conflist").write_text(
            json.dumps(debian_conflist(ipam_dir)))
    layout = images.standin_layout("busybox")
    d.import_image(layout, IMAGE)
    d.start()
    c = d.client(timeout=60)
    n = Net(kind, d, c, parent, ipam_dir)
    try:
        yield n
    finally:
        for pod_id in n.made:
            try:
                n.remove_pod(pod_id)
            except grpc.RpcError as e:
                print(f"cleanup of pod {pod_id}: {e}")
        c.close()
        d.cleanup()
        remove_cgroup_parent(parent)
        if kind == "debian":
            subprocess.run(["ip", "link", "del", DEBIAN_BRIDGE], capture_output=True)


@pytest.fixture
def cleanup(net):
    """Pods made in a test are removed after it, pass or fail."""
    start = len(net.made)
    yield
    for pod_id in net.made[start:]:
        try:
            net.remove_pod(pod_id)
        except grpc.RpcError as e:
            print(f"cleanup of pod {pod_id}: {e}")
    del net.made[start:]


# --- tests -----------------------------------------------------------------------------------

def test_network_is_ready(net):
    cond = net.c.conditions()
    assert cond["NetworkReady"].status, cond["NetworkReady"]


def test_pod_gets_an_address_in_the_subnet(net, cleanup):
    pod_id = net.run_pod(net.pod_config())
    st = net.pod_status(pod_id, verbose=True)
    assert st.network.ip, st
    assert ipaddress.ip_address(st.network.ip) in net.subnet
    info = json.loads(net.c.runtime.PodSandboxStatus(net.pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod_id, verbose=True)).info["info"])
    assert info["network"]["attached"] is True
    assert info["network"]["ips"] == [st.network.ip]
    # Inside: eth0 with that address and a default route.
    cid = net.run(pod_id, net.pod_config(), "probe", ["sleep", "3600"])
    addr = net.exec(cid, ["ip", "-4", "addr", "show", "eth0"])
    assert addr.exit_code == 0, addr.stderr
    assert f"inet {st.network.ip}/" in addr.stdout.decode()
    route = net.exec(cid, ["ip", "route"]).stdout.decode()
    assert "default via" in route, route
    lo = net.exec(cid, ["ip", "link", "show", "lo"]).stdout.decode()
    assert "UP" in lo.split(">")[0], lo


def test_two_pods_reach_each_other_and_the_host_reaches_a_pod(net, cleanup):
    web_id, _ = net.web_pod()
    web_ip = net.pod_ip(web_id)
    client_cfg = net.pod_config()
    client_id = net.run_pod(client_cfg)
    cid = net.run(client_id, client_cfg, "client", ["sleep", "3600"])

    def fetch_from_pod():
        # (busybox-static wget crashes with -T here; ExecSync has its own timeout)
        r = net.exec(cid, ["wget", "-q", "-O", "-", f"http://{web_ip}:80/"], timeout=5)
        assert r.exit_code == 0, r.stderr
        return r.stdout.decode()

    page = eventually(fetch_from_pod)
    web_name = net.pod_status(web_id).metadata.name
    assert page.strip() == f"hello-{web_name}"
    # From the host, straight to the pod IP.
    assert eventually(lambda: http_get(f"http://{web_ip}:80/")).strip() == f"hello-{web_name}"


def test_host_port_answers_on_loopback_and_the_host_address(net, cleanup):
    host_port = 20000 + (os.getpid() % 5000) + (0 if net.kind == "podshim" else 7)
    web_id, _ = net.web_pod(port_mappings=[(80, host_port)])
    name = net.pod_status(web_id).metadata.name
    assert eventually(lambda: http_get(f"http://127.0.0.1:{host_port}/")).strip() == \
        f"hello-{name}"
    own = host_address()
    assert eventually(lambda: http_get(f"http://{own}:{host_port}/")).strip() == f"hello-{name}"
    ip = net.pod_ip(web_id)
    net.remove_pod(web_id)
    net.made.remove(web_id)
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{host_port}/", timeout=1.0)
    assert_no_trace(net, [web_id], [ip])


class HostLoopbackService:
    """An HTTP service on the host's 127.0.0.1 only, as a node's local daemons listen."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                body = b"host loopback service"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True)


# Only podshim's own plugin: the guard is podshim-bridge's (Debian's portmap is not podshim's).
@pytest.mark.parametrize("net", ["podshim"], indirect=True)
def test_a_container_cannot_reach_the_hosts_loopback(net, cleanup):
    """Issue 18, finding 5 (the CVE-2020-8558 class), tried from inside a real container: one
    that may change its pod's routes (NET_ADMIN, route_localnet set in its pod) sends to
    127.0.0.1 through its gateway, where podshim-bridge set route_localnet for host ports. The
    guard drops it, while the pod's host port on 127.0.0.1 still answers; without the bridge in
    the guard's set the same request goes through, so the attack is real here."""
    service = HostLoopbackService()
    try:
        assert http_get(f"http://127.0.0.1:{service.port}/") == "host loopback service"
        host_port = 20000 + (os.getpid() % 5000) + 11
        cfg = net.pod_config(port_mappings=[(80, host_port)])
        cfg.linux.sysctls["net.ipv4.conf.all.route_localnet"] = "1"
        pod_id = net.run_pod(cfg)
        net.run(pod_id, cfg, "web", HTTPD)
        name = net.pod_status(pod_id).metadata.name
        attacker = net.pb.ContainerConfig(
            metadata=net.pb.ContainerMetadata(name="attacker"),
            image=net.pb.ImageSpec(image=IMAGE), command=["sleep", "3600"],
            linux=net.pb.LinuxContainerConfig(
                security_context=net.pb.LinuxContainerSecurityContext(
                    capabilities=net.pb.Capability(add_capabilities=["NET_ADMIN"]))))
        cid = net.c.runtime.CreateContainer(net.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=attacker, sandbox_config=cfg), timeout=60).container_id
        net.c.runtime.StartContainer(net.pb.StartContainerRequest(container_id=cid), timeout=60)
        assert Path(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet").read_text() == "1\n"

        gateway = str(next(net.subnet.hosts()))
        r = net.exec(cid, ["sh", "-c", "ip addr flush dev lo && ip link set lo down && "
                           f"ip route add 127.0.0.0/8 via {gateway} dev eth0"])
        assert r.exit_code == 0, r.stderr

        def fetch():
            # A dropped SYN is never answered: wget waits until `timeout` ends it.
            return net.exec(cid, ["timeout", "3", "wget", "-q", "-O", "-",
                                  f"http://127.0.0.1:{service.port}/"], timeout=8)

        r = fetch()
        assert r.exit_code != 0 and b"host loopback" not in r.stdout, r
        element = ["ip", "podshim_hostports", "localnet_ifaces", "{", f'"{net.bridge}"', "}"]
        removed = nft("delete", "element", *element)
        assert removed.returncode == 0, removed.stderr
        try:
            r = fetch()
            assert r.exit_code == 0 and r.stdout == b"host loopback service", r
        finally:
            added = nft("add", "element", *element)
            assert added.returncode == 0, added.stderr
        r = fetch()
        assert r.exit_code != 0 and b"host loopback" not in r.stdout, r

        # A host port on 127.0.0.1 still reaches the pod.
        assert eventually(lambda: http_get(f"http://127.0.0.1:{host_port}/")).strip() == \
            f"hello-{name}"
    finally:
        service.close()


def test_stop_and_remove_twice_and_remove_without_stop(net, cleanup):
    before = veths(net.bridge)
    a = net.run_pod(net.pod_config())
    b = net.run_pod(net.pod_config())
    ips = [net.pod_ip(a), net.pod_ip(b)]
    for _ in range(2):
        net.c.runtime.StopPodSandbox(net.pb.StopPodSandboxRequest(pod_sandbox_id=a), timeout=60)
    st = net.pod_status(a)
    assert st.state == net.pb.SANDBOX_NOTREADY
    for _ in range(2):
        net.c.runtime.RemovePodSandbox(net.pb.RemovePodSandboxRequest(pod_sandbox_id=a),
                                       timeout=60)
        # Removing a ready pod detaches its network too.
        net.c.runtime.RemovePodSandbox(net.pb.RemovePodSandboxRequest(pod_sandbox_id=b),
                                       timeout=60)
    net.made[:] = [p for p in net.made if p not in (a, b)]
    assert_no_trace(net, [a, b], ips, before)


def test_twenty_concurrent_pods_get_distinct_addresses(net, cleanup):
    before = veths(net.bridge)
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda _: net.run_pod(net.pod_config()), range(20)))
    ips = [net.pod_ip(p) for p in ids]
    assert len(set(ips)) == 20, ips
    assert all(ipaddress.ip_address(ip) in net.subnet for ip in ips)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(net.remove_pod, ids))
    net.made[:] = [p for p in net.made if p not in ids]
    assert_no_trace(net, ids, ips, before)


def test_hundred_pods_created_and_removed_leave_nothing(net, cleanup):
    before = veths(net.bridge)
    ids, ips = [], []

    def one(_):
        pod_id = net.run_pod(net.pod_config())
        ip = net.pod_ip(pod_id)
        net.remove_pod(pod_id)
        return pod_id, ip

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for pod_id, ip in pool.map(one, range(100)):
            ids.append(pod_id)
            ips.append(ip)
    net.made[:] = [p for p in net.made if p not in ids]
    assert all(ips)
    assert_no_trace(net, ids, [], before)
    assert not os.listdir(Path(net.d.state_dir) / "pods")


def test_host_network_pod_gets_no_attachment(net, cleanup):
    cfg = net.pod_config()
    cfg.linux.security_context.namespace_options.network = net.pb.NODE
    before = veths(net.bridge)
    pod_id = net.run_pod(cfg)
    assert net.pod_status(pod_id).network.ip == ""
    assert veths(net.bridge) == before


def allocations(root):
    """The IP allocation files under an IPAM state dir (host-local style: named by address)."""
    out = set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                ipaddress.ip_address(f)
            except ValueError:
                continue
            out.add(str(Path(dirpath) / f))
    return out


@pytest.mark.parametrize("point", ["run-pod:after-setup", "run-pod:after-network",
                                   "run-pod:after-save"])
def test_agent_killed_during_run_pod_sandbox_leaks_nothing(point):
    """SIGKILL of podshimd at a step of RunPodSandbox (podshim's default network); after a
    restart the pod is whole or gone, and nothing of it is left once it is removed."""
    parent = f"/podshim-crash-{uuid.uuid4().hex[:8]}"
    base = Path("/tmp") / f"podshim-crash-{uuid.uuid4().hex[:6]}"
    base.mkdir()
    args = [f"--cgroup_parent={parent}"]
    d = Podshimd(podshimd_binary(), base_dir=str(base), extra_args=args,
                 env={"PODSHIM_CRASH_AT": point})
    before = veths()
    allocated_before = allocations(OWN_IPAM_DIR)
    d.start()
    try:
        c = d.client(timeout=30)
        pb = c.pb
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
            name=f"crash-{uuid.uuid4().hex[:6]}", namespace="e2e-net", uid=uuid.uuid4().hex))
        with pytest.raises(grpc.RpcError) as e:
            c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        c.close()
        assert d.proc.wait(timeout=10) == -signal.SIGKILL
        d.stop()
        d = Podshimd(podshimd_binary(), base_dir=str(base), extra_args=args)
        d.start()
        c = d.client(timeout=30)
        items = c.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
        if point == "run-pod:after-save":
            # The record was written: the pod is whole, with its address.
            assert len(items) == 1
            pod_id = items[0].id
            st = c.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
                pod_sandbox_id=pod_id)).status
            assert st.state == pb.SANDBOX_READY and st.network.ip
            c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        else:
            assert list(items) == []
        c.close()
        assert veths() <= before, veths() - before
        assert allocations(OWN_IPAM_DIR) <= allocated_before
        assert str(base) not in Path("/proc/self/mountinfo").read_text()
        assert os.listdir(base / "run" / "pods") == []
        cache = base / "run" / "cni"
        assert not cache.exists() or os.listdir(cache) == []
        for ctrl in ("cpu", "memory", "pids"):
            p = CGROUP_ROOT / ctrl / parent.lstrip("/")
            if p.exists():
                assert [x for x in p.iterdir() if x.is_dir()] == [], ctrl
    finally:
        d.stop()
        remove_cgroup_parent(parent)
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_zz_nothing_of_any_pod_is_left(net):
    assert not net.c.runtime.ListPodSandbox(net.pb.ListPodSandboxRequest()).items
    assert not os.listdir(Path(net.d.state_dir) / "pods")
    cache = Path(net.d.state_dir) / "cni"
    assert not cache.exists() or not os.listdir(cache)


def test_pod_cidr_from_update_runtime_config_shapes_the_default_network():
    cidr = "10.87.0.0/24"
    with Podshimd(podshimd_binary()) as d, d.client(timeout=30) as c:
        pb = c.pb
        c.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))))
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
            name=f"cidr-{uuid.uuid4().hex[:6]}", namespace="e2e-net", uid=uuid.uuid4().hex))
        pod_id = c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                         timeout=60).pod_sandbox_id
        try:
            ip = c.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
                pod_sandbox_id=pod_id)).status.network.ip
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr), ip
        finally:
            c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
            # The plugin keeps the bridge and its gateway addresses; take this one away.
            subprocess.run(["ip", "addr", "del", "10.87.0.1/24", "dev", DEFAULT_BRIDGE],
                           capture_output=True)
