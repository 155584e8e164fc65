"""A registry front on 127.0.0.1 that relays to a real registry but trickles blobs out (16 KiB
every 50 ms), so that a pull is slow enough to be cancelled, or to outlive a short deadline,
while a layer is half downloaded. Every GET it relays is recorded in `requests`."""

import http.server
import threading
import time
import urllib.error
import urllib.request


class SlowProxy:
    def __init__(self, upstream: str):
        self.started_blob = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                with proxy._lock:
                    proxy._requests.append(self.path)
                req = urllib.request.Request(f"http://{upstream}{self.path}",
                                             headers={"Accept": self.headers.get("Accept", "")})
                try:
                    resp = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    resp = e
                self.send_response(resp.status if hasattr(resp, "status") else resp.code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                slow = "/blobs/" in self.path
                try:
                    while chunk := resp.read(16 * 1024):
                        if slow:
                            proxy.started_blob.set()
                            time.sleep(0.05)
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def requests(self) -> list[str]:
        """The paths of the GETs relayed so far, in order."""
        with self._lock:
            return list(self._requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
