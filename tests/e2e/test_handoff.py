"""Client deadlines (issue 6, item 4): a RunPodSandbox or PullImage whose client gives up goes on
and is handed to the retry with the same name or reference, and a pod nobody asks for again is
removed after handoff_ttl_seconds, leaving nothing behind.

RunPodSandbox is made slower than the client's deadline with the test-only delay point
PODSHIM_DELAY_AT (agent/failpoint.h); PullImage with a registry front that trickles blobs out
(tests/helpers/slow_proxy.py).
"""

import concurrent.futures
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
from registry import Registry  # noqa: E402
from slow_proxy import SlowProxy  # noqa: E402

from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# RunPodSandbox sleeps this long after its CNI ADD; the first client waits less.
DELAY = "run-pod:after-network=1500"
SHORT = 0.5


def veths_of(pod_ids):
    """Host veths of these pods: podshim-bridge gives the host end an alias naming its pod (a
    check by pod, so that other pods on the machine, e.g. a benchmark's, do not count)."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split(":")[1].strip() for line in out.splitlines()
            if any(p in line for p in pod_ids)]


def netns_pinned_under(path: Path):
    """nsfs bind mounts (pinned namespaces) below `path`."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(path) in line and " nsfs " in line]


def eventually(fn, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Agent:
    """One podshimd on its own base dir and cgroup parent, with the delay point armed."""

    def __init__(self, ttl_seconds=None, delay=DELAY):
        self.parent = f"/podshim-handoff-{uuid.uuid4().hex[:8]}"
        self.base = Path("/tmp") / f"podshim-handoff-{uuid.uuid4().hex[:6]}"
        self.base.mkdir()
        args = [f"--cgroup_parent={self.parent}"]
        if ttl_seconds is not None:
            args.append(f"--handoff_ttl_seconds={ttl_seconds}")
        env = {"PODSHIM_DELAY_AT": delay} if delay else {}
        self.d = Podshimd(podshimd_binary(), base_dir=str(self.base), extra_args=args, env=env)
        self.c = None
        self.pod_ids = set()  # every pod this agent made, for the leak checks
        layout = images.standin_layout("busybox")
        self.d.import_image(layout, IMAGE)
        self.d.start()
        self.c = self.d.client(timeout=60)
        self.pb = self.c.pb

    def pod_config(self, name):
        return self.pb.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, namespace="e2e-handoff",
                                                uid=uuid.uuid4().hex, attempt=0),
            hostname=name, log_directory=str(self.base / "logs" / name))

    def run_pod(self, cfg, timeout):
        pod_id = self.c.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg),
                                              timeout=timeout).pod_sandbox_id
        self.pod_ids.add(pod_id)
        return pod_id

    def run_pod_times_out(self, cfg):
        with pytest.raises(grpc.RpcError) as e:
            self.run_pod(cfg, timeout=SHORT)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value

    def pods(self, name=None):
        items = self.c.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items
        self.pod_ids.update(p.id for p in items)
        return [p for p in items if name is None or p.metadata.name == name]

    def pod_status(self, pod_id):
        return self.c.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True))

    def start_container(self, pod_id, cfg):
        ctr = self.pb.ContainerConfig(metadata=self.pb.ContainerMetadata(name="main"),
                                      image=self.pb.ImageSpec(image=IMAGE),
                                      command=["sleep", "1000"], log_path="main.log")
        cid = self.c.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ctr, sandbox_config=cfg), timeout=60).container_id
        self.c.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid),
                                      timeout=60)
        return cid

    def remove_pod(self, pod_id):
        self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)
        self.c.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                        timeout=60)

    def assert_nothing_left(self):
        """No pod or container of this agent is left anywhere on the host: records, mounts
        (pinned namespaces, shm), state and layer dirs, CNI cache, veths, cgroups."""
        assert self.pods() == []
        assert not self.c.runtime.ListContainers(self.pb.ListContainersRequest()).containers
        assert str(self.base) not in Path("/proc/self/mountinfo").read_text()
        assert netns_pinned_under(self.base) == []
        for sub in ("run/pods", "run/containers", "root/containers", "root/leases",
                    "run/records/pods", "run/records/containers"):
            left = list((self.base / sub).iterdir()) if (self.base / sub).exists() else []
            assert left == [], sub
        cache = self.base / "run" / "cni"
        assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*")), \
            list(cache.rglob("*"))
        assert self.pod_ids, "no pod was seen: the checks below would prove nothing"
        assert veths_of(self.pod_ids) == []
        for ctrl in ("cpu", "memory", "pids"):
            p = CGROUP_ROOT / ctrl / self.parent.lstrip("/")
            if p.exists():
                assert [x for x in p.iterdir() if x.is_dir()] == [], ctrl

    def close(self):
        try:
            if self.c is not None and self.d.proc is not None and self.d.proc.poll() is None:
                for p in self.pods():
                    try:
                        self.remove_pod(p.id)
                    except grpc.RpcError as e:
                        print(f"cleanup of pod {p.id}: {e}")
        finally:
            if self.c is not None:
                self.c.close()
            self.d.stop()
            remove_cgroup_parent(self.parent)
            subprocess.run(["umount", "-R", str(self.base)], capture_output=True)
            subprocess.run(["rm", "-rf", str(self.base)], check=False)


@pytest.fixture
def make_agent(request):
    agents = []

    def make(**kw):
        agents.append(Agent(**kw))
        return agents[-1]

    try:
        yield make
    finally:
        for a in agents:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                print(f"--- podshimd log ---\n{a.d.log()}")
            a.close()


# --- RunPodSandbox -----------------------------------------------------------------------------

def test_timed_out_run_pod_sandbox_is_handed_to_its_retry(make_agent):
    a = make_agent()
    cfg = a.pod_config("late")
    a.run_pod_times_out(cfg)
    # The first call goes on and makes the pod after its client left.
    assert eventually(lambda: a.pods("late"), timeout=10), "the pod was not made in the background"
    pod_id = a.run_pod(cfg, timeout=30)
    pods = a.pods("late")
    assert [p.id for p in pods] == [pod_id]
    assert "handed to its retry" in a.d.log()
    # Claimed now: a third call with the same name is refused, as before.
    with pytest.raises(grpc.RpcError) as e:
        a.run_pod(cfg, timeout=30)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert pod_id in e.value.details()
    # The pod works.
    st = a.pod_status(pod_id).status
    assert st.state == a.pb.SANDBOX_READY and st.network.ip
    assert len(veths_of([pod_id])) == 1  # the leak check below sees a pod's veth
    cid = a.start_container(pod_id, cfg)
    cst = a.c.runtime.ContainerStatus(a.pb.ContainerStatusRequest(container_id=cid)).status
    assert cst.state == a.pb.CONTAINER_RUNNING
    a.remove_pod(pod_id)
    a.assert_nothing_left()


def test_retry_during_the_creation_waits_for_it_and_gets_the_same_pod(make_agent):
    a = make_agent()
    cfg = a.pod_config("waited")
    a.run_pod_times_out(cfg)
    # The first call is still in its delay: the pod is not made yet.
    assert a.pods("waited") == []
    pod_id = a.run_pod(cfg, timeout=30)
    assert [p.id for p in a.pods("waited")] == [pod_id]
    assert "a retry waited for its creation" in a.d.log()
    assert a.pod_status(pod_id).status.state == a.pb.SANDBOX_READY
    a.start_container(pod_id, cfg)
    a.remove_pod(pod_id)
    a.assert_nothing_left()


def test_unclaimed_pod_is_removed_after_the_ttl(make_agent):
    a = make_agent(ttl_seconds=2)
    cfg = a.pod_config("orphan")
    a.run_pod_times_out(cfg)
    made = eventually(lambda: a.pods("orphan"), timeout=10)
    assert made, "the pod was not made in the background"
    pod_id = made[0].id
    assert netns_pinned_under(a.base), "the pod's namespaces should be pinned while it exists"
    assert len(veths_of([pod_id])) == 1
    # Nobody asks for it: gone within a few seconds, by itself.
    assert eventually(lambda: a.pods() == [], timeout=15), "the unclaimed pod stayed"
    assert f"removed unclaimed pod {pod_id}" in a.d.log()
    a.assert_nothing_left()


def test_status_call_in_time_claims_the_pod(make_agent):
    a = make_agent(ttl_seconds=2)
    cfg = a.pod_config("claimed")
    a.run_pod_times_out(cfg)
    made = eventually(lambda: a.pods("claimed"), timeout=10)
    assert made, "the pod was not made in the background"
    pod_id = made[0].id
    a.pod_status(pod_id)  # within the TTL: the pod is the caller's now
    # A second pod, made after the first and never claimed: once the reaper has removed it,
    # it has passed the first pod's time as well (no sleep standing in for that).
    a.run_pod_times_out(a.pod_config("witness"))
    witness = eventually(lambda: a.pods("witness"), timeout=10)
    assert witness, "the witness pod was not made in the background"
    assert eventually(lambda: f"removed unclaimed pod {witness[0].id}" in a.d.log(),
                      timeout=15), "the reaper never removed the unclaimed witness"
    assert [p.id for p in a.pods("claimed")] == [pod_id]
    assert a.pod_status(pod_id).status.state == a.pb.SANDBOX_READY
    assert "claimed by PodSandboxStatus" in a.d.log()
    assert f"removed unclaimed pod {pod_id}" not in a.d.log()
    a.remove_pod(pod_id)
    a.assert_nothing_left()


def test_a_slow_call_does_not_hold_up_the_others(make_agent):
    """RunPodSandbox and the other bounded calls run on the gRPC thread that took them while no
    other call does (agent/rpc.h, ServeUnaryQuick); the rest go to the agent's pool. While one is
    held in its delay, other calls are answered, a second RunPodSandbox among them."""
    a = make_agent()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        first = ex.submit(a.run_pod, a.pod_config("slow-1"), 30)
        # Its namespaces are pinned before the network and the delay.
        assert eventually(lambda: netns_pinned_under(a.base), timeout=10)
        assert not first.done()
        assert a.pods() == []  # ListPodSandbox answered beside it
        assert a.c.version().runtime_name == "podshim"
        assert not first.done(), "the calls above waited for the slow one"
        second = ex.submit(a.run_pod, a.pod_config("slow-2"), 30)
        ids = [first.result(timeout=30), second.result(timeout=30)]
    assert sorted(p.id for p in a.pods()) == sorted(ids)
    for pod_id in ids:
        assert a.pod_status(pod_id).status.state == a.pb.SANDBOX_READY
        a.remove_pod(pod_id)
    a.assert_nothing_left()


# --- PullImage (the `daemon` fixture is conftest's: a plain podshimd) ---------------------------

BUSYBOX = images.ImageSpec(name="e2e-busybox", cmd=("sh",))


@pytest.fixture(scope="module")
def registry():
    with Registry() as reg:
        images.push(images.build_image(BUSYBOX), f"{reg.addr}/test/busybox:1.0")
        yield reg


@pytest.fixture
def slow(registry):
    proxy = SlowProxy(registry.addr)
    try:
        yield proxy
    finally:
        proxy.close()


def pull_request(c, ref):
    return c.pb.PullImageRequest(image=c.pb.ImageSpec(image=ref))


def test_timed_out_pull_goes_on_and_its_retry_joins_it(daemon, slow):
    ref = f"{slow.addr}/test/busybox:1.0"
    with daemon.client(timeout=60) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.image.PullImage(pull_request(c, ref), timeout=1.0)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert slow.started_blob.is_set(), "the layer transfer had not begun"
        manifests = [p for p in slow.requests if "/manifests/" in p]
        assert len(manifests) == 1, slow.requests
        # The retry while the layer still trickles in joins the pull in progress.
        image_ref = c.image.PullImage(pull_request(c, ref), timeout=60).image_ref
        assert image_ref.startswith("sha256:")
        st = c.image.ImageStatus(c.pb.ImageStatusRequest(image=c.pb.ImageSpec(image=ref)))
        assert st.image.id == image_ref
    requests = slow.requests
    # Pulled once: one manifest resolution, every blob fetched once.
    assert [p for p in requests if "/manifests/" in p] == manifests, requests
    blobs = [p for p in requests if "/blobs/" in p]
    assert blobs and len(blobs) == len(set(blobs)), requests
    assert "joins the one of" in daemon.log()
    # The image is whole: its layers are unpacked, nothing half-written remains.
    root = Path(daemon.root_dir)
    assert not any((root / "content" / "ingest").iterdir())
    assert any((root / "snapshots" / "sha256").iterdir())


def test_pull_left_in_the_background_keeps_a_whole_image(daemon, slow):
    ref = f"{slow.addr}/test/busybox:1.0"
    with daemon.client(timeout=60) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.image.PullImage(pull_request(c, ref), timeout=1.0)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def stored():
            st = c.image.ImageStatus(c.pb.ImageStatusRequest(image=c.pb.ImageSpec(image=ref)))
            return st.image.id

        image_id = eventually(stored, timeout=60, interval=0.2)
        assert image_id, "the background pull did not finish"
    assert "finished in the background" in daemon.log()
    root = Path(daemon.root_dir)
    assert not any((root / "content" / "ingest").iterdir())
    assert any((root / "snapshots" / "sha256").iterdir())
