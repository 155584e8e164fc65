"""Exec and Attach over podshim's streaming server, without crictl.

The CRI's Exec and Attach answer a URL; a client connects to it with a WebSocket and speaks Kubernetes'
channel protocol (`v5.channel.k8s.io`): each binary message is one byte of channel number, then
data. Channel 0 is stdin, 1 stdout, 2 stderr, 3 the outcome (a JSON metav1.Status: "Success", or
"Failure" with the exit code as the cause "ExitCode"), 4 terminal resizes ({"Width": W,
"Height": H}); the client's [255, 0] closes the command's stdin. See docs/streaming.md.

    from podshim import Client
    with Client("unix:///run/podshim/podshim.sock") as c:
        r = c.exec(container_id, ["sh", "-c", "echo hi; exit 3"])
        print(r.stdout, r.exit_code)            # b'hi\\n' 3
        r = c.exec(container_id, ["cat"], stdin=b"typed\\n")
        with c.exec_stream(container_id, ["sh"], tty=True) as s:   # interactive
            s.resize(120, 40)
            s.send(b"stty size; exit\\n")
            print(s.collect().stdout)
        # Attach to a container created with stdin (and stdin_once): its own shell.
        with c.attach_stream(container_id, stdin=True) as s:
            s.send(b"echo hello\\n")
            s.close_stdin()                     # stdin_once: the container's stdin closes
            print(s.collect().stdout)           # b'hello\\n', once the container exited

The WebSocket side is the `websocket-client` package (PyPI), a maintained implementation of
RFC 6455.
"""

import base64
import json
import ssl
import time
from dataclasses import dataclass, field

import websocket

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
PROTOCOL = "v5.channel.k8s.io"


@dataclass
class ExecResult:
    stdout: bytes = b""
    stderr: bytes = b""
    # The error channel's JSON (v4 and later), or None when it wrote none.
    status: dict | None = None
    # The command's exit code when the status says it (0 on Success); None when it did not run.
    exit_code: int | None = None
    # The status's message when the command could not run (or an older protocol's text).
    error: str | None = None
    # The WebSocket close code the server ended with (1000: normal).
    close_code: int | None = None
    # Every message in order, as (channel, data), for tests that look at the framing.
    messages: list = field(default_factory=list)


def ws_url(url: str) -> str:
    """The http(s):// URL the CRI answered as the ws(s):// URL a WebSocket client dials."""
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    return url


def outcome(result: ExecResult, text: bytes, version: int) -> None:
    """Fills exit_code/error/status from what the error channel carried."""
    if version < 4:
        if text:
            result.error = text.decode(errors="replace")
        else:
            result.exit_code = 0
        return
    if not text:  # an empty error stream means success
        result.exit_code = 0
        return
    status = json.loads(text)
    result.status = status
    if status.get("status") == "Success":
        result.exit_code = 0
    elif status.get("reason") == "NonZeroExitCode":
        for cause in status.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                result.exit_code = int(cause["message"])
    else:
        result.error = status.get("message", "")


class Stream:
    """One streaming connection (an Exec URL), for interactive use."""

    def __init__(self, url: str, protocol: str | None = PROTOCOL, timeout: float = 60.0,
                 verify_tls: bool = True):
        """`url` as the CRI answered it, or an https:// one (the kubelet's own endpoints);
        verify_tls=False accepts any certificate (a kubelet's self-signed one)."""
        sslopt = None if verify_tls else {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        self.ws = websocket.create_connection(ws_url(url),
                                              subprotocols=[protocol] if protocol else None,
                                              timeout=timeout, sslopt=sslopt)
        self.protocol = self.ws.subprotocol or ""
        self.version = 5 if self.protocol.startswith("v5.") else (
            4 if self.protocol.startswith("v4.") else 1)
        self.base64 = "base64" in self.protocol

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_message(self, channel: int, data: bytes) -> None:
        if self.base64:
            self.ws.send(str(channel) + base64.b64encode(data).decode())
        else:
            self.ws.send_binary(bytes([channel]) + data)

    def send(self, data: bytes) -> None:
        """Writes `data` to the command's stdin."""
        self.send_message(STDIN, data)

    def close_stdin(self) -> None:
        """The command reads end of file (v5's close signal)."""
        self.ws.send_binary(bytes([CLOSE, STDIN]))

    def resize(self, width: int, height: int) -> None:
        self.send_message(RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    def recv(self):
        """The next message as (channel, data); (None, close code) once the server closed."""
        while True:
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return None, code
            if not data:
                continue
            if self.base64:
                text = data.decode() if isinstance(data, bytes) else data
                return int(text[0]), base64.b64decode(text[1:])
            return data[0], data[1:]

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Reads stdout until `needle` has come; returns all read. AssertionError when the
        connection closes first or `timeout` passes (a helper for tests and scripts)."""
        got = b""
        deadline = time.monotonic() + timeout
        while needle not in got:
            assert time.monotonic() < deadline, f"no {needle!r} in {got!r}"
            channel, data = self.recv()
            assert channel is not None, f"closed before {needle!r}: {got!r}"
            if channel == STDOUT:
                got += data
        return got

    def collect(self) -> ExecResult:
        """Reads to the end: output, outcome and close code."""
        r = ExecResult()
        error = b""
        while True:
            try:
                channel, data = self.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            if channel is None:
                r.close_code = data
                break
            r.messages.append((channel, data))
            if channel == STDOUT:
                r.stdout += data
            elif channel == STDERR:
                r.stderr += data
            elif channel == ERROR:
                error += data
        outcome(r, error, self.version)
        return r

    def close(self) -> None:
        self.ws.close()


def exec_url(url: str, stdin: bytes | None = None, protocol: str | None = PROTOCOL,
             timeout: float = 60.0) -> ExecResult:
    """Runs the exec behind `url` to the end, writing `stdin` (then closing it) when given."""
    with Stream(url, protocol, timeout) as s:
        if stdin is not None:
            if stdin:
                s.send(stdin)
            s.close_stdin()
        return s.collect()
