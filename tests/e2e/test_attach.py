"""The CRI's Attach through podshim's streaming server (issue 19), against a real podshimd with the
Python client's WebSocket helpers (python/podshim/streams.py).

The container's monitor keeps its stdin (a pipe, or its terminal) and copies its output to each
attach session over the attach socket in its bundle (runtime/monitor_loop.h); podshimd's
streaming server carries a session in the same protocols as exec. What is checked: critest's
case (stdin_once: the client's end of stdin closes the container's, which then exits, and the
session ends with Success), a terminal with resize, two sessions at once with the container's
stdin staying open when one detaches, an output-only session on a container without stdin, a
client that goes away leaving the container running, Attach's request checks, and that the
monitor's socket is gone once the container exited. Attach over SPDY with real clients is
tests/crictl/test_streaming.sh's and critest's.
"""

import sys
import time
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from test_streaming import IMAGE, env, read_until, wait_for  # noqa: E402,F401

from podshim import streams  # noqa: E402


def create(env, name, command, stdin=False, stdin_once=False, tty=False, start=True):  # noqa: F811
    pb = env.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                             image=pb.ImageSpec(image=IMAGE), command=list(command),
                             stdin=stdin, stdin_once=stdin_once, tty=tty)
    cid = env.c.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=env.pod_id, config=cfg, sandbox_config=env.pod_cfg),
        timeout=60).container_id
    if start:
        env.c.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    return cid


def status(env, cid):  # noqa: F811
    return env.c.runtime.ContainerStatus(
        env.pb.ContainerStatusRequest(container_id=cid), timeout=60).status


def remove(env, cid):  # noqa: F811
    env.c.runtime.StopContainer(env.pb.StopContainerRequest(container_id=cid, timeout=0),
                                timeout=60)
    env.c.runtime.RemoveContainer(env.pb.RemoveContainerRequest(container_id=cid), timeout=60)


def test_attach_with_stdin_once_as_critest_does(env):  # noqa: F811
    cid = create(env, "once", ["sh"], stdin=True, stdin_once=True)
    try:
        url = env.c.attach_url(cid, stdin=True)
        assert url.startswith("http://127.0.0.1:") and "/attach/" in url
        with streams.Stream(url) as s:
            s.send(b"echo hello\n")
            assert read_until(s, b"hello\n") == b"hello\n"
            # The client ends stdin: stdin_once closes the container's, sh reads end of file
            # and exits, and the session ends with the container.
            s.close_stdin()
            r = s.collect()
        assert r.exit_code == 0, r
        assert r.status["status"] == "Success"
        assert r.stderr == b""
        wait_for(lambda: status(env, cid).state == env.pb.CONTAINER_EXITED, what="the exit")
        assert status(env, cid).exit_code == 0
        # Nothing serves the container any more.
        with pytest.raises(grpc.RpcError) as e:
            env.c.attach_url(cid)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        remove(env, cid)


def test_a_terminal_container_is_attached_with_resize(env):  # noqa: F811
    cid = create(env, "tty", ["sh"], stdin=True, tty=True)
    try:
        with env.c.attach_stream(cid, stdin=True, tty=True) as s:
            s.resize(123, 45)
            s.send(b"test -t 0 && echo IS-A-TTY; stty size\n")
            out = read_until(s, b"45 123")
            assert b"IS-A-TTY" in out
            s.send(b"exit 4\n")
            r = s.collect()
        assert r.status["status"] == "Success", r
        assert r.stderr == b""  # a terminal has one output stream
        wait_for(lambda: status(env, cid).state == env.pb.CONTAINER_EXITED, what="the exit")
        assert status(env, cid).exit_code == 4
    finally:
        remove(env, cid)


def test_two_sessions_share_the_output_and_one_detaching_leaves_stdin_open(env):  # noqa: F811
    cid = create(env, "cat", ["cat"], stdin=True)
    try:
        with env.c.attach_stream(cid, stdin=True) as a, \
                env.c.attach_stream(cid, stdin=False) as b:
            a.send(b"one\n")
            read_until(a, b"one\n")
            read_until(b, b"one\n")
            # Without stdin_once the end of a session's stdin detaches it.
            a.close_stdin()
            r = a.collect()
            assert r.exit_code == 0, r
            assert status(env, cid).state == env.pb.CONTAINER_RUNNING
            with env.c.attach_stream(cid, stdin=True) as c:
                c.send(b"two\n")
                read_until(c, b"two\n")
            read_until(b, b"two\n")
        assert status(env, cid).state == env.pb.CONTAINER_RUNNING
    finally:
        remove(env, cid)


def test_an_output_only_session_and_a_client_that_goes_away(env):  # noqa: F811
    cid = create(env, "ticks", ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); "
                                            "sleep 0.1; done"])
    try:
        s = env.c.attach_stream(cid, stdin=False)
        read_until(s, b"tick")
        s.ws.sock.close()  # gone without a close frame
        time.sleep(0.3)
        assert status(env, cid).state == env.pb.CONTAINER_RUNNING
        with env.c.attach_stream(cid, stdin=False) as again:
            read_until(again, b"tick")
    finally:
        remove(env, cid)


@pytest.mark.parametrize("change,code,field", [
    (dict(tty=True, stderr=False), grpc.StatusCode.INVALID_ARGUMENT, "tty"),
    (dict(stdin=True), grpc.StatusCode.INVALID_ARGUMENT, "stdin"),
    (dict(stdout=False, stderr=False), grpc.StatusCode.INVALID_ARGUMENT, "stdout"),
    (dict(tty=True, stderr=True), grpc.StatusCode.INVALID_ARGUMENT, "stderr"),
])
def test_a_bad_attach_request_is_refused_naming_the_field(env, change, code, field):  # noqa: F811
    req = dict(container_id=env.cid, stdin=False, stdout=True, stderr=True, tty=False)
    req.update(change)
    with pytest.raises(grpc.RpcError) as e:
        env.c.runtime.Attach(env.pb.AttachRequest(**req), timeout=60)
    assert e.value.code() == code
    assert field in e.value.details()


def test_attach_to_an_unknown_or_stopped_container(env):  # noqa: F811
    with pytest.raises(grpc.RpcError) as e:
        env.c.attach_url("f" * 64)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    cid = create(env, "created", ["true"], start=False)
    try:
        with pytest.raises(grpc.RpcError) as e:
            env.c.attach_url(cid)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        remove(env, cid)


def test_a_restart_of_podshimd_leaves_the_containers_stdin_open_for_the_next_attach(env):  # noqa: F811
    # The monitor, not podshimd, holds the container's stdin and serves its attach socket.
    cid = create(env, "restart", ["cat"], stdin=True)
    try:
        with env.c.attach_stream(cid, stdin=True) as s:
            s.send(b"before\n")
            read_until(s, b"before\n")
        env.d.stop()
        env.d.start()
        assert status(env, cid).state == env.pb.CONTAINER_RUNNING
        with env.c.attach_stream(cid, stdin=True) as s:
            s.send(b"after\n")
            read_until(s, b"after\n")
    finally:
        remove(env, cid)
