"""A thin, friendly layer over the generated CRI stubs."""

import json

import grpc

from podshim import streams
from podshim.stubs import cri, cri_grpc

DEFAULT_ENDPOINT = "unix:///run/podshim/podshim.sock"


class Client:
    """A CRI client for one endpoint.

    `runtime` and `image` are the raw generated stubs, for any RPC; the
    methods below cover the common calls and return the response messages.
    Every call uses `timeout` seconds unless given one.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 10.0):
        if endpoint.startswith("/"):
            endpoint = "unix://" + endpoint
        self.endpoint = endpoint
        self.timeout = timeout
        self.channel = grpc.insecure_channel(endpoint)
        self.runtime = cri_grpc().RuntimeServiceStub(self.channel)
        self.image = cri_grpc().ImageServiceStub(self.channel)
        self.pb = cri()

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel connects, or raises grpc.FutureTimeoutError."""
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    # RuntimeService --------------------------------------------------------
    def version(self, timeout=None):
        return self.runtime.Version(self.pb.VersionRequest(version="v1"),
                                    timeout=timeout or self.timeout)

    def status(self, verbose: bool = False, timeout=None):
        return self.runtime.Status(self.pb.StatusRequest(verbose=verbose),
                                   timeout=timeout or self.timeout)

    def conditions(self) -> dict:
        """{condition type: RuntimeCondition} from Status."""
        return {c.type: c for c in self.status().status.conditions}

    def info(self) -> dict:
        """Status(verbose=True).info with JSON values decoded where they are JSON."""
        out = {}
        for key, value in self.status(verbose=True).info.items():
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        return out

    def runtime_config(self, timeout=None):
        return self.runtime.RuntimeConfig(self.pb.RuntimeConfigRequest(),
                                          timeout=timeout or self.timeout)

    def cgroup_driver(self) -> str:
        """"SYSTEMD" or "CGROUPFS"."""
        resp = self.runtime_config()
        return self.pb.CgroupDriver.Name(resp.linux.cgroup_driver)

    # Streaming (podshim/streams.py) ---------------------------------------
    def exec_url(self, container_id: str, cmd, stdin: bool = False, tty: bool = False,
                 stdout: bool = True, stderr: bool | None = None, timeout=None) -> str:
        """The URL the CRI's Exec answers (stderr defaults to `not tty`)."""
        req = self.pb.ExecRequest(container_id=container_id, cmd=list(cmd), stdin=stdin, tty=tty,
                                  stdout=stdout, stderr=(not tty) if stderr is None else stderr)
        return self.runtime.Exec(req, timeout=timeout or self.timeout).url

    def attach_url(self, container_id: str, stdin: bool = False, tty: bool = False,
                   stdout: bool = True, stderr: bool | None = None, timeout=None) -> str:
        """The URL the CRI's Attach answers (stderr defaults to `not tty`; `tty` must be the
        container's own)."""
        req = self.pb.AttachRequest(container_id=container_id, stdin=stdin, tty=tty,
                                    stdout=stdout, stderr=(not tty) if stderr is None else stderr)
        return self.runtime.Attach(req, timeout=timeout or self.timeout).url

    def attach_stream(self, container_id: str, stdin: bool = True, tty: bool = False,
                      timeout: float = 60.0) -> streams.Stream:
        """An attach to the container's own stdio: the same Stream as exec_stream (its outcome
        is Success once the container exits or the session is detached)."""
        return streams.Stream(self.attach_url(container_id, stdin=stdin, tty=tty),
                              timeout=timeout)

    def port_forward_url(self, pod_sandbox_id: str, ports=(), timeout=None) -> str:
        """The URL the CRI's PortForward answers (SPDY/3.1, or SPDY tunnelled in a WebSocket)."""
        req = self.pb.PortForwardRequest(pod_sandbox_id=pod_sandbox_id, port=list(ports))
        return self.runtime.PortForward(req, timeout=timeout or self.timeout).url

    def exec(self, container_id: str, cmd, stdin: bytes | None = None, tty: bool = False,
             timeout: float = 60.0) -> streams.ExecResult:
        """Runs `cmd` in the container through Exec and the streaming server, to the end."""
        url = self.exec_url(container_id, cmd, stdin=stdin is not None, tty=tty)
        return streams.exec_url(url, stdin=stdin, timeout=timeout)

    def exec_stream(self, container_id: str, cmd, stdin: bool = True, tty: bool = False,
                    timeout: float = 60.0) -> streams.Stream:
        """An interactive exec: send(), close_stdin(), resize(), recv(), collect()."""
        return streams.Stream(self.exec_url(container_id, cmd, stdin=stdin, tty=tty),
                              timeout=timeout)
