"""Containers outlive podshimd: SIGKILL of the agent, restart, and everything is as it was.

20 running pods (pod network, one counting container each) survive five SIGKILLs of podshimd:
the same container processes (nothing restarted), the same pod IPs, the log going on without a
lost or repeated line, and the exit code of a container that ended while podshimd was down.
Also concurrent Stop and Remove of one pod, many times over.
"""

import concurrent.futures
import json
import re
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

from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# A line a 50th of a second, numbered.
COUNTER = ["sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); usleep 20000; done"]


class Agent:
    """One podshimd on one base dir that can be SIGKILLed and started again."""

    def __init__(self):
        self.parent = f"/podshim-restart-{uuid.uuid4().hex[:8]}"
        self.base = Path("/tmp") / f"podshim-restart-{uuid.uuid4().hex[:6]}"
        self.base.mkdir()
        self.d = self._daemon()
        layout = images.standin_layout("busybox")
        self.d.import_image(layout, IMAGE)
        self.start()

    def _daemon(self, env=None):
        return Podshimd(podshimd_binary(), base_dir=str(self.base),
                        extra_args=[f"--cgroup_parent={self.parent}"], env=env)

    def start(self):
        self.d.start()
        self.c = self.d.client(timeout=60)
        self.pb = self.c.pb

    def kill(self):
        self.c.close()
        self.d.proc.send_signal(signal.SIGKILL)
        assert self.d.proc.wait(timeout=10) == -signal.SIGKILL
        self.d.stop()
        self.d = self._daemon()

    def crash_during(self, point, call, env=None):
        """Restarts podshimd armed to SIGKILL itself at `point`, makes `call` (which must die
        with the agent), then starts a plain podshimd again."""
        self.kill()
        self.d = self._daemon(env={"PODSHIM_CRASH_AT": point, **(env or {})})
        self.start()
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        self.c.close()
        assert self.d.proc.wait(timeout=10) == -signal.SIGKILL
        self.d.stop()
        self.d = self._daemon()
        self.start()

    def assert_nothing_left(self, veths):
        """No pod or container of this agent left anywhere on the host."""
        assert not self.c.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items
        assert not self.c.runtime.ListContainers(self.pb.ListContainersRequest()).containers
        assert str(self.base) not in Path("/proc/self/mountinfo").read_text()
        for sub in ("run/pods", "run/containers", "root/containers", "root/leases"):
            left = list((self.base / sub).iterdir()) if (self.base / sub).exists() else []
            assert left == [], sub
        assert veth_count() == veths
        for ctrl in ("cpu", "memory", "pids"):
            p = CGROUP_ROOT / ctrl / self.parent.lstrip("/")
            if p.exists():
                assert [x for x in p.iterdir() if x.is_dir()] == [], ctrl

    def run_pod(self, name, command):
        cfg = self.pb.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, namespace="e2e-restart",
                                                uid=uuid.uuid4().hex),
            hostname=name, log_directory=str(self.base / "logs" / name))
        pod_id = self.c.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg),
                                              timeout=60).pod_sandbox_id
        ctr = self.pb.ContainerConfig(metadata=self.pb.ContainerMetadata(name="main"),
                                      image=self.pb.ImageSpec(image=IMAGE), command=command,
                                      log_path="main.log")
        cid = self.c.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ctr, sandbox_config=cfg), timeout=60).container_id
        self.c.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid),
                                      timeout=60)
        return pod_id, cid, self.base / "logs" / name / "main.log"

    def container(self, cid):
        r = self.c.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid,
                                                                          verbose=True))
        return r.status, json.loads(r.info["info"]) if "info" in r.info else {}

    def pod_ip(self, pod_id):
        return self.c.runtime.PodSandboxStatus(self.pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod_id)).status.network.ip

    def remove_all(self):
        for p in self.c.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items:
            self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=p.id),
                                          timeout=60)
            self.c.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                                            timeout=60)

    def close(self):
        try:
            if self.d.proc is None or self.d.proc.poll() is not None:
                self.d = self._daemon()
                self.start()
            self.remove_all()
        finally:
            self.c.close()
            self.d.stop()
            remove_cgroup_parent(self.parent)
            subprocess.run(["umount", "-R", str(self.base)], capture_output=True)
            subprocess.run(["rm", "-rf", str(self.base)], check=False)


@pytest.fixture
def agent():
    a = Agent()
    try:
        yield a
    finally:
        a.close()


def counted_lines(log: Path):
    """The numbers of the container's "line-N" log lines, in file order (full lines only)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"\S+ stdout F line-(\d+)$", line)
        if m:
            out.append(int(m.group(1)))
    return out


def process_alive(pid):
    """Neither gone nor a zombie (a monitor whose podshimd was killed is reparented)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_twenty_pods_survive_five_sigkills_of_the_agent(agent):
    pods = [agent.run_pod(f"count-{i}", COUNTER) for i in range(20)]
    before = {}
    for pod_id, cid, _ in pods:
        st, info = agent.container(cid)
        assert st.state == agent.pb.CONTAINER_RUNNING
        before[cid] = (info["pid"], st.started_at, agent.pod_ip(pod_id))
        assert before[cid][2], "every pod has an IP"
    assert len({v[2] for v in before.values()}) == 20

    def wait_for_more_lines(at_least):
        """Every counter has written at least `at_least` lines (they go on while podshimd is
        away: the monitors own the logs)."""
        deadline = time.monotonic() + 30
        while any(len(counted_lines(log)) < at_least for _, _, log in pods):
            assert time.monotonic() < deadline, "a counter stopped writing"
            time.sleep(0.05)

    for round_ in range(5):
        ender = None
        if round_ == 2:
            # Exits with 7 while the agent is down: it waits for a file that is made only then.
            ender = agent.run_pod(
                "ender", ["sh", "-c", "while [ ! -e /tmp/go ]; do usleep 20000; done; exit 7"])
            _, info = agent.container(ender[1])
            ender_pid = info["pid"]
            stat = Path(f"/proc/{ender_pid}/stat").read_text()
            ender_monitor = int(stat[stat.rindex(")") + 2:].split()[1])
        wait_for_more_lines(10 * (round_ + 1))
        agent.kill()
        if ender is not None:
            exit_window = [time.time_ns()]
            Path(f"/proc/{ender_pid}/root/tmp/go").touch()
            # Its monitor writes the exit file, then ends.
            deadline = time.monotonic() + 10
            while process_alive(ender_monitor):
                assert time.monotonic() < deadline, "the ender's monitor did not end"
                time.sleep(0.02)
            exit_window.append(time.time_ns())
        agent.start()
        for pod_id, cid, _ in pods:
            st, info = agent.container(cid)
            assert st.state == agent.pb.CONTAINER_RUNNING, (round_, cid, st)
            assert (info["pid"], st.started_at, agent.pod_ip(pod_id)) == before[cid], round_
        if ender is not None:
            st, _ = agent.container(ender[1])
            assert st.state == agent.pb.CONTAINER_EXITED
            assert st.exit_code == 7
            assert exit_window[0] <= st.finished_at <= exit_window[1]

    # The logs went on through all of it: every number once, in order, none lost.
    wait_for_more_lines(60)
    for _, _, log in pods:
        nums = counted_lines(log)
        assert len(nums) > 50, log
        assert nums == list(range(len(nums))), f"gap or repeat in {log}"


def test_concurrent_stop_and_remove_of_one_pod(agent):
    """Stop and Remove of the same pod at once, 100 times (issue 6): both succeed, the pod is gone."""
    def stop(pod_id):
        agent.c.runtime.StopPodSandbox(agent.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                       timeout=60)

    def remove(pod_id):
        agent.c.runtime.RemovePodSandbox(agent.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                         timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for i in range(100):
            pod_id, _, _ = agent.run_pod(f"race-{i}", ["sleep", "1000"])
            futures = [pool.submit(f, pod_id) for f in (stop, remove, stop, remove)]
            for f in futures:
                try:
                    f.result()
                except grpc.RpcError as e:
                    pytest.fail(f"round {i}: {e.code()} {e.details()}")
            assert not agent.c.runtime.ListPodSandbox(agent.pb.ListPodSandboxRequest()).items
    assert str(agent.base / "run" / "pods") not in Path("/proc/self/mountinfo").read_text()


def test_sigkill_of_a_monitor_ends_its_container_and_reports_it(agent):
    pod_id, cid, _ = agent.run_pod("orphan", ["sleep", "1000"])
    _, info = agent.container(cid)
    pid = info["pid"]
    stat = Path(f"/proc/{pid}/stat").read_text()
    monitor = int(stat[stat.rindex(")") + 2:].split()[1])  # the container's parent
    assert "podshim-monitor" in Path(f"/proc/{monitor}/cmdline").read_text()
    subprocess.run(["kill", "-KILL", str(monitor)], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st, _ = agent.container(cid)
        if st.state == agent.pb.CONTAINER_EXITED:
            break
        time.sleep(0.05)
    assert st.state == agent.pb.CONTAINER_EXITED
    assert (st.exit_code, st.reason) == (255, "Unknown"), st
    assert "monitor" in st.message
    # Its process did not stay behind, running unseen (nor as a zombie of podshimd's).
    assert not Path(f"/proc/{pid}").exists()
    agent.c.runtime.StopPodSandbox(agent.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    agent.c.runtime.RemovePodSandbox(agent.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert not agent.c.runtime.ListPodSandbox(agent.pb.ListPodSandboxRequest()).items


def veth_count():
    """Veths on podshim's default bridge (the network these pods use), not the machine's."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth", "master", "podshim0"],
                         capture_output=True, text=True).stdout  # no bridge yet: none
    return len(out.splitlines())


def test_a_truncated_pod_record_is_cleaned_and_the_others_load(agent):
    pods = [agent.run_pod(f"rec-{i}", ["sleep", "1000"]) for i in range(3)]
    victim_pod, victim_cid, _ = pods[1]
    _, info = agent.container(victim_cid)
    victim_pid = info["pid"]
    veths = veth_count()
    agent.kill()
    record = agent.base / "run" / "records" / "pods" / f"{victim_pod}.json"
    text = record.read_text()
    record.write_text(text[:len(text) // 2])
    agent.start()
    items = agent.c.runtime.ListPodSandbox(agent.pb.ListPodSandboxRequest()).items
    assert sorted(p.id for p in items) == sorted([pods[0][0], pods[2][0]])
    for pod_id, cid, _ in (pods[0], pods[2]):
        st, _ = agent.container(cid)
        assert st.state == agent.pb.CONTAINER_RUNNING
    # The unreadable pod is reported (its record set aside, the log says what was done) and
    # nothing of it is left: container process, container record, netns, veth, directories.
    assert record.with_name(record.name + ".corrupt").exists()
    assert f"pod {victim_pod} had no readable record" in agent.d.log()
    with pytest.raises(grpc.RpcError) as e:
        agent.container(victim_cid)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not Path(f"/proc/{victim_pid}").exists() or \
        Path(f"/proc/{victim_pid}/stat").read_text().split(") ")[1].startswith("Z")
    assert victim_pod not in Path("/proc/self/mountinfo").read_text()
    assert not (agent.base / "run" / "pods" / victim_pod).exists()
    assert veth_count() == veths - 1
    for ctrl in ("cpu", "memory", "pids"):
        assert not list((CGROUP_ROOT / ctrl / agent.parent.lstrip("/")).glob(f"*{victim_pod}*"))


def test_crash_in_create_container_leaves_no_half_container(agent):
    veths = veth_count()
    pod_id, _, _ = agent.run_pod("cc", ["sleep", "1000"])
    pb = agent.pb
    cfg = agent.c.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod_id)).status
    pod_cfg = pb.PodSandboxConfig(metadata=cfg.metadata,
                                  log_directory=str(agent.base / "logs" / "cc"))
    ctr = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="second"),
                             image=pb.ImageSpec(image=IMAGE), command=["sleep", "1000"])
    agent.crash_during("create-container:before-save", lambda: agent.c.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ctr, sandbox_config=pod_cfg),
        timeout=30))
    names = [c.metadata.name for c in
             agent.c.runtime.ListContainers(pb.ListContainersRequest()).containers]
    assert names == ["main"]
    assert len(list((agent.base / "run" / "containers").iterdir())) == 1
    assert len(list((agent.base / "root" / "leases").iterdir())) == 1
    # The name is free again.
    agent.c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=ctr, sandbox_config=pod_cfg), timeout=30)
    agent.remove_all()
    agent.assert_nothing_left(veths)


def create_unstarted(agent, pod_name, ctr_name, command, log_path=""):
    """A pod with one created (not started) container; its id."""
    pb = agent.pb
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
        name=pod_name, namespace="e2e-restart", uid=uuid.uuid4().hex),
        log_directory=str(agent.base / "logs" / pod_name))
    pod_id = agent.c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    ctr = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=ctr_name), log_path=log_path,
                             image=pb.ImageSpec(image=IMAGE), command=command)
    return agent.c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=ctr, sandbox_config=cfg)).container_id


def assert_adopted_then_removed(agent, cid, veths):
    """The container runs after the restart, stops with 137 and leaves nothing."""
    pb = agent.pb
    st, info = agent.container(cid)
    assert st.state == pb.CONTAINER_RUNNING, st
    assert st.started_at > 0 and Path(f"/proc/{info['pid']}").exists()
    agent.c.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
    st, _ = agent.container(cid)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
    agent.remove_all()
    agent.assert_nothing_left(veths)


def test_crash_in_start_container_adopts_the_started_container(agent):
    veths = veth_count()
    cid = create_unstarted(agent, "sc", "late", ["sleep", "1000"])
    agent.crash_during("start-container:after-spawn", lambda: agent.c.runtime.StartContainer(
        agent.pb.StartContainerRequest(container_id=cid), timeout=30))
    assert_adopted_then_removed(agent, cid, veths)


def test_crash_before_the_monitors_report_waits_for_it_and_adopts(agent):
    """podshimd dies after handing the container to its monitor, before the report; the
    monitor (held back 2 s) reports while the new podshimd loads, which waits for it."""
    veths = veth_count()
    cid = create_unstarted(agent, "hand", "slow", ["sh", "-c", "echo up; sleep 1000"],
                           log_path="slow.log")
    agent.crash_during("start-container:handed", lambda: agent.c.runtime.StartContainer(
        agent.pb.StartContainerRequest(container_id=cid), timeout=30),
        env={"PODSHIM_MONITOR_DELAY_MS": "2000"})
    assert "waiting for monitor" in agent.d.log()
    # One workload, owned by the monitor that was handed it, and its log is there.
    assert (agent.base / "logs" / "hand" / "slow.log").read_text().count(" F up") == 1
    assert_adopted_then_removed(agent, cid, veths)


@pytest.mark.parametrize("point,rpc", [("stop-pod:after-network", "StopPodSandbox"),
                                       ("remove-pod:after-containers", "RemovePodSandbox")])
def test_crash_in_stop_or_remove_pod_then_both_succeed(agent, point, rpc):
    veths = veth_count()
    pod_id, _, _ = agent.run_pod("sr", ["sleep", "1000"])
    pb = agent.pb
    req = getattr(pb, f"{rpc}Request")(pod_sandbox_id=pod_id)
    agent.crash_during(point, lambda: getattr(agent.c.runtime, rpc)(req, timeout=30))
    agent.c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    agent.c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    agent.assert_nothing_left(veths)
