#!/usr/bin/env python3
"""Pull benchmark: podshimd beside containerd (Debian's), same image, same local registry.

Builds a ~100 MB image of 5 incompressible layers on busybox, pushes it to a docker-registry on
127.0.0.1, then for each runtime and each of --runs rounds: starts the daemon on fresh private
dirs, pulls the image once over the CRI (Python client), and records the pull's wall time and
the daemon's peak RSS (VmHWM). Prints p50/p99 and peak memory per runtime. Nothing leaves the
machine. Needs root, containerd (deploy/setup.sh installs them), and a podshimd build (release is
best: PODSHIMD=build/release/agent/podshimd).
"""

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402
from registry import Registry  # noqa: E402

from podshim import Client  # noqa: E402
from podshim.daemon import Podshimd  # noqa: E402

LAYERS = 5
LAYER_BYTES = 20 * 1024 * 1024  # --layer-mib changes it


def big_image() -> images.ImageSpec:
    rng = random.Random(42)  # same bytes every run, so the build is cached
    layers = tuple(
        images.Layer(files={f"/data/blob{i}": images.File("file", rng.randbytes(LAYER_BYTES))})
        for i in range(LAYERS))
    return images.ImageSpec(name=f"bench-big-{LAYER_BYTES >> 20}", layers=layers, cmd=("sh",))


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def pull_once(endpoint: str, ref: str) -> float:
    with Client(endpoint, timeout=600) as c:
        c.wait_ready(30)
        t0 = time.monotonic()
        c.image.PullImage(c.pb.PullImageRequest(image=c.pb.ImageSpec(image=ref)), timeout=600)
        return time.monotonic() - t0


def run_podshim(binary: str, ref: str) -> tuple[float, int]:
    d = Podshimd(binary, log_level="info")
    try:
        d.start()
        took = pull_once(d.endpoint, ref)
        return took, peak_rss_kib(d.proc.pid)
    finally:
        d.cleanup()


def run_containerd(ref: str, registry_addr: str) -> tuple[float, int]:
    work = Path(tempfile.mkdtemp(prefix="bench-ctrd-", dir="/tmp"))
    sock = work / "containerd.sock"
    (work / "config.toml").write_text(f"""version = 2
root = "{work}/root"
state = "{work}/state"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry_addr}"]
    endpoint = ["http://{registry_addr}"]
""")
    log = open(work / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(work / "config.toml")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start:\n"
                                   + (work / "containerd.log").read_text()[-2000:])
            time.sleep(0.05)
        took = pull_once(f"unix://{sock}", ref)
        return took, peak_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", str(work / "root")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--layer-mib", type=int, default=20,
                    help="size of each of the 5 layers (to see whether memory grows with it)")
    ap.add_argument("--podshimd", default=os.environ.get(
        "PODSHIMD", str(REPO / "build" / "release" / "agent" / "podshimd")))
    args = ap.parse_args()
    global LAYER_BYTES
    LAYER_BYTES = args.layer_mib * 1024 * 1024
    if shutil.which("containerd") is None:
        print("pull_bench: containerd not installed (deploy/setup.sh installs them)", file=sys.stderr)
        return 2
    print(f"building and pushing a {LAYERS}-layer image of {LAYERS * LAYER_BYTES >> 20} MiB "
          "of incompressible data ...", flush=True)
    layout = images.build_image(big_image())
    results: dict[str, list[tuple[float, int]]] = {"podshim": [], "containerd": []}
    with Registry() as reg:
        ref = f"{reg.addr}/bench/big:1"
        images.push(layout, ref)
        for i in range(args.runs):
            # Interleaved, so that both see the same machine state.
            results["podshim"].append(run_podshim(args.podshimd, ref))
            results["containerd"].append(run_containerd(ref, reg.addr))
            print(f"run {i + 1}/{args.runs}: podshim {results['podshim'][-1][0]:.2f}s, "
                  f"containerd {results['containerd'][-1][0]:.2f}s", flush=True)
    print(f"\npull of {ref.split('/', 1)[1]} ({LAYERS} layers, "
          f"{LAYERS * LAYER_BYTES >> 20} MiB), {args.runs} runs each, fresh daemon per run")
    print(f"{'runtime':<12}{'p50 s':>8}{'p99 s':>8}{'mean s':>8}{'peak RSS MiB':>14}")
    for name, rows in results.items():
        times = [t for t, _ in rows]
        rss = max(r for _, r in rows) / 1024
        print(f"{name:<12}{percentile(times, 50):>8.2f}{percentile(times, 99):>8.2f}"
              f"{statistics.mean(times):>8.2f}{rss:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
