#!/usr/bin/env python3
"""A private containerd (Debian's 1.6) with runc and CNI, for tests that compare with podshim.

Everything lives under one temp dir (root, state, socket, runc root, CNI config and IPAM data),
so it cannot collide with a system containerd or with another instance:

* CRI config: ``restrict_oom_score_adj = true`` (this VM refuses lower OOM scores), the sandbox
  image from the local registry, that registry as a plain-HTTP mirror, a random stream port.
* CNI: the plugins in /usr/lib/cni with a bridge conflist in its own conf dir: a bridge of its
  own name, host-local IPAM on a private subnet (default 10.99.0.0/24, apart from the usual
  10.88.0.0/16), portmap for hostPorts. No masquerading: pod traffic stays on the machine.

``stop()`` removes every pod through the CRI (so CNI tears down veths and port mappings), stops
containerd, kills leftover shims of this instance (found by their -address argument) and runc
containers under its runc root, unmounts what is left under the temp dir, deletes the bridge
and the dir.

From Python::

    from containerd import Containerd
    with Containerd(registry_addr="127.0.0.1:5000",
                    sandbox_image="127.0.0.1:5000/pause:3.9") as ctrd:
        print(ctrd.endpoint)        # unix:///tmp/ctrd-xxxx/containerd.sock

From a shell (foreground until Ctrl-C)::

    python3 tests/helpers/containerd.py --registry 127.0.0.1:5000 --sandbox-image 127.0.0.1:5000/pause:3.9
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CNI_BIN_DIR = "/usr/lib/cni"


class ContainerdError(RuntimeError):
    pass


def _tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class Containerd:
    """Context manager: one containerd process with its own dirs, socket and CNI network."""

    def __init__(self, registry_addr: str | None = None, sandbox_image: str | None = None,
                 subnet: str = "10.99.0.0/24", binary: str = "containerd",
                 start_timeout: float = 30.0):
        self.registry_addr = registry_addr
        self.sandbox_image = sandbox_image
        self.subnet = subnet
        self.binary = binary
        self.start_timeout = start_timeout
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.bridge = "pskt" + secrets.token_hex(3)  # <= 15 characters
        self.network_name = "podshim-test-" + self.bridge
        self._log = None

    # ------------------------------------------------------------------ API
    @property
    def socket(self) -> str:
        assert self.dir
        return str(self.dir / "containerd.sock")

    @property
    def endpoint(self) -> str:
        return "unix://" + self.socket

    @property
    def log_path(self) -> Path:
        assert self.dir
        return self.dir / "containerd.log"

    def log(self) -> str:
        return _tail(self.log_path, 200) if self.dir else ""

    def start(self) -> "Containerd":
        for tool in (self.binary, "runc"):
            if shutil.which(tool) is None:
                raise ContainerdError(f"{tool} not found (Debian packages containerd and runc)")
        if not os.path.exists(os.path.join(CNI_BIN_DIR, "bridge")):
            raise ContainerdError(f"no CNI plugins in {CNI_BIN_DIR} "
                                  "(Debian package containernetworking-plugins)")
        self.dir = Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp"))
        try:
            self._write_config()
            self._log = open(self.log_path, "ab")
            # Own session: a terminal Ctrl-C reaches the test runner, which stops it in order.
            self.proc = subprocess.Popen(
                [self.binary, "--config", str(self.dir / "config.toml")],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                start_new_session=True)
            self._wait_ready()
            return self
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.dir is None:
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.remove_all_pods()
            except Exception as e:  # noqa: BLE001 - cleanup continues below
                print(f"containerd helper: removing pods through the CRI failed: {e}",
                      file=sys.stderr)
        self._stop_process()
        self._kill_shims()
        self._kill_runc_containers()
        self._unmount_all()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        if self._log:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> "Containerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self, timeout: float = 30.0):
        sys.path.insert(0, str(REPO / "python"))
        from podshim import Client  # noqa: E402 - generated stubs, imported late
        return Client(self.endpoint, timeout=timeout)

    def remove_all_pods(self) -> None:
        """Stops and removes every container and pod sandbox (CNI teardown included)."""
        with self.client(timeout=60) as c:
            pb = c.pb
            for ctr in c.runtime.ListContainers(pb.ListContainersRequest()).containers:
                try:
                    c.runtime.StopContainer(pb.StopContainerRequest(container_id=ctr.id, timeout=0))
                    c.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=ctr.id))
                except Exception:  # noqa: BLE001 - the sandbox removal below retries
                    pass
            for sb in c.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
                c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sb.id))
                c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sb.id))

    # ------------------------------------------------------------ internals
    def _write_config(self) -> None:
        d = self.dir
        assert d
        for sub in ("root", "state", "net.d", "ipam", "opt", "runc"):
            (d / sub).mkdir()
        cri = '[plugins."io.containerd.grpc.v1.cri"]'
        lines = [
            "version = 2",
            f'root = "{d}/root"',
            f'state = "{d}/state"',
            "[grpc]",
            f'  address = "{self.socket}"',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{d}/opt"',
            cri,
            "  restrict_oom_score_adj = true",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
        ]
        if self.sandbox_image:
            lines.append(f'  sandbox_image = "{self.sandbox_image}"')
        lines += [
            f"{cri[:-1]}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"{cri[:-1]}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"{cri[:-1]}.containerd.runtimes.runc.options]",
            f'  Root = "{d}/runc"',
            f"{cri[:-1]}.cni]",
            f'  bin_dir = "{CNI_BIN_DIR}"',
            f'  conf_dir = "{d}/net.d"',
            "  max_conf_num = 1",
        ]
        if self.registry_addr:
            lines += [f'{cri[:-1]}.registry.mirrors."{self.registry_addr}"]',
                      f'  endpoint = ["http://{self.registry_addr}"]']
        (d / "config.toml").write_text("\n".join(lines) + "\n")
        conflist = {
            "cniVersion": "1.0.0",
            "name": self.network_name,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": f"{d}/ipam",
                          "ranges": [[{"subnet": self.subnet}]]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (d / "net.d" / "10-podshim-test.conflist").write_text(json.dumps(conflist, indent=2))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ContainerdError(f"containerd exited with {self.proc.returncode}:\n"
                                      + self.log())
            if os.path.exists(self.socket):
                try:
                    with self.client(timeout=5) as c:
                        c.wait_ready(5)
                        c.version()
                        return
                except Exception:  # noqa: BLE001 - retried until the deadline
                    pass
            time.sleep(0.1)
        raise ContainerdError(f"containerd did not serve {self.socket} within "
                              f"{self.start_timeout}s:\n" + self.log())

    def _stop_process(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def _kill_shims(self) -> None:
        """Kills containerd-shim processes started by this instance (by pid)."""
        marker = self.socket.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            args = cmdline.split(b"\0")
            if args and b"containerd-shim" in args[0] and marker in args:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _kill_runc_containers(self) -> None:
        root = self.dir / "runc" / "k8s.io"
        if not root.exists():
            return
        r = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True,
                           text=True)
        for cid in r.stdout.split():
            subprocess.run(["runc", "--root", str(root), "kill", "-a", cid, "KILL"],
                           capture_output=True)
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid],
                           capture_output=True)

    def _unmount_all(self) -> None:
        unmount_under(str(self.dir))


def unmount_under(prefix: str) -> None:
    """Lazily unmounts every mount below `prefix`, deepest first."""
    prefix = prefix.rstrip("/") + "/"
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a private containerd in the foreground.")
    ap.add_argument("--registry", help="HOST:PORT of a plain-HTTP registry to mirror")
    ap.add_argument("--sandbox-image", help="pause image reference")
    ap.add_argument("--subnet", default="10.99.0.0/24")
    args = ap.parse_args(argv)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Containerd(args.registry, args.sandbox_image, args.subnet) as c:
        print(f"containerd serving {c.endpoint} (dir {c.dir}, log {c.log_path})", flush=True)
        while not stop["now"]:
            if c.proc is None or c.proc.poll() is not None:
                print("containerd exited:\n" + c.log(), file=sys.stderr)
                return 1
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
