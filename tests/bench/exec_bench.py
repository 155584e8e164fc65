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

import contextlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lifecycle  # noqa: E402  (its runtimes, percentile, settle, machine)
from lifecycle import PeakRss  # noqa: E402

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
    total = 0
    with PeakRss(agent_pid) as rss:
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
    if total != mib * MiB:
        raise RuntimeError(f"got {total} bytes of {mib} MiB")
    return {"mib_per_s": mib / wall, "wall_s": wall, "agent_rss_before_kib": rss.before,
            "agent_rss_peak_kib": rss.peak}


def main() -> int:
    ap = lifecycle.paired_parser(__doc__.split("\n")[0], "output of the throughput row")
    args = ap.parse_args()
    res: dict = {"iterations": args.iterations, "repeats": args.repeats, "mib": args.mib,
                 "protocol": PROTOCOL, "machine": lifecycle.machine(), "runtimes": {}}
    with contextlib.ExitStack() as stack:
        runtimes = lifecycle.paired_runtimes(args, stack, "exec_bench")
        if runtimes is None:
            return 2
        rows = [("exec", "exec `true` round trip", lambda h, n: exec_round_trips(*h, n)),
                ("execsync", "ExecSync `true`", lambda h, n: execsync_round_trips(*h, n))]

        def setup(rt):
            c, _, cid = start_container(rt)
            stack.callback(c.close)
            return c, cid

        lifecycle.run_paired(args, runtimes, res, setup, rows,
                             lambda h, pid, mib: throughput(*h, pid, mib))
    lifecycle.print_paired(args, res, rows, "exec output MiB/s", f"WebSocket {PROTOCOL}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("exec_bench: interrupted; everything it started is removed", file=sys.stderr)
        sys.exit(130)
