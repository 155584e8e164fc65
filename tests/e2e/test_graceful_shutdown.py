"""SIGTERM while an RPC is in flight: the RPC gets its real answer, then podshimd exits 0."""

import http.server
import signal
import threading
import time

import grpc

from podshim.daemon import Podshimd


class SlowRegistry(http.server.BaseHTTPRequestHandler):
    """Answers every request after a delay with 404 MANIFEST_UNKNOWN."""

    delay = 2.0
    started = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        SlowRegistry.started.set()
        time.sleep(self.delay)
        body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_sigterm_lets_an_in_flight_rpc_finish(podshimd_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{server.server_address[1]}"
    d = Podshimd(podshimd_path)
    result = {}
    try:
        d.start()
        with d.client() as c:
            def pull():
                try:
                    c.image.PullImage(c.pb.PullImageRequest(
                        image=c.pb.ImageSpec(image=f"{addr}/slow/image:1")), timeout=30)
                    result["code"] = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    result["code"], result["details"] = e.code(), e.details()

            t = threading.Thread(target=pull)
            t.start()
            assert SlowRegistry.started.wait(10), "the pull never reached the registry"
            d.send_signal(signal.SIGTERM)
            t.join(30)
        # The pull ran to its real end (the registry's 404), not CANCELLED or UNAVAILABLE.
        assert result.get("code") == grpc.StatusCode.NOT_FOUND, result
        assert "slow/image" in result["details"]
        assert d.proc.wait(timeout=15) == 0
    finally:
        d.cleanup()
        server.shutdown()
