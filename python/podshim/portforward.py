"""Port forwarding over podshim's streaming server, without crictl.

The CRI's PortForward answers a URL; a client upgrades a connection to it to SPDY/3.1
(`X-Stream-Protocol-Version: portforward.k8s.io`), or opens a WebSocket with the subprotocol
`SPDY/3.1+portforward.k8s.io` and speaks the same SPDY inside it (client-go's WebSocket
transport). Each forwarded connection is a pair of SPDY streams with the headers `port` and
`requestID`: `streamType: error` (the server writes an error's text there, if any, and ends it)
and `streamType: data` (the bytes, both ways; each side's end is a FIN). See docs/streaming.md.

    from podshim import Client, portforward
    with Client("unix:///run/podshim/podshim.sock") as c:
        with portforward.Session(c.port_forward_url(pod_id, [8080])) as s:
            reply = s.forward(8080, b"GET / HTTP/1.0\\r\\n\\r\\n")
            print(reply.data, reply.error)

No maintained Python package speaks SPDY/3.1 (the protocol was retired in favour of HTTP/2 and
only Kubernetes streaming still uses it), so this is a small client of the frames that port
forwarding needs: SYN_STREAM (its header block compressed with zlib, without the SPDY
dictionary, which the specification allows a compressor to leave out), DATA and RST_STREAM out;
frames in are read by their length, and only DATA, RST_STREAM and GOAWAY matter. The WebSocket
side is the `websocket-client` package, as in streams.py.
"""

import contextlib
import socket
import ssl
import struct
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import websocket

from . import streams

PROTOCOL = "portforward.k8s.io"
TUNNEL = "SPDY/3.1+" + PROTOCOL
_CONTROL, _VERSION = 0x8000, 3
_SYN_STREAM, _SYN_REPLY, _RST_STREAM, _GOAWAY = 1, 2, 3, 7
_FIN = 0x01


class HandshakeError(Exception):
    """The server refused the upgrade: its HTTP status and body."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class StreamReset(Exception):
    """The server refused a stream (RST_STREAM) with `status`."""

    def __init__(self, stream_id: int, status: int):
        super().__init__(f"stream {stream_id} reset with status {status}")
        self.stream_id = stream_id
        self.status = status


@dataclass
class Forwarded:
    data: bytes = b""   # what the pod sent, to its end
    error: str = ""     # what the server wrote on the error stream ("" when all went well)


class Session:
    """One SPDY connection to a port forwarding URL, over "spdy" (an HTTP upgrade) or
    "websocket" (the tunnel). forward() may be called any number of times, one after the other."""

    def __init__(self, url: str, transport: str = "spdy", timeout: float = 30.0,
                 verify_tls: bool = True):
        """`url` as the CRI answered it, or an https:// one (the kubelet's own endpoints);
        verify_tls=False accepts any certificate (a kubelet's self-signed one)."""
        self._buf = b""
        self._ws = None
        self._sock = None
        self._z = zlib.compressobj()
        self._next_stream = 1
        self._next_request = 0
        if transport == "websocket":
            try:
                sslopt = None if verify_tls else {"cert_reqs": ssl.CERT_NONE,
                                                  "check_hostname": False}
                self._ws = websocket.create_connection(streams.ws_url(url), subprotocols=[TUNNEL],
                                                       timeout=timeout, sslopt=sslopt)
            except websocket.WebSocketBadStatusException as e:
                raise HandshakeError(e.status_code, e.resp_body or b"") from e
            # websocket-client reports the subprotocol lowercased.
            chosen = self._ws.getsubprotocol() or ""
            self.protocol = chosen[len("SPDY/3.1+"):] if chosen.lower().startswith("spdy/3.1+") \
                else ""
            return
        if transport != "spdy":
            raise ValueError(f"transport {transport!r}: spdy or websocket")
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        # Frames go out as written, as Go's clients send them (no Nagle delay).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            if not verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._sock = ctx.wrap_socket(self._sock, server_hostname=parts.hostname)
        self._sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\n"
            f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {PROTOCOL}\r\n"
            "Content-Length: 0\r\n\r\n".encode())
        while b"\r\n\r\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                break
            self._buf += chunk
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1]) if lines[0].startswith(b"HTTP/1.1 ") else 0
        if status != 101:
            raise HandshakeError(status, self._buf)
        self.protocol = ""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-stream-protocol-version":
                self.protocol = value.strip().decode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._ws is not None:
            self._ws.close()
        if self._sock is not None:
            # A send blocked in another thread wakes up (close alone would not wake it).
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    # --- frames -----------------------------------------------------------------------------

    def _send(self, frame: bytes):
        if self._ws is not None:
            self._ws.send_binary(frame)
        else:
            self._sock.sendall(frame)

    def _control(self, kind: int, flags: int, body: bytes):
        self._send(struct.pack(">HHI", _CONTROL | _VERSION, kind, (flags << 24) | len(body)) + body)

    def syn_stream(self, stream_id: int, headers: dict, fin: bool = False):
        self._next_stream = max(self._next_stream, stream_id + 2)
        block = struct.pack(">I", len(headers))
        for name, value in headers.items():
            n, v = name.lower().encode(), str(value).encode()
            block += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        packed = self._z.compress(block) + self._z.flush(zlib.Z_SYNC_FLUSH)
        self._control(_SYN_STREAM, _FIN if fin else 0,
                      struct.pack(">IIH", stream_id, 0, 0) + packed)

    def data(self, stream_id: int, payload: bytes = b"", fin: bool = False):
        self._send(struct.pack(">II", stream_id, ((_FIN if fin else 0) << 24) | len(payload))
                   + payload)

    def reset(self, stream_id: int, status: int = 5):
        self._control(_RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def next_frame(self):
        """(stream id, or None for a control frame; its kind; flags; payload). ConnectionError
        once the server has closed the connection."""
        while True:
            if len(self._buf) >= 8:
                first, second = struct.unpack(">II", self._buf[:8])
                length = second & 0xFFFFFF
                if len(self._buf) >= 8 + length:
                    payload, self._buf = self._buf[8:8 + length], self._buf[8 + length:]
                    flags = second >> 24
                    if first & 0x80000000:
                        return None, first & 0xFFFF, flags, payload
                    return first, None, flags, payload
            chunk = self._ws.recv() if self._ws is not None else self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buf += chunk if isinstance(chunk, bytes) else chunk.encode()

    # --- forwarding ---------------------------------------------------------------------------

    def forward(self, port: int, payload: bytes = b"", end: bool = True,
                sink=None) -> Forwarded:
        """Forwards one connection to `port` in the pod: sends `payload` (then ends the client's
        side unless `end` is false) and reads until the server ended both streams. What the pod
        sends goes to `sink(bytes)` when given (and is not kept), else into the result."""
        error_id, data_id = self._next_stream, self._next_stream + 2
        self._next_stream += 4
        headers = {"port": port, "requestID": self._next_request}
        self._next_request += 1
        # client-go's order: the error stream (ended at once: the client writes nothing on it),
        # then the data stream.
        self.syn_stream(error_id, {"streamType": "error", **headers}, fin=True)
        self.syn_stream(data_id, {"streamType": "data", **headers})
        for i in range(0, len(payload), 32 << 10):
            self.data(data_id, payload[i:i + (32 << 10)])
        if end:
            self.data(data_id, b"", fin=True)
        result, error, ended = Forwarded(), b"", set()
        while ended != {error_id, data_id}:
            stream, kind, flags, body = self.next_frame()
            if stream is None:
                if kind == _RST_STREAM:
                    rid, status = struct.unpack(">II", body[:8])
                    if rid in (error_id, data_id):
                        raise StreamReset(rid, status)
                elif kind == _GOAWAY:
                    raise ConnectionError("the server sent GOAWAY")
                continue
            if stream == data_id:
                if sink is not None:
                    sink(body)
                else:
                    result.data += body
            elif stream == error_id:
                error += body
            if flags & _FIN and stream in (error_id, data_id):
                ended.add(stream)
        result.error = error.decode(errors="replace")
        return result
