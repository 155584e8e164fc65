"""Pods and containers on the kernel, end to end through the CRI: real namespaces, overlayfs,
cgroups and the per-container monitor, driven by the Python gRPC client.

One podshimd serves the whole module (with busybox imported and its own cgroup parent); every
test removes its pods, and the last test checks that nothing of any pod is left on the host.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402

from podshim.daemon import Podshimd, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# podshimd's pids_limit in this module: every container's pids.max.
PIDS_LIMIT = 48


@pytest.fixture(scope="module")
def env(podshimd_path_module):
    parent = f"/podshim-e2e-{uuid.uuid4().hex[:8]}"
    d = Podshimd(podshimd_path_module,
                 extra_args=[f"--cgroup_parent={parent}", f"--pids_limit={PIDS_LIMIT}"])
    layout = images.standin_layout("busybox")
    d.import_image(layout, IMAGE)
    d.start()
    c = d.client(timeout=60)
    try:
        yield Env(d, c, parent)
    finally:
        c.close()
        d.cleanup()
        remove_cgroup_parent(parent)


@pytest.fixture(scope="module")
def podshimd_path_module():
    from podshim.daemon import podshimd_binary
    path = podshimd_binary()
    if not path.exists():
        pytest.fail(f"podshimd not built at {path}")
    return path


class Env:
    def __init__(self, daemon, client, cgroup_parent):
        self.d = daemon
        self.c = client
        self.pb = client.pb
        self.cgroup_parent = cgroup_parent
        self.logs = Path(daemon.dir) / "logs"

    # pods --------------------------------------------------------------------------------
    def pod_config(self, name=None, **kw):
        name = name or f"pod-{uuid.uuid4().hex[:8]}"
        ns = kw.pop("ns", None)
        cfg = self.pb.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, namespace="e2e", uid=uuid.uuid4().hex),
            hostname=kw.pop("hostname", name),
            log_directory=str(self.logs / name),
            labels=kw.pop("labels", {"suite": "e2e"}),
            **kw)
        if ns is not None:
            cfg.linux.security_context.namespace_options.CopyFrom(ns)
        return cfg

    def run_pod(self, cfg):
        return self.c.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg),
                                            timeout=60).pod_sandbox_id

    def remove_pod(self, pod_id):
        self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)
        self.c.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                        timeout=60)

    def pod_status(self, pod_id, verbose=False):
        return self.c.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose))

    # containers --------------------------------------------------------------------------
    def container_config(self, name, command, **kw):
        linux = kw.pop("linux", None)
        cfg = self.pb.ContainerConfig(
            metadata=self.pb.ContainerMetadata(name=name),
            image=self.pb.ImageSpec(image=kw.pop("image", IMAGE)),
            command=command, log_path=kw.pop("log_path", f"{name}.log"), **kw)
        if linux is not None:
            cfg.linux.CopyFrom(linux)
        return cfg

    def create(self, pod_id, pod_cfg, cfg):
        return self.c.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id

    def start(self, cid):
        self.c.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)

    def run(self, pod_id, pod_cfg, name, command, **kw):
        cid = self.create(pod_id, pod_cfg, self.container_config(name, command, **kw))
        self.start(cid)
        return cid

    def status(self, cid, verbose=False):
        return self.c.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=cid, verbose=verbose))

    def wait_exit(self, cid, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status(cid).status
            if st.state == self.pb.CONTAINER_EXITED:
                return st
            time.sleep(0.05)
        raise AssertionError(f"container {cid} did not exit within {timeout}s")

    def exec(self, cid, cmd, timeout=10):
        return self.c.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                               timeout=timeout),
                                       timeout=timeout + 10)

    def host_pid(self, cid):
        import json
        return json.loads(self.status(cid, verbose=True).info["info"])["pid"]

    def wait_log(self, cid, text, timeout=30):
        """Waits until the container's log holds `text` (the workload says it is ready)."""
        path = Path(self.status(cid).status.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text():
                return
            time.sleep(0.02)
        raise AssertionError(f"{path} did not say {text!r} within {timeout}s")


def wait_gone(pid, timeout=30):
    """Waits on a pidfd until process `pid` has exited (True), or `timeout` (False)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.fixture
def pods(env):
    """Pods made through it are stopped and removed after the test, pass or fail."""
    made = []

    class Pods:
        def run(self, cfg):
            pod_id = env.run_pod(cfg)
            made.append(pod_id)
            return pod_id

    yield Pods()
    for pod_id in made:
        try:
            env.remove_pod(pod_id)
        except grpc.RpcError as e:  # report, but keep cleaning
            print(f"cleanup of pod {pod_id}: {e}")


def code(excinfo):
    return excinfo.value.code()


# --- tests -----------------------------------------------------------------------------------

def test_pod_lifecycle_status_and_lists(env, pods):
    cfg = env.pod_config(labels={"suite": "e2e", "case": "lifecycle"})
    pod_id = pods.run(cfg)
    st = env.pod_status(pod_id, verbose=True)
    assert st.status.state == env.pb.SANDBOX_READY
    assert st.status.metadata.name == cfg.metadata.name
    assert st.status.labels["case"] == "lifecycle"
    assert st.status.created_at > 0
    assert "info" in st.info and pod_id in st.info["info"]

    lst = env.c.runtime.ListPodSandbox(env.pb.ListPodSandboxRequest(filter=env.pb.PodSandboxFilter(
        id=pod_id[:12]))).items
    assert [p.id for p in lst] == [pod_id]
    by_label = env.c.runtime.ListPodSandbox(env.pb.ListPodSandboxRequest(
        filter=env.pb.PodSandboxFilter(label_selector={"case": "lifecycle"}))).items
    assert [p.id for p in by_label] == [pod_id]
    none = env.c.runtime.ListPodSandbox(env.pb.ListPodSandboxRequest(
        filter=env.pb.PodSandboxFilter(label_selector={"case": "other"}))).items
    assert not none

    # The same name again is refused, naming the holder.
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(cfg)
    assert code(e) == grpc.StatusCode.ALREADY_EXISTS and pod_id in e.value.details()

    for _ in range(2):  # idempotent
        env.c.runtime.StopPodSandbox(env.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert env.pod_status(pod_id).status.state == env.pb.SANDBOX_NOTREADY
    for _ in range(2):
        env.c.runtime.RemovePodSandbox(env.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    with pytest.raises(grpc.RpcError) as e:
        env.pod_status(pod_id)
    assert code(e) == grpc.StatusCode.NOT_FOUND


def test_two_containers_share_network_ipc_uts_but_not_mounts(env, pods):
    cfg = env.pod_config(hostname="shared-host")
    pod_id = pods.run(cfg)
    web = env.run(pod_id, cfg, "web", ["sh", "-c",
                                      "mkdir -p /www && echo served-by-web > /www/index.html && "
                                      "exec httpd -f -p 127.0.0.1:8080 -h /www"])
    client = env.run(pod_id, cfg, "client", ["sleep", "1000"])
    # The client reaches the web server on the pod's loopback.
    deadline = time.monotonic() + 10
    while True:
        r = env.exec(client, ["wget", "-qO-", "http://127.0.0.1:8080/"])
        if r.exit_code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == b"served-by-web\n"

    def ns(cid, kind):
        return env.exec(cid, ["readlink", f"/proc/self/ns/{kind}"]).stdout.strip()

    for kind in ("net", "ipc", "uts"):
        assert ns(web, kind) == ns(client, kind), kind
        assert ns(web, kind).decode() != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert ns(web, "mnt") != ns(client, "mnt")
    for cid in (web, client):
        assert env.exec(cid, ["hostname"]).stdout == b"shared-host\n"
        assert env.exec(cid, ["cat", "/etc/hostname"]).stdout == b"shared-host\n"
    # A file written in one container's rootfs is not in the other's.
    assert env.exec(web, ["touch", "/only-in-web"]).exit_code == 0
    assert env.exec(client, ["ls", "/only-in-web"]).exit_code != 0
    # /dev/shm is the pod's: shared between its containers.
    assert env.exec(web, ["sh", "-c", "echo shm > /dev/shm/x"]).exit_code == 0
    assert env.exec(client, ["cat", "/dev/shm/x"]).stdout == b"shm\n"


def test_pid_pod_shares_processes_pid_container_does_not(env, pods):
    shared = env.pb.NamespaceOption(pid=env.pb.POD)
    cfg = env.pod_config(ns=shared)
    pod_id = pods.run(cfg)
    linux = env.pb.LinuxContainerConfig()
    linux.security_context.namespace_options.CopyFrom(shared)
    env.run(pod_id, cfg, "sleeper", ["sleep", "1001"], linux=linux)
    watcher = env.run(pod_id, cfg, "watcher", ["sleep", "1000"], linux=linux)
    ps = env.exec(watcher, ["ps", "-o", "pid,args"]).stdout.decode()
    assert "sleep 1001" in ps
    assert re.search(r"^\s*1\s", ps, re.M), ps  # PID 1 is the pod's infra process

    own = env.pb.NamespaceOption(pid=env.pb.CONTAINER)
    cfg2 = env.pod_config(ns=own)
    pod2 = pods.run(cfg2)
    linux2 = env.pb.LinuxContainerConfig()
    linux2.security_context.namespace_options.CopyFrom(own)
    env.run(pod2, cfg2, "sleeper", ["sleep", "1001"], linux=linux2)
    alone = env.run(pod2, cfg2, "alone", ["sleep", "1000"], linux=linux2)
    ps2 = env.exec(alone, ["ps", "-o", "pid,args"]).stdout.decode()
    assert "sleep 1001" not in ps2
    assert env.exec(alone, ["sh", "-c", "echo $PPID"]).exit_code == 0
    assert re.search(r"^\s*1\s+sleep 1000", ps2, re.M), ps2  # its own PID 1


def test_exec_sync_output_exit_code_and_timeout(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    cid = env.run(pod_id, cfg, "box", ["sleep", "1000"])
    r = env.exec(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 7)
    with pytest.raises(grpc.RpcError) as e:
        env.exec(cid, ["sleep", "30"], timeout=1)
    assert code(e) == grpc.StatusCode.DEADLINE_EXCEEDED
    # The timed-out command is gone.
    assert b"sleep 30" not in env.exec(cid, ["ps", "-o", "args"]).stdout
    with pytest.raises(grpc.RpcError) as e:
        env.exec(cid, [])
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT and "cmd" in e.value.details()


def test_logs_are_in_cri_format(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    long_line = "x" * 40000
    cid = env.run(pod_id, cfg, "talker", ["sh", "-c",
                                         f"echo one; echo two >&2; printf partial; echo; "
                                         f"echo {long_line}"])
    st = env.wait_exit(cid)
    assert st.exit_code == 0 and st.reason == "Completed"
    lines = Path(st.log_path).read_text().splitlines()
    rx = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([PF]) (.*)$")
    parsed = [rx.match(line).groups() for line in lines]
    assert ("stdout", "F", "one") in parsed
    assert ("stderr", "F", "two") in parsed
    long_parts = [p for p in parsed if p[2] and set(p[2]) == {"x"}]
    assert [p[1] for p in long_parts] == ["P", "P", "F"]
    assert "".join(p[2] for p in long_parts) == long_line


def test_exit_codes_kill_and_oom(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    three = env.run(pod_id, cfg, "three", ["sh", "-c", "exit 3"])
    st = env.wait_exit(three)
    assert st.exit_code == 3 and st.reason == "Error" and st.finished_at >= st.started_at > 0

    victim = env.run(pod_id, cfg, "victim", ["sleep", "1000"])
    os.kill(env.host_pid(victim), signal.SIGKILL)
    st = env.wait_exit(victim)
    assert st.exit_code == 137

    linux = env.pb.LinuxContainerConfig(resources=env.pb.LinuxContainerResources(
        memory_limit_in_bytes=32 << 20))
    hog = env.run(pod_id, cfg, "hog", ["sh", "-c",
                                      "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo $x"],
                  linux=linux)
    st = env.wait_exit(hog, timeout=60)
    assert st.exit_code == 137 and st.reason == "OOMKilled", (st.exit_code, st.reason)


def cgroup_file(env, pod_cgroup_leaf, ctrl, name):
    hits = list((CGROUP_ROOT / ctrl / env.cgroup_parent.lstrip("/")).rglob(f"{pod_cgroup_leaf}/{name}"))
    assert len(hits) == 1, hits
    return hits[0]


def test_cgroup_limits_are_in_force_and_update_live(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    res = env.pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                         memory_limit_in_bytes=64 << 20, cpuset_cpus="0")
    cid = env.run(pod_id, cfg, "limited", ["sleep", "1000"],
                  linux=env.pb.LinuxContainerConfig(resources=res))
    # The process is in the container's cgroup and the kernel holds the values.
    pid = env.host_pid(cid)
    procs = cgroup_file(env, cid, "cpu", "cgroup.procs").read_text().split()
    assert str(pid) in procs
    assert cgroup_file(env, cid, "cpu", "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert cgroup_file(env, cid, "cpu", "cpu.shares").read_text().strip() == "512"
    assert cgroup_file(env, cid, "memory", "memory.limit_in_bytes").read_text().strip() == \
        str(64 << 20)
    assert cgroup_file(env, cid, "cpuset", "cpuset.cpus").read_text().strip() == "0"
    # A busy loop gets about half a CPU.
    env.exec(cid, ["sh", "-c", "timeout 2 sh -c 'while :; do :; done'; true"], timeout=10)
    stat = cgroup_file(env, cid, "cpu", "cpu.stat").read_text()
    throttled = int(re.search(r"nr_throttled (\d+)", stat).group(1))
    assert throttled > 0, stat

    env.c.runtime.UpdateContainerResources(env.pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=env.pb.LinuxContainerResources(cpu_quota=20000,
                                                                memory_limit_in_bytes=48 << 20)))
    assert cgroup_file(env, cid, "cpu", "cpu.cfs_quota_us").read_text().strip() == "20000"
    assert cgroup_file(env, cid, "memory", "memory.limit_in_bytes").read_text().strip() == \
        str(48 << 20)
    st = env.status(cid).status
    assert st.resources.linux.cpu_quota == 20000 and st.resources.linux.cpu_shares == 512

    stats = env.c.runtime.ContainerStats(env.pb.ContainerStatsRequest(container_id=cid)).stats
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.working_set_bytes.value > 0
    assert stats.attributes.id == cid
    pstats = env.c.runtime.PodSandboxStats(env.pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id))
    assert [c.attributes.id for c in pstats.stats.linux.containers] == [cid]


def test_pids_limit_is_in_force(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    cid = env.run(pod_id, cfg, "forker", ["sleep", "1000"])
    assert cgroup_file(env, cid, "pids", "pids.max").read_text().strip() == str(PIDS_LIMIT)
    # Twice the limit of background sleeps: the forks past the limit fail.
    r = env.exec(cid, ["sh", "-c", f"i=0; while [ $i -lt {2 * PIDS_LIMIT} ]; do "
                       "sleep 30 & i=$((i+1)); done; echo started"], timeout=20)
    assert b"can't fork" in r.stderr or b"Resource temporarily unavailable" in r.stderr, r
    current = int(cgroup_file(env, cid, "pids", "pids.current").read_text())
    assert 0 < current <= PIDS_LIMIT


def test_container_status_fields_and_list_filters(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    ccfg = env.container_config("statused", ["sleep", "1000"], labels={"role": "probe"},
                                annotations={"a": "b"}, mounts=[env.pb.Mount(
                                    container_path="/data", host_path=str(env.logs),
                                    readonly=True)])
    cid = env.create(pod_id, cfg, ccfg)
    st = env.status(cid).status
    assert st.state == env.pb.CONTAINER_CREATED and st.started_at == 0
    env.start(cid)
    st = env.status(cid, verbose=True)
    s = st.status
    assert s.state == env.pb.CONTAINER_RUNNING and s.started_at >= s.created_at > 0
    assert s.image_id.startswith("sha256:") and s.image.image == IMAGE
    assert s.labels["role"] == "probe" and s.annotations["a"] == "b"
    assert [m.container_path for m in s.mounts] == ["/data"]
    assert s.log_path == str(env.logs / cfg.metadata.name / "statused.log")
    assert s.user.linux.uid == 0
    assert s.stop_signal == env.pb.SIGNAL_SIGTERM  # busybox names none: SIGTERM
    import json
    info = json.loads(st.info["info"])
    assert info["pid"] > 0 and "runtimeSpec" in info
    # The init's start time is recorded with its pid: they name one process for the boot's
    # lifetime, so a later process that gets the pid is never signalled or joined.
    stat = Path(f"/proc/{info['pid']}/stat").read_text()
    assert info["pidStartTime"] == int(stat[stat.rindex(")") + 2:].split()[19]), info
    # The read-only mount is read-only.
    assert env.exec(cid, ["touch", "/data/x"]).exit_code != 0

    def ids(**f):
        return [c.id for c in env.c.runtime.ListContainers(env.pb.ListContainersRequest(
            filter=env.pb.ContainerFilter(**f))).containers]
    assert ids(id=cid[:10]) == [cid]
    assert ids(pod_sandbox_id=pod_id) == [cid]
    assert ids(label_selector={"role": "probe"}) == [cid]
    assert cid in ids(state=env.pb.ContainerStateValue(state=env.pb.CONTAINER_RUNNING))
    assert cid not in ids(state=env.pb.ContainerStateValue(state=env.pb.CONTAINER_EXITED))

    for _ in range(2):
        env.c.runtime.StopContainer(env.pb.StopContainerRequest(container_id=cid, timeout=1))
    assert env.status(cid).status.state == env.pb.CONTAINER_EXITED
    for _ in range(2):
        env.c.runtime.RemoveContainer(env.pb.RemoveContainerRequest(container_id=cid))
    assert ids(pod_sandbox_id=pod_id) == []


def test_stop_honours_the_grace_period(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    # A process that ends on SIGTERM stops at once, well within the timeout.
    polite = env.run(pod_id, cfg, "polite",
                     ["sh", "-c", "trap 'exit 0' TERM; echo trapped; sleep 1000 & wait"])
    env.wait_log(polite, "trapped")  # the trap is set before the signal comes
    t = time.monotonic()
    env.c.runtime.StopContainer(env.pb.StopContainerRequest(container_id=polite, timeout=20))
    assert time.monotonic() - t < 10
    assert env.status(polite).status.exit_code == 0
    # One that ignores SIGTERM is killed after the timeout.
    stubborn = env.run(pod_id, cfg, "stubborn",
                       ["sh", "-c", "trap '' TERM; echo trapped; sleep 1000 & wait"])
    env.wait_log(stubborn, "trapped")
    t = time.monotonic()
    env.c.runtime.StopContainer(env.pb.StopContainerRequest(container_id=stubborn, timeout=1))
    assert time.monotonic() - t >= 1
    assert env.status(stubborn).status.exit_code == 137


def test_bad_requests_name_the_field_and_leave_nothing(env, pods):
    pb = env.pb
    with pytest.raises(grpc.RpcError) as e:
        env.c.runtime.RunPodSandbox(pb.RunPodSandboxRequest())
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT and "config" in e.value.details()
    bad = env.pod_config()
    bad.linux.sysctls["kernel.hostname"] = "x"
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(bad)
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT and "kernel.hostname" in e.value.details()
    host_net = env.pod_config(ns=pb.NamespaceOption(network=pb.NODE))
    host_net.linux.sysctls["net.ipv4.ip_forward"] = "1"
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(host_net)
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT

    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod_id, cfg, env.container_config("x", ["true"], image="no/such:image"))
    assert code(e) == grpc.StatusCode.NOT_FOUND and "config.image.image" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        env.create("f" * 64, cfg, env.container_config("x", ["true"]))
    assert code(e) == grpc.StatusCode.NOT_FOUND and "pod_sandbox_id" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod_id, cfg, env.container_config("x", ["true"], log_path="../../escape"))
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT and "log_path" in e.value.details()
    # A workload that cannot be executed fails StartContainer, naming it.
    cid = env.create(pod_id, cfg, env.container_config("nosuch", ["/no/such/binary"]))
    with pytest.raises(grpc.RpcError) as e:
        env.start(cid)
    assert "/no/such/binary" in e.value.details()
    assert env.status(cid).status.state == pb.CONTAINER_EXITED
    # A name in use is refused, naming the holder.
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod_id, cfg, env.container_config("nosuch", ["true"]))
    assert code(e) == grpc.StatusCode.ALREADY_EXISTS and cid in e.value.details()
    # Nothing but the one container's directories exists.
    containers = Path(env.d.root_dir) / "containers"
    assert sorted(os.listdir(containers)) == [cid]
    with pytest.raises(grpc.RpcError) as e:
        env.c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=""))
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT and "pod_sandbox_id" in e.value.details()


def test_masked_and_readonly_paths(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    linux = env.pb.LinuxContainerConfig()
    sc = linux.security_context
    sc.masked_paths.extend(["/etc/passwd", "/usr", "/no/such/path"])
    sc.readonly_paths.extend(["/tmp"])
    cid = env.run(pod_id, cfg, "masked", ["sleep", "1000"], linux=linux)
    assert env.exec(cid, ["cat", "/etc/passwd"]).stdout == b""  # /dev/null over a file
    assert env.exec(cid, ["ls", "-A", "/usr"]).stdout == b""  # an empty tmpfs over a dir
    assert env.exec(cid, ["touch", "/usr/x"]).exit_code != 0  # read-only
    assert env.exec(cid, ["touch", "/tmp/x"]).exit_code != 0
    assert env.exec(cid, ["touch", "/x"]).exit_code == 0  # the rest stays writable
    # With no paths given, the defaults apply (containerd's lists).
    plain = env.run(pod_id, cfg, "plain", ["sleep", "1000"])
    assert env.exec(plain, ["sh", "-c", "echo 1 > /proc/sys/kernel/domainname"]).exit_code != 0
    assert env.exec(plain, ["cat", "/proc/kcore"]).stdout == b""


def a_device_outside_the_defaults():
    """(path, type, major, minor) of a device node that any root process may open without
    capabilities (the host's disks may need CAP_SYS_ADMIN to open) and that is not in the
    default list: /dev/fuse, else /dev/loop0."""
    import stat as st
    for path in ("/dev/fuse", "/dev/loop0"):
        try:
            info = os.stat(path)
        except FileNotFoundError:
            continue
        kind = "c" if st.S_ISCHR(info.st_mode) else "b"
        return path, kind, str(os.major(info.st_rdev)), str(os.minor(info.st_rdev))
    pytest.skip("neither /dev/fuse nor /dev/loop0 exists to test the devices cgroup with")


def test_devices_cgroup_allows_the_defaults_and_the_requested_only(env, pods):
    """Unless privileged, a container may make any node but open only runc's default devices
    and those it asked for."""
    path, kind, major, minor = a_device_outside_the_defaults()
    cfg = env.pod_config()
    # The pod is privileged so that it may hold the privileged container at the end (containerd's
    # rule); its other containers are not privileged and stay restricted.
    cfg.linux.security_context.privileged = True
    pod_id = pods.run(cfg)
    plain = env.run(pod_id, cfg, "plain", ["sleep", "1000"])
    made = env.exec(plain, ["mknod", "/node", kind, major, minor])
    assert made.exit_code == 0, made.stderr  # mknod is allowed ...
    opened = env.exec(plain, ["sh", "-c", "exec 3< /node"])
    assert opened.exit_code != 0 and b"not permitted" in opened.stderr, opened  # ... open is not
    assert env.exec(plain, ["head", "-c", "4", "/dev/zero"]).stdout == b"\0\0\0\0"
    assert env.exec(plain, ["sh", "-c", "echo x > /dev/null"]).exit_code == 0

    # Asked for, read-only: it opens for reading, not for writing.
    asked = env.container_config("asked", ["sleep", "1000"])
    asked.devices.add(container_path="/dev/xdev", host_path=path, permissions="r")
    cid = env.create(pod_id, cfg, asked)
    env.start(cid)
    got = env.exec(cid, ["sh", "-c", "exec 3< /dev/xdev"])
    assert got.exit_code == 0, got.stderr
    wrote = env.exec(cid, ["sh", "-c", "exec 3> /dev/xdev"])
    assert wrote.exit_code != 0 and b"not permitted" in wrote.stderr, wrote

    # Permissions that are not a subset of rwm name the field.
    bad = env.container_config("bad", ["sleep", "1000"])
    bad.devices.add(container_path="/dev/xdev", host_path=path, permissions="rx")
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod_id, cfg, bad)
    assert code(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.devices[0].permissions" in e.value.details()

    # Privileged: no restriction.
    linux = env.pb.LinuxContainerConfig()
    linux.security_context.privileged = True
    priv = env.run(pod_id, cfg, "priv", ["sleep", "1000"], linux=linux)
    assert env.exec(priv, ["mknod", "/node", kind, major, minor]).exit_code == 0
    got = env.exec(priv, ["sh", "-c", "exec 3<> /node"])
    assert got.exit_code == 0, got.stderr


def test_containers_survive_a_restart_of_podshimd(env, pods):
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    keeps = env.run(pod_id, cfg, "keeps", ["sleep", "1000"])
    ends = env.run(pod_id, cfg, "ends", ["sh", "-c", "sleep 1; exit 5"])
    pid = env.host_pid(keeps)
    ends_pid = env.host_pid(ends)
    env.d.stop(signal.SIGKILL)
    assert wait_gone(ends_pid)  # `ends` exits while podshimd is down
    env.d.start()
    env.c.close()
    env.c = env.d.client(timeout=60)
    assert env.status(keeps).status.state == env.pb.CONTAINER_RUNNING
    assert env.host_pid(keeps) == pid and os.path.exists(f"/proc/{pid}")
    st = env.wait_exit(ends)
    assert st.exit_code == 5
    assert env.pod_status(pod_id).status.state == env.pb.SANDBOX_READY
    assert env.exec(keeps, ["echo", "still"]).stdout == b"still\n"


def test_container_events_stream(env, pods):
    import queue
    import threading
    subscribed = env.d.log().count("GetContainerEvents subscribed")
    stream = env.c.runtime.GetContainerEvents(env.pb.GetEventsRequest(), timeout=60)
    got = queue.Queue()

    def read():
        try:
            for ev in stream:
                got.put(ev)
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    # The subscription is in place before the first event: podshimd says so in its log.
    deadline = time.monotonic() + 10
    while env.d.log().count("GetContainerEvents subscribed") == subscribed:
        assert time.monotonic() < deadline, "podshimd never logged the subscription"
        time.sleep(0.02)
    cfg = env.pod_config()
    pod_id = pods.run(cfg)
    cid = env.run(pod_id, cfg, "evented", ["sh", "-c", "sleep 0.5; exit 2"])
    env.wait_exit(cid)
    env.c.runtime.RemoveContainer(env.pb.RemoveContainerRequest(container_id=cid))
    events = []
    deadline = time.monotonic() + 10
    while len(events) < 4 and time.monotonic() < deadline:
        try:
            ev = got.get(timeout=0.5)
        except queue.Empty:
            continue
        if ev.container_id == cid:
            events.append(ev)
    stream.cancel()
    pb = env.pb
    assert [e.container_event_type for e in events] == [
        pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT, pb.CONTAINER_STOPPED_EVENT,
        pb.CONTAINER_DELETED_EVENT]
    assert all(e.pod_sandbox_status.id == pod_id for e in events)
    stopped = events[2]
    mine = [c for c in stopped.containers_statuses if c.id == cid]
    assert mine and mine[0].exit_code == 2 and mine[0].state == pb.CONTAINER_EXITED


def test_zz_nothing_of_any_pod_is_left(env):
    """Runs last: every pod above was removed; the host must show nothing of them."""
    assert not env.c.runtime.ListPodSandbox(env.pb.ListPodSandboxRequest()).items
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(env.d.dir) not in mounts
    for ctrl in ("cpu", "memory", "pids", "cpuset", "freezer"):
        base = CGROUP_ROOT / ctrl / env.cgroup_parent.lstrip("/")
        if base.exists():
            assert [p for p in base.iterdir() if p.is_dir()] == [], ctrl
    for sub in ("pods", "containers"):
        assert os.listdir(Path(env.d.state_dir) / sub) == [], sub
    assert os.listdir(Path(env.d.root_dir) / "containers") == []
    assert os.listdir(Path(env.d.root_dir) / "leases") == []
    live = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True,
                          text=True).stdout
    leftovers = [line for line in live.splitlines()
                 if str(env.d.dir) in line and line.split()[0] != str(env.d.proc.pid)
                 and not line.split()[1].startswith("Z")]
    assert not leftovers, leftovers
