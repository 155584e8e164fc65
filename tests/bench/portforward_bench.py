#!/usr/bin/env python3
"""Port forwarding through the streaming server: podshimd beside containerd (Debian's 1.6 +
runc), one run.

For each runtime, two pods: one with a network of its own (through CNI, as lifecycle.py's "CNI"
mode) and a busybox container listening in it on two ports, 8080 echoing the first byte of
every connection and closing it (`nc -ll -e 'head -c 1'`: nc forks head for each), 8081
sending --mib MiB of zeros to every connection; and one on the host network, without
containers, whose port forwarding reaches an echo listener of this process on 127.0.0.1 (the
same answer from a thread per connection, nothing forked: the runtime's own cost shows). The
pod ends each connection: containerd does not pass the client's end on to the pod (no half
close; it gives the other way a second), so an echo that waited for it would time containerd's
second. Then, alternating the runtimes, --repeats times:
  * connection, host-network pod: one forwarded connection (a pair of SPDY streams) sending a
    byte and its end, the echo and both ends back, --iterations times on one SPDY connection
    (how kubectl port-forward carries each local connection);
  * RPC + session + connection, host network: the PortForward RPC, the SPDY upgrade, one such
    connection and the close, --iterations times;
  * connection, pod network: as the first, to nc in the pod (enters the pod's network
    namespace for each connection; nc's fork of head is in the time on both sides);
  * throughput: the 8081 connection read to its last byte, MiB/s, with the agent's peak RSS
    during it (sampled every 50 ms).

Both sides are driven by the same client, the Python one (python/podshim/portforward.py), over
SPDY/3.1 (containerd 1.6's CRI streaming server has no WebSocket tunnel). What differs:
podshimd connects from its own I/O thread with a socket it made in the pod's network namespace;
containerd enters the namespace from a goroutine and dials localhost. The Python client caps
the throughput row on both sides (one core parsing frames), so that row compares the servers
under the same reader, not their ceilings. Everything is started here and removed at the end
(lifecycle.py's runtimes).

Prints p50/p99 per row and repeat, throughput per repeat and memory; --json FILE writes the
numbers.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lifecycle  # noqa: E402  (its runtimes, percentile, settle, machine)
from lifecycle import PeakRss  # noqa: E402

from podshim import Client, portforward  # noqa: E402

MiB = 1 << 20


class Echo:
    """A listener of this process on 127.0.0.1: every connection gets back the first bytes it
    sent, then is closed; a thread per connection, nothing forked."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _one(conn):
        with conn:
            conn.sendall(conn.recv(65536))


@dataclass
class Pods:
    c: Client
    pod: str        # its own network (CNI), with nc listening on 8080 and 8081
    host_pod: str   # host network, no container: port forwarding reaches the host's loopback


def start_pods(rt, mib: int) -> Pods:
    c = Client(rt.endpoint, timeout=lifecycle.CALL_TIMEOUT)
    pb = c.pb
    cfg = rt.pod_config(pb, "pf", host_net=False)
    pod = c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    host_cfg = rt.pod_config(pb, "pfhost", host_net=True)
    host_pod = c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=host_cfg)).pod_sandbox_id
    ctr = rt.container_config(pb)
    ctr.metadata.name = "listen"
    ctr.log_path = "listen.log"
    script = (f"printf '#!/bin/sh\\nexec head -c {mib * MiB} /dev/zero\\n' >/zeros && "
              "printf '#!/bin/sh\\nexec head -c 1\\n' >/one && chmod +x /zeros /one && "
              "(nc -ll -p 8081 -e /zeros &) && exec nc -ll -p 8080 -e /one")
    del ctr.command[:]
    ctr.command.extend(["sh", "-c", script])
    cid = c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=ctr, sandbox_config=cfg)).container_id
    c.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    deadline = time.monotonic() + 30
    while True:  # both listening
        try:
            with portforward.Session(c.port_forward_url(pod, [8080, 8081])) as s:
                if (s.forward(8080, b"u").data == b"u"
                        and s.forward(8081, b"", sink=len).error == ""):
                    return Pods(c, pod, host_pod)
        except (OSError, portforward.StreamReset):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rt.name}: the pod's listeners did not come up")
        time.sleep(0.2)


def connection_round_trips(c: Client, pod: str, port: int, n: int) -> list[float]:
    out = []
    with portforward.Session(c.port_forward_url(pod, [port])) as s:
        for _ in range(n):
            t0 = time.perf_counter()
            got = s.forward(port, b"x")
            out.append((time.perf_counter() - t0) * 1e3)
            if got.data != b"x" or got.error:
                raise RuntimeError(f"echo: {got}")
    return out


def session_round_trips(c: Client, pod: str, port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with portforward.Session(c.port_forward_url(pod, [port])) as s:
            got = s.forward(port, b"x")
        out.append((time.perf_counter() - t0) * 1e3)
        if got.data != b"x" or got.error:
            raise RuntimeError(f"echo: {got}")
    return out


def throughput(c: Client, pod: str, agent_pid: int, mib: int) -> dict:
    """The 8081 connection read to its last byte. The client does not end its side (containerd
    closes a connection a second after the client's end, whatever is still coming), and the time
    stops at the last byte: after it, both runtimes give the client a second to end its side."""
    total, last = [0], [0.0]

    def count(data: bytes):
        total[0] += len(data)
        last[0] = time.perf_counter()

    with PeakRss(agent_pid) as rss:
        t0 = time.perf_counter()
        with portforward.Session(c.port_forward_url(pod, [8081])) as s:
            got = s.forward(8081, b"", end=False, sink=count)
    wall = last[0] - t0
    if total[0] != mib * MiB or got.error:
        raise RuntimeError(f"got {total[0]} bytes of {mib} MiB ({got.error})")
    return {"mib_per_s": mib / wall, "wall_s": wall, "agent_rss_before_kib": rss.before,
            "agent_rss_peak_kib": rss.peak}


def main() -> int:
    ap = lifecycle.paired_parser(__doc__.split("\n")[0], "bytes of the throughput row")
    args = ap.parse_args()
    res: dict = {"iterations": args.iterations, "repeats": args.repeats, "mib": args.mib,
                 "transport": "SPDY/3.1", "machine": lifecycle.machine(), "runtimes": {}}
    with contextlib.ExitStack() as stack:
        runtimes = lifecycle.paired_runtimes(args, stack, "portforward_bench")
        if runtimes is None:
            return 2
        echo = Echo()
        stack.callback(echo.sock.close)
        rows = [("host", "connection, host-network pod",
                 lambda h, n: connection_round_trips(h.c, h.host_pod, echo.port, n)),
                ("host_session", "RPC+session+conn., host net",
                 lambda h, n: session_round_trips(h.c, h.host_pod, echo.port, n)),
                ("pod", "connection, pod network (nc)",
                 lambda h, n: connection_round_trips(h.c, h.pod, 8080, n))]

        def setup(rt):
            pods = start_pods(rt, args.mib)
            stack.callback(pods.c.close)
            return pods

        lifecycle.run_paired(args, runtimes, res, setup, rows,
                             lambda h, pid, mib: throughput(h.c, h.pod, pid, mib))
    lifecycle.print_paired(args, res, rows, "MiB/s from the pod (nc)",
                           "SPDY/3.1, pods on CNI, one connection for the MiB")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("portforward_bench: interrupted; everything it started is removed", file=sys.stderr)
        sys.exit(130)
