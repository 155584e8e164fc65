"""Start and stop a private podshimd: for tests and for experiments.

    with Podshimd() as d:            # temp socket, state and root dirs
        print(d.client().version())
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from podshim.client import Client
from podshim.stubs import REPO

DEFAULT_BINARY = REPO / "build" / "debug" / "agent" / "podshimd"


def podshimd_binary() -> Path:
    """$PODSHIMD, else the debug build in the repo."""
    return Path(os.environ.get("PODSHIMD", DEFAULT_BINARY))


class Podshimd:
    """One podshimd process with its own socket, state dir and root dir.

    The temp dir lives under /tmp with a short name, since a unix socket path
    must fit in 107 bytes.
    """

    def __init__(self, binary=None, extra_args=(), log_level="debug", base_dir=None, env=None):
        self.binary = Path(binary) if binary else podshimd_binary()
        self.own_dir = base_dir is None
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="podshim-", dir="/tmp"))
        self.socket = str(self.dir / "run" / "podshim.sock")
        self.state_dir = str(self.dir / "run")
        self.root_dir = str(self.dir / "root")
        self.log_path = self.dir / "podshimd.log"
        self.extra_args = list(extra_args)
        self.log_level = log_level
        # Extra environment variables (e.g. PODSHIM_CRASH_AT for fault injection).
        self.env = dict(env or {})
        # A private, empty CNI config dir: pods get podshim's embedded default
        # network whatever /etc/cni/net.d holds. --cni_conf_dir in extra_args wins.
        self.cni_conf_dir = str(self.dir / "net.d")
        self.proc = None

    @property
    def endpoint(self) -> str:
        return "unix://" + self.socket

    def args(self):
        return [str(self.binary), f"--socket={self.socket}", f"--state_dir={self.state_dir}",
                f"--root_dir={self.root_dir}", f"--log_level={self.log_level}",
                f"--cni_conf_dir={self.cni_conf_dir}", *self.extra_args]

    def start(self, timeout: float = 10.0) -> "Podshimd":
        if not self.binary.exists():
            raise FileNotFoundError(f"podshimd binary not found at {self.binary}; build it "
                                    "first (cmake --preset debug && cmake --build --preset debug)")
        os.makedirs(self.cni_conf_dir, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"podshimd exited with {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.socket):
                with Client(self.endpoint) as c:
                    try:
                        c.wait_ready(timeout=max(0.1, deadline - time.monotonic()))
                        return self
                    except Exception:  # noqa: BLE001 - retried until the deadline
                        pass
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"podshimd did not serve {self.socket} within {timeout}s:\n{self.log()}")

    def import_image(self, source, name: str) -> subprocess.CompletedProcess:
        """`podshimd import SOURCE --name=NAME` into this daemon's store (while it is stopped)."""
        return subprocess.run([str(self.binary), f"--socket={self.socket}",
                               f"--state_dir={self.state_dir}", f"--root_dir={self.root_dir}",
                               "import", str(source), f"--name={name}"],
                              capture_output=True, text=True, timeout=120, check=True)

    def client(self, timeout: float = 10.0) -> Client:
        return Client(self.endpoint, timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def send_signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stops the daemon (SIGTERM, then SIGKILL after `timeout`); returns its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def remove_cgroup_parent(parent: str, root: str = "/sys/fs/cgroup") -> None:
    """Removes what is left of a --cgroup_parent in every v1 hierarchy (podshim makes its cgroups
    in each, blkio, cpuacct and devices too) or in the v2 tree (empty directories only, deepest
    first), after a test's daemon is gone."""
    base = Path(root)
    trees = [base] + [p for p in base.iterdir() if p.is_dir() and not p.is_symlink()]
    for tree in trees:
        path = tree / parent.lstrip("/")
        if path.exists():
            subprocess.run(["find", str(path), "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                           capture_output=True, check=False)
