#!/usr/bin/env python3
"""Writes the seed corpus of the fuzzers (fuzz/corpus/<target>/), committed.

Seeds are small valid inputs of every shape a target reads, so libFuzzer
starts from inputs that get past the parsers. Run it again after changing a
seed (from the checkout: .tools/venv/bin/python fuzz/make_corpus.py); the
names are the seeds' purposes, the content is deterministic.
"""

import gzip
import io
import json
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from podshim.stubs import cri  # noqa: E402

OUT = HERE / "corpus"
SHA = "sha256:" + "ab" * 32


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def references():
    for i, ref in enumerate([
        "busybox", "busybox:1.36", "docker.io/library/busybox:musl", "quay.io/org/app:v1",
        "localhost:5000/x/y:t", "[::1]:5000/repo", "127.0.0.1:5000/repo@" + SHA,
        "registry.k8s.io/pause:3.9@" + SHA, "user/repo", "a.b-c.d/e__f-g.h",
    ]):
        write("reference", f"ref{i}", ref)


def manifests():
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA, "size": 7}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 dict(desc, platform={"os": "linux", "architecture": "amd64"}),
                 dict(desc, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
                 dict(desc, platform={"os": "unknown", "architecture": "unknown"}),
             ]}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": SHA, "size": 3},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": SHA, "size": 9},
                           {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                            "digest": SHA, "size": 9}],
                "annotations": {"a": "b"}}
    docker = dict(manifest, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {"User": "1000:1000", "Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"],
                         "Cmd": ["-c", "true"], "WorkingDir": "/w", "Labels": {"l": "v"},
                         "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
                         "StopSignal": "SIGINT"},
              "rootfs": {"type": "layers", "diff_ids": [SHA]}}
    # The first byte picks the Content-Type the registry claimed.
    write("manifest", "index", b"\x02" + json.dumps(index).encode())
    write("manifest", "manifest", b"\x01" + json.dumps(manifest).encode())
    write("manifest", "docker-manifest", b"\x03" + json.dumps(docker).encode())
    write("manifest", "config", b"\x00" + json.dumps(config).encode())


def layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, kind, data=b"", **kw):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mtime = 1700000000
            info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data else None)
        add("bin", tarfile.DIRTYPE)
        add("bin/sh", tarfile.REGTYPE, b"#!/bin/true\n", mode=0o755, uid=0, gid=0)
        add("bin/ash", tarfile.SYMTYPE, linkname="sh")
        add("bin/link", tarfile.LNKTYPE, linkname="bin/sh")
        add("etc", tarfile.DIRTYPE)
        add("etc/.wh.old", tarfile.REGTYPE)
        add("etc/.wh..wh..opq", tarfile.REGTYPE)
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0::/:/bin/sh\n",
            pax_headers={"SCHILY.xattr.user.k": "v"})
        add("tmp", tarfile.DIRTYPE, mode=0o1777)
    return buf.getvalue()


def layers():
    tar = layer_tar()
    # The first byte: compression (byte % 3: none, gzip, zstd) and read size.
    write("unpack", "plain", b"\x00" + tar)
    write("unpack", "plain-chunked", b"\x1e" + tar)
    write("unpack", "gzip", b"\x01" + gzip.compress(tar, mtime=0))
    zstd = shutil.which("zstd")
    if zstd:
        z = subprocess.run([zstd, "-q", "-c"], input=tar, stdout=subprocess.PIPE, check=True).stdout
        write("unpack", "zstd", b"\x02" + z)


def cni():
    conflist = {"cniVersion": "1.0.0", "name": "podshim", "plugins": [
        {"type": "podshim-bridge", "bridge": "podshim0", "isGateway": True, "ipMasq": True,
         "ipam": {"type": "podshim-ipam", "ranges": [[{"subnet": "10.88.0.0/16"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}
    result = {"cniVersion": "1.0.0",
              "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/x"}],
              "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 0}],
              "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.96.0.10"]}}
    old = dict(result, cniVersion="0.4.0")
    old["ips"] = [dict(result["ips"][0], version="4")]
    plugin = dict(conflist["plugins"][0], name="podshim", cniVersion="1.0.0", prevResult=result,
                  runtimeConfig={"portMappings": [
                      {"hostPort": 8080, "containerPort": 80, "protocol": "tcp",
                       "hostIP": "127.0.0.1"}]})
    write("cni", "conflist", json.dumps(conflist))
    write("cni", "result-1.0.0", json.dumps(result))
    write("cni", "result-0.4.0", json.dumps(old))
    write("cni", "plugin-stdin", json.dumps(plugin))


def config():
    write("config", "deploy-podshim.toml", (HERE.parent / "deploy" / "podshim.toml").read_bytes())
    write("config", "small.toml", 'socket = "/run/podshim.sock"\nlog_level = "debug"\n'
          '[registry]\nmirrors = ["127.0.0.1:5000"]\n')


def cri_log():
    # byte 0: record size; then steps (bit 0 stream, bits 1-2 op, bits 2-7 length).
    write("cri_log", "lines", b"\x10" + bytes([0x28]) + b"one\ntwo\nthree\n" +
          bytes([0x29]) + b"err\nerr2")
    write("cri_log", "long-line", b"\x04" + bytes([0xf8]) + b"x" * 62 + bytes([0x04, 0x06]))


def streaming():
    # byte 0: read size - 1; then SPDY/3.1 frames (control: 0x8003, type, flags, 24-bit length).
    def control(kind, flags, payload):
        return struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload
    ping = control(6, 0, struct.pack(">I", 1))
    settings = control(4, 0, struct.pack(">I", 1) + struct.pack(">II", 7, 65536))
    rst = control(3, 0, struct.pack(">II", 1, 5))
    goaway = control(7, 0, struct.pack(">II", 3, 0))
    window = control(9, 0, struct.pack(">II", 1, 1024))
    data = struct.pack(">II", 1, (1 << 24) | 5) + b"hello"
    write("streaming", "frames", b"\x00" + ping + settings + rst + goaway + window + data)
    write("streaming", "frames-split", b"\x02" + data + ping)
    write("streaming", "v5-stdin", b"\x07" + b"\x00typed")
    write("streaming", "v5-close", b"\x07" + b"\xff\x00")
    write("streaming", "resize", b"\x07" + b'{"Width":80,"Height":24}')


def requests():
    c = cri()
    pod = c.PodSandboxConfig(
        metadata=c.PodSandboxMetadata(name="web", namespace="default", uid="u1", attempt=1),
        hostname="web-1", log_directory="/var/log/pods/default_web_u1",
        dns_config=c.DNSConfig(servers=["10.96.0.10"], searches=["svc.cluster.local"],
                               options=["ndots:5"]),
        port_mappings=[c.PortMapping(protocol=c.TCP, container_port=80, host_port=8080,
                                     host_ip="127.0.0.1")],
        labels={"app": "web"}, annotations={"a": "b"},
        linux=c.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/burstable/podu1", sysctls={"net.ipv4.ip_forward": "1"},
            security_context=c.LinuxSandboxSecurityContext(
                namespace_options=c.NamespaceOption(pid=c.POD),
                run_as_user=c.Int64Value(value=1000),
                seccomp=c.SecurityProfile(profile_type=c.SecurityProfile.RuntimeDefault))))
    write("requests", "run-pod", b"\x00" + c.RunPodSandboxRequest(config=pod).SerializeToString())
    ctr = c.ContainerConfig(
        metadata=c.ContainerMetadata(name="app", attempt=0),
        image=c.ImageSpec(image="busybox"), command=["sh"], args=["-c", "sleep 1"],
        working_dir="/w", envs=[c.KeyValue(key="A", value=b"b")],
        mounts=[c.Mount(container_path="/data", host_path="/tmp/data", readonly=True,
                        propagation=c.PROPAGATION_PRIVATE)],
        devices=[c.Device(container_path="/dev/fuse", host_path="/dev/fuse", permissions="rwm")],
        log_path="app/0.log", stdin=True, tty=False,
        annotations={"fuzz.seccomp": json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]})},
        linux=c.LinuxContainerConfig(
            resources=c.LinuxContainerResources(
                cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=1 << 26,
                oom_score_adj=100, cpuset_cpus="0", unified={"memory.high": "50000000"},
                hugepage_limits=[c.HugepageLimit(page_size="2MB", limit=0)]),
            security_context=c.LinuxContainerSecurityContext(
                capabilities=c.Capability(add_capabilities=["NET_ADMIN"],
                                          drop_capabilities=["MKNOD"]),
                run_as_user=c.Int64Value(value=1000), run_as_group=c.Int64Value(value=1000),
                supplemental_groups=[10, 20], readonly_rootfs=True, no_new_privs=True,
                masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
                namespace_options=c.NamespaceOption(pid=c.TARGET, target_id="c0"),
                seccomp=c.SecurityProfile(profile_type=c.SecurityProfile.Localhost,
                                          localhost_ref="/p.json"))))
    write("requests", "create-container", b"\x01" + c.CreateContainerRequest(
        pod_sandbox_id="pod1", config=ctr, sandbox_config=pod).SerializeToString())
    write("requests", "update-resources", b"\x02" + c.UpdateContainerResourcesRequest(
        container_id="c1", linux=c.LinuxContainerResources(cpu_quota=20000, unified={
            "cpu.max": "20000 100000"}), annotations={"k": "v"}).SerializeToString())


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    references()
    manifests()
    layers()
    cni()
    config()
    cri_log()
    streaming()
    requests()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
