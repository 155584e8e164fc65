#!/usr/bin/env python3
"""Restart recovery benchmark: SIGKILL the agent with N running pods, restart it, time recovery.

For each N of --pods and each runtime (podshimd; containerd, Debian's 1.6 with runc) a fresh
runtime is started (volatile state on a tmpfs, as /run is on a node) and N pods are run, each
with one busybox `sleep` container and a pod network through CNI (podshim: its embedded default
network; containerd: Debian's bridge + host-local + portmap). Starting them is not timed.
Then --restarts times:

  1. SIGKILL the agent (podshimd or containerd). The per-container helpers (podshim-monitor;
     containerd-shim-runc-v2 with runc's containers and the pause processes) keep running.
  2. Exec the agent again with the same arguments, and time from the exec
     (a) until the CRI socket answers Version (a successful reply; containerd answers
         "server is not initialized yet" until its CRI plugin has recovered, which counts as
         not answering), and
     (b) until ListPodSandbox reports all N pods READY and ListContainers all N containers
         RUNNING (polled every --poll-ms).
  3. Check that nothing was restarted: every container's pid (ContainerStatus verbose info
     "pid") and that process's start time (/proc/PID/stat) are the same as before the first
     kill, and so is the set of helper processes (monitors; shims and pause processes).

Memory, from /proc/PID/smaps_rollup: the agent's RSS before the first kill (the process that
started the pods) and after each recovery; after the last one, the per-container helpers'
(podshim-monitor; containerd-shim-runc-v2, and apart containerd's pause processes) RSS and PSS,
summed and per process.

Everything started here is removed at the end, on failure and on Ctrl-C or SIGTERM too: pods
through the CRI (the agent is started again for that if it is down), then the agent, leftover
monitors and shims, mounts, cgroups, the CNI bridge of containerd and the temp dirs. Prints a
table; --json FILE writes the numbers. Needs root, containerd + runc + CNI plugins
(deploy/setup.sh) and a podshimd build (--podshimd or $PODSHIMD, default
build/release/agent/podshimd; its helpers are found beside it as podshimd finds them).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
import images  # noqa: E402
from containerd import unmount_under  # noqa: E402
from lifecycle import (COMMAND, PODSHIM_IMAGE, TmpfsStateContainerd, all_procs,  # noqa: E402
                       machine, mount_tmpfs, percentile, rmdir_cgroups)
from registry import Registry  # noqa: E402

from podshim import Client  # noqa: E402
from podshim.daemon import Podshimd  # noqa: E402

CALL_TIMEOUT = 120.0
RECOVERY_TIMEOUT = 600.0
# containerd's pods: host-local IPAM on a /16, as a /24 holds fewer than 500 pods.
CONTAINERD_SUBNET = "10.99.0.0/16"


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------- processes
def smaps_kib(pid: int) -> dict:
    """Rss and Pss of one process from /proc/PID/smaps_rollup (0 if it is gone)."""
    out = {"rss_kib": 0, "pss_kib": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower() + "_kib"] = int(rest.split()[0])
    except OSError:
        pass
    return out


def mem_sum(pids: list[int]) -> dict:
    per = [smaps_kib(p) for p in pids]
    n = len(per)
    rss = sum(m["rss_kib"] for m in per)
    pss = sum(m["pss_kib"] for m in per)
    return {"count": n, "rss_kib": rss, "pss_kib": pss,
            "rss_mean_kib": rss / n if n else 0.0, "pss_mean_kib": pss / n if n else 0.0}


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def unix_socket_accepts(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------------------- runtimes
class Runtime:
    """One runtime under test that can be SIGKILLed and started again."""

    name = ""
    label = ""
    endpoint = ""
    socket_path = ""
    image = ""
    log_root = ""
    cgroup_parent = ""

    # -- pods
    def pod_config(self, pb, i: int):
        name = f"restart-{i}-{uuid.uuid4().hex[:8]}"
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="bench", uid=uuid.uuid4().hex),
            hostname=name, log_directory=os.path.join(self.log_root, name),
            labels={"bench": "restart"})
        ns = cfg.linux.security_context.namespace_options
        ns.network = pb.POD
        ns.pid = pb.CONTAINER
        ns.ipc = pb.POD
        return cfg

    def container_config(self, pb):
        return pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleep"),
                                  image=pb.ImageSpec(image=self.image), command=list(COMMAND),
                                  log_path="sleep.log")

    # -- the agent process
    @property
    def proc(self) -> subprocess.Popen | None:
        raise NotImplementedError

    def exec_agent(self) -> subprocess.Popen:
        """Starts the agent again with its first arguments; does not wait."""
        raise NotImplementedError

    def kill_agent(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def agent_pid(self) -> int:
        return self.proc.pid

    def helpers(self) -> dict[str, list[int]]:
        """{"helpers": per-container helper pids, "infra": pause pids}."""
        raise NotImplementedError

    def ensure_running(self) -> None:
        """For the cleanup: an agent killed by a failure is started again, so that its pods can
        be removed through the CRI."""
        p = self.proc
        if p is not None and p.poll() is None:
            return
        p = self.exec_agent()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            got = wait_version(self.endpoint, self.socket_path, 5)
            if got is not None:
                got[1].close()
                return
        raise RuntimeError(f"{self.name} did not come back for the cleanup")


class PodshimRuntime(Runtime):
    name = "podshim"

    def __init__(self, binary: str, stack: contextlib.ExitStack):
        self.cgroup_parent = f"/podshim-rbench-{uuid.uuid4().hex[:8]}"
        base = Path(tempfile.mkdtemp(prefix="podshim-", dir="/tmp"))
        # log_level info: the agent's log is not what is measured.
        self.d = Podshimd(binary, extra_args=[f"--cgroup_parent={self.cgroup_parent}"],
                          log_level="info", base_dir=base)
        self.d.proc = None
        stack.callback(self.cleanup)
        mount_tmpfs(self.d.state_dir)  # as /run/podshim is on a node
        layout = images.standin_layout("busybox")
        self.d.import_image(layout, PODSHIM_IMAGE)
        self.endpoint = self.d.endpoint
        self.socket_path = self.d.socket
        self.image = PODSHIM_IMAGE
        self.log_root = str(self.d.dir / "logs")
        os.makedirs(self.d.cni_conf_dir, exist_ok=True)  # empty: the embedded default network
        self.d._log = open(self.d.log_path, "ab")
        self.exec_agent()
        got = wait_version(self.endpoint, self.socket_path, 30)
        if got is None:
            raise RuntimeError("podshimd did not start:\n" + self.d.log()[-4000:])
        with got[1] as c:
            self.label = f"podshim {c.version().runtime_version}"

    @property
    def proc(self):
        return self.d.proc

    def exec_agent(self):
        # Own session: a terminal's Ctrl-C reaches only this script, which cleans up in order.
        self.d.proc = subprocess.Popen(self.d.args(), stdin=subprocess.DEVNULL,
                                       stdout=self.d._log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        return self.d.proc

    def _monitors(self) -> list[int]:
        prefix = str(self.d.dir).encode()
        return [pid for pid, argv, _ in all_procs()
                if argv and (argv[0].endswith(b"podshim-monitor")
                             or argv[0].endswith(b"podshim-monitor-loop"))
                and any(a.startswith(prefix) for a in argv)]

    def helpers(self):
        return {"helpers": self._monitors(), "infra": []}

    def cleanup(self) -> None:
        if hasattr(self.d, "_log"):  # else podshimd never started
            try:
                self.ensure_running()
                remove_pods(self.endpoint)
            except Exception as e:  # noqa: BLE001 - the rest of the cleanup still runs
                print(f"restart: removing podshim pods failed: {e}", file=sys.stderr)
        if self.d.proc is not None:
            self.d.stop()
        for pid in self._monitors():  # monitors outlive the agent by design
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        rmdir_cgroups(self.cgroup_parent)
        unmount_under(str(self.d.dir))
        shutil.rmtree(self.d.dir, ignore_errors=True)


class ContainerdRuntime(Runtime):
    name = "containerd"

    def __init__(self, stack: contextlib.ExitStack, registry: Registry, image: str,
                 pause_ref: str):
        self.cgroup_parent = f"/podshim-rbench-{uuid.uuid4().hex[:8]}-ctrd"
        self.image = image
        self.ctrd = TmpfsStateContainerd(registry_addr=registry.addr, sandbox_image=pause_ref,
                                         subnet=CONTAINERD_SUBNET, state_tmpfs=True)
        stack.callback(self.cleanup)
        self.ctrd.start()
        self.endpoint = self.ctrd.endpoint
        self.socket_path = self.ctrd.socket
        self.log_root = str(self.ctrd.dir / "logs")
        with Client(self.endpoint, timeout=CALL_TIMEOUT) as c:
            for ref in (image, pause_ref):
                c.image.PullImage(c.pb.PullImageRequest(image=c.pb.ImageSpec(image=ref)),
                                  timeout=CALL_TIMEOUT)
            self.label = f"containerd {c.version().runtime_version}"

    def pod_config(self, pb, i: int):
        cfg = super().pod_config(pb, i)
        cfg.linux.cgroup_parent = self.cgroup_parent  # cgroupfs: runc makes PARENT/<id>
        return cfg

    @property
    def proc(self):
        return self.ctrd.proc

    def exec_agent(self):
        # As the helper starts it (tests/helpers/containerd.py), into the same log.
        self.ctrd.proc = subprocess.Popen(
            [self.ctrd.binary, "--config", str(self.ctrd.dir / "config.toml")],
            stdin=subprocess.DEVNULL, stdout=self.ctrd._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self.ctrd.proc

    def helpers(self):
        marker = self.ctrd.socket.encode()
        procs = all_procs()
        shims = [pid for pid, argv, _ in procs
                 if argv and b"containerd-shim" in argv[0] and marker in argv]
        shim_set = set(shims)
        pauses = [pid for pid, argv, ppid in procs
                  if ppid in shim_set and argv and argv[0].endswith(b"pause")]
        return {"helpers": shims, "infra": pauses}

    def cleanup(self) -> None:
        if self.ctrd.dir is None:  # containerd's start failed and has cleaned up after itself
            rmdir_cgroups(self.cgroup_parent)
            return
        try:
            self.ensure_running()
            remove_pods(self.endpoint)
        except Exception as e:  # noqa: BLE001 - the helper's stop() tries again, then kills
            print(f"restart: removing containerd pods failed: {e}", file=sys.stderr)
        self.ctrd.stop()  # containerd, leftover shims and runc containers, mounts, bridge, dir
        rmdir_cgroups(self.cgroup_parent)


# --------------------------------------------------------------------------------- CRI calls
def run_pods(rt: Runtime, n: int, concurrency: int) -> None:
    """n pods with one running `sleep` container each, from `concurrency` clients; untimed."""
    def worker(indices: list[int]) -> None:
        with Client(rt.endpoint, timeout=CALL_TIMEOUT) as c:
            pb, r = c.pb, c.runtime
            for i in indices:
                cfg = rt.pod_config(pb, i)
                pod_id = r.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                         timeout=CALL_TIMEOUT).pod_sandbox_id
                cid = r.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=rt.container_config(pb), sandbox_config=cfg),
                    timeout=CALL_TIMEOUT).container_id
                r.StartContainer(pb.StartContainerRequest(container_id=cid),
                                 timeout=CALL_TIMEOUT)

    k = max(1, min(concurrency, n))
    with concurrent.futures.ThreadPoolExecutor(k) as pool:
        for f in [pool.submit(worker, list(range(i, n, k))) for i in range(k)]:
            f.result()


def remove_pods(endpoint: str, concurrency: int = 8) -> None:
    """Stops and removes every container and pod of the endpoint, `concurrency` at a time."""
    with Client(endpoint, timeout=CALL_TIMEOUT) as c:
        pb = c.pb
        ctrs = list(c.runtime.ListContainers(pb.ListContainersRequest()).containers)
        pods = list(c.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items)

        def remove_ctr(cid: str) -> None:
            with contextlib.suppress(grpc.RpcError):  # the pod's removal below retries
                c.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
                c.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))

        def remove_pod(pid: str) -> None:
            c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
            c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(remove_ctr, [x.id for x in ctrs]))
            list(pool.map(remove_pod, [x.id for x in pods]))


def wait_version(endpoint: str, socket_path: str, timeout: float) -> tuple[float, Client] | None:
    """Polls until Version succeeds; returns (time.perf_counter() of the reply, the connected
    client, which the caller closes), or None on timeout.

    The socket is tried with a plain connect() every millisecond first (a fresh gRPC channel
    per try would cost more than that, and a channel's reconnect back-off grows to seconds);
    once it accepts, Version is called until it succeeds."""
    deadline = time.perf_counter() + timeout
    c: Client | None = None
    try:
        while time.perf_counter() < deadline:
            if c is None:
                if not unix_socket_accepts(socket_path):
                    time.sleep(0.001)
                    continue
                c = Client(endpoint, timeout=5)
            try:
                c.version(timeout=5)
                out, c = (time.perf_counter(), c), None
                return out
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:  # refused: a fresh channel
                    c.close()
                    c = None
                time.sleep(0.001)
        return None
    finally:
        if c is not None:
            c.close()


def wait_all_running(c: Client, n: int, poll_s: float, deadline: float) -> tuple[float, int]:
    """Polls List{PodSandbox,Containers} until n pods are READY and n containers RUNNING;
    returns (time.perf_counter() then, polls made)."""
    pb = c.pb
    polls = 0
    while True:
        polls += 1
        try:
            pods = c.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
            ctrs = c.runtime.ListContainers(pb.ListContainersRequest(), timeout=30).containers
            ready = sum(1 for p in pods if p.state == pb.SANDBOX_READY)
            running = sum(1 for x in ctrs if x.state == pb.CONTAINER_RUNNING)
            if ready >= n and running >= n:
                return time.perf_counter(), polls
        except grpc.RpcError:
            pass
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not all {n} pods READY and containers RUNNING after "
                               f"{RECOVERY_TIMEOUT:.0f} s")
        time.sleep(poll_s)


def container_pids(endpoint: str) -> dict[str, tuple[int, int | None]]:
    """{container id: (pid from ContainerStatus verbose info, that process's start time)}."""
    out = {}
    with Client(endpoint, timeout=CALL_TIMEOUT) as c:
        pb = c.pb
        for x in c.runtime.ListContainers(pb.ListContainersRequest()).containers:
            st = c.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=x.id,
                                                                     verbose=True))
            pid = int(json.loads(st.info["info"])["pid"])
            out[x.id] = (pid, start_time(pid))
    return out


# ------------------------------------------------------------------------------- the benchmark
def bench(rt: Runtime, n: int, restarts: int, poll_s: float, concurrency: int) -> dict:
    log(f"{rt.label}: starting {n} pods ...")
    t0 = time.perf_counter()
    run_pods(rt, n, concurrency)
    log(f"  {n} pods running after {time.perf_counter() - t0:.1f} s (not timed)")
    time.sleep(2)  # let start-up work settle (Go's GC, malloc trims)
    before = container_pids(rt.endpoint)
    if len(before) != n or any(st is None for _, st in before.values()):
        raise RuntimeError(f"{rt.name}: {len(before)} containers with live pids, wanted {n}")
    helpers_before = rt.helpers()
    agent_before = smaps_kib(rt.agent_pid())
    res: dict = {"runtime": rt.name, "label": rt.label, "pods": n, "restarts": [],
                 "agent_before_kill": agent_before, "loadavg_before": os.getloadavg()[0],
                 "helpers_count": {k: len(v) for k, v in helpers_before.items()}}
    for k in range(restarts):
        rt.kill_agent()
        t_exec = time.perf_counter()
        rt.exec_agent()
        got = wait_version(rt.endpoint, rt.socket_path, RECOVERY_TIMEOUT)
        if got is None:
            raise TimeoutError(f"{rt.name} did not answer Version within {RECOVERY_TIMEOUT} s")
        t_version, client = got
        with client as c:  # the same channel: polling starts at once
            t_ready, polls = wait_all_running(c, n, poll_s, t_exec + RECOVERY_TIMEOUT)
        version_ms = (t_version - t_exec) * 1e3
        ready_ms = (t_ready - t_exec) * 1e3
        after = container_pids(rt.endpoint)
        changed = sorted(cid for cid in before if after.get(cid) != before[cid])
        extra = sorted(set(after) - set(before))
        helpers_after = rt.helpers()
        helpers_changed = {kind: len(set(helpers_before[kind]) ^ set(helpers_after[kind]))
                           for kind in helpers_before}
        agent = smaps_kib(rt.agent_pid())
        res["restarts"].append({"version_ms": version_ms, "ready_ms": ready_ms, "polls": polls,
                                "containers_changed": len(changed), "containers_new": len(extra),
                                "helpers_changed": helpers_changed, "agent": agent})
        log(f"  restart {k + 1}/{restarts}: Version after {version_ms:.1f} ms, all running "
            f"after {ready_ms:.1f} ms ({polls} polls); containers with another pid: "
            f"{len(changed)}; helpers changed: {helpers_changed}; agent RSS "
            f"{agent['rss_kib'] / 1024:.1f} MiB")
        if changed or extra:
            log(f"  WARNING: restarted or new containers: {(changed + extra)[:5]} ...")
    res["loadavg_after"] = os.getloadavg()[0]
    time.sleep(2)
    h = rt.helpers()
    res["memory"] = {"agent": smaps_kib(rt.agent_pid()), "helpers": mem_sum(h["helpers"]),
                     "infra": mem_sum(h["infra"])}
    for key in ("version_ms", "ready_ms"):
        v = [r[key] for r in res["restarts"]]
        res[key] = {"p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v),
                    "min": min(v), "n": len(v)}
    res["containers_changed"] = sum(r["containers_changed"] + r["containers_new"]
                                    for r in res["restarts"])
    res["helpers_changed"] = sum(sum(r["helpers_changed"].values()) for r in res["restarts"])
    return res


# ------------------------------------------------------------------------------------ output
def mib(kib: float) -> float:
    return kib / 1024


def print_tables(res: dict) -> None:
    k = res["restarts"]
    print(f"\nrecovery after SIGKILL of the agent, ms from its exec, p50 / p99 / max over {k} "
          "restarts")
    print(f"{'runtime':<22}{'pods':>6}{'Version answers':>26}{'all READY + RUNNING':>26}"
          f"{'restarted':>11}{'load':>12}")
    for r in res["results"]:
        v, a = r["version_ms"], r["ready_ms"]
        print(f"{r['label']:<22}{r['pods']:>6}"
              f"{v['p50']:>10.1f} /{v['p99']:>7.1f} /{v['max']:>7.1f}"
              f"{a['p50']:>10.1f} /{a['p99']:>7.1f} /{a['max']:>7.1f}"
              f"{r['containers_changed'] + r['helpers_changed']:>11}"
              f"{r['loadavg_before']:>6.1f}-{r['loadavg_after']:.1f}")
    print("\nmemory in MiB after the last recovery (/proc/PID/smaps_rollup); agent RSS before "
          "the first kill in brackets; helpers: sum (mean per process)")
    print(f"{'runtime':<22}{'pods':>6}{'agent RSS':>18}{'helper RSS':>20}{'helper PSS':>18}"
          f"{'pause RSS':>18}{'pause PSS':>16}")
    for r in res["results"]:
        m = r["memory"]
        h, i = m["helpers"], m["infra"]
        agent = f"{mib(m['agent']['rss_kib']):.1f} ({mib(r['agent_before_kill']['rss_kib']):.1f})"
        cell = (lambda s, key: f"{mib(s[key]):.1f} ({mib(s[key.replace('_kib', '_mean_kib')]):.2f})"
                if s["count"] else "none")
        print(f"{r['label']:<22}{r['pods']:>6}{agent:>18}"
              f"{cell(h, 'rss_kib'):>20}{cell(h, 'pss_kib'):>18}"
              f"{cell(i, 'rss_kib'):>18}{cell(i, 'pss_kib'):>16}")
    print("helpers: podshim-monitor / podshim-monitor-loop (podshim), containerd-shim-runc-v2 (containerd); "
          "'restarted' counts containers whose pid or start time changed, and helper "
          "processes that appeared or went, over all restarts; load: 1-minute load average "
          "before the first kill and after the last recovery")


# -------------------------------------------------------------------------------------- main
def interrupted(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so that the cleanup runs."""
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, nargs="+", default=[100, 500],
                    help="numbers of running pods, one run per number and runtime")
    ap.add_argument("--restarts", type=int, default=5, help="SIGKILLs and restarts per run")
    ap.add_argument("--poll-ms", type=float, default=10.0,
                    help="interval of the List polls after Version answers")
    ap.add_argument("--start-concurrency", type=int, default=8,
                    help="clients starting the pods (untimed)")
    ap.add_argument("--containerd-max-pods", type=int, default=None,
                    help="skip containerd for larger --pods values (podshim still runs them)")
    ap.add_argument("--skip-containerd", action="store_true")
    ap.add_argument("--skip-podshim", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--podshimd", default=os.environ.get(
        "PODSHIMD", str(REPO / "build" / "release" / "agent" / "podshimd")),
        help="podshimd binary; podshim-monitor and podshim-pinns are found beside it or in "
        "../runtime/, its CNI plugins beside it or in ../cni/")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("restart: run as root", file=sys.stderr)
        return 2
    if not args.skip_containerd and shutil.which("containerd") is None:
        print("restart: containerd not installed (deploy/setup.sh), or use "
              "--skip-containerd", file=sys.stderr)
        return 2
    if not args.skip_podshim and not Path(args.podshimd).exists():
        print(f"restart: no podshimd at {args.podshimd}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupted)

    res: dict = {"restarts": args.restarts, "pods": args.pods, "poll_ms": args.poll_ms,
                 "podshimd": args.podshimd, "machine": machine(), "results": [],
                 "skipped": [], "commit": subprocess.run(
                     ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                     capture_output=True, text=True).stdout.strip()}
    if not args.skip_podshim:
        res["podshimd_mtime"] = time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(Path(args.podshimd).stat().st_mtime))
    with contextlib.ExitStack() as outer:
        reg = ctrd_image = pause_ref = None
        if not args.skip_containerd:
            log("starting a registry, pushing busybox and pause ...")
            reg = outer.enter_context(Registry())
            ctrd_image = f"{reg.addr}/library/busybox:bench"
            pause_ref = f"{reg.addr}/pause:3.9"
            images.push(images.build_image(images.STANDINS["busybox"]), ctrd_image)
            images.push(images.build_image(images.STANDINS["pause"]), pause_ref)
        for n in args.pods:
            kinds = [] if args.skip_podshim else ["podshim"]
            if not args.skip_containerd:
                if args.containerd_max_pods is not None and n > args.containerd_max_pods:
                    res["skipped"].append({"runtime": "containerd", "pods": n})
                    log(f"containerd with {n} pods: skipped (--containerd-max-pods)")
                else:
                    kinds.append("containerd")
            for kind in kinds:  # a fresh runtime for each run; removed before the next
                with contextlib.ExitStack() as stack:
                    if kind == "podshim":
                        log(f"starting podshimd ({args.podshimd}, busybox imported) ...")
                        rt: Runtime = PodshimRuntime(args.podshimd, stack)
                    else:
                        log("starting containerd, pulling busybox and pause ...")
                        rt = ContainerdRuntime(stack, reg, ctrd_image, pause_ref)
                    res["results"].append(bench(rt, n, args.restarts, args.poll_ms / 1e3,
                                                args.start_concurrency))
                    log(f"{rt.label}: removing {n} pods and stopping ...")
    res["machine"]["loadavg_end"] = os.getloadavg()[0]
    mc = res["machine"]
    print(f"\n{mc['cpus']} cores ({mc['cpu']}), {mc['mem_gib']} GiB, kernel {mc['kernel']}, "
          f"{mc['date']}; {mc['runc']}; load average {mc['loadavg_start']:.1f} at the start, "
          f"{mc['loadavg_end']:.1f} at the end; script at {res['commit']}, podshimd "
          f"{args.podshimd} built {res.get('podshimd_mtime', '-')}")
    print_tables(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the cleanup has run by now
        print("restart: interrupted; everything it started is removed", file=sys.stderr)
        sys.exit(130)
