#!/usr/bin/env python3
"""A throw-away OCI image registry on loopback, for tests.

Runs Debian's ``docker-registry`` (docker/distribution 2.8) with a generated
config: listening on 127.0.0.1 only, filesystem storage in a private directory,
deletes enabled. Nothing here assumes a registry is already running.

From Python::

    from registry import Registry
    with Registry() as reg:          # free port, temp storage
        print(reg.addr)              # "127.0.0.1:41234"
        ...                          # push/pull against reg.addr (plain HTTP)

From a shell (foreground until Ctrl-C / SIGTERM)::

    python3 tests/helpers/registry.py --port 5000 --dir /tmp/reg
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_BINARY = "docker-registry"
HOST = "127.0.0.1"


class RegistryError(RuntimeError):
    pass


def free_port(host: str = HOST) -> int:
    """A TCP port on host that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class Registry:
    """Context manager: a docker-registry process on 127.0.0.1.

    port:        TCP port; None picks a free one (retried if it is taken
                 between picking and binding).
    storage_dir: directory for config, storage and log; None makes a temp
                 dir that is removed on exit. A given directory is kept.
    """

    def __init__(self, port: int | None = None, storage_dir: str | None = None,
                 binary: str = DEFAULT_BINARY, start_timeout: float = 30.0,
                 htpasswd: str | None = None):
        """htpasswd: the content of an htpasswd file (bcrypt entries, e.g. from
        `htpasswd -Bbn USER PASS`); when given, the registry wants Basic auth."""
        self.htpasswd = htpasswd
        self.requested_port = port
        self.binary = binary
        self.start_timeout = start_timeout
        self._given_dir = storage_dir
        self.dir: str | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: str | None = None
        self._log_file = None

    # ------------------------------------------------------------------ API
    @property
    def addr(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def start(self) -> "Registry":
        if shutil.which(self.binary) is None and not os.path.exists(self.binary):
            raise RegistryError(f"{self.binary} not found (Debian package docker-registry)")
        if self._given_dir:
            self.dir = os.path.abspath(self._given_dir)
            os.makedirs(self.dir, exist_ok=True)
        else:
            self.dir = tempfile.mkdtemp(prefix="podshim-registry-")
        try:
            attempts = 1 if self.requested_port else 5
            last_err: Exception | None = None
            for _ in range(attempts):
                port = self.requested_port or free_port()
                try:
                    self._spawn(port)
                    return self
                except RegistryError as e:
                    last_err = e
                    self._kill()
            raise last_err  # type: ignore[misc]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._kill()
        if self.dir and not self._given_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None if not self._given_dir else self.dir

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ internals
    def _spawn(self, port: int) -> None:
        assert self.dir
        storage = os.path.join(self.dir, "storage")
        os.makedirs(storage, exist_ok=True)
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\n"
                "log:\n"
                "  level: warn\n"
                "  accesslog:\n"
                "    disabled: true\n"
                "storage:\n"
                "  filesystem:\n"
                f"    rootdirectory: {storage}\n"
                "  delete:\n"
                "    enabled: true\n"
                "  maintenance:\n"
                "    uploadpurging:\n"
                "      enabled: false\n"
                "http:\n"
                f"  addr: {HOST}:{port}\n"
            )
            if self.htpasswd is not None:
                users = os.path.join(self.dir, "htpasswd")
                with open(users, "w") as u:
                    u.write(self.htpasswd)
                f.write("auth:\n"
                        "  htpasswd:\n"
                        "    realm: podshim-test\n"
                        f"    path: {users}\n")
        self.log_path = os.path.join(self.dir, "registry.log")
        self._log_file = open(self.log_path, "ab")
        self.port = port
        # Own session: a terminal Ctrl-C goes to the test runner, which stops
        # the registry in order (after the things that use it).
        self.proc = subprocess.Popen(
            [self.binary, "serve", config],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RegistryError(
                    f"docker-registry exited with {self.proc.returncode} on {HOST}:{port}:\n"
                    + _tail(self.log_path))
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/v2/", timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:  # 401 etc.: it answers
                if e.code in (200, 401):
                    return
            except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                pass
            time.sleep(0.1)
        raise RegistryError(f"docker-registry did not answer on {HOST}:{port} within "
                            f"{self.start_timeout}s:\n" + _tail(self.log_path))

    def _kill(self) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._log_file:
            self._log_file.close()
            self._log_file = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run docker-registry on 127.0.0.1 in the foreground.")
    ap.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    ap.add_argument("--dir", default=None,
                    help="storage/config dir (kept); default: a temp dir removed on exit")
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    args = ap.parse_args(argv)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Registry(port=args.port, storage_dir=args.dir, binary=args.binary) as reg:
        print(f"registry listening on {reg.addr} (dir {reg.dir}, log {reg.log_path})", flush=True)
        while not stop["now"]:
            if reg.proc is None or reg.proc.poll() is not None:
                print("docker-registry exited:\n" + _tail(reg.log_path or ""), file=sys.stderr)
                return 1
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
