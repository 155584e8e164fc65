#include "kubelet/pod_spec.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace podshim::kubelet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

constexpr char kFull[] = R"(
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations:
    note: hello
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  hostname: www
  shareProcessNamespace: true
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.0.0.10]
    searches: [example.org]
    options:
    - name: ndots
      value: "2"
    - name: edns0
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    seccompProfile: {type: RuntimeDefault}
  volumes:
  - name: data
    emptyDir: {}
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 16Mi}
  - name: host
    hostPath: {path: /srv/www, type: DirectoryOrCreate}
  initContainers:
  - name: setup
    image: busybox:1.36
    command: [sh, -c, "echo hi > /data/index.html"]
    volumeMounts:
    - {name: data, mountPath: /data}
  containers:
  - name: httpd
    image: registry.example/httpd@sha256:abcd
    imagePullPolicy: Always
    command: [httpd]
    args: [-f, -p, "8080"]
    workingDir: /www
    env:
    - {name: A, value: "1"}
    - name: B
      value: $(A)-x
    ports:
    - {name: http, containerPort: 8080, hostPort: 18080}
    - {containerPort: 53, protocol: UDP}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi}
    securityContext:
      privileged: false
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      runAsNonRoot: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
      seccompProfile: {type: Localhost, localhostProfile: my.json}
    volumeMounts:
    - {name: data, mountPath: /www, readOnly: true, subPath: site}
    livenessProbe:
      httpGet: {path: healthz, port: http, httpHeaders: [{name: X-A, value: b}]}
      periodSeconds: 3
      failureThreshold: 2
    readinessProbe:
      tcpSocket: {port: 8080}
      successThreshold: 2
    startupProbe:
      exec: {command: [cat, /tmp/ok]}
      initialDelaySeconds: 1
      timeoutSeconds: 4
)";

ParsedManifest MustParse(const std::string& text) {
  auto parsed = ParseManifest(text, "m.yaml", "node1");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : ParsedManifest{};
}

std::string ParseError(const std::string& text) {
  auto parsed = ParseManifest(text, "bad.yaml", "node1");
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(ParseManifestTest, ReadsEveryHonouredField) {
  ParsedManifest m = MustParse(kFull);
  EXPECT_THAT(m.warnings, IsEmpty());
  ASSERT_THAT(m.pods, SizeIs(1));
  const Pod& p = m.pods[0];
  EXPECT_EQ(p.name, "web");
  EXPECT_EQ(p.namespace_name, "demo");
  EXPECT_EQ(p.Key(), "demo/web");
  EXPECT_THAT(p.labels, ElementsAre(Pair("app", "web")));
  EXPECT_THAT(p.annotations, ElementsAre(Pair("note", "hello")));
  EXPECT_EQ(p.restart_policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(p.termination_grace_period_seconds, 5);
  EXPECT_EQ(p.hostname, "www");
  EXPECT_TRUE(p.share_process_namespace);
  EXPECT_FALSE(p.host_network);
  EXPECT_EQ(p.dns_policy, "None");
  ASSERT_TRUE(p.dns_config.has_value());
  EXPECT_THAT(p.dns_config->nameservers, ElementsAre("10.0.0.10"));
  EXPECT_THAT(p.dns_config->searches, ElementsAre("example.org"));
  EXPECT_THAT(p.dns_config->options, ElementsAre("ndots:2", "edns0"));
  EXPECT_EQ(p.security_context.run_as_user, 1000);
  EXPECT_EQ(p.security_context.run_as_group, 3000);
  EXPECT_THAT(p.security_context.supplemental_groups, ElementsAre(4000));
  EXPECT_EQ(p.security_context.seccomp.type, SeccompType::kRuntimeDefault);
  EXPECT_EQ(p.source, "m.yaml");
  EXPECT_EQ(p.document, 1);
  EXPECT_THAT(p.hash, SizeIs(16));

  ASSERT_THAT(p.volumes, SizeIs(3));
  EXPECT_EQ(p.volumes[0].type, VolumeType::kEmptyDir);
  EXPECT_EQ(p.volumes[1].medium, "Memory");
  EXPECT_EQ(p.volumes[1].size_limit_bytes, 16 << 20);
  EXPECT_EQ(p.volumes[2].type, VolumeType::kHostPath);
  EXPECT_EQ(p.volumes[2].host_path, "/srv/www");
  EXPECT_EQ(p.volumes[2].host_path_type, "DirectoryOrCreate");

  ASSERT_THAT(p.init_containers, SizeIs(1));
  EXPECT_EQ(p.init_containers[0].pull_policy, PullPolicy::kIfNotPresent);
  EXPECT_THAT(p.init_containers[0].command, ElementsAre("sh", "-c", "echo hi > /data/index.html"));

  ASSERT_THAT(p.containers, SizeIs(1));
  const Container& c = p.containers[0];
  EXPECT_EQ(c.image, "registry.example/httpd@sha256:abcd");
  EXPECT_EQ(c.pull_policy, PullPolicy::kAlways);
  EXPECT_THAT(c.args, ElementsAre("-f", "-p", "8080"));
  EXPECT_EQ(c.working_dir, "/www");
  ASSERT_THAT(c.env, SizeIs(2));
  EXPECT_EQ(c.env[1].value, "$(A)-x");
  ASSERT_THAT(c.ports, SizeIs(2));
  EXPECT_EQ(c.ports[0].name, "http");
  EXPECT_EQ(c.ports[0].host_port, 18080);
  EXPECT_EQ(c.ports[1].protocol, PortProtocol::kUdp);
  EXPECT_EQ(c.resources.cpu_request_milli, 250);
  EXPECT_EQ(c.resources.cpu_limit_milli, 1000);
  EXPECT_EQ(c.resources.memory_request_bytes, 64 << 20);
  EXPECT_EQ(c.resources.memory_limit_bytes, 128 << 20);
  const SecurityContext& sc = c.security_context;
  EXPECT_EQ(sc.privileged, false);
  EXPECT_EQ(sc.read_only_root_filesystem, true);
  EXPECT_EQ(sc.allow_privilege_escalation, false);
  EXPECT_EQ(sc.run_as_non_root, true);
  EXPECT_THAT(sc.capabilities_add, ElementsAre("NET_ADMIN"));
  EXPECT_THAT(sc.capabilities_drop, ElementsAre("ALL"));
  EXPECT_EQ(sc.seccomp.type, SeccompType::kLocalhost);
  EXPECT_EQ(sc.seccomp.localhost_profile, "my.json");
  ASSERT_THAT(c.volume_mounts, SizeIs(1));
  EXPECT_TRUE(c.volume_mounts[0].read_only);
  EXPECT_EQ(c.volume_mounts[0].sub_path, "site");

  ASSERT_TRUE(c.liveness_probe.has_value());
  EXPECT_EQ(c.liveness_probe->type, ProbeType::kHttpGet);
  EXPECT_EQ(c.liveness_probe->path, "/healthz");
  EXPECT_EQ(c.liveness_probe->port_name, "http");
  EXPECT_EQ(c.liveness_probe->period_seconds, 3);
  EXPECT_EQ(c.liveness_probe->failure_threshold, 2);
  EXPECT_EQ(c.liveness_probe->timeout_seconds, 1);
  EXPECT_THAT(c.liveness_probe->http_headers, ElementsAre(Pair("X-A", "b")));
  ASSERT_TRUE(c.readiness_probe.has_value());
  EXPECT_EQ(c.readiness_probe->type, ProbeType::kTcpSocket);
  EXPECT_EQ(c.readiness_probe->port, 8080);
  EXPECT_EQ(c.readiness_probe->success_threshold, 2);
  EXPECT_EQ(c.readiness_probe->period_seconds, 10);
  ASSERT_TRUE(c.startup_probe.has_value());
  EXPECT_EQ(c.startup_probe->type, ProbeType::kExec);
  EXPECT_THAT(c.startup_probe->command, ElementsAre("cat", "/tmp/ok"));
  EXPECT_EQ(c.startup_probe->initial_delay_seconds, 1);
  EXPECT_EQ(c.startup_probe->timeout_seconds, 4);
  EXPECT_EQ(c.startup_probe->failure_threshold, 3);
}

TEST(ParseManifestTest, AppliesDefaults) {
  ParsedManifest m = MustParse(R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: busybox
    resources:
      limits: {cpu: 500m, memory: 1Gi}
)");
  ASSERT_THAT(m.pods, SizeIs(1));
  const Pod& p = m.pods[0];
  EXPECT_EQ(p.namespace_name, "default");
  EXPECT_EQ(p.restart_policy, RestartPolicy::kAlways);
  EXPECT_EQ(p.termination_grace_period_seconds, 30);
  EXPECT_EQ(p.dns_policy, "ClusterFirst");
  EXPECT_FALSE(p.uid.empty());
  EXPECT_EQ(p.containers[0].pull_policy, PullPolicy::kAlways);
  // Requests default to limits.
  EXPECT_EQ(p.containers[0].resources.cpu_request_milli, 500);
  EXPECT_EQ(p.containers[0].resources.memory_request_bytes, int64_t{1} << 30);
}

TEST(ParseManifestTest, ReadsSeveralDocumentsAndSkipsEmptyOnes) {
  ParsedManifest m = MustParse(R"(
---
apiVersion: v1
kind: Pod
metadata: {name: one}
spec:
  containers: [{name: a, image: "x:1"}]
---
---
apiVersion: v1
kind: Pod
metadata: {name: two, namespace: other}
spec:
  containers: [{name: a, image: "x:1"}]
)");
  ASSERT_THAT(m.pods, SizeIs(2));
  EXPECT_EQ(m.pods[0].Key(), "default/one");
  EXPECT_EQ(m.pods[1].Key(), "other/two");
  EXPECT_EQ(m.pods[1].document, 3);  // a leading "---" opens document 1
  EXPECT_NE(m.pods[0].uid, m.pods[1].uid);
}

TEST(ParseManifestTest, WarnsAboutUnknownFieldsWithTheirPath) {
  ParsedManifest m = MustParse(R"(
apiVersion: v1
kind: Pod
metadata: {name: p, generateName: x}
spec:
  nodeSelector: {a: b}
  containers:
  - name: a
    image: "x:1"
    terminationMessagePath: /dev/termination-log
    resources:
      limits: {ephemeral-storage: 1Gi}
    livenessProbe:
      exec: {command: [true]}
      terminationGracePeriodSeconds: 3
status: {phase: Running}
)");
  ASSERT_THAT(m.pods, SizeIs(1));
  EXPECT_THAT(
      m.warnings,
      ElementsAre(
          "m.yaml: document 1: metadata.generateName: unknown field, ignored",
          "m.yaml: document 1: spec.containers[0].resources.limits.ephemeral-storage: resource "
          "not supported, ignored",
          "m.yaml: document 1: spec.containers[0].livenessProbe.terminationGracePeriodSeconds: "
          "unknown field, ignored",
          "m.yaml: document 1: spec.containers[0].terminationMessagePath: unknown field, ignored",
          "m.yaml: document 1: spec.nodeSelector: unknown field, ignored",
          "m.yaml: document 1: status: unknown field, ignored"));
}

TEST(ParseManifestTest, UidIsStablePerContentFileAndNode) {
  constexpr char kPod[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: "x:1"}]
)";
  std::string a = MustParse(kPod).pods.at(0).uid;
  EXPECT_EQ(a, MustParse(kPod).pods.at(0).uid);
  EXPECT_THAT(a, ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                         "[0-9a-f]{12}"));
  auto other_node = ParseManifest(kPod, "m.yaml", "node2");
  ASSERT_TRUE(other_node.ok());
  EXPECT_NE(other_node->pods[0].uid, a);
  std::string changed = std::string(kPod) + "  restartPolicy: Never\n";
  Pod c = MustParse(changed).pods.at(0);
  EXPECT_NE(c.uid, a);
  EXPECT_NE(c.hash, MustParse(kPod).pods.at(0).hash);

  Pod given = MustParse(R"(
apiVersion: v1
kind: Pod
metadata: {name: p, uid: 1234-abcd}
spec:
  containers: [{name: a, image: "x:1"}]
)")
                  .pods.at(0);
  EXPECT_EQ(given.uid, "1234-abcd");
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* message;
};

class ParseManifestErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseManifestErrorTest, NamesFileDocumentAndField) {
  EXPECT_THAT(ParseError(GetParam().yaml), HasSubstr(GetParam().message));
}

// Everything below the header is one pod with one container "a".
#define POD_HEAD "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseManifestErrorTest,
    ::testing::Values(
        BadCase{"Syntax", "apiVersion: v1\nkind: [Pod\n", "bad.yaml: YAML syntax error at line"},
        BadCase{"Kind", "apiVersion: v1\nkind: Deployment\nmetadata: {name: p}\n",
                "bad.yaml: document 1: kind: must be Pod, not \"Deployment\""},
        BadCase{"ApiVersion", "apiVersion: apps/v1\nkind: Pod\n",
                "bad.yaml: document 1: apiVersion: must be v1"},
        BadCase{"NoName", "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {}\n",
                "document 1: metadata.name: required field is missing"},
        BadCase{"BadName", "apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n",
                "metadata.name: \"Web_1\" is not a DNS-1123 subdomain"},
        BadCase{"NoContainers", POD_HEAD "  containers: []\n",
                "spec.containers: at least one container is required"},
        BadCase{"NoImage", POD_HEAD "  containers: [{name: a}]\n",
                "spec.containers[0].image: required field is missing"},
        BadCase{"BadQuantity",
                POD_HEAD
                "  containers:\n  - {name: a, image: x, resources: {limits: {cpu: lots}}}\n",
                "bad.yaml: document 1: spec.containers[0].resources.limits.cpu: invalid quantity "
                "\"lots\""},
        BadCase{"RequestAboveLimit",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n    resources:\n"
                         "      requests: {memory: 2Gi}\n      limits: {memory: 1Gi}\n",
                "spec.containers[0].resources.requests.memory: must be less than or equal"},
        BadCase{"CommandNotList", POD_HEAD "  containers: [{name: a, image: x, command: ls}]\n",
                "spec.containers[0].command: must be a list of strings, not a scalar"},
        BadCase{"DuplicateContainer",
                POD_HEAD "  initContainers: [{name: a, image: x}]\n"
                         "  containers: [{name: a, image: x}]\n",
                "spec.containers[0].name: duplicate container \"a\""},
        BadCase{"UnknownVolume",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n"
                         "    volumeMounts: [{name: v, mountPath: /v}]\n",
                "spec.containers[0].volumeMounts[0].name: no volume named \"v\""},
        BadCase{"UnsupportedVolume",
                POD_HEAD "  volumes: [{name: v, configMap: {name: c}}]\n"
                         "  containers: [{name: a, image: x}]\n",
                "spec.volumes[0].configMap: volume source not supported"},
        BadCase{"TwoProbeHandlers",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n    livenessProbe:\n"
                         "      exec: {command: [true]}\n      tcpSocket: {port: 1}\n",
                "spec.containers[0].livenessProbe: must have exactly one of exec, httpGet and "
                "tcpSocket"},
        BadCase{"ProbePortName",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n    readinessProbe:\n"
                         "      httpGet: {port: web}\n",
                "spec.containers[0].readinessProbe.port: no container port named \"web\""},
        BadCase{"LivenessSuccessThreshold",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n    livenessProbe:\n"
                         "      exec: {command: [true]}\n      successThreshold: 2\n",
                "spec.containers[0].livenessProbe.successThreshold: must be 1"},
        BadCase{"InitProbe",
                POD_HEAD "  initContainers:\n  - name: i\n    image: x\n    livenessProbe:\n"
                         "      exec: {command: [true]}\n  containers: [{name: a, image: x}]\n",
                "spec.initContainers[0].livenessProbe: not allowed in init containers"},
        BadCase{"RestartPolicy",
                POD_HEAD "  restartPolicy: Sometimes\n  containers: [{name: a, image: x}]\n",
                "spec.restartPolicy: must be Always, OnFailure or Never, not \"Sometimes\""},
        BadCase{"Port",
                POD_HEAD "  containers: [{name: a, image: x, ports: [{containerPort: 0}]}]\n",
                "spec.containers[0].ports[0].containerPort: must be between 1 and 65535"},
        BadCase{"HostPortTwice",
                POD_HEAD "  containers:\n  - name: a\n    image: x\n    ports:\n"
                         "    - {containerPort: 80, hostPort: 8080}\n"
                         "    - {containerPort: 81, hostPort: 8080}\n",
                "spec.containers[0].ports[1].hostPort: host port 8080 is used twice"},
        BadCase{"GraceNegative",
                POD_HEAD
                "  terminationGracePeriodSeconds: -1\n  containers: [{name: a, image: x}]\n",
                "spec.terminationGracePeriodSeconds: must be at least 0"},
        BadCase{"BoolType", POD_HEAD "  hostNetwork: maybe\n  containers: [{name: a, image: x}]\n",
                "spec.hostNetwork: must be true or false, not \"maybe\""},
        BadCase{"DuplicatePod",
                POD_HEAD "  containers: [{name: a, image: x}]\n---\n" POD_HEAD
                         "  containers: [{name: a, image: x}]\n",
                "bad.yaml: document 2: metadata.name: pod default/p is defined twice"},
        BadCase{"SecondDocumentBad",
                POD_HEAD "  containers: [{name: a, image: x}]\n---\napiVersion: v1\nkind: Pod\n"
                         "metadata: {name: q}\nspec:\n  containers: [{name: a, image: x, "
                         "imagePullPolicy: Sometimes}]\n",
                "bad.yaml: document 2: spec.containers[0].imagePullPolicy: must be Always, "
                "IfNotPresent or Never"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return p.param.name; });

TEST(DefaultPullPolicyTest, FollowsTheTag) {
  EXPECT_EQ(DefaultPullPolicy("busybox"), PullPolicy::kAlways);
  EXPECT_EQ(DefaultPullPolicy("busybox:latest"), PullPolicy::kAlways);
  EXPECT_EQ(DefaultPullPolicy("localhost:5000/busybox"), PullPolicy::kAlways);
  EXPECT_EQ(DefaultPullPolicy("localhost:5000/busybox:1.36"), PullPolicy::kIfNotPresent);
  EXPECT_EQ(DefaultPullPolicy("busybox@sha256:abc"), PullPolicy::kIfNotPresent);
}

TEST(Fnv64HexTest, IsSixteenHexDigits) {
  EXPECT_EQ(Fnv64Hex(""), "cbf29ce484222325");
  EXPECT_EQ(Fnv64Hex("a"), "af63dc4c8601ec8c");
}

}  // namespace
}  // namespace podshim::kubelet
