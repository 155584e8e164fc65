"""A busy podshimd: blocking work waits in a bounded queue on podshimd's own workers, never on
gRPC's threads, so reads and Version answer while hundreds of slow calls wait; a full queue
refuses more with RESOURCE_EXHAUSTED; a call whose deadline passed while it waited is not run.

Slow calls are made slow with the test-only delay point that every pooled RPC passes before its
work (PODSHIM_DELAY_AT=RuntimeService/<Method>=<ms>, agent/failpoint.h)."""

import sys
import uuid
from pathlib import Path

import grpc
import pytest

from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "helpers"))
import images  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"

SLOW = "RuntimeService/PodSandboxStats"
WORKERS = 16  # the runtime pool's threads (agent/server.h)


class Busy:
    def __init__(self, delay_ms, extra_args=()):
        self.parent = f"/podshim-busy-{uuid.uuid4().hex[:8]}"
        self.d = Podshimd(podshimd_binary(), extra_args=[f"--cgroup_parent={self.parent}",
                                                         *extra_args],
                          env={"PODSHIM_DELAY_AT": f"{SLOW}={delay_ms}"})
        self.d.start()
        self.c = self.d.client(timeout=120)
        self.pb = self.c.pb

    def slow_calls(self, n):
        """n PodSandboxStats calls in flight at once (each answers NOT_FOUND once it ran)."""
        req = self.pb.PodSandboxStatsRequest(pod_sandbox_id="no-such-pod")
        return [self.c.runtime.PodSandboxStats.future(req, timeout=120) for _ in range(n)]

    def close(self):
        try:
            for p in self.c.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items:
                self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=p.id))
                self.c.runtime.RemovePodSandbox(
                    self.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id))
        finally:
            self.c.close()
            self.d.cleanup()
            remove_cgroup_parent(self.parent)


@pytest.fixture
def busy(request):
    b = Busy(**request.param)
    yield b
    b.close()


def outcome(future):
    try:
        future.result()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


@pytest.mark.parametrize("busy", [{"delay_ms": 1000}], indirect=True)
def test_version_and_reads_answer_while_200_slow_calls_wait(busy):
    calls = busy.slow_calls(200)
    # 16 workers and one second each: the 200 take at least 13 s, so these answers come while
    # most of them still wait (checked below, not timed).
    assert busy.c.version().runtime_name == "podshim"
    busy.c.runtime.ListPodSandbox(busy.pb.ListPodSandboxRequest())
    busy.c.runtime.ListContainers(busy.pb.ListContainersRequest())
    done_meanwhile = sum(f.done() for f in calls)
    assert done_meanwhile < len(calls) - WORKERS, done_meanwhile
    # Every slow call ran in the end (the queue, 1024 by default, had room for all).
    assert {outcome(f) for f in calls} == {grpc.StatusCode.NOT_FOUND}


@pytest.mark.parametrize("busy", [{"delay_ms": 3000, "extra_args": ["--rpc_queue_limit=4"]}],
                         indirect=True)
def test_a_full_queue_refuses_with_resource_exhausted(busy):
    calls = busy.slow_calls(40)
    codes = [outcome(f) for f in calls]
    refused = [f for f, code in zip(calls, codes) if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    ran = codes.count(grpc.StatusCode.NOT_FOUND)
    assert refused, codes
    assert ran + len(refused) == len(calls), codes
    # At most the workers' calls and the 4 queued ones ran in the first three seconds; a call
    # refused then was never run (it would have answered NOT_FOUND).
    assert ran >= WORKERS + 4, codes
    message = refused[0].exception().details()
    assert "rpc_queue_limit" in message and "runtime workers are taken" in message, message
    assert busy.c.version().runtime_name == "podshim"


@pytest.mark.parametrize("busy", [{"delay_ms": 3000}], indirect=True)
def test_a_call_whose_deadline_passed_while_it_waited_is_not_run(busy):
    calls = busy.slow_calls(4 * WORKERS)  # every worker taken, and more waiting
    # The slow calls must reach podshimd first: one answered Version comes after them.
    busy.c.version()
    meta = busy.pb.PodSandboxMetadata(name="late", namespace="e2e-busy", uid=uuid.uuid4().hex)
    with pytest.raises(grpc.RpcError) as e:
        busy.c.runtime.RunPodSandbox(busy.pb.RunPodSandboxRequest(
            config=busy.pb.PodSandboxConfig(metadata=meta, hostname="late")), timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert {outcome(f) for f in calls} == {grpc.StatusCode.NOT_FOUND}
    # The workers are free again and the pod was never made: not handed over later either.
    assert busy.c.runtime.ListPodSandbox(busy.pb.ListPodSandboxRequest()).items == []
    log = busy.d.log()
    assert "RunPodSandbox DEADLINE_EXCEEDED" in log, log[-2000:]
    assert "waited for a worker; nothing was done" in log


def test_execsyncs_without_a_timeout_are_capped_and_never_starve_other_calls():
    """20 ExecSyncs with timeout 0 used to hold every worker for as long as their commands ran,
    so ContainerStats, StopContainer and further ExecSyncs waited behind them. Now ExecSync has
    workers of its own, and a timeout of 0 is capped by exec_sync_max_timeout_seconds."""
    parent = f"/podshim-busy-{uuid.uuid4().hex[:8]}"
    d = Podshimd(podshimd_binary(), extra_args=[f"--cgroup_parent={parent}", "--cni=false",
                                                "--exec_sync_max_timeout_seconds=8"])
    c = None
    pod_id = None
    try:
        layout = images.standin_layout("busybox")
        d.import_image(layout, IMAGE)
        d.start()
        c = d.client(timeout=60)
        pb = c.pb
        meta = pb.PodSandboxMetadata(name="execs", namespace="e2e-busy", uid=uuid.uuid4().hex)
        cfg = pb.PodSandboxConfig(metadata=meta, hostname="execs")
        cfg.linux.security_context.namespace_options.network = pb.NODE
        pod_id = c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id

        def run(name):
            cid = c.runtime.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, sandbox_config=cfg, config=pb.ContainerConfig(
                    metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=IMAGE),
                    command=["sleep", "1000"]))).container_id
            c.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
            return cid

        busy, other = run("busy"), run("other")
        execs = [c.runtime.ExecSync.future(
            pb.ExecSyncRequest(container_id=busy, cmd=["sleep", "100"], timeout=0), timeout=60)
            for _ in range(20)]
        # These answer while the 20 commands run (each takes 8 s, the cap): checked by order.
        c.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=busy))
        c.runtime.ListContainerStats(pb.ListContainerStatsRequest())
        c.runtime.StopContainer(pb.StopContainerRequest(container_id=other, timeout=0))
        assert c.runtime.ExecSync(pb.ExecSyncRequest(container_id=busy, cmd=["true"],
                                                     timeout=10)).exit_code == 0
        assert not all(f.done() for f in execs), "the capped commands were still running"
        for f in execs:
            with pytest.raises(grpc.RpcError) as e:
                f.result()
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
            assert "capped at exec_sync_max_timeout_seconds = 8" in e.value.details()
    finally:
        if c is not None:
            if pod_id is not None:
                c.runtime.StopPodSandbox(c.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
                c.runtime.RemovePodSandbox(c.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
            c.close()
        d.cleanup()
        remove_cgroup_parent(parent)
