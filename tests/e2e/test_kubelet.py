"""End to end: the toy kubelet (podshim-kubelet) drives a CRI runtime from Pod manifests.

Every test runs against containerd (Debian's, with runc and CNI, private dirs; see
tests/helpers/containerd.py) and against podshimd.

Images come from a throw-away local registry (busybox and pause stand-ins from
tests/helpers/images.py). The kubelet runs with short back-off, sync and scan periods so the
whole file stays well under a few minutes. Every test removes its pods, containers and
processes even when it fails.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
sys.path.insert(0, str(REPO / "python"))

import images  # noqa: E402
from containerd import Containerd  # noqa: E402
from registry import Registry, free_port  # noqa: E402
from waiting import wait_for  # noqa: E402

from podshim import Client  # noqa: E402
from podshim.daemon import Podshimd, podshimd_binary  # noqa: E402

BUSYBOX = "podshim/busybox:test"
PAUSE_TAGS = ("pause:3.9", "pause:3.10", "pause:3.10.1")
MANAGED = "io.podshim.kubelet/managed"


def kubelet_binary() -> Path:
    """$PODSHIM_KUBELET, else podshim-kubelet beside the podshimd build being tested."""
    if os.environ.get("PODSHIM_KUBELET"):
        return Path(os.environ["PODSHIM_KUBELET"])
    return podshimd_binary().parents[1] / "kubelet" / "podshim-kubelet"


# ---------------------------------------------------------------- runtimes

class Runtime:
    def __init__(self, name: str, endpoint: str, image: str, log):
        self.name = name
        self.endpoint = endpoint
        self.image = image
        self.log = log

    def client(self) -> Client:
        return Client(self.endpoint, timeout=60)

    def require_pod_network(self) -> None:
        """Fails the test when the runtime gives pods no network (NetworkReady false): both
        runtimes here have one (podshim its embedded default, containerd the bridge plugin)."""
        with self.client() as c:
            cond = c.conditions().get("NetworkReady")
        if cond is None or not cond.status:
            reason = f"{cond.reason}: {cond.message}" if cond else "no NetworkReady condition"
            pytest.fail(f"{self.name} has no pod network ({reason}); probes from the node "
                        "and hostPorts need one")

    def sandboxes(self, **labels):
        with self.client() as c:
            f = c.pb.PodSandboxFilter(label_selector={MANAGED: "true", **labels})
            return list(c.runtime.ListPodSandbox(c.pb.ListPodSandboxRequest(filter=f)).items)

    def containers(self, **labels):
        with self.client() as c:
            f = c.pb.ContainerFilter(label_selector={MANAGED: "true", **labels})
            return list(c.runtime.ListContainers(c.pb.ListContainersRequest(filter=f)).containers)

    def remove_managed_pods(self) -> None:
        """Removes whatever the kubelet left behind (a failed test must not leak pods)."""
        with self.client() as c:
            pb = c.pb
            f = pb.ContainerFilter(label_selector={MANAGED: "true"})
            for ctr in c.runtime.ListContainers(pb.ListContainersRequest(filter=f)).containers:
                c.runtime.StopContainer(pb.StopContainerRequest(container_id=ctr.id, timeout=0))
                c.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=ctr.id))
            f = pb.PodSandboxFilter(label_selector={MANAGED: "true"})
            for sb in c.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=f)).items:
                c.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sb.id))
                c.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sb.id))


@pytest.fixture(scope="module")
def registry():
    with Registry() as reg:
        refs = images.build_all(names=["busybox", "pause"])
        images.push(refs["busybox"], f"{reg.addr}/{BUSYBOX}")
        for tag in PAUSE_TAGS:
            images.push(refs["pause"], f"{reg.addr}/{tag}")
        yield reg


@pytest.fixture(scope="module", params=["containerd", "podshim"])
def runtime(request, registry):
    image = f"{registry.addr}/{BUSYBOX}"
    if request.param == "containerd":
        if shutil.which("containerd") is None:
            pytest.fail("containerd is not installed (deploy/setup.sh installs it)")
        with Containerd(registry.addr, f"{registry.addr}/pause:3.9") as ctrd:
            rt = Runtime("containerd", ctrd.endpoint, image, ctrd.log)
            try:
                yield rt
            finally:
                rt.remove_managed_pods()
        return
    binary = podshimd_binary()
    if not binary.exists():
        pytest.fail(f"podshimd not built at {binary}")
    # podshimd's own sandbox image, whatever its default tag, comes from the local registry.
    conf_dir = Path(tempfile.mkdtemp(prefix="podshim-kubelet-conf-"))
    conf = conf_dir / "podshim.toml"
    conf.write_text("[registry]\nupstream_fallback = false\n[registry.mirrors]\n"
                    f'"registry.k8s.io" = ["http://{registry.addr}"]\n'
                    f'"k8s.gcr.io" = ["http://{registry.addr}"]\n')
    d = Podshimd(binary, extra_args=[f"--config={conf}"])
    try:
        d.start()
        rt = Runtime("podshim", d.endpoint, image, d.log)
        try:
            yield rt
        finally:
            rt.remove_managed_pods()
    finally:
        d.cleanup()
        shutil.rmtree(conf_dir, ignore_errors=True)


# ----------------------------------------------------------------- kubelet

class Kubelet:
    """One podshim-kubelet process with private manifest, status, log and state dirs."""

    def __init__(self, runtime: Runtime, base: Path):
        self.runtime = runtime
        self.base = base
        self.manifests = base / "manifests"
        self.status_dir = base / "status"
        self.log_root = base / "logs"
        self.root = base / "root"
        for d in (self.manifests, self.status_dir, self.log_root, self.root):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = base / "kubelet.log"
        self.proc = None
        self._log = None

    def start(self, *extra: str) -> "Kubelet":
        binary = kubelet_binary()
        if not binary.exists():
            pytest.fail(f"podshim-kubelet not built at {binary}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), f"--endpoint={self.runtime.endpoint}", f"--manifests={self.manifests}",
             f"--status_dir={self.status_dir}", f"--pod_log_root={self.log_root}",
             f"--root_dir={self.root}", f"--http=127.0.0.1:{self.port}", "--node_name=e2e-node",
             "--backoff_initial=1s", "--backoff_max=4s", "--sync_period=500ms",
             "--scan_period=500ms", *extra],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._healthy(), 30, "the kubelet's /healthz", describe=self.log)
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"podshim-kubelet exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def write(self, name: str, text: str) -> Path:
        """Writes a manifest atomically (through a dot file, which the kubelet skips)."""
        tmp = self.manifests / f".{name}.tmp"
        tmp.write_text(text)
        path = self.manifests / name
        os.rename(tmp, path)
        return path

    def pod(self, name: str, namespace: str = "default"):
        code, body = self.get(f"/pods/{namespace}/{name}")
        return json.loads(body) if code == 200 else None

    def describe(self, name: str, namespace: str = "default"):
        return lambda: (f"--- pod {namespace}/{name} ---\n{json.dumps(self.pod(name, namespace), indent=1)}"
                        f"\n--- kubelet log ---\n{self.log()[-6000:]}")

    def wait_pod(self, name: str, pred, what: str, timeout: float = 60, namespace="default"):
        def check():
            p = self.pod(name, namespace)
            return p if p is not None and pred(p) else None
        return wait_for(check, timeout, f"pod {namespace}/{name}: {what}",
                        describe=self.describe(name, namespace))


def running_and_ready(pod) -> bool:
    st = pod["status"]
    conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
    return st["phase"] == "Running" and conds.get("Ready") == "True"


def container(pod, name: str) -> dict:
    st = pod["status"]
    for c in st.get("containerStatuses", []) + st.get("initContainerStatuses", []):
        if c["name"] == name:
            return c
    raise KeyError(name)


@pytest.fixture
def kubelet(runtime, request):
    base = Path(tempfile.mkdtemp(prefix="podshim-kubelet-e2e-"))
    k = Kubelet(runtime, base)
    try:
        yield k
    finally:
        k.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(f"--- kubelet log ---\n{k.log()[-8000:]}\n--- {runtime.name} log ---\n"
                  f"{runtime.log()[-4000:]}")
        runtime.remove_managed_pods()
        subprocess.run(["umount", "-R", "-l", str(base / "root")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------- tests

def test_init_container_then_two_app_containers_reach_running(runtime, kubelet):
    image = runtime.image
    kubelet.write("web.yaml", f"""
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - {{name: www, emptyDir: {{}}}}
  initContainers:
  - name: setup
    image: {image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo hello from init > /www/index.html"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  containers:
  - name: httpd
    image: {image}
    imagePullPolicy: IfNotPresent
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: [{{name: http, containerPort: 8080}}]
    volumeMounts: [{{name: www, mountPath: /www, readOnly: true}}]
    readinessProbe:
      exec: {{command: [test, -s, /www/index.html]}}
      periodSeconds: 1
  - name: sidecar
    image: {image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo $(GREETING); while true; do sleep 1; done"]
    env: [{{name: GREETING, value: hi-from-env}}]
    livenessProbe:
      exec: {{command: ["true"]}}
      periodSeconds: 1
    readinessProbe:
      exec: {{command: [sh, -c, "wget -qO- http://127.0.0.1:8080/index.html | grep -q init"]}}
      periodSeconds: 1
""")
    kubelet.start()
    pod = kubelet.wait_pod("web", running_and_ready, "Running and Ready")
    st = pod["status"]
    assert container(pod, "setup")["state"]["terminated"]["exitCode"] == 0
    assert container(pod, "setup")["state"]["terminated"]["reason"] == "Completed"
    for name in ("httpd", "sidecar"):
        c = container(pod, name)
        assert "running" in c["state"] and c["ready"] and c["restartCount"] == 0, c
    assert {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "True"
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["spec"]["nodeName"] == "e2e-node"
    uid = pod["metadata"]["uid"]

    # The runtime sees the kubelet's labels on the sandbox and the containers.
    (sandbox,) = runtime.sandboxes(**{"io.kubernetes.pod.name": "web"})
    assert sandbox.labels["io.kubernetes.pod.namespace"] == "default"
    assert sandbox.labels["io.kubernetes.pod.uid"] == uid
    assert sandbox.labels["io.podshim.kubelet/manifest-hash"] == \
        pod["metadata"]["annotations"]["kubernetes.io/config.hash"]
    assert sandbox.labels["app"] == "web"
    names = {c.labels["io.kubernetes.container.name"]: c for c in runtime.containers(
        **{"io.kubernetes.pod.uid": uid})}
    assert set(names) == {"setup", "httpd", "sidecar"}
    assert names["httpd"].annotations["io.kubernetes.container.restartCount"] == "0"

    # Logs where the kubelet said; $(GREETING) expanded from env.
    log = kubelet.log_root / f"default_web_{uid}" / "sidecar" / "0.log"
    wait_for(lambda: log.exists() and "hi-from-env" in log.read_text(), 10, f"{log}")

    # The status file and the read-only endpoints agree.
    on_disk = json.loads((kubelet.status_dir / "default_web.json").read_text())
    assert on_disk["metadata"]["uid"] == uid
    code, body = kubelet.get("/pods")
    assert code == 200
    assert [p["metadata"]["name"] for p in json.loads(body)["items"]] == ["web"]
    assert kubelet.get("/pods/default/nope")[0] == 404
    assert kubelet.get("/healthz") == (200, "ok\n")


def test_network_probes_and_the_pod_ip(runtime, kubelet):
    """httpGet and tcpSocket probes go from the node to the pod IP, and so can we."""
    runtime.require_pod_network()
    kubelet.write("net.yaml", f"""
apiVersion: v1
kind: Pod
metadata: {{name: net}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: http}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
  - name: broken
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    readinessProbe:
      httpGet: {{path: /missing, port: 8080}}
      periodSeconds: 1
""")
    kubelet.start()
    pod = kubelet.wait_pod(
        "net", lambda p: container(p, "httpd")["ready"] and p["status"].get("podIP"),
        "httpd ready with a pod IP")
    assert not container(pod, "broken")["ready"]  # 404 from /missing
    assert container(pod, "httpd")["restartCount"] == 0
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/index.html", timeout=5) as r:
        assert r.read().decode().strip() == "served"


def test_exiting_container_is_restarted_with_backoff(runtime, kubelet):
    kubelet.write("crash.yaml", f"""
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: crasher
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo started; exit 3"]
""")
    kubelet.start()
    first = time.monotonic()
    seen = set()

    def restarted_three_times(pod):
        c = container(pod, "crasher")
        seen.update(c["state"].keys())
        if "waiting" in c["state"]:
            seen.add(c["state"]["waiting"]["reason"])
        return c["restartCount"] >= 3

    pod = kubelet.wait_pod("crash", restarted_three_times, "restart count 3", timeout=60)
    elapsed = time.monotonic() - first
    c = container(pod, "crasher")
    last = c["lastState"].get("terminated") or c["state"].get("terminated")
    assert last["exitCode"] == 3 and last["reason"] == "Error", c
    assert pod["status"]["phase"] == "Running"  # restartPolicy Always
    # Back-off of 1 s, then 2 s, between the restarts: three restarts take at least 3 s.
    assert elapsed >= 3, f"three restarts in {elapsed:.1f}s: no back-off"
    assert "CrashLoopBackOff" in seen, seen
    # Only the newest dead instance is kept beside the current one (older ones go on the
    # next sync).
    wait_for(lambda: len(runtime.containers(**{"io.kubernetes.pod.name": "crash"})) <= 2, 5,
             "older dead instances to be removed")


def test_failing_liveness_probe_restarts_the_container(runtime, kubelet):
    kubelet.write("live.yaml", f"""
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: unhealthy
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    livenessProbe:
      exec: {{command: [test, -e, /tmp/healthy]}}
      periodSeconds: 1
      failureThreshold: 2
  - name: healthy
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "touch /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec: {{command: [test, -e, /tmp/healthy]}}
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
""")
    kubelet.start()
    pod = kubelet.wait_pod("live", lambda p: container(p, "unhealthy")["restartCount"] >= 1,
                           "a liveness restart", timeout=60)
    c = container(pod, "unhealthy")
    assert "terminated" in c["lastState"], c
    assert "liveness probe failed" in kubelet.log()
    assert container(pod, "healthy")["restartCount"] == 0


def test_removing_the_manifest_removes_the_pod(runtime, kubelet):
    path = kubelet.write("gone.yaml", f"""
apiVersion: v1
kind: Pod
metadata: {{name: gone, namespace: team}}
spec:
  terminationGracePeriodSeconds: 30
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: polite
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "trap 'echo got TERM; exit 0' TERM; while true; do sleep 1 & wait $!; done"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
""")
    kubelet.start()
    pod = kubelet.wait_pod("gone", running_and_ready, "Running", namespace="team")
    uid = pod["metadata"]["uid"]
    assert (kubelet.status_dir / "team_gone.json").exists()
    assert (kubelet.log_root / f"team_gone_{uid}").exists()
    assert (kubelet.root / "pods" / uid).exists()

    path.unlink()
    removed = time.monotonic()
    wait_for(lambda: kubelet.pod("gone", "team") is None, 40, "the pod to be removed",
             describe=kubelet.describe("gone", "team"))
    # The container took SIGTERM and left well inside its 30 s grace period.
    assert time.monotonic() - removed < 20
    assert runtime.sandboxes(**{"io.kubernetes.pod.name": "gone"}) == []
    assert runtime.containers(**{"io.kubernetes.pod.name": "gone"}) == []
    assert not (kubelet.status_dir / "team_gone.json").exists()
    assert not (kubelet.log_root / f"team_gone_{uid}").exists()
    assert not (kubelet.root / "pods" / uid).exists()


def test_restarted_kubelet_adopts_running_pods(runtime, kubelet):
    kubelet.write("keep.yaml", f"""
apiVersion: v1
kind: Pod
metadata: {{name: keep}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    readinessProbe:
      exec: {{command: ["true"]}}
      periodSeconds: 1
""")
    kubelet.start()
    pod = kubelet.wait_pod("keep", running_and_ready, "Running and Ready")
    before = container(pod, "a")["containerID"]
    (sandbox,) = runtime.sandboxes(**{"io.kubernetes.pod.name": "keep"})

    assert kubelet.stop() == 0
    # The pod outlives the kubelet.
    assert [c.state for c in runtime.containers(**{"io.kubernetes.pod.name": "keep"})] == [1]

    kubelet.start()
    pod = kubelet.wait_pod("keep", running_and_ready, "Running and Ready again")
    assert container(pod, "a")["containerID"] == before
    assert container(pod, "a")["restartCount"] == 0
    assert [s.id for s in runtime.sandboxes(**{"io.kubernetes.pod.name": "keep"})] == [sandbox.id]
    second_run = kubelet.log().rsplit("watching", 1)[-1]
    assert "started" not in second_run and "removing" not in second_run, second_run


def test_invalid_manifests_change_nothing(runtime, kubelet):
    good = f"""
apiVersion: v1
kind: Pod
metadata: {{name: steady}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    unknownThing: 1
"""
    kubelet.write("steady.yaml", good)
    kubelet.start()
    pod = kubelet.wait_pod("steady", running_and_ready, "Running")
    before = container(pod, "a")["containerID"]
    sandboxes = [s.id for s in runtime.sandboxes()]

    # An invalid new version: reported with file and field, the running pod stays.
    kubelet.write("steady.yaml", good.replace("command: [sleep", "resources: {limits: {cpu: lots}}\n"
                                              "    command: [sleep"))
    # A file that is not even YAML, and one that is not a Pod.
    kubelet.write("broken.yaml", "apiVersion: v1\nkind: [Pod\n")
    kubelet.write("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    wait_for(lambda: "steady.yaml: document 1: spec.containers[0].resources.limits.cpu: "
             "invalid quantity \"lots\"" in kubelet.log(), 15, "the error naming file and field",
             describe=kubelet.log)
    wait_for(lambda: "broken.yaml: YAML syntax error" in kubelet.log()
             and "deploy.yaml: document 1: apiVersion: must be v1" in kubelet.log(), 15,
             "errors for the other files", describe=kubelet.log)
    time.sleep(2)  # a few more scans
    pod = kubelet.pod("steady")
    assert running_and_ready(pod)
    assert container(pod, "a")["containerID"] == before
    assert [s.id for s in runtime.sandboxes()] == sandboxes
    # Reported once, not every scan; the unknown field only warned about, once.
    log = kubelet.log()
    assert log.count("invalid quantity \"lots\"") == 1
    assert log.count("spec.containers[0].unknownThing: unknown field, ignored") == 1

    # A restarted kubelet leaves the pod of an invalid manifest alone too.
    kubelet.stop()
    kubelet.start()
    time.sleep(2)
    assert [s.id for s in runtime.sandboxes()] == sandboxes
    assert len(runtime.containers(**{"io.kubernetes.pod.name": "steady"})) == 1

    # The valid version back: the same pod, adopted, not restarted.
    kubelet.write("steady.yaml", good)
    pod = kubelet.wait_pod("steady", running_and_ready, "Running after the fix")
    assert container(pod, "a")["containerID"] == before


def test_changed_manifest_replaces_the_pod(runtime, kubelet):
    text = f"""
apiVersion: v1
kind: Pod
metadata: {{name: change}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: {runtime.image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    env: [{{name: VERSION, value: "1"}}]
"""
    kubelet.write("change.yaml", text)
    kubelet.start()
    old = kubelet.wait_pod("change", running_and_ready, "Running")
    kubelet.write("change.yaml", text.replace('value: "1"', 'value: "2"'))
    new = kubelet.wait_pod(
        "change", lambda p: p["metadata"]["uid"] != old["metadata"]["uid"] and running_and_ready(p),
        "the new version Running")
    assert container(new, "a")["restartCount"] == 0
    (sandbox,) = runtime.sandboxes(**{"io.kubernetes.pod.name": "change"})
    assert sandbox.labels["io.kubernetes.pod.uid"] == new["metadata"]["uid"]


def test_demo_manifests_web_and_pair(runtime, kubelet):
    """deploy/examples/: the web server answers on its hostPort; the pair talks over localhost."""
    runtime.require_pod_network()
    port = free_port()
    for name in ("web.yaml", "pair.yaml"):
        text = (REPO / "deploy" / "examples" / name).read_text()
        text = text.replace("localhost/podshim/busybox:demo", runtime.image)
        text = text.replace("imagePullPolicy: Never", "imagePullPolicy: IfNotPresent")
        text = text.replace("hostPort: 18080", f"hostPort: {port}")
        kubelet.write(name, text)
    kubelet.start()
    kubelet.wait_pod("web", running_and_ready, "Running and Ready")
    pair = kubelet.wait_pod("pair", running_and_ready, "Running and Ready")
    assert all(c["ready"] for c in pair["status"]["containerStatuses"])

    def page():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
                return r.read().decode()
        except OSError:
            return ""
    assert "Hello from podshim" in wait_for(page, 20, f"the page on hostPort {port}")
