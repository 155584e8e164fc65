#!/usr/bin/env python3
"""Pod network setup benchmark: podshim's own CNI plugin beside Debian's standard plugins.

The plugin sets, each on a bridge and subnet of its own:
  * podshim: podshim-bridge with its in-process podshim-ipam (podshimd's embedded default);
  * debian:  bridge + host-local + portmap from /usr/lib/cni, the chain containerd runs here
             (tests/helpers/containerd.py configures exactly that).

For each set and each case (no host port; one host port), --iterations times: a fresh network
namespace (`ip netns add`, not timed), CNI ADD through the chain exactly as a CNI runtime runs
it (config on stdin, CNI_* environment, prevResult handed along; timed from the first exec to
the last exit), then DEL in reverse with the ADD result as prevResult (timed), then the
namespace is deleted. Then a few untimed pods more, each plugin run under tests/bench/maxrss.c
(built here with cc), for the peak RSS of one plugin process.

Prints p50/p99 of ADD and DEL in milliseconds and the largest plugin RSS; --json FILE writes the
numbers. Needs root, the Debian plugins (deploy/setup.sh) and a podshim build (--plugins-dir, default
build/release/cni, else build/debug/cni). Everything it creates (netns, bridges, IPAM dirs, NAT
entries) is removed at the end, on failure and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEBIAN_DIR = "/usr/lib/cni"


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def conflists(ipam_dir: str, tag: str) -> dict:
    return {
        "podshim": {
            "cniVersion": "1.0.0", "name": f"bench-own-{tag}",
            "plugins": [{
                "type": "podshim-bridge", "bridge": f"psbo{tag}", "isGateway": True,
                "ipMasq": False, "hairpinMode": True,
                "capabilities": {"portMappings": True},
                "ipam": {"type": "podshim-ipam", "ranges": [[{"subnet": "10.97.0.0/16"}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": f"{ipam_dir}/own"}}],
        },
        "debian": {
            "cniVersion": "1.0.0", "name": f"bench-deb-{tag}",
            "plugins": [
                {"type": "bridge", "bridge": f"psbd{tag}", "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.98.0.0/16"}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": f"{ipam_dir}/debian"}},
                {"type": "portmap", "capabilities": {"portMappings": True}}],
        },
    }


class PluginError(Exception):
    pass


def exec_plugin(path: str, command: str, conf: dict, cid: str, netns: str, cni_path: str,
                maxrss: str | None = None):
    """Runs one plugin; returns (stdout JSON or {}, peak RSS KiB when run under `maxrss`)."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": cni_path,
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid[:8]};"
                       f"K8S_POD_INFRA_CONTAINER_ID={cid}",
           "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    p = subprocess.Popen([maxrss, path] if maxrss else [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdin.write(json.dumps(conf).encode())
    p.stdin.close()
    out = p.stdout.read()
    err = p.stderr.read()
    p.wait()
    if p.returncode != 0:
        raise PluginError(f"{Path(path).name} {command}: {out.decode()} {err.decode()}".strip())
    rss = 0
    for line in err.decode().splitlines():
        if line.startswith("maxrss_kib="):
            rss = int(line.split("=", 1)[1])
    return (json.loads(out) if out.strip() else {}), rss


def run_chain(net: dict, command: str, cid: str, netns: str, dirs: list[str],
              port_mappings: list, prev: dict | None, maxrss: str | None = None):
    """ADD forward (each result the next prevResult), DEL in reverse with `prev`."""
    plugins = net["plugins"] if command == "ADD" else list(reversed(net["plugins"]))
    rss = 0
    result = prev
    for plugin in plugins:
        conf = dict(plugin, cniVersion=net["cniVersion"], name=net["name"])
        if plugin.get("capabilities", {}).get("portMappings") and port_mappings:
            conf["runtimeConfig"] = {"portMappings": port_mappings}
        if result is not None:
            conf["prevResult"] = result
        path = next(f"{d}/{plugin['type']}" for d in dirs
                    if os.access(f"{d}/{plugin['type']}", os.X_OK))
        out, r = exec_plugin(path, command, conf, cid, netns, ":".join(dirs), maxrss)
        rss = max(rss, r)
        if command == "ADD":
            result = out
    return result, rss


def bench(kind: str, net: dict, dirs: list[str], iterations: int, host_port: int | None,
          netns_prefix: str, created: list[str], maxrss: str | None = None) -> dict:
    add_ms, del_ms, rss = [], [], 0
    for i in range(iterations):
        name = f"{netns_prefix}-{i}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        created.append(name)
        netns = f"/run/netns/{name}"
        cid = uuid.uuid4().hex
        pm = [{"hostPort": host_port + i % 1000, "containerPort": 80, "protocol": "tcp"}] \
            if host_port else []
        t0 = time.perf_counter()
        result, r1 = run_chain(net, "ADD", cid, netns, dirs, pm, None, maxrss)
        t1 = time.perf_counter()
        _, r2 = run_chain(net, "DEL", cid, netns, dirs, pm, result, maxrss)
        t2 = time.perf_counter()
        add_ms.append((t1 - t0) * 1000)
        del_ms.append((t2 - t1) * 1000)
        rss = max(rss, r1, r2)
        subprocess.run(["ip", "netns", "del", name], check=True)
        created.remove(name)
    return {
        "plugins": kind, "host_port": bool(host_port), "iterations": iterations,
        "add_p50_ms": statistics.median(add_ms), "add_p99_ms": percentile(add_ms, 99),
        "del_p50_ms": statistics.median(del_ms), "del_p99_ms": percentile(del_ms, 99),
        "plugin_peak_rss_kib": rss,
    }


def default_plugins_dir() -> str:
    for build in ("release", "debug"):
        d = REPO / "build" / build / "cni"
        if (d / "podshim-bridge").exists():
            return str(d)
    return str(REPO / "build" / "release" / "cni")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--plugins-dir", default=default_plugins_dir())
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("network.py: run as root", file=sys.stderr)
        return 2
    if not Path(args.plugins_dir, "podshim-bridge").exists():
        print(f"network.py: no podshim-bridge in {args.plugins_dir}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tag = uuid.uuid4().hex[:6]
    tmp = tempfile.mkdtemp(prefix="podshim-netbench-")
    maxrss = f"{tmp}/maxrss"
    subprocess.run(["cc", "-O2", "-static", "-o", maxrss, str(REPO / "tests/bench/maxrss.c")],
                   check=True)
    nets = conflists(tmp, tag)
    dirs = {"podshim": [args.plugins_dir, DEBIAN_DIR], "debian": [DEBIAN_DIR]}
    created: list[str] = []
    results = []
    try:
        for case_port in (None, 30000):
            for kind in ("podshim", "debian"):
                bench(kind, nets[kind], dirs[kind], args.warmup, case_port,
                      f"psnb-{tag}-w", created)
                row = bench(kind, nets[kind], dirs[kind], args.iterations, case_port,
                            f"psnb-{tag}", created)
                row["plugin_peak_rss_kib"] = bench(kind, nets[kind], dirs[kind], 5, case_port,
                                                   f"psnb-{tag}-m", created,
                                                   maxrss)["plugin_peak_rss_kib"]
                results.append(row)
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for kind in ("podshim", "debian"):
            subprocess.run(["ip", "link", "del", nets[kind]["plugins"][0]["bridge"]],
                           capture_output=True)
        subprocess.run(["rm", "-rf", tmp], check=False)

    print(f"\nCNI ADD/DEL per pod, {args.iterations} pods per row (ms; peak RSS of one plugin "
          "process)")
    print(f"{'plugins':<10} {'host port':<10} {'ADD p50':>8} {'ADD p99':>8} {'DEL p50':>8} "
          f"{'DEL p99':>8} {'RSS MiB':>8}")
    for r in results:
        print(f"{r['plugins']:<10} {'yes' if r['host_port'] else 'no':<10} "
              f"{r['add_p50_ms']:8.2f} {r['add_p99_ms']:8.2f} {r['del_p50_ms']:8.2f} "
              f"{r['del_p99_ms']:8.2f} {r['plugin_peak_rss_kib'] / 1024:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
