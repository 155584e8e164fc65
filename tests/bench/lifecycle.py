#!/usr/bin/env python3
"""Pod lifecycle benchmark: podshimd beside containerd (Debian's 1.6 + runc), same image, one run.

For each runtime and network mode, runs --iterations pod lifecycles (RunPodSandbox,
CreateContainer, StartContainer, StopContainer, RemoveContainer, StopPodSandbox,
RemovePodSandbox; one busybox `sleep` container per pod) first from one client, then from
--concurrency clients at once (threads, each with its own gRPC channel and its own pods, the
iterations split between them), and times every RPC on the client. Then it starts --pods pods
with one running container each and measures the agent's memory: podshimd (VmRSS) plus its
podshim-monitor processes, containerd plus its containerd-shim-runc-v2 processes (and, apart,
the pause processes, which podshim does not have).

Network modes: both runtimes give pods a network through CNI ("CNI"): podshim its embedded
default network (podshim-bridge with podshim-ipam; its CNI config dir is empty), containerd
Debian's bridge + host-local + portmap. Both also run with host-network pods (NamespaceOption network=NODE), which takes the pod
network out of both: that is the "networking aside" comparison.

The volatile state (podshim's --state_dir; containerd's state dir and runc root) is on a tmpfs,
as /run is on a node; --state-on-disk leaves it on the disk. Root dirs are on the disk.

Everything is started here, on private directories: a docker-registry on 127.0.0.1 (for
containerd's busybox and pause images), containerd (tests/helpers/containerd.py), podshimd
(busybox imported with `podshimd import`, its own --cgroup_parent). All of it is removed at
the end, on failure and on Ctrl-C or SIGTERM too. Prints tables; --json FILE writes the
numbers, --svg FILE a bar chart of the p50s, --from-json FILE redoes both from a saved run.
Needs root, containerd + runc + CNI plugins (deploy/setup.sh installs them) and a podshimd build
(release is best: --podshimd or $PODSHIMD, default build/release/agent/podshimd).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402
from containerd import Containerd, unmount_under  # noqa: E402
from registry import Registry  # noqa: E402

from podshim import Client  # noqa: E402
from podshim.daemon import Podshimd  # noqa: E402

RPCS = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
        "RemoveContainer", "StopPodSandbox", "RemovePodSandbox")
POD_START = "pod+container start"  # RunPodSandbox + CreateContainer + StartContainer
ROWS = RPCS + (POD_START,)
PODSHIM_IMAGE = "docker.io/library/busybox:bench"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CALL_TIMEOUT = 120.0
# StopContainer with timeout 0 kills at once. `sleep` as PID 1 of its PID namespace ignores
# SIGTERM, and a shell that traps it would race its own `trap` against an early stop.
COMMAND = ("sleep", "3600")


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


# --------------------------------------------------------------------------------- processes
def proc_status_kib(pid: int, key: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """A process's RSS before a `with` block and its peak during it (KiB), sampled every 50 ms."""

    def __init__(self, pid: int):
        self.pid = pid
        self.before = self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._done.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, proc_status_kib(self.pid))
            self._done.wait(0.05)

    def __enter__(self):
        self.before = self.peak = proc_status_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


# ------------------------------------------------------------- paired benchmarks (exec, pf)
def paired_parser(description: str, mib_help: str) -> argparse.ArgumentParser:
    """The options of the streaming benchmarks that time podshimd beside containerd."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--iterations", type=int, default=200, help="round trips per row and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256, help=mib_help)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--settle", type=float, default=20, metavar="S",
                    help="before each timed repeat, wait up to S s for a quiet machine")
    ap.add_argument("--skip-containerd", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--podshimd", default=os.environ.get(
        "PODSHIMD", str(REPO / "build" / "release" / "agent" / "podshimd")))
    return ap


def paired_runtimes(args, stack: contextlib.ExitStack, prog: str) -> list:
    """podshimd and (unless --skip-containerd) containerd, started on `stack`; None (and why,
    on stderr) when this machine cannot run them."""
    if os.geteuid() != 0:
        print(f"{prog}: run as root", file=sys.stderr)
        return None
    if not args.skip_containerd and shutil.which("containerd") is None:
        print(f"{prog}: containerd not installed (deploy/setup.sh installs it)", file=sys.stderr)
        return None
    signal.signal(signal.SIGTERM, interrupted)
    print("starting podshimd ...", flush=True)
    runtimes = [PodshimRuntime(args.podshimd, stack, True)]
    if not args.skip_containerd:
        print("starting a registry and containerd ...", flush=True)
        runtimes.append(ContainerdRuntime(stack, True))
    return runtimes


def agent_pid(rt) -> int:
    """podshimd's or containerd's pid."""
    return rt.d.proc.pid if rt.name == "podshim" else rt.ctrd.proc.pid


def run_paired(args, runtimes: list, res: dict, setup, rows: list, throughput) -> None:
    """Times each runtime: setup(rt) gives a handle; each row (key, label, fn) is fn(handle, n)
    -> n timings in ms (warmed up first with --warmup); throughput(handle, agent_pid, mib) -> a
    dict with mib_per_s and the agent's RSS. --repeats times, alternating which runtime goes
    first, after waiting for a quiet machine; fills res["runtimes"]."""
    handles = {}
    for rt in runtimes:
        handles[rt.name] = setup(rt)
        for _, _, fn in rows:
            fn(handles[rt.name], args.warmup)
        res["runtimes"][rt.name] = {"label": rt.label, "agent_pid": agent_pid(rt),
                                    "throughput": [], **{key: [] for key, _, _ in rows}}
    for rep in range(args.repeats):
        for rt in runtimes if rep % 2 == 0 else list(reversed(runtimes)):
            h, r = handles[rt.name], res["runtimes"][rt.name]
            settle(args.settle)
            for key, _, fn in rows:
                r[key].append(summary(fn(h, args.iterations)))
            r["throughput"].append(throughput(h, r["agent_pid"], args.mib))
            done = ", ".join(f"{label} p50 {r[key][-1]['p50']:.2f} ms" for key, label, _ in rows)
            print(f"{rt.label} repeat {rep + 1}: {done}, "
                  f"{r['throughput'][-1]['mib_per_s']:.0f} MiB/s", flush=True)


def print_paired(args, res: dict, rows: list, throughput_label: str, setting: str) -> None:
    """The table of run_paired's numbers (p50 and p99 per repeat, MiB/s, RSS); --json."""
    mc = res["machine"]
    print(f"\n{mc['cpus']} cores, kernel {mc['kernel']}, {mc['date']}; {args.iterations} round "
          f"trips per row and repeat, {args.repeats} repeats (alternated), {args.mib} MiB; "
          f"{setting}")
    print(f"{'runtime':<22} {'row':<30} {'p50 ms (per repeat)':<28} {'p99 ms':<22}")
    for r in res["runtimes"].values():
        for key, label, _ in rows:
            p50s = " / ".join(f"{x['p50']:.2f}" for x in r[key])
            p99s = " / ".join(f"{x['p99']:.2f}" for x in r[key])
            print(f"{r['label']:<22} {label:<30} {p50s:<28} {p99s:<22}")
        mibs = " / ".join(f"{x['mib_per_s']:.0f}" for x in r["throughput"])
        rss = max(x["agent_rss_peak_kib"] - x["agent_rss_before_kib"] for x in r["throughput"])
        print(f"{r['label']:<22} {throughput_label:<30} {mibs:<28} agent RSS +{rss} KiB at most")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


def summary(values: list[float]) -> dict:
    """p50, p99, mean and count of a row of timings."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99),
            "mean": statistics.mean(values), "n": len(values)}


def proc_pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def all_procs() -> list[tuple[int, list[bytes], int]]:
    """(pid, argv, ppid) of every process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append((int(entry), argv, ppid))
    return out


def is_monitor(argv0: bytes) -> bool:
    """podshim-monitor starts a container, then execs podshim-monitor-loop for its lifetime."""
    return argv0.endswith(b"podshim-monitor") or argv0.endswith(b"podshim-monitor-loop")


def mem_of(pids: list[int]) -> dict:
    return {"count": len(pids),
            "rss_kib": sum(proc_status_kib(p) for p in pids),
            "pss_kib": sum(proc_pss_kib(p) for p in pids)}


def rmdir_cgroups(parent: str) -> None:
    """Kills what is left in the cgroup trees under parent, then removes them (v1 and v2)."""
    roots = [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]
    for root in roots:
        path = root / parent.lstrip("/")
        if not path.is_dir():
            continue
        for procs in path.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
    time.sleep(0.2)
    for root in roots:
        path = root / parent.lstrip("/")
        if path.is_dir():
            for d in sorted((p for p in path.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True) + [path]:
                with contextlib.suppress(OSError):
                    d.rmdir()


def mount_tmpfs(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "tmpfs", path], check=True)



def remove_all_pods(endpoint: str) -> None:
    with Client(endpoint, timeout=CALL_TIMEOUT) as c:
        pb = c.pb
        for ctr in c.runtime.ListContainers(pb.ListContainersRequest()).containers:
            with contextlib.suppress(Exception):
                c.runtime.StopContainer(pb.StopContainerRequest(container_id=ctr.id, timeout=0))
                c.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=ctr.id))
        for sb in c.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sb.id))
            c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sb.id))


# ---------------------------------------------------------------------------------- runtimes
class Runtime:
    """One CRI endpoint under test, with how to name its pods and weigh its processes."""

    name = ""
    label = ""  # with the version, for tables
    endpoint = ""
    image = ""
    log_root = ""

    def pod_config(self, pb, tag: str, host_net: bool):
        name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="bench", uid=uuid.uuid4().hex),
            # Host network means the host's UTS namespace: no hostname (as the kubelet does).
            hostname="" if host_net else name, log_directory=os.path.join(self.log_root, name),
            labels={"bench": "lifecycle"})
        ns = cfg.linux.security_context.namespace_options
        ns.network = pb.NODE if host_net else pb.POD
        ns.pid = pb.CONTAINER
        ns.ipc = pb.POD
        return cfg

    def container_config(self, pb):
        return pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleep"),
                                  image=pb.ImageSpec(image=self.image), command=list(COMMAND),
                                  log_path="sleep.log")

    def memory(self) -> dict:
        raise NotImplementedError


class PodshimRuntime(Runtime):
    name = "podshim"

    def __init__(self, binary: str, stack: contextlib.ExitStack, state_tmpfs: bool,
                 log_level: str = "info", keep_log: str | None = None):
        self.keep_log = keep_log
        self.cgroup_parent = f"/podshim-bench-{uuid.uuid4().hex[:8]}"
        base = Path(tempfile.mkdtemp(prefix="podshim-", dir="/tmp"))
        self.d = Podshimd(binary, extra_args=[f"--cgroup_parent={self.cgroup_parent}"],
                          log_level=log_level, base_dir=base)
        stack.callback(self.cleanup)
        if state_tmpfs:  # as /run/podshim is on a node
            mount_tmpfs(self.d.state_dir)
        layout = images.standin_layout("busybox")
        subprocess.run([str(self.d.binary), f"--socket={self.d.socket}",
                        f"--state_dir={self.d.state_dir}", f"--root_dir={self.d.root_dir}",
                        "import", layout, f"--name={PODSHIM_IMAGE}"],
                       capture_output=True, text=True, timeout=300, check=True)
        self.d.start(timeout=30)
        self.endpoint = self.d.endpoint
        self.image = PODSHIM_IMAGE
        self.log_root = str(self.d.dir / "logs")
        with Client(self.endpoint) as c:
            self.label = f"podshim {c.version().runtime_version}"

    def memory(self) -> dict:
        prefix = str(self.d.dir).encode()
        monitors = [pid for pid, argv, _ in all_procs()
                    if argv and is_monitor(argv[0])
                    and any(a.startswith(prefix) for a in argv)]
        return {"agent": mem_of([self.d.proc.pid]), "helpers": mem_of(monitors),
                "infra": mem_of([])}

    def cleanup(self) -> None:
        if self.d.proc is not None and self.d.proc.poll() is None:
            try:
                remove_all_pods(self.endpoint)
            except Exception as e:  # noqa: BLE001 - the rest of the cleanup still runs
                print(f"lifecycle: removing podshim pods failed: {e}", file=sys.stderr)
        self.d.stop()
        if self.keep_log and self.d.log_path.exists():
            shutil.copyfile(self.d.log_path, self.keep_log)
        # Monitors outlive the agent by design: kill what a failure left behind.
        prefix = str(self.d.dir).encode()
        for pid, argv, _ in all_procs():
            if argv and is_monitor(argv[0]) and any(
                    a.startswith(prefix) for a in argv):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        rmdir_cgroups(self.cgroup_parent)
        unmount_under(str(self.d.dir))
        shutil.rmtree(self.d.dir, ignore_errors=True)


class TmpfsStateContainerd(Containerd):
    """The helper's containerd with its state dir and runc root on tmpfs, as on a node
    (/run/containerd). The helper's stop() unmounts everything under its dir."""

    def __init__(self, *args, state_tmpfs: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.state_tmpfs = state_tmpfs

    def _write_config(self) -> None:
        super()._write_config()
        if self.state_tmpfs:
            for sub in ("state", "runc"):
                mount_tmpfs(str(self.dir / sub))


class ContainerdRuntime(Runtime):
    name = "containerd"

    def __init__(self, stack: contextlib.ExitStack, state_tmpfs: bool):
        self.cgroup_parent = f"/podshim-bench-{uuid.uuid4().hex[:8]}-ctrd"
        reg = stack.enter_context(Registry())
        busybox = images.build_image(images.STANDINS["busybox"])
        pause = images.build_image(images.STANDINS["pause"])
        self.image = f"{reg.addr}/library/busybox:bench"
        pause_ref = f"{reg.addr}/pause:3.9"
        images.push(busybox, self.image)
        images.push(pause, pause_ref)
        self.ctrd = TmpfsStateContainerd(registry_addr=reg.addr, sandbox_image=pause_ref,
                                         state_tmpfs=state_tmpfs)
        stack.callback(lambda: rmdir_cgroups(self.cgroup_parent))
        stack.enter_context(self.ctrd)
        self.endpoint = self.ctrd.endpoint
        self.log_root = str(self.ctrd.dir / "logs")
        with Client(self.endpoint, timeout=CALL_TIMEOUT) as c:
            for ref in (self.image, pause_ref):
                c.image.PullImage(c.pb.PullImageRequest(image=c.pb.ImageSpec(image=ref)),
                                  timeout=CALL_TIMEOUT)
            self.label = f"containerd {c.version().runtime_version}"

    def pod_config(self, pb, tag: str, host_net: bool):
        cfg = super().pod_config(pb, tag, host_net)
        # cgroupfs driver: runc makes PARENT/<id> for the sandbox and each container.
        cfg.linux.cgroup_parent = self.cgroup_parent
        return cfg

    def memory(self) -> dict:
        marker = self.ctrd.socket.encode()
        procs = all_procs()
        shims = [pid for pid, argv, _ in procs
                 if argv and b"containerd-shim" in argv[0] and marker in argv]
        shim_set = set(shims)
        pauses = [pid for pid, argv, ppid in procs
                  if ppid in shim_set and argv and argv[0].endswith(b"pause")]
        return {"agent": mem_of([self.ctrd.proc.pid]), "helpers": mem_of(shims),
                "infra": mem_of(pauses)}


# ---------------------------------------------------------------------------------- lifecycle
def timed(samples: dict[str, list[float]], rpc: str, fn, req):
    t0 = time.perf_counter()
    resp = fn(req, timeout=CALL_TIMEOUT)
    samples[rpc].append((time.perf_counter() - t0) * 1e3)
    return resp


def lifecycles(rt: Runtime, host_net: bool, cycles: int, tag: str,
               samples: dict[str, list[float]] | None) -> None:
    """cycles full pod lifecycles on one channel; samples=None times nothing (warm-up)."""
    s: dict[str, list[float]] = {r: [] for r in ROWS}
    with Client(rt.endpoint, timeout=CALL_TIMEOUT) as c:
        pb, r = c.pb, c.runtime
        c.wait_ready(30)
        for _ in range(cycles):
            cfg = rt.pod_config(pb, tag, host_net)
            pod_id = ""
            try:
                t0 = time.perf_counter()
                pod_id = timed(s, "RunPodSandbox", r.RunPodSandbox,
                               pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
                cid = timed(s, "CreateContainer", r.CreateContainer, pb.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=rt.container_config(pb),
                    sandbox_config=cfg)).container_id
                timed(s, "StartContainer", r.StartContainer,
                      pb.StartContainerRequest(container_id=cid))
                s[POD_START].append((time.perf_counter() - t0) * 1e3)
                timed(s, "StopContainer", r.StopContainer,
                      pb.StopContainerRequest(container_id=cid, timeout=0))
                timed(s, "RemoveContainer", r.RemoveContainer,
                      pb.RemoveContainerRequest(container_id=cid))
                timed(s, "StopPodSandbox", r.StopPodSandbox,
                      pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
                timed(s, "RemovePodSandbox", r.RemovePodSandbox,
                      pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
                pod_id = ""
            finally:
                if pod_id:  # a failed cycle: do not leave the pod behind
                    with contextlib.suppress(Exception):
                        r.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
                        r.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    if samples is not None:
        for k, v in s.items():
            samples[k].extend(v)


def cpu_busy(window: float) -> float:
    """The machine's busy CPU fraction (0..1, all cores) over `window` seconds."""
    def sample() -> tuple[int, int]:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = f[3] + f[4]  # idle + iowait
        return sum(f[:8]) - idle, sum(f[:8])
    b0, t0 = sample()
    time.sleep(window)
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0)


def settle(limit_s: float, busy_max: float = 0.10) -> dict:
    """Waits until the machine is quiet: two 0.5 s windows in a row under `busy_max`.

    Both runtimes leave work behind a mode (containerd's shims exiting and its
    garbage collection, podshim's monitors and reaper), so the next mode, of
    either runtime, starts only when that is done; `limit_s` bounds the wait.
    """
    t0 = time.monotonic()
    quiet, busy = 0, 1.0
    while quiet < 2 and time.monotonic() - t0 < limit_s:
        busy = cpu_busy(0.5)
        quiet = quiet + 1 if busy < busy_max else 0
    return {"settle_s": round(time.monotonic() - t0, 1), "busy_before": round(busy, 3)}


def run_mode(rt: Runtime, host_net: bool, iterations: int, concurrency: int,
             warmup: int, settle_limit_s: float = 0) -> dict:
    if warmup:
        lifecycles(rt, host_net, warmup, "warm", None)
    quiet = settle(settle_limit_s) if settle_limit_s > 0 else {}
    samples: dict[str, list[float]] = {r: [] for r in ROWS}
    lock = threading.Lock()
    per = [iterations // concurrency + (1 if i < iterations % concurrency else 0)
           for i in range(concurrency)]

    def worker(i: int) -> None:
        mine: dict[str, list[float]] = {r: [] for r in ROWS}
        lifecycles(rt, host_net, per[i], f"c{i}", mine)
        with lock:
            for k, v in mine.items():
                samples[k].extend(v)

    t0 = time.perf_counter()
    if concurrency == 1:
        worker(0)
    else:
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(worker, i) for i in range(concurrency)]:
                f.result()
    wall = time.perf_counter() - t0
    out = {rpc: {"p50": percentile(v, 50), "p99": percentile(v, 99),
                 "mean": statistics.mean(v), "max": max(v), "n": len(v)}
           for rpc, v in samples.items()}
    return {"rpcs": out, "wall_s": wall, "pods_per_s": iterations / wall, **quiet}


def memory_with_pods(rt: Runtime, pods: int) -> dict:
    """Memory with `pods` running pods (one `sleep` container each); removes them after."""
    made = []
    with Client(rt.endpoint, timeout=CALL_TIMEOUT) as c:
        pb, r = c.pb, c.runtime
        try:
            for _ in range(pods):
                cfg = rt.pod_config(pb, "rss", host_net=False)
                pod_id = r.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                         timeout=CALL_TIMEOUT).pod_sandbox_id
                made.append(pod_id)
                cid = r.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=rt.container_config(pb), sandbox_config=cfg),
                    timeout=CALL_TIMEOUT).container_id
                r.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=CALL_TIMEOUT)
            time.sleep(2)  # let start-up garbage settle (Go's GC, malloc trims)
            running = sum(1 for x in r.ListContainers(pb.ListContainersRequest()).containers
                          if x.state == pb.CONTAINER_RUNNING)
            mem = rt.memory()
            mem["running_containers"] = running
            return mem
        finally:
            for pod_id in made:
                with contextlib.suppress(Exception):
                    r.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                     timeout=CALL_TIMEOUT)
                    r.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                       timeout=CALL_TIMEOUT)


# ------------------------------------------------------------------------------------ output
def mib(kib: int) -> float:
    return kib / 1024


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo_kib("MemTotal")
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem / 1024 / 1024, 1),
            "kernel": platform.release(), "runc": runc.splitlines()[0] if runc else "",
            "date": datetime.date.today().isoformat(), "loadavg_start": os.getloadavg()[0]}


def proc_meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def print_tables(res: dict) -> None:
    cols = [(m["label"], m) for m in res["modes"]]
    for conc in sorted({m["concurrency"] for m in res["modes"]}):
        sel = [(lbl, m) for lbl, m in cols if m["concurrency"] == conc]
        who = "1 client" if conc == 1 else f"{conc} concurrent clients"
        print(f"\nlatency in ms, p50 / p99, {res['iterations']} pod lifecycles, {who}")
        w = max(18, *(len(lbl) + 2 for lbl, _ in sel))
        print(f"{'':<22}" + "".join(f"{lbl:>{w}}" for lbl, _ in sel))
        for rpc in ROWS:
            cells = []
            for _, m in sel:
                v = m["rpcs"][rpc]
                cells.append(f"{v['p50']:.1f} / {v['p99']:.1f}")
            print(f"{rpc:<22}" + "".join(f"{c:>{w}}" for c in cells))
        print(f"{'lifecycles per second':<22}"
              + "".join(f"{m['pods_per_s']:>{w}.1f}" for _, m in sel))
    print(f"\nmemory in MiB (RSS; PSS in brackets for sums over processes), idle and with "
          f"{res['pods']} running pods of one `sleep` container")
    print(f"{'runtime':<22}{'agent idle':>12}{'agent +pods':>13}{'monitors/shims':>20}"
          f"{'pause':>16}{'total +pods':>13}")
    for name, m in res["memory"].items():
        busy = m["with_pods"]
        helpers = busy["helpers"]
        infra = busy["infra"]
        total = busy["agent"]["rss_kib"] + helpers["rss_kib"] + infra["rss_kib"]
        print(f"{m['label']:<22}{mib(m['idle']['agent']['rss_kib']):>12.1f}"
              f"{mib(busy['agent']['rss_kib']):>13.1f}"
              f"{mib(helpers['rss_kib']):>9.1f} ({mib(helpers['pss_kib']):.1f}) x{helpers['count']}"
              f"{mib(infra['rss_kib']):>7.1f} ({mib(infra['pss_kib']):.1f})"
              f"{mib(total):>13.1f}")
        if "idle_after" in m:
            print(f"{'':<22}agent idle after the pods were removed: "
                  f"{mib(m['idle_after']['agent']['rss_kib']):.1f} MiB")


def svg_chart(res: dict, path: str) -> None:
    """Grouped bars of p50 per RPC, one panel per concurrency, log scale; plain SVG."""
    import math
    palette = {"podshim": ["#1f5fbf", "#7fb2f0"], "containerd": ["#c0392b", "#f0a04b"]}
    labels, color = [], {}
    for m in sorted(res["modes"], key=lambda m: (m["runtime"] != "podshim", m["host_net"])):
        if m["label"] not in labels:
            shades = palette.get(m["runtime"], ["#5a9e6f", "#9c6ade"])
            color[m["label"]] = shades[sum(1 for lb in labels if lb.split()[0] ==
                                           m["runtime"]) % len(shades)]
            labels.append(m["label"])
    concs = sorted({m["concurrency"] for m in res["modes"]})
    vals = [m["rpcs"][r]["p50"] for m in res["modes"] for r in ROWS]
    lo = 10 ** math.floor(math.log10(max(min(vals) / 2, 0.01)))
    hi = max(vals) * 2.5  # headroom for the value labels
    W, left, right, panel_h, top, gap = 980, 60, 20, 300, 50, 95
    H = top + 25 + len(concs) * (panel_h + gap) - gap + 75
    plot_w = W - left - right
    group_w = plot_w / len(ROWS)
    bar_w = min(22, (group_w - 14) / max(1, len(labels)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">'
           f'Pod lifecycle latency, p50 in ms (log scale), {res["iterations"]} lifecycles, '
           f'{res["machine"]["cpus"]} cores, {res["machine"]["date"]}</text>']
    lx = left
    for lbl in labels:  # legend
        out.append(f'<rect x="{lx}" y="30" width="12" height="12" fill="{color[lbl]}"/>')
        out.append(f'<text x="{lx + 16}" y="40">{lbl}</text>')
        lx += 30 + 7 * len(lbl)

    def y_of(v: float, y0: float) -> float:
        f = (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return y0 + panel_h - f * panel_h

    for pi, conc in enumerate(concs):
        y0 = top + 25 + pi * (panel_h + gap)
        title = "1 client" if conc == 1 else f"{conc} concurrent clients"
        out.append(f'<text x="{left}" y="{y0 - 8}" font-weight="bold">{title}</text>')
        d = lo
        while d <= hi * 1.0001:
            y = y_of(d, y0)
            out.append(f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" '
                       'stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{d:g}</text>')
            d *= 10
        sel = {m["label"]: m for m in res["modes"] if m["concurrency"] == conc}
        for gi, rpc in enumerate(ROWS):
            gx = left + gi * group_w + (group_w - bar_w * len(labels)) / 2
            for bi, lbl in enumerate(labels):
                if lbl not in sel:
                    continue
                v = sel[lbl]["rpcs"][rpc]["p50"]
                x = gx + bi * bar_w
                y = y_of(v, y0)
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                           f'height="{y0 + panel_h - y:.1f}" fill="{color[lbl]}">'
                           f'<title>{lbl} {rpc}: {v:.2f} ms</title></rect>')
                tx, ty = x + (bar_w - 2) / 2 + 3, y - 3
                out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="9" '
                           f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{v:.3g}</text>')
            name = rpc.replace("pod+container start", "pod+ctr start")
            out.append(f'<text x="{left + (gi + 0.5) * group_w:.1f}" y="{y0 + panel_h + 16}" '
                       f'text-anchor="middle">{name}</text>')
        out.append(f'<line x1="{left}" x2="{W - right}" y1="{y0 + panel_h}" '
                   f'y2="{y0 + panel_h}" stroke="#333"/>')
    out.append(f'<text x="{left}" y="{H - 26}" fill="#555">CNI: podshim with its own '
               'podshim-bridge plugin, containerd with Debian\'s bridge + host-local + '
               'portmap.</text>')
    out.append(f'<text x="{left}" y="{H - 12}" fill="#555">host net: network=NODE, no pod '
               'network for either runtime. p99s are in docs/benchmarks.md.</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


# -------------------------------------------------------------------------------------- main
def interrupted(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so that the cleanup runs."""
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=100,
                    help="pod lifecycles per runtime and mode (split among the clients)")
    ap.add_argument("--concurrency", type=int, default=8,
                    help="clients of the concurrent runs (besides the 1-client run)")
    ap.add_argument("--pods", type=int, default=100, help="running pods for the memory figure")
    ap.add_argument("--warmup", type=int, default=3, help="untimed lifecycles before each mode")
    ap.add_argument("--skip-containerd", action="store_true")
    ap.add_argument("--settle", type=float, default=30, metavar="S",
                    help="before each timed mode, wait up to S seconds for the machine to be "
                         "quiet (CPU under 10%% busy); 0: do not wait")
    ap.add_argument("--networks", default="cni,host",
                    help="which pod networks to time, comma separated: cni, host (default both)")
    ap.add_argument("--state-on-disk", action="store_true",
                    help="keep the runtimes' state dirs (podshim's --state_dir, containerd's "
                    "state and runc root) on the disk instead of a tmpfs like /run")
    ap.add_argument("--podshimd-log-level", default="info",
                    help="debug logs every RPC with its duration (see --podshimd-log)")
    ap.add_argument("--podshimd-log", metavar="FILE", help="keep podshimd's log there")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--svg", metavar="FILE", help="write a bar chart of the p50s (SVG)")
    ap.add_argument("--podshimd", default=os.environ.get(
        "PODSHIMD", str(REPO / "build" / "release" / "agent" / "podshimd")))
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: print the tables (and write --svg) from a --json file")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        print_tables(res)
        if args.svg:
            svg_chart(res, args.svg)
        return 0
    if os.geteuid() != 0:
        print("lifecycle: run as root", file=sys.stderr)
        return 2
    if not args.skip_containerd and shutil.which("containerd") is None:
        print("lifecycle: containerd not installed (deploy/setup.sh installs them), or use "
              "--skip-containerd", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupted)

    res: dict = {"iterations": args.iterations, "concurrency": args.concurrency,
                 "state_on_disk": args.state_on_disk,
                 "pods": args.pods, "warmup": args.warmup, "machine": machine(),
                 "modes": [], "memory": {}}
    with contextlib.ExitStack() as stack:
        print("starting podshimd (busybox imported) ...", flush=True)
        runtimes: list[Runtime] = [PodshimRuntime(args.podshimd, stack, not args.state_on_disk,
                                                  args.podshimd_log_level, args.podshimd_log)]
        if not args.skip_containerd:
            print("starting a registry and containerd, pulling busybox and pause ...",
                  flush=True)
            runtimes.append(ContainerdRuntime(stack, not args.state_on_disk))
        for rt in runtimes:
            res["memory"][rt.name] = {"label": rt.label, "idle": rt.memory()}
        net_name = {("podshim", False): "CNI", ("containerd", False): "CNI",
                    ("podshim", True): "host net", ("containerd", True): "host net"}
        concs = [1] + ([args.concurrency] if args.concurrency > 1 else [])
        for conc in concs:
            for host_net in [n == "host" for n in args.networks.split(",")]:
                for rt in runtimes:  # alternated, so that both see the same machine
                    label = f"{rt.label.split()[0]} {net_name[(rt.name, host_net)]}"
                    print(f"{label}, {conc} client(s), {args.iterations} lifecycles ...",
                          flush=True)
                    m = run_mode(rt, host_net, args.iterations, conc, args.warmup,
                                 args.settle)
                    m.update(runtime=rt.name, version=rt.label, host_net=host_net,
                             concurrency=conc, label=label)
                    res["modes"].append(m)
                    v = m["rpcs"][POD_START]
                    print(f"  pod+container start p50 {v['p50']:.1f} ms, p99 {v['p99']:.1f} ms; "
                          f"{m['pods_per_s']:.1f} lifecycles/s"
                          + (f" (waited {m['settle_s']} s for a quiet machine, "
                             f"{m['busy_before'] * 100:.0f}% busy)" if "settle_s" in m else ""),
                          flush=True)
        for rt in runtimes:
            print(f"{rt.label}: memory with {args.pods} running pods ...", flush=True)
            res["memory"][rt.name]["with_pods"] = memory_with_pods(rt, args.pods)
            time.sleep(2)
            res["memory"][rt.name]["idle_after"] = rt.memory()
    res["machine"]["loadavg_end"] = os.getloadavg()[0]
    mc = res["machine"]
    print(f"\n{mc['cpus']} cores ({mc['cpu']}), {mc['mem_gib']} GiB, kernel {mc['kernel']}, "
          f"{mc['date']}; {mc['runc']}; load average {mc['loadavg_start']:.1f} at the start, "
          f"{mc['loadavg_end']:.1f} at the end")
    print_tables(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    if args.svg:
        svg_chart(res, args.svg)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the cleanup has run by now
        print("lifecycle: interrupted; everything it started is removed", file=sys.stderr)
        sys.exit(130)
