"""The real kubelet drives podshimd (issue 20): kubelet v1.37.2, built from the Go module proxy by
deploy/build-kubelet.sh into .tools/bin/kubelet, runs standalone (no API server) with static pods
from a manifest directory and podshimd as its container runtime.

The kubelet is configured to touch nothing of the host's that it would not give back: its root
directory, pod logs, volume plugins and certificates are under the test's temporary directory;
what it makes elsewhere whatever its configuration (its device-plugin socket, container log
symlinks in /var/log/containers) is removed afterwards unless it was there; its cgroups are
under a cgroup root of the test's own (`cgroupRoot`), removed at the end; it makes no iptables
chains (`makeIPTablesUtilChains: false`); the kernel settings it changes at start
(vm.overcommit_memory, kernel.panic and the like, unless protectKernelDefaults) are written back
as they were; its ports are on 127.0.0.1; image GC and eviction are off, so it never removes an
image or a pod on its own. What is checked, through the kubelet's own endpoints (`/pods`,
`/runningpods/`, `/containerLogs`, `/healthz`) and through podshim's CRI:

  a. a static pod reaches Running with its Ready condition (an exec readiness probe);
  b. a crashing container is restarted with back-off, its restartCount grows;
  d. init containers run in order before the app (their output in the app's emptyDir);
  f. container logs through the kubelet's /containerLogs;
  g. exec, attach and port-forward (SPDY and the WebSocket tunnel) through the kubelet's own
     streaming endpoints, which proxy to podshim's streaming server;
  h. removing the manifest stops the pod and its containers;
  i. podshimd killed with SIGKILL and restarted while the kubelet runs: the pod stays Running
     with no container restart, and the kubelet talks to the new podshimd.

The rest of the issue's list (probes of every kind, hostPort, log rotation, resources in cgroups,
EventedPLEG, in-place resize) is still to come: see issue 20.
"""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
sys.path.insert(0, str(REPO / "python"))

import images  # noqa: E402
from waiting import wait_for  # noqa: E402

from podshim import portforward, streams  # noqa: E402
from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:kubelet"
NODE = "podshim-node"
CGROUPS = Path("/sys/fs/cgroup")
# What the kubelet sets at start unless protectKernelDefaults (pkg/kubelet/cm,
# setupKernelTunables), and what the test writes back.
SYSCTLS = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
# What the kubelet makes outside its root directory whatever its configuration: the device
# manager's socket (a fixed path), a symlink per container log in /var/log/containers, and
# util-linux's /run/mount (the mount command it runs). Removed afterwards unless it was there.
HOST_PATHS = ["/var/lib/kubelet/device-plugins/kubelet.sock", "/var/lib/kubelet/device-plugins",
              "/var/lib/kubelet", "/var/log/containers", "/run/mount"]


def kubelet_binary() -> Path:
    return Path(os.environ.get("PODSHIM_REAL_KUBELET", REPO / ".tools" / "bin" / "kubelet"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def v1_hierarchies():
    return [p for p in CGROUPS.iterdir() if p.is_dir() and not p.is_symlink()
            and (p / "cgroup.procs").exists()]


def make_cgroup_root(name: str) -> None:
    """The kubelet wants its cgroupRoot to exist in every hierarchy; a new cpuset cgroup needs
    its parent's cpus and mems before anything can join it."""
    for tree in v1_hierarchies():
        path = tree / name
        path.mkdir(exist_ok=True)
        if tree.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (path / f).write_text((tree / f).read_text())


class Kubelet:
    def __init__(self, base: Path, endpoint: str, cgroup_root: str):
        self.base = base
        self.manifests = base / "manifests"
        self.root = base / "root"
        self.port = free_port()
        self.healthz_port = free_port()
        self.log_path = base / "kubelet.log"
        self.proc = None
        self.manifests.mkdir(parents=True)
        self.root.mkdir()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "staticPodPath": str(self.manifests),
            "fileCheckFrequency": "1s",
            "syncFrequency": "2s",
            "containerRuntimeEndpoint": endpoint,
            "imageServiceEndpoint": endpoint,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": cgroup_root,
            "failSwapOn": False,
            "failCgroupV1": False,
            "makeIPTablesUtilChains": False,
            "protectKernelDefaults": False,
            "address": "127.0.0.1",
            "port": self.port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(base / "pod-logs"),
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "0%",
                             "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
            "enforceNodeAllocatable": ["pods"],
            "volumePluginDir": str(base / "volume-plugins"),
            "resolvConf": "",
        }
        (base / "kubelet.json").write_text(json.dumps(config, indent=2))

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(kubelet_binary()), f"--config={self.base / 'kubelet.json'}",
             f"--root-dir={self.root}", f"--cert-dir={self.base / 'pki'}",
             f"--hostname-override={NODE}", "--v=2"],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, 60, "the kubelet's /healthz", describe=self.tail)

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"the kubelet exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}/healthz",
                                        timeout=2) as r:
                return r.read() == b"ok"
        except (OSError, urllib.error.URLError):
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def get(self, path: str) -> bytes:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the kubelet's self-signed serving certificate
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}{path}", timeout=10,
                                    context=ctx) as r:
            return r.read()

    def pods(self) -> dict:
        """The kubelet's /pods by the pod's name without the node suffix."""
        items = json.loads(self.get("/pods"))["items"] or []
        return {p["metadata"]["name"].removesuffix(f"-{NODE}"): p for p in items}

    def put(self, name: str, spec: dict):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "default"}, "spec": spec}
        tmp = self.manifests / f".{name}.tmp"
        tmp.write_text(json.dumps(pod))
        tmp.rename(self.manifests / f"{name}.json")

    def delete(self, name: str):
        (self.manifests / f"{name}.json").unlink(missing_ok=True)


class Node:
    def __init__(self, podshimd, kubelet):
        self.d, self.k = podshimd, kubelet
        with podshimd.client() as c:
            self.pb = c.pb

    def pod(self, name: str) -> dict | None:
        return self.k.pods().get(name)

    def phase(self, name: str) -> str | None:
        p = self.pod(name)
        return (p or {}).get("status", {}).get("phase")

    def ready(self, name: str) -> bool:
        p = self.pod(name) or {}
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p.get("status", {}).get("conditions", []) or [])

    def container_status(self, pod: str, container: str) -> dict:
        p = self.pod(pod) or {}
        for s in p.get("status", {}).get("containerStatuses", []) or []:
            if s["name"] == container:
                return s
        return {}

    def sandboxes(self, pod: str):
        with self.d.client(timeout=30) as c:
            items = c.runtime.ListPodSandbox(c.pb.ListPodSandboxRequest(), timeout=30).items
            return [s for s in items if s.metadata.name == f"{pod}-{NODE}"]

    def containers(self, pod: str):
        ids = {s.id for s in self.sandboxes(pod)}
        with self.d.client(timeout=30) as c:
            items = c.runtime.ListContainers(c.pb.ListContainersRequest(), timeout=30).containers
            return [x for x in items if x.pod_sandbox_id in ids]

    def describe(self) -> str:
        return f"kubelet log:\n{self.k.tail()}\npodshimd log:\n{self.d.log()[-4000:]}"


def busybox(name: str, command, **extra) -> dict:
    c = {"name": name, "image": IMAGE, "imagePullPolicy": "Never", "command": list(command)}
    c.update(extra)
    return c


@pytest.fixture(scope="module")
def node():
    if not kubelet_binary().exists():
        pytest.fail(f"the real kubelet is not built at {kubelet_binary()} (deploy/setup.sh "
                    "builds it with deploy/build-kubelet.sh)")
    sysctls = {s: Path("/proc/sys", s).read_text() for s in SYSCTLS}
    existed = {p: os.path.lexists(p) for p in HOST_PATHS}
    cgroup_root = f"podshim-kubelet-{uuid.uuid4().hex[:6]}"
    base = Path(tempfile.mkdtemp(prefix="podshim-kubelet-", dir="/tmp"))
    # podshimd's own cgroups (of pods the kubelet gives no parent) go under the test's root too.
    d = Podshimd(podshimd_binary(), extra_args=[f"--cgroup_parent=/{cgroup_root}/podshim"])
    k = None
    try:
        d.import_image(images.standin_layout("busybox"), IMAGE)
        d.start()
        make_cgroup_root(cgroup_root)
        k = Kubelet(base, d.endpoint, "/" + cgroup_root)
        k.start()
        yield Node(d, k)
    finally:
        if k is not None:
            for f in k.manifests.glob("*.json"):
                f.unlink()
            try:
                wait_for(lambda: not k.pods(), 60, "the kubelet to stop every pod")
            except BaseException:  # noqa: BLE001 - the teardown goes on
                pass
            k.stop()
        with d.client(timeout=60) as c:
            for p in c.runtime.ListPodSandbox(c.pb.ListPodSandboxRequest(), timeout=60).items:
                c.runtime.StopPodSandbox(c.pb.StopPodSandboxRequest(pod_sandbox_id=p.id),
                                         timeout=60)
                c.runtime.RemovePodSandbox(c.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                                           timeout=60)
        d.cleanup()
        # Whatever the kubelet mounted under its root directory (emptyDir and the like).
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for m in sorted((m for m in mounts if m.startswith(str(base))), reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
        remove_cgroup_parent("/" + cgroup_root)
        for s, value in sysctls.items():
            Path("/proc/sys", s).write_text(value)
        for link in Path("/var/log/containers").glob(f"*-{NODE}_*.log"):
            link.unlink(missing_ok=True)
        for p in HOST_PATHS:  # deepest first
            if existed[p] or not os.path.lexists(p):
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                subprocess.run(["rm", "-rf", "--one-file-system", p], check=False)
            else:
                os.unlink(p)


def test_a_static_pod_runs_and_becomes_ready(node):
    node.k.put("web", {"containers": [busybox(
        "main", ["sh", "-c", "echo started; exec sleep 100000"],
        readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})]})
    wait_for(lambda: node.phase("web") == "Running" and node.ready("web"), 90,
             "the pod Running and Ready", describe=node.describe)
    sandboxes = node.sandboxes("web")
    assert [s.state for s in sandboxes] == [node.pb.SANDBOX_READY]
    running = [c for c in node.containers("web") if c.state == node.pb.CONTAINER_RUNNING]
    assert [c.metadata.name for c in running] == ["main"]
    # The kubelet lists it among its running pods (from the runtime) and serves its log.
    assert b"web-" + NODE.encode() in node.k.get("/runningpods/")
    logs = node.k.get(f"/containerLogs/default/web-{NODE}/main").decode()
    assert logs == "started\n"


def test_init_containers_run_in_order_before_the_app(node):
    node.k.put("init", {
        "volumes": [{"name": "data", "emptyDir": {}}],
        "initContainers": [
            busybox("first", ["sh", "-c", "echo one >> /data/order"],
                    volumeMounts=[{"name": "data", "mountPath": "/data"}]),
            busybox("second", ["sh", "-c", "echo two >> /data/order"],
                    volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        ],
        "containers": [busybox("app", ["sh", "-c", "cat /data/order; exec sleep 100000"],
                               volumeMounts=[{"name": "data", "mountPath": "/data"}])]})
    wait_for(lambda: node.phase("init") == "Running", 90, "the pod Running",
             describe=node.describe)
    wait_for(lambda: node.k.get(f"/containerLogs/default/init-{NODE}/app") == b"one\ntwo\n", 30,
             "the app's log", describe=node.describe)
    statuses = (node.pod("init") or {})["status"]["initContainerStatuses"]
    assert [(s["name"], s["state"]["terminated"]["exitCode"]) for s in statuses] == \
        [("first", 0), ("second", 0)]


def test_a_crashing_container_is_restarted_with_back_off(node):
    node.k.put("crash", {"containers": [busybox("main", ["sh", "-c", "echo crash; exit 1"])]})
    wait_for(lambda: node.container_status("crash", "main").get("restartCount", 0) >= 2, 120,
             "two restarts", describe=node.describe)
    status = node.container_status("crash", "main")
    assert status["lastState"]["terminated"]["exitCode"] == 1
    # Each restart is a new container of the same pod, with the next attempt number.
    attempts = sorted(c.metadata.attempt for c in node.containers("crash"))
    assert attempts[-1] >= 2
    # Between restarts the kubelet waits (CrashLoopBackOff).
    wait_for(lambda: node.container_status("crash", "main").get("state", {})
             .get("waiting", {}).get("reason") == "CrashLoopBackOff", 60, "CrashLoopBackOff",
             describe=node.describe)
    node.k.delete("crash")


def test_exec_attach_and_port_forward_through_the_kubelets_own_endpoints(node):
    # The kubelet asks podshim for a URL (Exec, Attach, PortForward) and proxies the client's
    # upgraded connection to podshim's streaming server.
    node.k.put("talk", {"containers": [
        busybox("shell", ["sh"], stdin=True, stdinOnce=True),
        busybox("echo", ["nc", "-ll", "-p", "8080", "-e", "cat"]),
    ]})
    wait_for(lambda: node.phase("talk") == "Running" and all(
        "running" in node.container_status("talk", c).get("state", {})
        for c in ("shell", "echo")), 90, "both containers running", describe=node.describe)
    base = f"https://127.0.0.1:{node.k.port}"
    pod = f"talk-{NODE}"
    with streams.Stream(f"{base}/exec/default/{pod}/shell?command=sh&command=-c"
                        "&command=echo+via-kubelet%3B+exit+3&output=1&error=1",
                        verify_tls=False) as s:
        r = s.collect()
    assert (r.stdout, r.exit_code) == (b"via-kubelet\n", 3), r
    with streams.Stream(f"{base}/attach/default/{pod}/shell?input=1&output=1&error=1",
                        verify_tls=False) as s:
        s.send(b"echo attached\n")
        s.read_until(b"attached\n", timeout=20)
        s.close_stdin()  # stdinOnce: the shell reads end of file and exits
        r = s.collect()
    assert r.status and r.status["status"] == "Success", r
    for transport in ("spdy", "websocket"):
        with portforward.Session(f"{base}/portForward/default/{pod}", transport,
                                 verify_tls=False) as pf:
            got = pf.forward(8080, b"ping\n")
        assert (got.data, got.error) == (b"ping\n", ""), (transport, got)
    node.k.delete("talk")


def test_podshimd_killed_and_restarted_under_the_kubelet(node):
    wait_for(lambda: node.phase("web") == "Running" and node.ready("web"), 60, "web Running")
    before = node.container_status("web", "main")
    node.d.stop(sig=signal.SIGKILL)
    node.d.start()
    # The kubelet reconnects: it goes on reporting the pod from the new podshimd, and after
    # several of its syncs the container was not restarted.
    time.sleep(6)
    wait_for(lambda: node.phase("web") == "Running" and node.ready("web"), 60,
             "web Running after the restart", describe=node.describe)
    after = node.container_status("web", "main")
    assert after["restartCount"] == before["restartCount"]
    assert after["containerID"] == before["containerID"]
    assert b"web-" + NODE.encode() in node.k.get("/runningpods/")


def test_removing_the_manifest_stops_the_pod(node):
    wait_for(lambda: node.phase("web") == "Running", 60, "web Running")
    node.k.delete("web")
    pb = node.pb
    wait_for(lambda: "web" not in node.k.pods(), 60, "the kubelet to drop the pod",
             describe=node.describe)
    wait_for(lambda: all(s.state == pb.SANDBOX_NOTREADY for s in node.sandboxes("web")), 60,
             "the pod's sandbox stopped", describe=node.describe)
    assert all(c.state != pb.CONTAINER_RUNNING for c in node.containers("web"))
