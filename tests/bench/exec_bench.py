#!/usr/bin/env python3
"""Exec through the streaming server: podshimd beside containerd (Debian's 1.6 + runc), one run.

For each runtime, one host-network pod with one busybox `sleep` container, then, alternating
the runtimes, --repeats times:
  * exec round trip: Exec (the RPC) + WebSocket connect + `true` run to its end + the status,
    --iterations times, from the Python client (python/podshim/streams.py);
  * ExecSync `true` round trip, the same number of times, for reference (no streaming);
  * exec output throughput: `head -c N /dev/zero` (--mib MiB) read to the end, MiB/s, with the
    agent's peak RSS during it (sampled every 50 ms).

Both sides are asked for the same WebSocket subprotocol, v4.channel.k8s.io (containerd's CRI
streaming server, the kubelet's library, does not speak v5), binary framing, stdout and stderr,
no tty. What differs: podshim runs the command through podshim-monitor exec (a helper that
joins the container and forks it); containerd through its shim and `runc exec`. Both answer the
URL on 127.0.0.1. Everything is started here and removed at the end (lifecycle.py's runtimes).

Prints p50/p99 per row and repeat, the spread of the p50s across repeats, throughput per repeat,
and memory; --json FILE writes the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lifecycle  # noqa: E402  (its runtimes, percentile, settle, machine)
from lifecycle import REPO, ContainerdRuntime, PodshimRuntime, percentile  # noqa: E402

from podshim import Client, streams  # noqa: E402

PROTOCOL = "v4.channel.k8s.io"
MiB = 1 << 20


def start_container(rt) -> tuple[Client, str, str]:
    c = Client(rt.endpoint, timeout=lifecycle.CALL_TIMEOUT)
    pb = c.pb
    cfg = rt.pod_config(pb, "exec", host_net=True)
    pod = c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    cid = c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=rt.container_config(pb), sandbox_config=cfg)).container_id
    c.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    return c, pod, cid


def exec_round_trips(c: Client, cid: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        url = c.exec_url(cid, ["true"])
        r = streams.exec_url(url, protocol=PROTOCOL)
        out.append((time.perf_counter() - t0) * 1e3)
        if r.exit_code != 0:
            raise RuntimeError(f"exec true: {r}")
    return out


def execsync_round_trips(c: Client, cid: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.runtime.ExecSync(c.pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10))
        out.append((time.perf_counter() - t0) * 1e3)
        if r.exit_code != 0:
            raise RuntimeError(f"ExecSync true: {r}")
    return out


def throughput(c: Client, cid: str, agent_pid: int, mib: int) -> dict:
    peak = [lifecycle.proc_status_kib(agent_pid)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            with contextlib.suppress(OSError, ValueError):
                peak[0] = max(peak[0], lifecycle.proc_status_kib(agent_pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    before = lifecycle.proc_status_kib(agent_pid)
    sampler.start()
    total = 0
    t0 = time.perf_counter()
    url = c.exec_url(cid, ["head", "-c", str(mib * MiB), "/dev/zero"])
    with streams.Stream(url, PROTOCOL) as s:
        while True:
            channel, data = s.recv()
            if channel is None:
                break
            if channel == streams.STDOUT:
                total += len(data)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if total != mib * MiB:
        raise RuntimeError(f"got {total} bytes of {mib} MiB")
    return {"mib_per_s": mib / wall, "wall_s": wall, "agent_rss_before_kib": before,
            "agent_rss_peak_kib": peak[0]}


def summary(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99),
            "mean": statistics.mean(values), "n": len(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=200, help="round trips per row and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256, help="output of the throughput row")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--settle", type=float, default=20, metavar="S",
                    help="before each timed repeat, wait up to S s for a quiet machine")
    ap.add_argument("--skip-containerd", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--podshimd", default=os.environ.get(
        "PODSHIMD", str(REPO / "build" / "release" / "agent" / "podshimd")))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("exec_bench: run as root", file=sys.stderr)
        return 2
    if not args.skip_containerd and shutil.which("containerd") is None:
        print("exec_bench: containerd not installed (deploy/setup.sh installs it)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lifecycle.interrupted)
    res: dict = {"iterations": args.iterations, "repeats": args.repeats, "mib": args.mib,
                 "protocol": PROTOCOL, "machine": lifecycle.machine(), "runtimes": {}}
    with contextlib.ExitStack() as stack:
        print("starting podshimd ...", flush=True)
        runtimes = [PodshimRuntime(args.podshimd, stack, True)]
        if not args.skip_containerd:
            print("starting a registry and containerd ...", flush=True)
            runtimes.append(ContainerdRuntime(stack, True))
        setups = {}
        for rt in runtimes:
            c, pod, cid = start_container(rt)
            stack.callback(c.close)
            setups[rt.name] = (c, cid)
            exec_round_trips(c, cid, args.warmup)
            execsync_round_trips(c, cid, args.warmup)
            agent = rt.d.proc.pid if rt.name == "podshim" else rt.ctrd.proc.pid
            res["runtimes"][rt.name] = {"label": rt.label, "agent_pid": agent, "exec": [],
                                        "execsync": [], "throughput": []}
        for rep in range(args.repeats):
            order = runtimes if rep % 2 == 0 else list(reversed(runtimes))
            for rt in order:
                c, cid = setups[rt.name]
                r = res["runtimes"][rt.name]
                lifecycle.settle(args.settle)
                r["exec"].append(summary(exec_round_trips(c, cid, args.iterations)))
                r["execsync"].append(summary(execsync_round_trips(c, cid, args.iterations)))
                r["throughput"].append(throughput(c, cid, r["agent_pid"], args.mib))
                print(f"{rt.label} repeat {rep + 1}: exec p50 {r['exec'][-1]['p50']:.2f} ms, "
                      f"ExecSync p50 {r['execsync'][-1]['p50']:.2f} ms, "
                      f"{r['throughput'][-1]['mib_per_s']:.0f} MiB/s", flush=True)
    mc = res["machine"]
    print(f"\n{mc['cpus']} cores, kernel {mc['kernel']}, {mc['date']}; {args.iterations} round "
          f"trips per row and repeat, {args.repeats} repeats (alternated), {args.mib} MiB of "
          f"output, WebSocket {PROTOCOL}")
    print(f"{'runtime':<22} {'row':<26} {'p50 ms (per repeat)':<28} {'p99 ms':<22}")
    for name, r in res["runtimes"].items():
        for row, key in (("exec `true` round trip", "exec"), ("ExecSync `true`", "execsync")):
            p50s = " / ".join(f"{x['p50']:.2f}" for x in r[key])
            p99s = " / ".join(f"{x['p99']:.2f}" for x in r[key])
            print(f"{r['label']:<22} {row:<26} {p50s:<28} {p99s:<22}")
        mibs = " / ".join(f"{x['mib_per_s']:.0f}" for x in r["throughput"])
        rss = max(x["agent_rss_peak_kib"] - x["agent_rss_before_kib"] for x in r["throughput"])
        print(f"{r['label']:<22} {'exec output MiB/s':<26} {mibs:<28} agent RSS +{rss} KiB at most")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("exec_bench: interrupted; everything it started is removed", file=sys.stderr)
        sys.exit(130)
