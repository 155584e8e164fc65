"""The CRI's Exec through podshim's streaming server (issue 19), against a real podshimd with the
Python client's WebSocket helpers (python/podshim/streams.py, the `websocket-client` package) and
raw sockets for the malformed cases.

One podshimd serves the module, with one host-network pod and one running container (busybox,
`sleep`); each test execs into it. What is checked: output, exit codes, stdin and its close
signal, a terminal with resize, that an exec runs exactly as ExecSync does (same user,
capabilities, no_new_privs, seccomp, namespaces), 100 MiB of output with podshimd's memory
bounded, a client that vanishes taking its command with it, single-use tokens (404 on reuse and
after expiry), Exec's request checks, and malformed HTTP, WebSocket and SPDY input that closes
only its own connection. Exec over SPDY with a real client is tests/crictl/test_streaming.sh's
and critest's.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import grpc
import pytest
import websocket

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402

from podshim import streams  # noqa: E402
from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
MiB = 1 << 20


class Env:
    def __init__(self, daemon, client, pod_id, cid, pod_cfg=None):
        self.d, self.c, self.pb = daemon, client, client.pb
        self.pod_id, self.cid, self.pod_cfg = pod_id, cid, pod_cfg

    def exec_url(self, cmd, **kw):
        return self.c.exec_url(self.cid, cmd, **kw)


def host_pod(pb, name):
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace="e2e-stream", uid=uuid.uuid4().hex),
        hostname=name,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE))))


def start_container(c, pod_id, pod_cfg, name, command=("sleep", "100000"), user=None):
    pb = c.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                             image=pb.ImageSpec(image=IMAGE), command=list(command))
    if user is not None:
        cfg.linux.security_context.run_as_user.value = user
        cfg.linux.security_context.no_new_privs = True
        cfg.linux.security_context.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
    cid = c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id
    c.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    return cid


@pytest.fixture(scope="module")
def env():
    path = podshimd_binary()
    if not path.exists():
        pytest.fail(f"podshimd not built at {path}")
    parent = f"/podshim-e2e-stream-{uuid.uuid4().hex[:6]}"
    d = Podshimd(path, extra_args=[f"--cgroup_parent={parent}", "--cni=false"])
    c = None
    try:
        d.import_image(images.standin_layout("busybox"), IMAGE)
        d.start()
        c = d.client(timeout=60)
        cfg = host_pod(c.pb, "stream")
        pod_id = c.runtime.RunPodSandbox(c.pb.RunPodSandboxRequest(config=cfg),
                                         timeout=60).pod_sandbox_id
        cid = start_container(c, pod_id, cfg, "main", user=1234)
        yield Env(d, c, pod_id, cid, cfg)
    finally:
        if c is not None:
            remove_all_pods(c)
            c.close()
        d.cleanup()
        remove_cgroup_parent(parent)


def remove_all_pods(c):
    """Stops and removes every pod of the daemon: containers outlive podshimd by design, so a
    test's daemon must not be stopped with its pods still there."""
    for p in c.runtime.ListPodSandbox(c.pb.ListPodSandboxRequest(), timeout=60).items:
        c.runtime.StopPodSandbox(c.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
        c.runtime.RemovePodSandbox(c.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                                   timeout=60)


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pids_running(needle):
    out = subprocess.run(["pgrep", "-f", needle], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


# --- the Exec RPC -----------------------------------------------------------------------------

def test_exec_answers_an_absolute_url_on_loopback(env):
    url = env.exec_url(["true"])
    assert url.startswith("http://127.0.0.1:"), url
    assert "/exec/" in url


@pytest.mark.parametrize("change,code,field", [
    (dict(cmd=[]), grpc.StatusCode.INVALID_ARGUMENT, "cmd"),
    (dict(stdin=False, stdout=False, stderr=False), grpc.StatusCode.INVALID_ARGUMENT, "stdout"),
    (dict(tty=True, stderr=True), grpc.StatusCode.INVALID_ARGUMENT, "tty"),
    (dict(container_id="0" * 64), grpc.StatusCode.NOT_FOUND, "container"),
    (dict(container_id=""), grpc.StatusCode.INVALID_ARGUMENT, "container_id"),
    (dict(cmd=["x" * (70 << 10)]), grpc.StatusCode.INVALID_ARGUMENT, "cmd"),
])
def test_a_bad_exec_request_is_refused_naming_the_field(env, change, code, field):
    req = dict(container_id=env.cid, cmd=["true"], stdout=True, stderr=True)
    req.update(change)
    with pytest.raises(grpc.RpcError) as e:
        env.c.runtime.Exec(env.pb.ExecRequest(**req), timeout=10)
    assert e.value.code() == code, e.value.details()
    assert field in e.value.details()


def test_exec_into_a_stopped_container_is_failed_precondition(env):
    cfg = host_pod(env.pb, "stopped")
    pod_id = env.c.runtime.RunPodSandbox(env.pb.RunPodSandboxRequest(config=cfg),
                                         timeout=60).pod_sandbox_id
    try:
        cid = start_container(env.c, pod_id, cfg, "brief", command=("true",))
        wait_for(lambda: env.c.runtime.ContainerStatus(env.pb.ContainerStatusRequest(
            container_id=cid)).status.state == env.pb.CONTAINER_EXITED, what="exit")
        with pytest.raises(grpc.RpcError) as e:
            env.c.exec_url(cid, ["true"])
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not running" in e.value.details()
    finally:
        env.c.runtime.StopPodSandbox(env.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        env.c.runtime.RemovePodSandbox(env.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


# --- output, exit codes, stdin ------------------------------------------------------------------

def test_exec_streams_stdout_and_stderr_and_reports_success(env):
    r = env.c.exec(env.cid, ["sh", "-c", "echo out; echo err >&2"])
    assert (r.stdout, r.stderr) == (b"out\n", b"err\n")
    assert r.status == {"metadata": {}, "status": "Success"}
    assert r.exit_code == 0
    assert r.close_code == 1000
    # The first message is the kubelet's empty one on stdout.
    assert r.messages[0] == (streams.STDOUT, b"")


@pytest.mark.parametrize("code", [1, 3, 127, 255])
def test_a_non_zero_exit_is_reported_as_its_code(env, code):
    r = env.c.exec(env.cid, ["sh", "-c", f"exit {code}"])
    assert r.exit_code == code
    assert r.status["reason"] == "NonZeroExitCode"


def test_a_command_that_does_not_exist_is_an_error_not_an_exit_code(env):
    r = env.c.exec(env.cid, ["/no/such/program"])
    assert r.exit_code is None
    assert "/no/such/program" in r.error


def test_stdin_reaches_the_command_and_its_close_ends_it(env):
    data = b"".join(b"line %d\n" % i for i in range(2000))
    r = env.c.exec(env.cid, ["sh", "-c", "cat; echo done >&2"], stdin=data)
    assert r.stdout == data
    assert r.stderr == b"done\n"
    assert r.exit_code == 0


def test_an_exec_runs_exactly_as_execsync_does(env):
    """One launch path: user, groups, capabilities, no_new_privs, seccomp and namespaces."""
    script = ("id; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; hostname; "
              "for n in mnt pid uts ipc net cgroup; do readlink /proc/self/ns/$n; done; "
              "cat /proc/self/cgroup")
    sync = env.c.runtime.ExecSync(env.pb.ExecSyncRequest(
        container_id=env.cid, cmd=["sh", "-c", script], timeout=10), timeout=20)
    streamed = env.c.exec(env.cid, ["sh", "-c", script])
    assert streamed.exit_code == 0 and sync.exit_code == 0
    assert streamed.stdout == sync.stdout
    assert b"uid=1234" in streamed.stdout
    assert b"NoNewPrivs:\t1" in streamed.stdout
    assert b"Seccomp:\t2" in streamed.stdout  # RuntimeDefault, a filter


def test_two_execs_at_once(env):
    a = env.c.exec_stream(env.cid, ["cat"])
    b = env.c.exec_stream(env.cid, ["cat"])
    try:
        a.send(b"to a")
        b.send(b"to b")
        a.close_stdin()
        b.close_stdin()
        ra, rb = a.collect(), b.collect()
    finally:
        a.close()
        b.close()
    assert (ra.stdout, rb.stdout) == (b"to a", b"to b")


# --- a terminal ---------------------------------------------------------------------------------

def read_until(stream, needle, timeout=10.0):
    return stream.read_until(needle, timeout)


def test_a_tty_exec_gets_a_terminal_that_resizes(env):
    with env.c.exec_stream(env.cid, ["sh"], tty=True) as s:
        s.resize(123, 45)
        s.send(b"test -t 0 && echo IS-A-TTY; stty size\n")
        out = read_until(s, b"45 123")
        assert b"IS-A-TTY" in out
        s.resize(80, 24)
        s.send(b"stty size; exit 7\n")
        read_until(s, b"24 80")
        r = s.collect()
    assert r.exit_code == 7
    assert r.stderr == b""  # a terminal has one output stream


def test_a_tty_exec_ends_when_its_command_exits_with_stdin_still_open(env):
    # critest's "exec with tty=true and stdin=true": the client never closes stdin.
    with env.c.exec_stream(env.cid, ["echo", "-n", "hello"], tty=True) as s:
        r = s.collect()
    assert b"hello" in r.stdout
    assert r.exit_code == 0


# --- bounds -------------------------------------------------------------------------------------

def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def stream_100_mib(env, on_chunk=None):
    """Reads 100 MiB of exec output to the end, slowly now and then: the command must wait for
    the reader, not podshimd's memory grow. Returns the bytes read."""
    total = 0
    with env.c.exec_stream(env.cid, ["head", "-c", str(100 * MiB), "/dev/zero"], stdin=False) as s:
        while True:
            channel, data = s.recv()
            if channel is None:
                break
            if channel == streams.STDOUT:
                total += len(data)
                if total % (8 * MiB) < len(data):
                    time.sleep(0.2)
                    if on_chunk:
                        on_chunk()
    return total


def test_100_mib_of_output_arrives_whole(env):
    assert stream_100_mib(env) == 100 * MiB


@pytest.mark.skipif("ASAN_OPTIONS" in os.environ,
                    reason="under ASan freed memory is quarantined (256 MiB by default), so RSS "
                           "does not show what podshimd buffers")
def test_podshimd_memory_stays_bounded_while_100_mib_stream_to_a_slow_reader(env):
    pid = env.d.proc.pid
    before = rss_kib(pid)
    peak = [before]
    total = stream_100_mib(env, lambda: peak.__setitem__(0, max(peak[0], rss_kib(pid))))
    assert total == 100 * MiB
    growth = peak[0] - before
    print(f"podshimd RSS {before} KiB before, {peak[0]} KiB at most during 100 MiB of output")
    assert growth < 32 * 1024, f"podshimd grew by {growth} KiB streaming 100 MiB"


def test_a_client_that_vanishes_takes_its_command_with_it(env):
    marker = f"sleep {31000 + os.getpid() % 1000}"
    s = env.c.exec_stream(env.cid, marker.split(), stdin=True)
    wait_for(lambda: pids_running(marker), what="the exec's command")
    s.ws.sock.close()  # no close frame: the client is simply gone
    wait_for(lambda: not pids_running(marker), what="the command to be killed")


# --- tokens -------------------------------------------------------------------------------------

def handshake_status(url):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(streams.ws_url(url), subprotocols=[streams.PROTOCOL],
                                    timeout=10)
    return e.value.status_code


def test_a_url_is_good_for_one_connection(env):
    url = env.exec_url(["true"])
    assert streams.exec_url(url).exit_code == 0
    assert handshake_status(url) == 404


def test_a_url_expires(podshimd_path):
    parent = f"/podshim-e2e-stream-ttl-{uuid.uuid4().hex[:6]}"
    d = Podshimd(podshimd_path, extra_args=[f"--cgroup_parent={parent}", "--cni=false",
                                            "--streaming_token_ttl=1s"])
    try:
        d.import_image(images.standin_layout("busybox"), IMAGE)
        d.start()
        with d.client(timeout=60) as c:
            cfg = host_pod(c.pb, "ttl")
            pod_id = c.runtime.RunPodSandbox(c.pb.RunPodSandboxRequest(config=cfg),
                                             timeout=60).pod_sandbox_id
            cid = start_container(c, pod_id, cfg, "main")
            url = c.exec_url(cid, ["true"])
            time.sleep(1.5)
            assert handshake_status(url) == 404
            assert c.exec(cid, ["true"]).exit_code == 0  # a fresh URL works
            remove_all_pods(c)
    finally:
        d.cleanup()
        remove_cgroup_parent(parent)


# --- malformed input ----------------------------------------------------------------------------

def raw(env, data: bytes, read_all=True) -> bytes:
    host, port = env.exec_url(["true"]).split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        out = b""
        while read_all:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def upgrade(target, extra=b"", key=b"dGhlIHNhbXBsZSBub25jZQ==", version=b"13", method=b"GET"):
    return (method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: " + version + b"\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n" + extra + b"\r\n")


def target(env, cmd=("true",), **kw):
    return ("/" + env.exec_url(list(cmd), **kw).split("/", 3)[3]).encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else -1


HTTP_CASES = [
    ("no upgrade", lambda e: b"GET " + target(e) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("unknown subprotocol", lambda e: upgrade(target(e), b"Sec-WebSocket-Protocol: chat\r\n"),
     403),
    ("SPDY port-forward tunnel offered for exec",
     lambda e: upgrade(target(e), b"Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n"),
     403),
    ("unknown token", lambda e: upgrade(b"/exec/AAAAAAAAAAAAAAAAAAAAAA"), 404),
    ("no token", lambda e: upgrade(b"/exec/"), 404),
    ("unknown verb", lambda e: upgrade(b"/shell/" + target(e).split(b"/")[2]), 404),
    ("exec token on the attach path",
     lambda e: upgrade(b"/attach/" + target(e).split(b"/")[2]), 404),
    ("method DELETE", lambda e: upgrade(target(e), method=b"DELETE"), 405),
    ("not HTTP", lambda e: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("headers over 16 KiB", lambda e: upgrade(target(e), b"X-Pad: " + b"a" * 20000 + b"\r\n"),
     431),
    ("a body", lambda e: b"POST " + target(e) + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
                         b"\r\n\r\nbody", 400),
    ("no Sec-WebSocket-Key",
     lambda e: upgrade(target(e), key=b"").replace(b"Sec-WebSocket-Key: \r\n", b""), 400),
    ("WebSocket version 8", lambda e: upgrade(target(e), version=b"8"), 426),
    ("SPDY without X-Stream-Protocol-Version",
     lambda e: b"POST " + target(e) + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n", 400),
    ("SPDY offering only v5",
     lambda e: b"POST " + target(e) + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
               b"Content-Length: 0\r\n\r\n", 403),
]


@pytest.mark.parametrize("name,make,want", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_a_malformed_request_gets_an_http_error(env, name, make, want):
    response = raw(env, make(env))
    assert status_of(response) == want, response[:300]
    assert env.d.proc.poll() is None


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgraded_then(env, request: bytes, data: bytes, before=None):
    """Sends `request`, checks it is answered 101, runs `before` (if given), sends `data` and reads
    until the server closes. Returns the response head and everything after it."""
    host, port = env.exec_url(["true"]).split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert status_of(got) == 101, got
        if before:
            before()
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        head, rest = got.split(b"\r\n\r\n", 1)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
    return head, rest


FRAME_CASES = [
    ("unmasked client frame", frame(2, b"\x00hi", mask=False), 1002),
    ("reserved bits set", frame(2, b"\x00hi", rsv=0x40), 1002),
    ("unknown opcode", frame(3, b"\x00hi"), 1002),
    ("fragmented ping", frame(9, b"p", fin=False), 1002),
    ("v5 close signal of the wrong length", frame(2, b"\xff\x00\x00"), 1002),
    ("close frame with a bad code", frame(8, (999).to_bytes(2, "big")), 1002),
    ("text message that is not UTF-8", frame(1, b"\xff\xfe"), 1007),
    ("message over 1 MiB", frame(2, b"\x00" + b"x" * (MiB + 10)), 1009),
]


@pytest.mark.parametrize("name,data,code", FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_a_malformed_frame_closes_that_connection_only(env, name, data, code):
    marker = f"sleep {32000 + len(name)}"
    t = target(env, marker.split(), stdin=True)
    req = upgrade(t, b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n")
    head, rest = upgraded_then(env, req, data,
                               lambda: wait_for(lambda: pids_running(marker),
                                                what="the exec's command"))
    # The server's close frame carries the code (after the opening empty message).
    close_at = rest.find(b"\x88")
    assert close_at >= 0, rest[:100]
    assert int.from_bytes(rest[close_at + 2:close_at + 4], "big") == code, rest[:100]
    wait_for(lambda: not pids_running(marker), what="the command to be killed")
    # Nothing else was hurt.
    assert env.d.proc.poll() is None
    assert env.c.exec(env.cid, ["echo", "-n", "alive"]).stdout == b"alive"


def test_an_older_protocol_and_base64_work_too(env):
    r = streams.exec_url(env.exec_url(["sh", "-c", "echo b64; exit 2"]),
                         protocol="v4.base64.channel.k8s.io")
    assert r.stdout == b"b64\n"
    assert r.exit_code == 2
    r = streams.exec_url(env.exec_url(["sh", "-c", "exit 5"]), protocol="channel.k8s.io")
    assert "exit status 5" in r.error


# --- malformed SPDY -----------------------------------------------------------------------------

def spdy_control(kind, payload, flags=0, version=3):
    return (struct.pack(">HH", 0x8000 | version, kind) + bytes([flags])
            + len(payload).to_bytes(3, "big") + payload)


SPDY_CASES = [
    ("not a frame at all", b"GET / HTTP/1.1\r\n\r\n"),
    ("control frame of SPDY version 2", spdy_control(6, struct.pack(">I", 1), version=2)),
    ("PING of the wrong length", spdy_control(6, b"\x00\x00\x01")),
    ("RST_STREAM of the wrong length", spdy_control(3, struct.pack(">I", 1))),
    ("SETTINGS whose count overruns it", spdy_control(4, struct.pack(">III", 5, 1, 1))),
    ("SYN_STREAM on stream 0", spdy_control(1, struct.pack(">IIH", 0, 0, 0)
                                             + zlib.compress(b"\x00\x00\x00\x00"))),
    ("SYN_STREAM whose header block is not zlib",
     spdy_control(1, struct.pack(">IIH", 1, 0, 0) + b"not zlib at all")),
    ("SYN_STREAM with a header-block bomb (16 MiB of zeros)",
     spdy_control(1, struct.pack(">IIH", 1, 0, 0) + zlib.compress(b"\x00" * (16 * MiB)))),
    ("DATA frame longer than the limit",
     struct.pack(">II", 1, 16 * MiB - 1) + b"x" * 1024),
    ("control frame longer than the limit", spdy_control(1, b"\x00" * (1 << 20))),
]


@pytest.mark.parametrize("name,data", SPDY_CASES, ids=[c[0] for c in SPDY_CASES])
def test_a_malformed_spdy_frame_ends_that_connection_only(env, name, data):
    t = target(env, ["true"])
    req = (b"POST " + t + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
           b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
           b"Content-Length: 0\r\n\r\n")
    head, rest = upgraded_then(env, req, data)
    assert b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
    # GOAWAY (control, version 3, type 7) with status PROTOCOL_ERROR (1), then the close.
    at = rest.find(b"\x80\x03\x00\x07")
    assert at >= 0, rest[:100]
    assert struct.unpack(">I", rest[at + 12:at + 16])[0] == 1, rest[at:at + 16]
    assert env.d.proc.poll() is None
    assert env.c.exec(env.cid, ["echo", "-n", "alive"]).stdout == b"alive"
