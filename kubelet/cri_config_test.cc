#include "kubelet/cri_config.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kubelet/pod_spec.h"

namespace podshim::kubelet {
namespace {

namespace rt = ::runtime::v1;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

Pod ParseOne(const std::string& yaml) {
  auto parsed = ParseManifest(yaml, "/etc/m/p.yaml", "node1");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->pods.at(0) : Pod{};
}

NodeConfig Node() {
  NodeConfig n;
  n.node_name = "node1";
  n.pod_log_root = "/logs";
  n.volume_root = "/vol";
  n.memory_capacity_bytes = int64_t{8} << 30;
  n.host_resolv_conf = "# x\nnameserver 192.0.2.1\nsearch lan\noptions ndots:1\n";
  return n;
}

constexpr char kPod[] = R"yaml(
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations: {note: hi}
spec:
  terminationGracePeriodSeconds: 7
  volumes:
  - {name: data, emptyDir: {}}
  - {name: host, hostPath: {path: /srv}}
  initContainers:
  - {name: init, image: "busybox:1"}
  containers:
  - name: app
    image: "busybox:1"
    command: [sh, -c, "echo $(GREETING) $$HOME"]
    args: ["$(MISSING)", "$(B)"]
    env:
    - {name: GREETING, value: hello}
    - {name: B, value: "$(GREETING)-b"}
    ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 53, hostPort: 5353, protocol: UDP}
    - {containerPort: 9090}
    resources:
      requests: {cpu: 250m, memory: 1Gi}
      limits: {cpu: 500m, memory: 2Gi}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {add: [NET_ADMIN], drop: [MKNOD]}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: host, mountPath: /srv, readOnly: true, subPath: www}
)yaml";

TEST(SandboxConfigTest, CarriesIdentityLabelsPortsAndNamespaces) {
  Pod pod = ParseOne(kPod);
  rt::PodSandboxConfig cfg = MakeSandboxConfig(pod, 2, Node());
  EXPECT_EQ(cfg.metadata().name(), "web");
  EXPECT_EQ(cfg.metadata().namespace_(), "demo");
  EXPECT_EQ(cfg.metadata().uid(), pod.uid);
  EXPECT_EQ(cfg.metadata().attempt(), 2u);
  EXPECT_EQ(cfg.hostname(), "web");
  EXPECT_EQ(cfg.log_directory(), "/logs/demo_web_" + pod.uid);
  EXPECT_FALSE(cfg.has_dns_config());  // the runtime's default resolv.conf
  EXPECT_THAT(cfg.labels(), Contains(Pair("app", "web")));
  EXPECT_THAT(cfg.labels(), Contains(Pair(kManagedLabel, "true")));
  EXPECT_THAT(cfg.labels(), Contains(Pair(kPodNameLabel, "web")));
  EXPECT_THAT(cfg.labels(), Contains(Pair(kPodNamespaceLabel, "demo")));
  EXPECT_THAT(cfg.labels(), Contains(Pair(kPodUidLabel, pod.uid)));
  EXPECT_THAT(cfg.labels(), Contains(Pair(kManifestHashLabel, pod.hash)));
  EXPECT_THAT(cfg.annotations(), Contains(Pair("note", "hi")));
  EXPECT_THAT(cfg.annotations(), Contains(Pair(kSourceAnnotation, "/etc/m/p.yaml")));
  EXPECT_THAT(cfg.annotations(), Contains(Pair(kGracePeriodAnnotation, "7")));
  ASSERT_EQ(cfg.port_mappings_size(), 2);
  EXPECT_EQ(cfg.port_mappings(0).container_port(), 80);
  EXPECT_EQ(cfg.port_mappings(0).host_port(), 8080);
  EXPECT_EQ(cfg.port_mappings(0).protocol(), rt::TCP);
  EXPECT_EQ(cfg.port_mappings(1).protocol(), rt::UDP);
  const auto& ns = cfg.linux().security_context().namespace_options();
  EXPECT_EQ(ns.network(), rt::POD);
  EXPECT_EQ(ns.pid(), rt::CONTAINER);
  EXPECT_EQ(ns.ipc(), rt::POD);
  EXPECT_FALSE(cfg.linux().security_context().privileged());
  EXPECT_EQ(cfg.linux().security_context().seccomp().profile_type(),
            rt::SecurityProfile::Unconfined);
}

TEST(SandboxConfigTest, HostNamespacesAndSharedPid) {
  Pod pod = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: h}
spec:
  hostNetwork: true
  hostIPC: true
  hostPID: true
  containers: [{name: a, image: x, securityContext: {privileged: true}}]
)yaml");
  rt::PodSandboxConfig cfg = MakeSandboxConfig(pod, 0, Node());
  EXPECT_EQ(cfg.hostname(), "");
  const auto& sc = cfg.linux().security_context();
  EXPECT_EQ(sc.namespace_options().network(), rt::NODE);
  EXPECT_EQ(sc.namespace_options().pid(), rt::NODE);
  EXPECT_EQ(sc.namespace_options().ipc(), rt::NODE);
  EXPECT_TRUE(sc.privileged());

  Pod shared = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: s}
spec:
  shareProcessNamespace: true
  hostname: other
  containers: [{name: a, image: x}]
)yaml");
  rt::PodSandboxConfig s = MakeSandboxConfig(shared, 0, Node());
  EXPECT_EQ(s.linux().security_context().namespace_options().pid(), rt::POD);
  EXPECT_EQ(s.hostname(), "other");
}

TEST(ContainerConfigTest, ConvertsTheContainer) {
  Pod pod = ParseOne(kPod);
  ImageInfo image{"sha256:1234", 0, ""};
  auto cfg = MakeContainerConfig(pod, pod.containers[0], false, 3, image, Node());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->metadata().name(), "app");
  EXPECT_EQ(cfg->metadata().attempt(), 3u);
  EXPECT_EQ(cfg->image().image(), "sha256:1234");
  EXPECT_EQ(cfg->image().user_specified_image(), "busybox:1");
  EXPECT_THAT(cfg->command(), ElementsAre("sh", "-c", "echo hello $HOME"));
  EXPECT_THAT(cfg->args(), ElementsAre("$(MISSING)", "hello-b"));
  ASSERT_EQ(cfg->envs_size(), 2);
  EXPECT_EQ(cfg->envs(1).key(), "B");
  EXPECT_EQ(cfg->envs(1).value(), "hello-b");
  EXPECT_EQ(cfg->log_path(), "app/3.log");
  EXPECT_THAT(cfg->labels(), Contains(Pair(kContainerNameLabel, "app")));
  EXPECT_THAT(cfg->labels(), Contains(Pair(kContainerTypeLabel, "app")));
  EXPECT_THAT(cfg->labels(), Contains(Pair(kPodUidLabel, pod.uid)));
  EXPECT_THAT(cfg->labels(), Contains(Pair(kManagedLabel, "true")));
  EXPECT_THAT(cfg->annotations(), Contains(Pair(kRestartCountAnnotation, "3")));

  ASSERT_EQ(cfg->mounts_size(), 2);
  EXPECT_EQ(cfg->mounts(0).container_path(), "/data");
  EXPECT_EQ(cfg->mounts(0).host_path(),
            "/vol/" + pod.uid + "/volumes/kubernetes.io~empty-dir/data");
  EXPECT_FALSE(cfg->mounts(0).readonly());
  EXPECT_EQ(cfg->mounts(1).host_path(), "/srv/www");
  EXPECT_TRUE(cfg->mounts(1).readonly());

  const rt::LinuxContainerResources& r = cfg->linux().resources();
  EXPECT_EQ(r.cpu_shares(), 256);
  EXPECT_EQ(r.cpu_quota(), 50000);
  EXPECT_EQ(r.cpu_period(), 100000);
  EXPECT_EQ(r.memory_limit_in_bytes(), int64_t{2} << 30);
  // Burstable: 1000 - 1000 * 1Gi / 8Gi.
  EXPECT_EQ(r.oom_score_adj(), 875);

  const rt::LinuxContainerSecurityContext& sc = cfg->linux().security_context();
  EXPECT_TRUE(sc.readonly_rootfs());
  EXPECT_TRUE(sc.no_new_privs());
  EXPECT_FALSE(sc.privileged());
  EXPECT_THAT(sc.capabilities().add_capabilities(), ElementsAre("NET_ADMIN"));
  EXPECT_THAT(sc.capabilities().drop_capabilities(), ElementsAre("MKNOD"));
  EXPECT_THAT(sc.masked_paths(), Contains("/proc/kcore"));
  EXPECT_THAT(sc.readonly_paths(), Contains("/proc/sys"));
  EXPECT_FALSE(sc.has_run_as_user());
  EXPECT_EQ(sc.seccomp().profile_type(), rt::SecurityProfile::Unconfined);

  auto init = MakeContainerConfig(pod, pod.init_containers[0], true, 0, image, Node());
  ASSERT_TRUE(init.ok());
  EXPECT_THAT(init->labels(), Contains(Pair(kContainerTypeLabel, "init")));
  EXPECT_EQ(init->linux().resources().cpu_shares(), 2);  // no request
}

TEST(ContainerConfigTest, SecurityContextPodDefaultsAndPrivileged) {
  Pod pod = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 2000
    supplementalGroups: [5]
    seccompProfile: {type: RuntimeDefault}
  containers:
  - {name: a, image: x}
  - name: b
    image: x
    securityContext:
      runAsUser: 0
      privileged: true
      seccompProfile: {type: Localhost, localhostProfile: p.json}
)yaml");
  ImageInfo image{"id", 0, ""};
  auto a = MakeContainerConfig(pod, pod.containers[0], false, 0, image, Node());
  ASSERT_TRUE(a.ok());
  const auto& sa = a->linux().security_context();
  EXPECT_EQ(sa.run_as_user().value(), 1000);
  EXPECT_EQ(sa.run_as_group().value(), 2000);
  EXPECT_THAT(sa.supplemental_groups(), ElementsAre(5));
  EXPECT_FALSE(sa.no_new_privs());
  EXPECT_EQ(sa.seccomp().profile_type(), rt::SecurityProfile::RuntimeDefault);

  auto b = MakeContainerConfig(pod, pod.containers[1], false, 0, image, Node());
  ASSERT_TRUE(b.ok());
  const auto& sb = b->linux().security_context();
  EXPECT_EQ(sb.run_as_user().value(), 0);
  EXPECT_TRUE(sb.privileged());
  EXPECT_THAT(sb.masked_paths(), IsEmpty());
  EXPECT_THAT(sb.readonly_paths(), IsEmpty());
  EXPECT_EQ(sb.seccomp().profile_type(), rt::SecurityProfile::Localhost);
  EXPECT_EQ(sb.seccomp().localhost_ref(), "/var/lib/kubelet/seccomp/p.json");

  NodeConfig strict = Node();
  strict.seccomp_default = true;
  Pod plain = ParseOne(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n"
      "  containers: [{name: a, image: x}]\n");
  auto c = MakeContainerConfig(plain, plain.containers[0], false, 0, image, strict);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->linux().security_context().seccomp().profile_type(),
            rt::SecurityProfile::RuntimeDefault);
}

TEST(ContainerConfigTest, RunAsNonRootIsVerified) {
  Pod pod = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: a, image: x}
  - {name: b, image: x, securityContext: {runAsUser: 0}}
  - {name: c, image: x, securityContext: {runAsUser: 10}}
)yaml");
  NodeConfig n = Node();
  auto root_image = MakeContainerConfig(pod, pod.containers[0], false, 0, {"id", 0, ""}, n);
  EXPECT_THAT(root_image.status().message(), HasSubstr("image will run as root"));
  auto named =
      MakeContainerConfig(pod, pod.containers[0], false, 0, {"id", absl::nullopt, "www-data"}, n);
  EXPECT_THAT(named.status().message(), HasSubstr("non-numeric user (www-data)"));
  EXPECT_TRUE(MakeContainerConfig(pod, pod.containers[0], false, 0, {"id", 1000, ""}, n).ok());
  auto zero = MakeContainerConfig(pod, pod.containers[1], false, 0, {"id", 1000, ""}, n);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MakeContainerConfig(pod, pod.containers[2], false, 0, {"id", 0, ""}, n).ok());
}

TEST(QosTest, ClassesAndOomScores) {
  auto pod_with = [](const std::string& resources) {
    return ParseOne(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: a\n    image: x\n    resources: " +
        resources + "\n");
  };
  Pod best = pod_with("{}");
  EXPECT_EQ(PodQos(best), QosClass::kBestEffort);
  EXPECT_EQ(OomScoreAdj(QosClass::kBestEffort, best.containers[0], 1 << 30), 1000);
  Pod guaranteed = pod_with("{limits: {cpu: 1, memory: 1Gi}}");
  EXPECT_EQ(PodQos(guaranteed), QosClass::kGuaranteed);
  EXPECT_EQ(OomScoreAdj(QosClass::kGuaranteed, guaranteed.containers[0], 1 << 30), -997);
  Pod burstable = pod_with("{requests: {memory: 1Gi}}");
  EXPECT_EQ(PodQos(burstable), QosClass::kBurstable);
  EXPECT_EQ(QosClassName(PodQos(burstable)), "Burstable");
  // Request as large as the node: clamped to 2; tiny request: clamped to 999.
  EXPECT_EQ(OomScoreAdj(QosClass::kBurstable, burstable.containers[0], int64_t{1} << 30), 2);
  EXPECT_EQ(OomScoreAdj(QosClass::kBurstable, pod_with("{requests: {cpu: 1}}").containers[0],
                        int64_t{1} << 30),
            999);
}

TEST(DnsTest, MergesHostResolvConfUnlessPolicyNone) {
  Pod merged = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  dnsConfig:
    nameservers: [10.0.0.1, 192.0.2.1]
    searches: [svc.local]
    options: [{name: ndots, value: "5"}]
  containers: [{name: a, image: x}]
)yaml");
  auto dns = EffectiveDns(merged, Node().host_resolv_conf);
  ASSERT_TRUE(dns.has_value());
  EXPECT_THAT(dns->nameservers, ElementsAre("192.0.2.1", "10.0.0.1"));
  EXPECT_THAT(dns->searches, ElementsAre("lan", "svc.local"));
  EXPECT_THAT(dns->options, ElementsAre("ndots:1", "ndots:5"));

  Pod none = ParseOne(R"yaml(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  dnsPolicy: None
  dnsConfig: {nameservers: [10.0.0.1]}
  containers: [{name: a, image: x}]
)yaml");
  dns = EffectiveDns(none, Node().host_resolv_conf);
  ASSERT_TRUE(dns.has_value());
  EXPECT_THAT(dns->nameservers, ElementsAre("10.0.0.1"));
  EXPECT_THAT(dns->searches, IsEmpty());
  rt::PodSandboxConfig cfg = MakeSandboxConfig(none, 0, Node());
  EXPECT_THAT(cfg.dns_config().servers(), ElementsAre("10.0.0.1"));
}

TEST(ExpandEnvRefsTest, KubernetesRules) {
  std::map<std::string, std::string> env = {{"A", "x"}, {"B", "$(A)"}};
  EXPECT_EQ(ExpandEnvRefs("$(A)", env), "x");
  EXPECT_EQ(ExpandEnvRefs("a$(A)b$(A)", env), "axbx");
  EXPECT_EQ(ExpandEnvRefs("$(B)", env), "$(A)");  // no recursion
  EXPECT_EQ(ExpandEnvRefs("$$(A)", env), "$(A)");
  EXPECT_EQ(ExpandEnvRefs("$(C)", env), "$(C)");
  EXPECT_EQ(ExpandEnvRefs("$A $", env), "$A $");
  EXPECT_EQ(ExpandEnvRefs("$(A", env), "$(A");
}

}  // namespace
}  // namespace podshim::kubelet
