"""Bad requests are refused before anything is made (issue 18, findings 2, 3, 9 and 10), and the
helpers that enter containers cannot be overwritten from one (finding 6, at the end).

Each case of the table sends one bad RunPodSandbox, CreateContainer, UpdateContainerResources or
image request to a real podshimd and checks that
  * the answer is INVALID_ARGUMENT,
  * the message names the field (its path as the request spells it),
  * the message is short (< 1 KiB) however large the input was,
  * nothing changed on the host: no new pod or container in the lists, no new cgroup under the
    daemon's cgroup parent, no new mount of the daemon's, no new namespace pin or state, no new
    port on the module's own bridge (so no veth), and a container's resources are as they were.

One podshimd serves the module, with its own cgroup parent and a CNI network of its own (bridge
`pssec<hex>`, removed at the end), so that what it makes can be told from what anything else on
the machine makes. Positive controls show that valid ids and cgroup keys still work.
"""

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402

from podshim.daemon import Podshimd, podshimd_binary, remove_cgroup_parent  # noqa: E402

IMAGE = "docker.io/library/busybox:e2e"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2 = (CGROUP_ROOT / "cgroup.controllers").exists()
MAX_MESSAGE = 1024
MB = 1 << 20


class Env:
    def __init__(self, daemon, client, cgroup_parent, bridge):
        self.d = daemon
        self.c = client
        self.pb = client.pb
        self.cgroup_parent = cgroup_parent
        self.bridge = bridge
        self.logs = Path(daemon.dir) / "logs"

    def pod_config(self, name=None):
        name = name or f"sec-{uuid.uuid4().hex[:8]}"
        return self.pb.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, namespace="e2e-sec",
                                                uid=uuid.uuid4().hex),
            hostname=name, log_directory=str(self.logs / name), labels={"suite": "security"})

    def container_config(self, name=None, command=("sleep", "1000")):
        name = name or f"c-{uuid.uuid4().hex[:8]}"
        return self.pb.ContainerConfig(metadata=self.pb.ContainerMetadata(name=name),
                                       image=self.pb.ImageSpec(image=IMAGE),
                                       command=list(command), log_path=f"{name}.log")

    def run_pod(self, cfg, timeout=60):
        return self.c.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg),
                                            timeout=timeout).pod_sandbox_id

    def remove_pod(self, pod_id):
        self.c.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)
        self.c.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                        timeout=60)

    def create(self, pod_id, pod_cfg, cfg, timeout=60):
        return self.c.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg),
            timeout=timeout).container_id

    def start(self, cid):
        self.c.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)

    def remove_container(self, cid):
        self.c.runtime.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid),
                                       timeout=60)

    def container_status(self, cid):
        return self.c.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=cid)).status

    def exec(self, cid, cmd, timeout=10):
        return self.c.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                               timeout=timeout),
                                       timeout=timeout + 10)

    def remove_new_objects(self, before, made=()):
        """Removes pods and containers made since `before` (a host_state), and those in `made`
        ((kind, id) of what a request that should have failed returned): a request that was not
        refused must not leave them behind, even when the lists no longer answer (a pod with
        9 MB of labels made ListPodSandbox exceed the message limit)."""
        rt, pb = self.c.runtime, self.pb
        ctrs, pods = [i for k, i in made if k == "ctr"], [i for k, i in made if k == "pod"]
        try:
            ctrs += [c.id for c in rt.ListContainers(pb.ListContainersRequest()).containers
                     if c.id not in before["containers"]]
        except grpc.RpcError as e:
            print(f"cleanup: ListContainers: {e.code()}")
        try:
            pods += [p.id for p in rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
                     if p.id not in before["pods"]]
        except grpc.RpcError as e:
            print(f"cleanup: ListPodSandbox: {e.code()}")
        for cid in dict.fromkeys(ctrs):
            try:
                self.remove_container(cid)
            except grpc.RpcError as e:
                print(f"cleanup of container {cid}: {e.code()}")
        for pod_id in dict.fromkeys(pods):
            try:
                self.remove_pod(pod_id)
            except grpc.RpcError as e:
                print(f"cleanup of pod {pod_id}: {e.code()}")

    # What a request could have left behind ----------------------------------------------------
    def host_state(self):
        """Everything of this daemon's that a refused request must not change."""
        rt, pb = self.c.runtime, self.pb
        pods = sorted(p.id for p in rt.ListPodSandbox(pb.ListPodSandboxRequest()).items)
        ctrs = sorted(c.id for c in rt.ListContainers(pb.ListContainersRequest()).containers)
        cgroups = []
        parent = self.cgroup_parent.lstrip("/")
        hierarchies = [CGROUP_ROOT] if CGROUP_V2 else [
            p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
        for h in hierarchies:
            for dirpath, _, _ in os.walk(h / parent):
                cgroups.append(dirpath)
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if str(self.d.dir) in line]
        # Mount ids and parents change with nothing of ours; compare what is mounted where.
        mounts = sorted(" ".join(line.split()[3:]) for line in mounts)
        bridge_ports = Path(f"/sys/class/net/{self.bridge}/brif")
        ports = sorted(os.listdir(bridge_ports)) if bridge_ports.exists() else []
        dirs = {}
        for d in (Path(self.d.state_dir) / "pods", Path(self.d.state_dir) / "containers",
                  Path(self.d.root_dir) / "containers", Path(self.d.root_dir) / "leases"):
            dirs[str(d)] = sorted(os.listdir(d)) if d.exists() else []
        return {"pods": pods, "containers": ctrs, "cgroups": sorted(cgroups),
                "mounts": mounts, "bridge ports": ports, "dirs": dirs}


@pytest.fixture(scope="module")
def env():
    path = podshimd_binary()
    if not path.exists():
        pytest.fail(f"podshimd not built at {path}")
    tag = uuid.uuid4().hex[:6]
    parent = f"/podshim-e2e-sec-{tag}"
    bridge = f"pssec{tag}"
    d = Podshimd(path, extra_args=[f"--cgroup_parent={parent}"])
    # A network of the module's own: its bridge's ports are the module's veths.
    os.makedirs(d.cni_conf_dir, exist_ok=True)
    conflist = {
        "cniVersion": "1.0.0", "name": f"e2e-sec-{tag}",
        "plugins": [{"type": "podshim-bridge", "bridge": bridge, "isGateway": False,
                     "ipMasq": False,
                     "ipam": {"type": "podshim-ipam", "ranges": [[{"subnet": "10.231.0.0/24"}]],
                              "dataDir": str(d.dir / "ipam")}}]}
    (Path(d.cni_conf_dir) / "10-sec.conflist").write_text(json.dumps(conflist))
    c = None
    try:
        layout = images.standin_layout("busybox")
        d.import_image(layout, IMAGE)
        d.start()
        c = d.client(timeout=60)
        yield Env(d, c, parent, bridge)
    finally:
        if c is not None:
            c.close()
        d.cleanup()
        remove_cgroup_parent(parent)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        for made in Path("/tmp").glob(f"podshim-e2e-seccomp-*-{os.getpid()}*"):
            made.unlink()


@pytest.fixture(scope="module")
def base(env):
    """A pod on the module's network with one running container: what container and update
    cases act on."""
    cfg = env.pod_config("sec-base")
    pod_id = env.run_pod(cfg)
    try:
        cid = env.create(pod_id, cfg, env.container_config("base"))
        env.start(cid)
        assert os.listdir(f"/sys/class/net/{env.bridge}/brif"), "the base pod has no veth"
        yield pod_id, cfg, cid
    finally:
        env.remove_pod(pod_id)


# --- the table of bad requests ----------------------------------------------------------------
# Each case: (id, rpc, mutate(request's config, pb), text the message must name).
# rpc: "pod" = RunPodSandbox with a fresh valid config; "ctr" = CreateContainer in the base pod;
# "update" = UpdateContainerResources of the base container; "pull", "status", "rmi" = image RPCs.


def set_name(v):
    return lambda c, pb: setattr(c.metadata, "name", v)


def sc(c):
    return c.linux.security_context


def add_groups(groups):
    return lambda c, pb: sc(c).supplemental_groups.extend(groups)


def unified(key, value="1"):
    def mutate(c, pb):
        res = c if isinstance(c, pb.LinuxContainerResources) else c.linux.resources
        res.unified[key] = value
    return mutate


def oom(v):
    def mutate(c, pb):
        res = c if isinstance(c, pb.LinuxContainerResources) else c.linux.resources
        res.oom_score_adj = v
    return mutate


def envs(entries):
    return lambda c, pb: c.envs.extend(pb.KeyValue(key=k, value=v.encode()) for k, v in entries)


def apparmor(kind, ref=""):
    def mutate(c, pb):
        sc(c).apparmor.SetInParent()  # present even for RuntimeDefault, the enum's 0
        sc(c).apparmor.profile_type = getattr(pb.SecurityProfile, kind)
        sc(c).apparmor.localhost_ref = ref
    return mutate


def userns(mode):
    def mutate(c, pb):
        sc(c).namespace_options.userns_options.SetInParent()  # present even for POD, the enum's 0
        sc(c).namespace_options.userns_options.mode = getattr(pb, mode)
    return mutate


def mount(uid_mappings=False, gid_mappings=False, propagation=None):
    """A mount of /tmp (never made: each case is refused before any mount)."""
    def mutate(c, pb):
        m = c.mounts.add(container_path="/data", host_path="/tmp")
        if uid_mappings:
            m.uidMappings.add(container_id=0, host_id=100000, length=65536)
        if gid_mappings:
            m.gidMappings.add(container_id=0, host_id=100000, length=65536)
        if propagation:
            m.propagation = getattr(pb, propagation)
    return mutate


def seccomp_profile(path_of):
    """A Localhost seccomp profile at the path `path_of()` makes (finding 9)."""
    def mutate(c, pb):
        sc(c).seccomp.profile_type = pb.SecurityProfile.Localhost
        sc(c).seccomp.localhost_ref = path_of()
    return mutate


def a_fifo():
    path = Path("/tmp") / f"podshim-e2e-seccomp-fifo-{os.getpid()}"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def a_2mib_profile():
    path = Path("/tmp") / f"podshim-e2e-seccomp-big-{os.getpid()}.json"
    if not path.exists():
        path.write_text('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}' + " " * (2 * MB))
    return str(path)


RESOURCES = "config.linux.resources"
SC = "config.linux.security_context"

CASES = [
    # Names, namespaces and uids: nothing that breaks CNI_ARGS or paths (finding 9).
    ("pod name with ;", "pod", set_name("web;K8S_POD_NAME=other"), "config.metadata.name"),
    ("pod name with /", "pod", set_name("../../etc"), "config.metadata.name"),
    ("pod name empty", "pod", set_name(""), "config.metadata.name"),
    ("pod namespace with =", "pod", lambda c, pb: setattr(c.metadata, "namespace", "a=b"),
     "config.metadata.namespace"),
    ("pod uid with newline", "pod", lambda c, pb: setattr(c.metadata, "uid", "u\nK8S_POD_NAME=x"),
     "config.metadata.uid"),
    ("container name with ;", "ctr", set_name("c;x=y"), "config.metadata.name"),
    # Hostname and DNS (finding 9).
    ("hostname with tab", "pod", lambda c, pb: setattr(c, "hostname", "web\tevil.example"),
     "config.hostname"),
    ("hostname with newline", "pod",
     lambda c, pb: setattr(c, "hostname", "web\n10.0.0.1 kubernetes"), "config.hostname"),
    ("hostname of 65 bytes", "pod", lambda c, pb: setattr(c, "hostname", "h" * 65),
     "config.hostname"),
    ("dns search injecting a nameserver", "pod",
     lambda c, pb: c.dns_config.searches.extend(["ok.example\nnameserver 6.6.6.6"]),
     "config.dns_config.searches[0]"),
    ("dns search with space", "pod", lambda c, pb: c.dns_config.searches.extend(["a b"]),
     "config.dns_config.searches[0]"),
    ("dns search of 254 bytes", "pod", lambda c, pb: c.dns_config.searches.extend(["a" * 254]),
     "config.dns_config.searches[0]"),
    ("33 dns searches", "pod", lambda c, pb: c.dns_config.searches.extend(["a.example"] * 33),
     "config.dns_config.searches"),
    ("dns server with newline", "pod",
     lambda c, pb: c.dns_config.servers.extend(["1.1.1.1\nsearch evil"]),
     "config.dns_config.servers[0]"),
    ("11 dns servers", "pod", lambda c, pb: c.dns_config.servers.extend(["1.1.1.1"] * 11),
     "config.dns_config.servers"),
    ("dns option with newline", "pod",
     lambda c, pb: c.dns_config.options.extend(["ndots:5\nnameserver 6.6.6.6"]),
     "config.dns_config.options[0]"),
    # User ids (finding 3).
    ("pod run_as_user -1", "pod", lambda c, pb: sc(c).run_as_user.__setattr__("value", -1),
     f"{SC}.run_as_user.value"),
    ("pod supplemental group 2^32-1", "pod", add_groups([4294967295]),
     f"{SC}.supplemental_groups[0]"),
    ("run_as_user -1", "ctr", lambda c, pb: sc(c).run_as_user.__setattr__("value", -1),
     f"{SC}.run_as_user.value"),
    ("run_as_user 2^32-1", "ctr",
     lambda c, pb: sc(c).run_as_user.__setattr__("value", 4294967295), f"{SC}.run_as_user.value"),
    ("run_as_user 2^32", "ctr", lambda c, pb: sc(c).run_as_user.__setattr__("value", 1 << 32),
     f"{SC}.run_as_user.value"),
    ("run_as_group -1", "ctr",
     lambda c, pb: (sc(c).run_as_user.__setattr__("value", 1000),
                    sc(c).run_as_group.__setattr__("value", -1)), f"{SC}.run_as_group.value"),
    ("supplemental group -1", "ctr", add_groups([1000, -1]), f"{SC}.supplemental_groups[1]"),
    ("70,000 supplemental groups", "ctr", add_groups(range(70000)), f"{SC}.supplemental_groups"),
    # resources.unified (finding 2) and oom_score_adj (finding 9).
    ("unified cgroup.procs", "ctr", unified("cgroup.procs"),
     f'{RESOURCES}.unified["cgroup.procs"]'),
    ("unified cgroup.subtree_control", "ctr", unified("cgroup.subtree_control", "+memory"),
     f'{RESOURCES}.unified["cgroup.subtree_control"]'),
    ("unified cgroup.kill", "ctr", unified("cgroup.kill"), f'{RESOURCES}.unified["cgroup.kill"]'),
    ("unified cgroup.freeze", "ctr", unified("cgroup.freeze"),
     f'{RESOURCES}.unified["cgroup.freeze"]'),
    ("unified ../ escape", "ctr", unified("../../cgroup.procs"),
     f'{RESOURCES}.unified["../../cgroup.procs"]'),
    ("unified into a subdirectory", "ctr", unified("sub/memory.max"),
     f'{RESOURCES}.unified["sub/memory.max"]'),
    ("unified unknown controller", "ctr", unified("devices.allow", "a"),
     f'{RESOURCES}.unified["devices.allow"]'),
    ("unified value with newline", "ctr", unified("memory.high", "1\n2"),
     f'{RESOURCES}.unified["memory.high"]'),
    ("oom_score_adj 1001", "ctr", oom(1001), f"{RESOURCES}.oom_score_adj"),
    ("oom_score_adj -1001", "ctr", oom(-1001), f"{RESOURCES}.oom_score_adj"),
    ("update unified cgroup.procs", "update", unified("cgroup.procs"),
     'linux.unified["cgroup.procs"]'),
    ("update unified cgroup.kill", "update", unified("cgroup.kill"),
     'linux.unified["cgroup.kill"]'),
    ("update unified ../", "update", unified("../cgroup.procs"),
     'linux.unified["../cgroup.procs"]'),
    ("update oom_score_adj 5000", "update", oom(5000), "linux.oom_score_adj"),
    # Sizes (finding 10).
    ("pod with 9 MB of labels", "pod", lambda c, pb: c.labels.__setitem__("big", "x" * (9 * MB)),
     "config.labels"),
    ("pod labels + annotations over 256 KiB", "pod",
     lambda c, pb: (c.labels.__setitem__("a", "x" * (150 << 10)),
                    c.annotations.__setitem__("b", "y" * (150 << 10))), "config.annotations"),
    ("container with 9 MB of annotations", "ctr",
     lambda c, pb: c.annotations.__setitem__("big", "x" * (9 * MB)), "config.annotations"),
    ("5000 env entries", "ctr", envs((f"K{i}", "v") for i in range(5000)), "config.envs"),
    ("1025 mounts", "ctr",
     lambda c, pb: [c.mounts.add(host_path="/tmp", container_path="/m") for _ in range(1025)],
     "config.mounts: 1025 mounts"),
    ("1025 devices", "ctr",
     lambda c, pb: [c.devices.add(host_path="/dev/null", container_path="/dev/n")
                    for _ in range(1025)],
     "config.devices: 1025 devices"),
    ("1025 port mappings", "pod",
     lambda c, pb: [c.port_mappings.add(container_port=80) for _ in range(1025)],
     "config.port_mappings: 1025 port mappings"),
    ("1025 sysctls", "pod",
     lambda c, pb: [c.linux.sysctls.__setitem__(f"net.x{i}", "1") for i in range(1025)],
     "config.linux.sysctls: 1025 sysctls"),
    ("env of 1 MiB", "ctr", envs([("BIG", "x" * MB)]), "config.envs"),
    ("command + args over 1 MiB", "ctr", lambda c, pb: c.args.extend(["x" * (MB // 2)] * 3),
     "config.args"),
    ("1 MB image reference", "ctr", lambda c, pb: setattr(c.image, "image", "a" * MB),
     "config.image.image"),
    ("1 MB log directory", "pod", lambda c, pb: setattr(c, "log_directory", "/" + "d" * MB),
     "config.log_directory"),
    # Fail closed (finding 8): what podshim cannot enforce is refused, never ignored.
    ("pod apparmor RuntimeDefault", "pod", apparmor("RuntimeDefault"), f"{SC}.apparmor"),
    ("pod apparmor Localhost", "pod", apparmor("Localhost", "k8s-deny-write"), f"{SC}.apparmor"),
    ("apparmor RuntimeDefault", "ctr", apparmor("RuntimeDefault"), f"{SC}.apparmor"),
    ("apparmor Localhost", "ctr", apparmor("Localhost", "k8s-deny-write"), f"{SC}.apparmor"),
    ("deprecated apparmor runtime/default", "ctr",
     lambda c, pb: setattr(sc(c), "apparmor_profile", "runtime/default"),
     f"{SC}.apparmor_profile"),
    ("deprecated apparmor localhost/", "ctr",
     lambda c, pb: setattr(sc(c), "apparmor_profile", "localhost/k8s-deny-write"),
     f"{SC}.apparmor_profile"),
    ("pod selinux level", "pod", lambda c, pb: setattr(sc(c).selinux_options, "level", "s0:c4,c5"),
     f"{SC}.selinux_options.level"),
    ("selinux type", "ctr", lambda c, pb: setattr(sc(c).selinux_options, "type", "spc_t"),
     f"{SC}.selinux_options.type"),
    ("pod user namespace POD", "pod", userns("POD"),
     f"{SC}.namespace_options.userns_options.mode"),
    ("user namespace POD", "ctr", userns("POD"), f"{SC}.namespace_options.userns_options.mode"),
    ("idmapped mount", "ctr", mount(uid_mappings=True), "config.mounts[0].uidMappings"),
    ("idmapped mount (gids)", "ctr", mount(gid_mappings=True), "config.mounts[0].gidMappings"),
    ("bidirectional propagation unprivileged", "ctr", mount(propagation="PROPAGATION_BIDIRECTIONAL"),
     "config.mounts[0].propagation"),
    ("privileged container in an unprivileged pod", "ctr",
     lambda c, pb: setattr(sc(c), "privileged", True), f"{SC}.privileged"),
    ("pid TARGET without target_id", "ctr",
     lambda c, pb: setattr(sc(c).namespace_options, "pid", pb.TARGET),
     f"{SC}.namespace_options.target_id"),
    # A FIFO hung CreateContainer (holding the pod's lock); /dev/zero grew memory without end.
    ("seccomp profile a FIFO", "ctr", seccomp_profile(a_fifo), f"{SC}.seccomp"),
    ("seccomp profile /dev/zero", "ctr", seccomp_profile(lambda: "/dev/zero"), f"{SC}.seccomp"),
    ("seccomp profile of 2 MiB", "ctr", seccomp_profile(a_2mib_profile), f"{SC}.seccomp"),
    ("pull of a 1 MB image reference", "pull", None, "image.image"),
    ("status of a 1 MB image reference", "status", None, "image.image"),
    ("removal of a 1 MB image reference", "rmi", None, "image.image"),
]


def send(env, base, rpc, mutate):
    pb = env.pb
    if rpc == "pod":
        cfg = env.pod_config()
        mutate(cfg, pb)
        return env.run_pod(cfg, timeout=10)
    pod_id, pod_cfg, cid = base
    if rpc == "ctr":
        cfg = env.container_config()
        mutate(cfg, pb)
        return env.create(pod_id, pod_cfg, cfg, timeout=10)
    if rpc == "update":
        res = pb.LinuxContainerResources()
        mutate(res, pb)
        return env.c.runtime.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(container_id=cid, linux=res), timeout=10)
    spec = pb.ImageSpec(image="a" * MB)
    if rpc == "pull":
        return env.c.image.PullImage(pb.PullImageRequest(image=spec), timeout=10)
    if rpc == "status":
        return env.c.image.ImageStatus(pb.ImageStatusRequest(image=spec), timeout=10)
    if rpc == "rmi":
        return env.c.image.RemoveImage(pb.RemoveImageRequest(image=spec), timeout=10)
    raise AssertionError(rpc)


@pytest.mark.parametrize("name,rpc,mutate,field", CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_refused_naming_the_field_and_changes_nothing(env, base, name, rpc, mutate,
                                                                     field):
    cid = base[2]
    before = env.host_state()
    # The snapshot sees what the base pod made: its cgroups, mounts and veth.
    assert before["cgroups"] and before["mounts"] and before["bridge ports"], before
    resources_before = env.container_status(cid).resources.linux
    made = None
    try:
        with pytest.raises(grpc.RpcError) as e:
            made = send(env, base, rpc, mutate)
    finally:
        env.remove_new_objects(before, [(rpc, made)] if isinstance(made, str) and made else ())
    details = e.value.details() or ""
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.value.code(), details[:300])
    assert field in details, details[:300]
    assert len(details.encode()) < MAX_MESSAGE, f"{len(details)} bytes: {details[:300]}"
    # No timing bound here (the project puts none in tests): a refusal that did the work first
    # (70,000 groups took 8 s before) ends in DEADLINE_EXCEEDED at the call's timeout, not
    # INVALID_ARGUMENT, and fails above.
    assert env.host_state() == before
    assert env.container_status(cid).resources.linux == resources_before
    # The base container still runs.
    assert env.container_status(cid).state == env.pb.CONTAINER_RUNNING


def test_the_request_size_cap_keeps_list_pod_sandbox_answering(env, base):
    """Finding 10: two pods of 9 MB labels made every unfiltered ListPodSandbox fail. Now each
    is refused, and a pod at the cap still lists."""
    before = env.host_state()
    made = []
    try:
        for _ in range(2):
            cfg = env.pod_config()
            cfg.labels["big"] = "x" * (9 * MB)
            with pytest.raises(grpc.RpcError) as e:
                made.append(("pod", env.run_pod(cfg, timeout=10)))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        cfg = env.pod_config()
        cfg.labels["big"] = "x" * ((256 << 10) - 1024)
        made.append(("pod", env.run_pod(cfg)))
        items = env.c.runtime.ListPodSandbox(env.pb.ListPodSandboxRequest()).items
        assert made[-1][1] in [p.id for p in items]
    finally:
        env.remove_new_objects(before, made)


# --- cgroup_parent (finding 1) -----------------------------------------------------------------

def cgroup_dirs(path):
    """The directories of cgroup `path` in every hierarchy (v1) or the v2 tree."""
    rel = path.lstrip("/")
    if CGROUP_V2:
        return [CGROUP_ROOT / rel]
    return [h / rel for h in CGROUP_ROOT.iterdir() if h.is_dir() and not h.is_symlink()
            and (h / "cgroup.procs").exists()]


def test_cgroup_parent_is_never_the_root_or_podshims_own(env):
    """A pod whose cgroup_parent named podshim's own parent took every other pod with it when it
    was removed; the root cgroup would take the host. Both, and anything above or below
    podshim's parent, are refused before anything is made."""
    top = "/" + env.cgroup_parent.strip("/").split("/")[0]
    before = env.host_state()
    for parent in ["/", "//", env.cgroup_parent, env.cgroup_parent + "/",
                   env.cgroup_parent + "/pod-mine", top]:
        cfg = env.pod_config()
        cfg.linux.cgroup_parent = parent
        made = []
        try:
            with pytest.raises(grpc.RpcError) as e:
                made.append(("pod", env.run_pod(cfg, timeout=10)))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (parent, e.value)
            assert e.value.details().startswith("config.linux.cgroup_parent:"), e.value.details()
        finally:
            env.remove_new_objects(before, made)
    assert env.host_state() == before


def test_a_cgroup_podshim_did_not_make_is_never_killed_or_removed(env):
    """The kubelet makes a pod's cgroup before RunPodSandbox; a host service's cgroup may be named
    by mistake. podshim runs the pod in it, and removing the pod leaves the cgroup and every
    process in it that is not the pod's."""
    foreign = f"/podshim-e2e-foreign-{uuid.uuid4().hex[:6]}"
    dirs = cgroup_dirs(foreign)
    bystander = subprocess.Popen(["sleep", "1000"])
    pod_id = None
    try:
        for d in dirs:
            d.mkdir(parents=True)
        # The bystander lives in the foreign cgroup (in one hierarchy at least).
        (dirs[0] / "cgroup.procs").write_text(str(bystander.pid))
        cfg = env.pod_config()
        cfg.linux.cgroup_parent = foreign
        pod_id = env.run_pod(cfg)
        cid = env.create(pod_id, cfg, env.container_config())
        env.start(cid)
        assert env.exec(cid, ["true"]).exit_code == 0
        env.remove_pod(pod_id)
        pod_id = None
        assert bystander.poll() is None, "the bystander in the foreign cgroup was killed"
        assert str(bystander.pid) in (dirs[0] / "cgroup.procs").read_text()
        assert all(d.exists() for d in dirs), "the foreign cgroup was removed"
        assert not any((d / cid).exists() for d in dirs), "the container's own cgroup stays"
    finally:
        if pod_id is not None:
            env.remove_pod(pod_id)
        bystander.kill()
        bystander.wait()
        for d in dirs:
            for child in sorted(d.glob("*/"), reverse=True):
                if child.is_dir() and (child / "cgroup.procs").exists():
                    child.rmdir()
            if d.exists():
                d.rmdir()


def test_pods_sharing_a_cgroup_parent_do_not_kill_each_other(env):
    """critest gives all its pods one cgroup_parent. Removing the pod that made it (the first)
    used to kill the second pod's containers with the cgroup; now the cgroup stays while another
    pod uses it."""
    shared = f"/podshim-e2e-shared-{uuid.uuid4().hex[:6]}"
    pods = []
    try:
        cids = []
        for _ in range(2):
            cfg = env.pod_config()
            cfg.linux.cgroup_parent = shared
            pod_id = env.run_pod(cfg)
            pods.append(pod_id)
            cid = env.create(pod_id, cfg, env.container_config())
            env.start(cid)
            cids.append(cid)
        env.remove_pod(pods[0])
        pods.pop(0)
        st = env.container_status(cids[1])
        assert st.state == env.pb.CONTAINER_RUNNING, st
        assert env.exec(cids[1], ["true"]).exit_code == 0
        assert any(d.exists() for d in cgroup_dirs(shared)), "the shared cgroup was removed"
        env.remove_pod(pods[0])
        pods.pop(0)
    finally:
        for pod_id in pods:
            env.remove_pod(pod_id)
        # The second pod did not make the cgroup, so podshim leaves it (empty); as containerd,
        # which never removes a cgroup_parent.
        remove_cgroup_parent(shared)


# --- log directories (finding 9) --------------------------------------------------------------

def test_an_existing_log_directory_keeps_its_mode(env, tmp_path):
    """A 0700 log directory became 0755 and a 1777 one lost its sticky bit: podshim chmodded the
    directory a pod named. Now it only makes what is missing."""
    private, shared = tmp_path / "private", tmp_path / "shared"
    private.mkdir()
    os.chmod(private, 0o700)
    shared.mkdir()
    os.chmod(shared, 0o1777)
    pods = []
    try:
        for d in (private, shared / "made" / "below"):
            cfg = env.pod_config()
            cfg.log_directory = str(d)
            pods.append(env.run_pod(cfg))
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
        assert stat.S_IMODE(os.stat(shared / "made" / "below").st_mode) == 0o755
    finally:
        for pod_id in pods:
            env.remove_pod(pod_id)


def test_a_log_directory_through_a_symlink_is_refused(env, tmp_path):
    """No symlink is followed on the way to a log directory: one could point it anywhere on the
    host. Refused naming the field, and nothing is made where the link points."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    before = env.host_state()
    cfg = env.pod_config()
    cfg.log_directory = str(tmp_path / "link" / "pod")
    made = []
    try:
        with pytest.raises(grpc.RpcError) as e:
            made.append(("pod", env.run_pod(cfg)))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
        assert e.value.details().startswith("config.log_directory:"), e.value.details()
        assert "symlink" in e.value.details()
        assert list(target.iterdir()) == []
        assert env.host_state() == before
    finally:
        env.remove_new_objects(before, made)


# --- positive controls ------------------------------------------------------------------------

def test_valid_ids_still_work(env, base):
    """uid 1000, gid 1000 and supplemental groups at the top of the range are accepted and are
    what the process runs as."""
    pod_id, pod_cfg, _ = base
    cfg = env.container_config()
    sc(cfg).run_as_user.value = 1000
    sc(cfg).run_as_group.value = 1000
    sc(cfg).supplemental_groups.extend([2000, 4294967294])
    cid = env.create(pod_id, pod_cfg, cfg)
    try:
        env.start(cid)
        out = env.exec(cid, ["id"]).stdout.decode()
        assert "uid=1000" in out and "gid=1000" in out, out
        assert "2000" in out and "4294967294" in out, out
        st = env.container_status(cid)
        assert st.user.linux.uid == 1000 and st.user.linux.gid == 1000
    finally:
        env.remove_container(cid)


def test_valid_unified_key_passes_validation(env, base):
    """memory.high is a controller file: the validator lets it through. On cgroup v2 it is
    written; on v1 (no unified files) the cgroup backend refuses it, not the validator, and
    nothing is left behind either way."""
    pod_id, pod_cfg, _ = base
    cfg = env.container_config()
    cfg.linux.resources.unified["memory.high"] = str(256 * MB)
    before = env.host_state()
    if CGROUP_V2:
        cid = env.create(pod_id, pod_cfg, cfg)
        try:
            hits = list((CGROUP_ROOT / env.cgroup_parent.lstrip("/")).rglob(f"{cid}/memory.high"))
            assert hits and hits[0].read_text().strip() == str(256 * MB)
        finally:
            env.remove_container(cid)
        return
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod_id, pod_cfg, cfg)
    details = e.value.details()
    assert "cgroup v1 has no unified files" in details, details
    assert "config.linux.resources.unified[" not in details, details
    assert env.host_state() == before


def test_valid_dns_and_hostname_still_work(env):
    """A pod with the usual DNS settings and a hostname of 64 bytes runs, and its files say what
    was asked."""
    cfg = env.pod_config()
    cfg.hostname = "h" * 64
    cfg.dns_config.servers.extend(["10.96.0.10"])
    cfg.dns_config.searches.extend(["e2e-sec.svc.cluster.local", "svc.cluster.local"])
    cfg.dns_config.options.extend(["ndots:5"])
    pod_id = env.run_pod(cfg)
    try:
        cid = env.create(pod_id, cfg, env.container_config())
        env.start(cid)
        resolv = env.exec(cid, ["cat", "/etc/resolv.conf"]).stdout.decode()
        assert "nameserver 10.96.0.10" in resolv, resolv
        assert "search e2e-sec.svc.cluster.local svc.cluster.local" in resolv, resolv
        assert env.exec(cid, ["hostname"]).stdout.decode().strip() == "h" * 64
    finally:
        env.remove_pod(pod_id)


# --- fail closed: cases that need more than one object (finding 8) and devices (finding 4) -----

def expect_refused(env, before, call, code, field, made=None):
    """`call` must fail with `code` naming `field` in a short message and change nothing."""
    made = [] if made is None else made
    try:
        with pytest.raises(grpc.RpcError) as e:
            made.append(("ctr", call()))
    finally:
        env.remove_new_objects(before, made)
    details = e.value.details() or ""
    assert e.value.code() == code, (e.value.code(), details[:300])
    assert field in details, details[:300]
    assert len(details.encode()) < MAX_MESSAGE, f"{len(details)} bytes: {details[:300]}"
    assert env.host_state() == before


def test_pid_target_must_be_a_container_of_the_same_pod(env, base):
    """TARGET naming another pod's container is INVALID_ARGUMENT; naming no container at all is
    NOT_FOUND (as containerd); naming a container of the same pod still works."""
    pod_id, pod_cfg, base_cid = base
    other_cfg = env.pod_config()
    other_pod = env.run_pod(other_cfg)
    try:
        other_cid = env.create(other_pod, other_cfg, env.container_config())
        env.start(other_cid)
        field = f"{SC}.namespace_options.target_id"
        for target, code in ((other_cid, grpc.StatusCode.INVALID_ARGUMENT),
                             ("f" * 64, grpc.StatusCode.NOT_FOUND)):
            cfg = env.container_config()
            sc(cfg).namespace_options.pid = env.pb.TARGET
            sc(cfg).namespace_options.target_id = target
            before = env.host_state()
            expect_refused(env, before, lambda: env.create(pod_id, pod_cfg, cfg), code, field)
        # The same pod's container: joins its pid namespace.
        cfg = env.container_config()
        sc(cfg).namespace_options.pid = env.pb.TARGET
        sc(cfg).namespace_options.target_id = base_cid
        cid = env.create(pod_id, pod_cfg, cfg)
        try:
            env.start(cid)
            ps = env.exec(cid, ["ps"]).stdout.decode()
            assert ps.count("sleep 1000") >= 2, ps  # the base container's and its own
        finally:
            env.remove_container(cid)
    finally:
        env.remove_pod(other_pod)


def test_a_pid_target_gone_before_start_lends_no_namespace(env, base):
    """A pid TARGET container is planned at CreateContainer with its target's pid; when the
    target has ended by StartContainer (its pid free for any process to get), the start is
    refused with FAILED_PRECONDITION naming the pid namespace, and the container runs nowhere
    (issue 18, finding 7)."""
    pod_id, pod_cfg, _ = base
    target = env.create(pod_id, pod_cfg, env.container_config())
    env.start(target)
    cfg = env.container_config()
    sc(cfg).namespace_options.pid = env.pb.TARGET
    sc(cfg).namespace_options.target_id = target
    cid = env.create(pod_id, pod_cfg, cfg)
    try:
        env.c.runtime.StopContainer(env.pb.StopContainerRequest(container_id=target, timeout=0),
                                    timeout=60)
        with pytest.raises(grpc.RpcError) as e:
            env.start(cid)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
        assert "join pid namespace of pid" in e.value.details(), e.value.details()
        assert "that process is gone" in e.value.details(), e.value.details()
        assert env.container_status(cid).state != env.pb.CONTAINER_RUNNING
    finally:
        env.remove_container(cid)
        env.remove_container(target)


def test_nothing_is_mounted_beneath_a_bidirectional_mount(env, tmp_path):
    """A mount beneath a PROPAGATION_BIDIRECTIONAL one would appear in the host's mount table
    (finding 9): refused naming both, and nothing changes, on the host's side of the shared
    mount either; the bidirectional mount alone still works."""
    shared, other = tmp_path / "shared", tmp_path / "other"
    shared.mkdir()
    other.mkdir()
    cfg = env.pod_config()
    cfg.linux.security_context.privileged = True
    pod_id = env.run_pod(cfg)
    try:
        def container(*extra):
            c = env.container_config()
            sc(c).privileged = True
            c.mounts.add(host_path=str(shared), container_path="/data",
                         propagation=env.pb.PROPAGATION_BIDIRECTIONAL)
            for host, dest in extra:
                c.mounts.add(host_path=str(host), container_path=dest)
            return c
        host_mounts = Path("/proc/self/mountinfo").read_text().count(str(tmp_path))
        before = env.host_state()
        beneath = container((other, "/data/sub"))
        expect_refused(env, before, lambda: env.create(pod_id, cfg, beneath),
                       grpc.StatusCode.INVALID_ARGUMENT,
                       "config.mounts[0].container_path: `/data` is PROPAGATION_BIDIRECTIONAL and "
                       "config.mounts[1] `/data/sub` lies beneath it")
        assert Path("/proc/self/mountinfo").read_text().count(str(tmp_path)) == host_mounts
        assert list(shared.iterdir()) == []
        cid = env.create(pod_id, cfg, container((other, "/elsewhere")))
        env.start(cid)
        assert env.container_status(cid).state == env.pb.CONTAINER_RUNNING
    finally:
        env.remove_pod(pod_id)


def device_config(env, host_path, container_path="/dev/xdev"):
    cfg = env.container_config()
    cfg.devices.add(host_path=str(host_path), container_path=container_path, permissions="rw")
    return cfg


def test_device_host_path_must_be_a_device(env, base, tmp_path):
    """A regular file as a CRI device was bind-mounted read-write into the container; now it is
    refused naming config.devices[0].host_path. A missing path stays NOT_FOUND."""
    pod_id, pod_cfg, _ = base
    regular = tmp_path / "not-a-device"
    regular.write_text("host data\n")
    field = "config.devices[0].host_path"
    for path, code in ((regular, grpc.StatusCode.INVALID_ARGUMENT),
                       (tmp_path, grpc.StatusCode.INVALID_ARGUMENT),
                       (tmp_path / "missing", grpc.StatusCode.NOT_FOUND)):
        cfg = device_config(env, path)
        before = env.host_state()
        expect_refused(env, before, lambda: env.create(pod_id, pod_cfg, cfg), code, field)
    assert regular.read_text() == "host data\n"


def test_memory_devices_only_for_privileged_containers(env, base, tmp_path):
    """A node with /dev/mem's numbers (char 1:1, also 1:2 kmem and 1:4 port), made here because
    this machine has none, is refused for an unprivileged container and accepted for a
    privileged one in a privileged pod."""
    pod_id, pod_cfg, _ = base
    field = "config.devices[0].host_path"
    for minor in (1, 2, 4):
        node = tmp_path / f"mem{minor}"
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, minor))
        cfg = device_config(env, node)
        before = env.host_state()
        expect_refused(env, before, lambda: env.create(pod_id, pod_cfg, cfg),
                       grpc.StatusCode.INVALID_ARGUMENT, field)
    priv_cfg = env.pod_config()
    priv_cfg.linux.security_context.privileged = True
    priv_pod = env.run_pod(priv_cfg)
    try:
        cfg = device_config(env, tmp_path / "mem1")
        sc(cfg).privileged = True
        env.remove_container(env.create(priv_pod, priv_cfg, cfg))
    finally:
        env.remove_pod(priv_pod)


# --- positive controls for fail closed ----------------------------------------------------------

def test_privileged_container_in_a_privileged_pod_still_runs(env):
    cfg = env.pod_config()
    cfg.linux.security_context.privileged = True
    pod_id = env.run_pod(cfg)
    try:
        ccfg = env.container_config()
        sc(ccfg).privileged = True
        cid = env.create(pod_id, cfg, ccfg)
        env.start(cid)
        # Privileged: every capability, CAP_SYS_ADMIN (bit 21) among them.
        status = env.exec(cid, ["cat", "/proc/self/status"]).stdout.decode()
        cap_eff = int(next(line.split()[1] for line in status.splitlines()
                           if line.startswith("CapEff:")), 16)
        assert cap_eff & (1 << 21), status
    finally:
        env.remove_pod(pod_id)


def test_unconfined_apparmor_still_runs(env):
    """Unconfined (both fields, pod and container) asks for nothing podshim must enforce."""
    cfg = env.pod_config()
    sc(cfg).apparmor.profile_type = env.pb.SecurityProfile.Unconfined
    pod_id = env.run_pod(cfg)
    try:
        ccfg = env.container_config()
        sc(ccfg).apparmor.profile_type = env.pb.SecurityProfile.Unconfined
        sc(ccfg).apparmor_profile = "unconfined"
        sc(ccfg).namespace_options.userns_options.mode = env.pb.NODE
        cid = env.create(pod_id, cfg, ccfg)
        env.start(cid)
        assert env.container_status(cid).state == env.pb.CONTAINER_RUNNING
    finally:
        env.remove_pod(pod_id)


def test_char_device_still_works(env, base):
    """/dev/null as a CRI device is a character device in the container."""
    pod_id, pod_cfg, _ = base
    cid = env.create(pod_id, pod_cfg, device_config(env, "/dev/null"))
    try:
        env.start(cid)
        r = env.exec(cid, ["sh", "-c", "test -c /dev/xdev && echo ok > /dev/xdev && echo done"])
        assert r.exit_code == 0 and r.stdout.decode().strip() == "done", r
    finally:
        env.remove_container(cid)


# --- Finding 6: the helpers cannot be overwritten from a container (CVE-2019-5736 class) -----

def processes():
    """(pid, ppid, argv) of every process."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat_text = (p / "stat").read_text()
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat_text[stat_text.rindex(")") + 2:].split()[1])
        out.append((int(p.name), ppid, [a.decode(errors="replace") for a in argv if a]))
    return out


def assert_runs_from_a_sealed_copy(pid, name):
    """The process's executable is a sealed memfd copy of `name`, not the file on disk, and
    even root cannot write it."""
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exe.startswith(f"/memfd:{name}"), exe
    on_disk = os.stat(Path(podshimd_binary()).parent.parent / "runtime" / name)
    assert os.stat(f"/proc/{pid}/exe").st_ino != on_disk.st_ino
    with pytest.raises(OSError):  # ETXTBSY while it runs; EPERM (sealed) otherwise
        fd = os.open(f"/proc/{pid}/exe", os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)


def test_helpers_run_from_a_sealed_copy(env, base):
    """The monitors waiting for a start, and the ExecSync helper while it is inside a
    container, run from sealed copies of podshim-monitor."""
    import threading
    import time
    podshimd = env.d.proc.pid
    waiting = [pid for pid, ppid, argv in processes()
               if ppid == podshimd and argv[1:] == ["wait"]]
    assert waiting, "no monitor of the pool is waiting"
    assert_runs_from_a_sealed_copy(waiting[0], "podshim-monitor")

    # An ExecSync that waits on a FIFO until the test has looked at its helper.
    cid = base[2]
    assert env.exec(cid, ["sh", "-c", "rm -f /tmp/hold && mkfifo /tmp/hold"]).exit_code == 0
    result = {}
    held = threading.Thread(target=lambda: result.update(
        r=env.exec(cid, ["sh", "-c", "read line < /tmp/hold"], timeout=30)), daemon=True)
    held.start()
    try:
        deadline = time.monotonic() + 20
        helper = None
        while helper is None:
            assert time.monotonic() < deadline, "the ExecSync helper never showed up"
            helper = next((pid for pid, ppid, argv in processes() if ppid == podshimd
                           and argv[1:2] == ["exec"] and cid in " ".join(argv)), None)
            time.sleep(0.02)
        assert_runs_from_a_sealed_copy(helper, "podshim-monitor")
    finally:
        env.exec(cid, ["sh", "-c", "echo go > /tmp/hold"])
        held.join(40)
    assert result["r"].exit_code == 0, result


def test_a_container_cannot_open_the_pods_infra_process(env):
    """With a shared PID namespace the pod's infra process (podshim-pinns) is PID 1 of the
    containers: they can neither open its executable nor read its environment (it holds
    capabilities they lack, and it is not dumpable: either alone refuses them)."""
    cfg = env.pod_config()
    cfg.linux.security_context.namespace_options.pid = env.pb.POD
    pod_id = env.run_pod(cfg)
    try:
        cid = env.create(pod_id, cfg, env.container_config())
        env.start(cid)
        who = env.exec(cid, ["cat", "/proc/1/comm"])
        assert who.stdout.decode().strip() == "podshim-infra", who
        # It runs from the sealed copy of podshim-pinns too.
        info = json.loads(env.c.runtime.PodSandboxStatus(env.pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod_id, verbose=True)).info["info"])
        assert_runs_from_a_sealed_copy(info["infraPid"], "podshim-pinns")
        for cmd in (["readlink", "/proc/1/exe"], ["cat", "/proc/1/exe"],
                    ["sh", "-c", "echo x >> /proc/1/exe"], ["cat", "/proc/1/environ"]):
            r = env.exec(cid, cmd)
            assert r.exit_code != 0, (cmd, r)
        # Its own processes stay readable to it.
        assert env.exec(cid, ["readlink", "/proc/self/exe"]).exit_code == 0
    finally:
        env.remove_pod(pod_id)


def test_a_script_that_names_proc_self_exe_runs_the_sealed_copy(env, base):
    """ExecSync of a script starting `#!/proc/self/exe` runs the exec helper's own binary
    inside the container (what CVE-2019-5736 used). The kernel resolves that link to the
    helper's executable, which test_helpers_run_from_a_sealed_copy shows is the sealed copy;
    here: the path is real (podshim-monitor answers), and the host's file stays as it was."""
    import hashlib
    binary = Path(podshimd_binary()).parent.parent / "runtime" / "podshim-monitor"
    before = hashlib.sha256(binary.read_bytes()).hexdigest()
    cid = base[2]
    assert env.exec(cid, ["sh", "-c", "printf '#!/proc/self/exe\\n' > /tmp/evil && "
                                      "chmod +x /tmp/evil"]).exit_code == 0
    if has_elf_interpreter(binary):
        # A dynamically linked helper (the sanitizer builds link them so) cannot start inside
        # the container: its ELF interpreter is the host's, not in the container's rootfs.
        with pytest.raises(grpc.RpcError) as e:
            env.exec(cid, ["/tmp/evil"])
        assert "exec `/tmp/evil`: ENOENT" in e.value.details(), e.value
    else:
        r = env.exec(cid, ["/tmp/evil"])
        # podshim-monitor ran as the script's interpreter (its usage error).
        assert r.exit_code == 2, r
        assert b"podshim-monitor" in r.stderr, r
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == before


def has_elf_interpreter(path):
    """Whether the ELF64 file at `path` has a PT_INTERP program header (is dynamically linked)."""
    import struct
    data = Path(path).read_bytes()
    assert data[:5] == b"\x7fELF\x02", path
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3  # PT_INTERP
               for i in range(phnum))


def test_a_container_cannot_read_another_pods_files(env):
    """Escape tried from inside: a secret written in one pod's container is not reachable from
    another pod's container, neither by the host path of its writable layer nor through /proc
    (separate mount and PID namespaces), nor by searching the whole filesystem."""
    pods = []
    try:
        cids = []
        for _ in range(2):
            cfg = env.pod_config()
            pods.append(env.run_pod(cfg))
            cid = env.create(pods[-1], cfg, env.container_config())
            env.start(cid)
            cids.append(cid)
        owner, other = cids
        secret = uuid.uuid4().hex
        assert env.exec(owner, ["sh", "-c", f"echo {secret} > /root-secret"]).exit_code == 0
        upper = Path(env.d.root_dir) / "containers" / owner / "upper" / "root-secret"
        assert upper.read_text().strip() == secret, "the secret is where the test looks for it"
        for cmd in (["cat", str(upper)],
                    ["sh", "-c", "cat /proc/[0-9]*/root/root-secret"],
                    ["sh", "-c", "find / -xdev -name root-secret 2>/dev/null"]):
            r = env.exec(other, cmd)
            assert secret.encode() not in r.stdout, (cmd, r)
        # Its own pod's processes only: the infra process (PID 1), its sleep, the ps; and the
        # infra's command line shows no host path (state dir, cgroups).
        ps = env.exec(other, ["ps", "-o", "pid,args"]).stdout.decode()
        rows = [line.split(None, 1) for line in ps.strip().splitlines()[1:]]
        assert [args for _, args in rows] == ["podshim-infra", "sleep 1000", "ps -o pid,args"], ps
        assert str(env.d.dir) not in ps and "cgroup" not in ps, ps
    finally:
        for pod_id in pods:
            env.remove_pod(pod_id)


def test_runtime_default_seccomp_is_an_allow_list_that_runs_ordinary_work(env, base):
    """RuntimeDefault is an allow-list with EPERM for the rest (finding 8): the container runs
    under a filter (Seccomp: 2), ordinary work (a shell, files, links, processes, pipes,
    sleeping, signals) runs, and namespaces stay out of reach."""
    pod_id, pod_cfg, _ = base
    cfg = env.container_config()
    sc(cfg).seccomp.profile_type = env.pb.SecurityProfile.RuntimeDefault
    cid = env.create(pod_id, pod_cfg, cfg)
    try:
        env.start(cid)
        status = env.exec(cid, ["cat", "/proc/self/status"]).stdout.decode()
        assert re.search(r"^Seccomp:\s+2$", status, re.M), status
        work = ("set -e; mkdir -p /w/d; echo hi > /w/d/f; cat /w/d/f | tr a-z A-Z; "
                "ln -s /w/d/f /w/l; ls -l /w >/dev/null; mv /w/d/f /w/g; rm -r /w; date +%s >/dev/null; "
                "sleep 0.1 & wait; kill -0 $$; ps >/dev/null; id -u; echo done")
        r = env.exec(cid, ["sh", "-c", work])
        assert r.exit_code == 0 and r.stdout.decode().split() == ["HI", "0", "done"], r
        refused = env.exec(cid, ["unshare", "-n", "true"])
        assert refused.exit_code != 0 and b"not permitted" in refused.stderr, refused
    finally:
        env.remove_container(cid)


def test_update_with_huge_annotations_is_refused(env, base):
    """UpdateContainerResources' annotations (which podshim ignores) are bounded as any other
    object's: 9 MB of them is INVALID_ARGUMENT naming the field, and nothing changes."""
    _, _, cid = base
    before = env.host_state()
    req = env.pb.UpdateContainerResourcesRequest(container_id=cid,
                                                 annotations={"big": "x" * (9 * MB)})
    expect_refused(env, before, lambda: env.c.runtime.UpdateContainerResources(req, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, "annotations")
