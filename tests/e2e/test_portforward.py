"""The CRI's PortForward through podshim's streaming server (issue 19), against a real podshimd
with the Python client's SPDY helpers (python/podshim/portforward.py), over both transports: an
HTTP upgrade to SPDY/3.1 and SPDY tunnelled in a WebSocket (SPDY/3.1+portforward.k8s.io).

One podshimd serves the module (test_streaming.py's fixture: a host-network pod with a running
container), plus a pod with a network namespace of its own (loopback only: podshimd runs with
--cni=false) whose container listens with busybox `nc -ll`: 8080 echoes every connection
(`-e cat`), 8081 sends 100 MiB, 8082 never reads. What is checked: bytes both ways and each
side's end, many connections on one SPDY connection, a mebibyte intact, the errors (a closed
port, a port the request did not name, streams the kubelet would refuse), a host-network pod
reaching the host's loopback, the RPC's request checks, the upgrade's, podshimd's memory bounded
against a slow reader and a pod that never reads, and that nothing stays open in podshimd
afterwards. crictl's port-forward (client-go) is tests/crictl/test_streaming.sh's and critest's.
"""

import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from test_streaming import env, rss_kib, start_container, wait_for  # noqa: E402,F401

from podshim import portforward  # noqa: E402

TRANSPORTS = ["spdy", "websocket"]


@pytest.fixture(scope="module")
def echo_pod(env):  # noqa: F811
    pb = env.pb
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="echo", namespace="e2e-pf",
                                                             uid=uuid.uuid4().hex))
    pod_id = env.c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                         timeout=60).pod_sandbox_id
    # 8080 echoes, 8081 sends 100 MiB of zeros, 8082 never reads (sleep holds the connection).
    script = ("printf '#!/bin/sh\\nexec head -c 104857600 /dev/zero\\n' >/zeros && "
              "printf '#!/bin/sh\\nexec sleep 100000\\n' >/deaf && chmod +x /zeros /deaf && "
              "(nc -ll -p 8081 -e /zeros &) && (nc -ll -p 8082 -e /deaf &) && "
              "exec nc -ll -p 8080 -e cat")
    start_container(env.c, pod_id, cfg, "echo", command=("sh", "-c", script))

    def echoes():
        try:
            with portforward.Session(env.c.port_forward_url(pod_id, [8080]), timeout=10) as s:
                return s.forward(8080, b"ready?").data == b"ready?"
        except (OSError, portforward.StreamReset):
            return False

    wait_for(echoes, timeout=30, what="nc listening on port 8080 in the pod")
    yield pod_id
    env.c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    env.c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- the RPC ------------------------------------------------------------------------------------

def test_port_forward_answers_an_absolute_url_on_loopback(env, echo_pod):
    url = env.c.port_forward_url(echo_pod, [8080])
    assert url.startswith("http://127.0.0.1:"), url
    assert "/portforward/" in url


@pytest.mark.parametrize("change,code,field", [
    (dict(pod_sandbox_id=""), grpc.StatusCode.INVALID_ARGUMENT, "pod_sandbox_id"),
    (dict(pod_sandbox_id="0" * 64), grpc.StatusCode.NOT_FOUND, "0" * 64),
    (dict(port=[0]), grpc.StatusCode.INVALID_ARGUMENT, "port[0]"),
    (dict(port=[80, 65536]), grpc.StatusCode.INVALID_ARGUMENT, "port[1]"),
    (dict(port=[-1]), grpc.StatusCode.INVALID_ARGUMENT, "port[0]"),
    (dict(port=[80] * 1025), grpc.StatusCode.INVALID_ARGUMENT, "port"),
])
def test_a_bad_port_forward_request_is_refused_naming_the_field(env, echo_pod, change, code, field):
    req = dict(pod_sandbox_id=echo_pod, port=[8080])
    req.update(change)
    with pytest.raises(grpc.RpcError) as e:
        env.c.runtime.PortForward(env.pb.PortForwardRequest(**req), timeout=10)
    assert e.value.code() == code, e.value.details()
    assert field in e.value.details()


def test_port_forward_to_a_stopped_pod_is_failed_precondition(env):
    pb = env.pb
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="stopped", namespace="e2e-pf",
                                                             uid=uuid.uuid4().hex))
    pod_id = env.c.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                         timeout=60).pod_sandbox_id
    try:
        url = env.c.port_forward_url(pod_id, [8080])  # made while the pod runs
        env.c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        with pytest.raises(grpc.RpcError) as e:
            env.c.port_forward_url(pod_id, [8080])
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not ready" in e.value.details()
        # A URL made before the stop: each connection fails on its error stream.
        with portforward.Session(url) as s:
            got = s.forward(8080, b"x")
        assert f"error forwarding port 8080 to pod {pod_id}" in got.error
        assert "not ready" in got.error
    finally:
        env.c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                       timeout=60)


# --- forwarding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bytes_go_both_ways_and_each_end_is_passed_on(env, echo_pod, transport):
    with portforward.Session(env.c.port_forward_url(echo_pod, [8080]), transport) as s:
        assert s.protocol == "portforward.k8s.io"
        # The echo ends once the client's end (a FIN) reached cat as end of file.
        got = s.forward(8080, b"hello through " + transport.encode())
    assert got.data == b"hello through " + transport.encode()
    assert got.error == ""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_one_connection_forwards_many_and_a_mebibyte_arrives_intact(env, echo_pod, transport):
    blob = os.urandom(1 << 20)
    with portforward.Session(env.c.port_forward_url(echo_pod, []), transport) as s:
        for i in range(5):
            assert s.forward(8080, b"round %d" % i).data == b"round %d" % i
        got = s.forward(8080, blob)
    assert len(got.data) == len(blob)
    assert got.data == blob


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_closed_port_is_an_error_on_its_error_stream_and_the_connection_goes_on(
        env, echo_pod, transport):
    with portforward.Session(env.c.port_forward_url(echo_pod, [8080, 8083]), transport) as s:
        got = s.forward(8083, b"anyone?")
        assert got.data == b""
        assert got.error.startswith(f"error forwarding port 8083 to pod {echo_pod}, uid : "
                                    "dial tcp [::1]:8083: connect:"), got.error
        assert "refused" in got.error.lower()
        assert s.forward(8080, b"still here").data == b"still here"


def test_a_port_the_request_did_not_name_is_refused(env, echo_pod):
    with portforward.Session(env.c.port_forward_url(echo_pod, [9090])) as s:
        got = s.forward(8080, b"x")
    assert got.error == (f"error forwarding port 8080 to pod {echo_pod}, uid : port 8080 is not "
                         "among the ports of the PortForward request (9090)")


@pytest.mark.parametrize("headers", [
    {"streamType": "data", "requestID": 0},               # no port
    {"streamType": "data", "port": 0, "requestID": 0},
    {"streamType": "data", "port": 65536, "requestID": 0},
    {"streamType": "stdin", "port": 8080, "requestID": 0},
])
def test_a_stream_the_kubelet_would_refuse_is_reset(env, echo_pod, headers):
    with portforward.Session(env.c.port_forward_url(echo_pod, [])) as s:
        s.syn_stream(1, headers)
        while True:
            stream, kind, _, body = s.next_frame()
            if stream is None and kind == 3:  # RST_STREAM
                assert body[:4] == b"\x00\x00\x00\x01"
                assert body[4:8] == b"\x00\x00\x00\x05"  # CANCEL
                break
        assert s.forward(8080, b"after").data == b"after"


def test_a_host_network_pod_reaches_the_hosts_loopback(env):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"the host's loopback")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with portforward.Session(env.c.port_forward_url(env.pod_id, [port])) as s:
            got = s.forward(port, b"", end=False)
        assert got.data == b"the host's loopback"
        assert got.error == ""
    finally:
        listener.close()
        t.join(timeout=10)


# --- the upgrade --------------------------------------------------------------------------------

def test_the_upgrade_is_checked_before_the_token_is_used(env, echo_pod):
    url = env.c.port_forward_url(echo_pod, [8080])
    path = "/" + url.split("/", 3)[3]
    host, port = url.split("/")[2].split(":")

    def request(headers: bytes, method=b"POST") -> bytes:
        with socket.create_connection((host, int(port)), timeout=10) as c:
            c.sendall(method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers
                      + b"Content-Length: 0\r\n\r\n")
            out = b""
            while chunk := c.recv(65536):
                out += chunk
            return out

    wrong = request(b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                    b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n")
    assert wrong.startswith(b"HTTP/1.1 403"), wrong[:200]
    assert b"X-Accepted-Stream-Protocol-Versions: portforward.k8s.io" in wrong
    ws = request(b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n", method=b"GET")
    assert ws.startswith(b"HTTP/1.1 403"), ws[:200]
    assert b"SPDY/3.1+portforward.k8s.io" in ws
    # The token is still good.
    with portforward.Session(url, timeout=10) as s:
        assert s.forward(8080, b"ok").data == b"ok"
    # ...for one connection.
    with pytest.raises(portforward.HandshakeError) as e:
        portforward.Session(url, timeout=10)
    assert e.value.status == 404
    # An exec token is no port forwarding token.
    exec_url = env.exec_url(["true"])
    with pytest.raises(portforward.HandshakeError) as e:
        portforward.Session(exec_url.replace("/exec/", "/portforward/"), timeout=10)
    assert e.value.status == 404


def test_nothing_stays_open_in_podshimd_afterwards(env, echo_pod):
    pid = env.d.proc.pid
    with portforward.Session(env.c.port_forward_url(echo_pod, [8080])) as s:
        s.forward(8080, b"warm")
    # What the warm-up opened for good (threads, the listener) stays; its connection goes.
    before = open_fds(pid)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        before = min(before, open_fds(pid))
        time.sleep(0.05)
    for transport in TRANSPORTS:
        with portforward.Session(env.c.port_forward_url(echo_pod, [8080]), transport) as s:
            for _ in range(3):
                assert s.forward(8080, b"x").data == b"x"
            s.forward(8083, b"")  # a failed one too
    wait_for(lambda: open_fds(pid) <= before, timeout=10,
             what=f"podshimd's open files back to {before} (now {open_fds(pid)})")


# --- bounds -------------------------------------------------------------------------------------

ASAN = pytest.mark.skipif("ASAN_OPTIONS" in os.environ,
                          reason="under ASan freed memory is quarantined (256 MiB by default), so "
                                 "RSS does not show what podshimd buffers")


@ASAN
def test_100_mib_to_a_slow_reader_arrive_whole_with_podshimds_memory_bounded(env, echo_pod):
    pid = env.d.proc.pid
    before = peak = rss_kib(pid)
    total = 0

    def slowly(data):
        nonlocal total, peak
        total += len(data)
        if total % (8 << 20) < len(data):
            time.sleep(0.2)
            peak = max(peak, rss_kib(pid))

    with portforward.Session(env.c.port_forward_url(echo_pod, [8081])) as s:
        got = s.forward(8081, b"", end=False, sink=slowly)
    assert (total, got.error) == (100 << 20, "")
    print(f"podshimd RSS {before} KiB before, {peak} KiB at most during 100 MiB")
    assert peak - before < 32 * 1024, f"podshimd grew by {peak - before} KiB"


@ASAN
def test_a_pod_that_never_reads_holds_its_connection_back_with_podshimds_memory_bounded(
        env, echo_pod):
    pid = env.d.proc.pid
    before = rss_kib(pid)
    fds = open_fds(pid)
    s = portforward.Session(env.c.port_forward_url(echo_pod, [8082]), timeout=60)
    s.syn_stream(1, {"streamType": "error", "port": 8082, "requestID": 0}, fin=True)
    s.syn_stream(3, {"streamType": "data", "port": 8082, "requestID": 0})
    sent = [0]

    def send():
        chunk = b"z" * (32 << 10)
        try:
            for _ in range(2048):  # 64 MiB
                s.data(3, chunk)
                sent[0] += len(chunk)
        except OSError:
            pass  # closed below

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    # The pod's socket buffer, podshimd's 1 MiB and the two sockets' buffers fill; then the
    # client's sends wait.
    last = -1
    while sent[0] != last:
        last = sent[0]
        time.sleep(1)
    growth = rss_kib(pid) - before
    print(f"{sent[0] >> 20} MiB sent before the client had to wait; podshimd grew {growth} KiB")
    assert sent[0] < 64 << 20, "podshimd took all 64 MiB from a client while the pod read none"
    assert growth < 32 * 1024, f"podshimd grew by {growth} KiB"
    s.close()
    sender.join(timeout=10)
    # Dropping the connection frees what it held; the daemon serves on.
    wait_for(lambda: open_fds(pid) <= fds, timeout=10, what="podshimd's open files back")
    with portforward.Session(env.c.port_forward_url(echo_pod, [8080])) as again:
        assert again.forward(8080, b"still serving").data == b"still serving"
