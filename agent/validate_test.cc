#include "agent/validate.h"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

// The tests set the deprecated apparmor_profile field on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace podshim::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// One bad request: what to change in a valid config, and the start of the
// message it must get (the field's path).
template <typename Config>
struct Case {
  const char* name;
  std::function<void(Config&)> mutate;
  std::string field;
};

cri::PodSandboxConfig GoodPod() {
  cri::PodSandboxConfig c;
  c.mutable_metadata()->set_name("web");
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("0b4c3e6a-1f2e-4c5d-8e9f-001122334455");
  c.set_hostname("web-1");
  c.set_log_directory("/var/log/pods/default_web_0b4c");
  c.mutable_dns_config()->add_servers("10.96.0.10");
  c.mutable_dns_config()->add_searches("default.svc.cluster.local");
  c.mutable_dns_config()->add_options("ndots:5");
  (*c.mutable_labels())["app"] = "web";
  (*c.mutable_annotations())["kubernetes.io/config.source"] = "api";
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(1000);
  sc->add_supplemental_groups(2000);
  (*c.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "0";
  return c;
}

cri::ContainerConfig GoodContainer() {
  cri::ContainerConfig c;
  c.mutable_metadata()->set_name("app");
  c.mutable_image()->set_image("docker.io/library/busybox:latest");
  c.add_command("sh");
  c.add_args("-c");
  c.add_args("sleep 1000");
  auto* e = c.add_envs();
  e->set_key("A");
  e->set_value("1");
  c.set_log_path("app/0.log");
  (*c.mutable_labels())["io.kubernetes.container.name"] = "app";
  auto* lx = c.mutable_linux();
  lx->mutable_resources()->set_oom_score_adj(-997);
  lx->mutable_resources()->set_cpuset_cpus("0-1");
  (*lx->mutable_resources()->mutable_unified())["memory.high"] = "100000000";
  (*lx->mutable_resources()->mutable_unified())["memory.oom.group"] = "1";
  (*lx->mutable_resources()->mutable_unified())["hugetlb.2MB.max"] = "0";
  lx->mutable_security_context()->mutable_run_as_user()->set_value(1000);
  lx->mutable_security_context()->mutable_run_as_group()->set_value(4294967294);
  lx->mutable_security_context()->add_supplemental_groups(0);
  return c;
}

std::string Big(size_t n, char c = 'x') { return std::string(n, c); }

// Every refusal: INVALID_ARGUMENT, the message starts with the field's path,
// and it stays short whatever the input's size.
template <typename Config>
void ExpectRefused(const Case<Config>& tc, Config config,
                   const std::function<absl::Status(const Config&)>& validate) {
  tc.mutate(config);
  const absl::Status s = validate(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << tc.name << ": " << s;
  EXPECT_THAT(std::string(s.message()), StartsWith(tc.field + ": ")) << tc.name;
  EXPECT_LT(s.message().size(), 1024u) << tc.name;
}

TEST(ValidatePod, GoodConfigPasses) {
  EXPECT_TRUE(ValidatePodConfig(GoodPod()).ok()) << ValidatePodConfig(GoodPod());
  cri::PodSandboxConfig minimal;
  minimal.mutable_metadata()->set_name("p");
  EXPECT_TRUE(ValidatePodConfig(minimal).ok());
  // At the limits.
  cri::PodSandboxConfig c = GoodPod();
  c.set_hostname(Big(64, 'h'));
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(kMaxUserId);
  sc->mutable_run_as_group()->set_value(0);
  (*c.mutable_labels())["big"] = Big(kMaxObjectMetaBytes - 100);
  for (int i = 1; i < 32; ++i) c.mutable_dns_config()->add_searches(Big(253, 'a'));
  EXPECT_TRUE(ValidatePodConfig(c).ok()) << ValidatePodConfig(c);
}

TEST(ValidatePod, RefusesBadFieldsNamingThem) {
  using C = cri::PodSandboxConfig;
  using SC = cri::LinuxSandboxSecurityContext;
  auto sc = [](C& c) -> SC& { return *c.mutable_linux()->mutable_security_context(); };
  const Case<C> cases[] = {
      {"no metadata", [](C& c) { c.clear_metadata(); }, "config.metadata"},
      {"empty name", [](C& c) { c.mutable_metadata()->set_name(""); }, "config.metadata.name"},
      {"name with /", [](C& c) { c.mutable_metadata()->set_name("a/b"); }, "config.metadata.name"},
      {"name ..", [](C& c) { c.mutable_metadata()->set_name(".."); }, "config.metadata.name"},
      {"name with ;", [](C& c) { c.mutable_metadata()->set_name("a;K8S_POD_NAME=x"); },
       "config.metadata.name"},
      {"name with newline", [](C& c) { c.mutable_metadata()->set_name("a\nb"); },
       "config.metadata.name"},
      {"name too long", [](C& c) { c.mutable_metadata()->set_name(Big(254)); },
       "config.metadata.name"},
      {"namespace with =", [](C& c) { c.mutable_metadata()->set_namespace_("a=b"); },
       "config.metadata.namespace"},
      {"namespace with NUL",
       [](C& c) { c.mutable_metadata()->set_namespace_(std::string("a\0b", 3)); },
       "config.metadata.namespace"},
      {"uid with ;", [](C& c) { c.mutable_metadata()->set_uid("u;IgnoreUnknown=1"); },
       "config.metadata.uid"},
      {"uid with DEL", [](C& c) { c.mutable_metadata()->set_uid("u\x7f"); }, "config.metadata.uid"},
      {"hostname with tab", [](C& c) { c.set_hostname("web\tevil.example"); }, "config.hostname"},
      {"hostname with space", [](C& c) { c.set_hostname("web evil"); }, "config.hostname"},
      {"hostname with newline", [](C& c) { c.set_hostname("web\n1.2.3.4 x"); }, "config.hostname"},
      {"hostname 65 bytes", [](C& c) { c.set_hostname(Big(65)); }, "config.hostname"},
      {"dns search with newline",
       [](C& c) { c.mutable_dns_config()->add_searches("a.example\nnameserver 6.6.6.6"); },
       "config.dns_config.searches[1]"},
      {"dns search with space", [](C& c) { c.mutable_dns_config()->add_searches("a b"); },
       "config.dns_config.searches[1]"},
      {"dns search 254 bytes", [](C& c) { c.mutable_dns_config()->add_searches(Big(254)); },
       "config.dns_config.searches[1]"},
      {"33 dns searches",
       [](C& c) {
         for (int i = 0; i < 32; ++i) c.mutable_dns_config()->add_searches(std::string("a"));
       },
       "config.dns_config.searches"},
      {"dns server with newline",
       [](C& c) { c.mutable_dns_config()->set_servers(0, "1.1.1.1\nsearch evil"); },
       "config.dns_config.servers[0]"},
      {"dns server with tab", [](C& c) { c.mutable_dns_config()->add_servers("1.1.1.1\t"); },
       "config.dns_config.servers[1]"},
      {"empty dns server", [](C& c) { c.mutable_dns_config()->add_servers(""); },
       "config.dns_config.servers[1]"},
      {"11 dns servers",
       [](C& c) {
         for (int i = 0; i < 10; ++i) c.mutable_dns_config()->add_servers("1.1.1.1");
       },
       "config.dns_config.servers"},
      {"dns option with newline",
       [](C& c) { c.mutable_dns_config()->add_options("ndots:1\nnameserver 6.6.6.6"); },
       "config.dns_config.options[1]"},
      {"run_as_user -1", [&](C& c) { sc(c).mutable_run_as_user()->set_value(-1); },
       "config.linux.security_context.run_as_user.value"},
      {"run_as_user 2^32-1", [&](C& c) { sc(c).mutable_run_as_user()->set_value(4294967295); },
       "config.linux.security_context.run_as_user.value"},
      {"run_as_group 2^32", [&](C& c) { sc(c).mutable_run_as_group()->set_value(1LL << 32); },
       "config.linux.security_context.run_as_group.value"},
      {"supplemental group -1", [&](C& c) { sc(c).add_supplemental_groups(-1); },
       "config.linux.security_context.supplemental_groups[1]"},
      {"70000 supplemental groups",
       [&](C& c) {
         for (int i = 0; i < 70000; ++i) sc(c).add_supplemental_groups(i);
       },
       "config.linux.security_context.supplemental_groups"},
      {"9 MB of labels", [](C& c) { (*c.mutable_labels())["big"] = Big(9 << 20); },
       "config.labels + config.annotations"},
      {"1025 port mappings",
       [](C& c) {
         for (size_t i = 0; i <= kMaxPortMappings; ++i)
           c.add_port_mappings()->set_container_port(80);
       },
       "config.port_mappings"},
      {"1025 sysctls",
       [](C& c) {
         for (size_t i = 0; i <= kMaxSysctls; ++i) {
           (*c.mutable_linux()->mutable_sysctls())[std::to_string(i)].push_back('1');
         }
       },
       "config.linux.sysctls"},
      {"labels + annotations over 256 KiB",
       [](C& c) {
         (*c.mutable_labels())["a"] = Big(kMaxObjectMetaBytes / 2);
         (*c.mutable_annotations())["b"] = Big(kMaxObjectMetaBytes / 2);
       },
       "config.labels + config.annotations"},
      {"1 MB log directory", [](C& c) { c.set_log_directory("/" + Big(1 << 20)); },
       "config.log_directory"},
      {"sysctl 1 MB name",
       [](C& c) { (*c.mutable_linux()->mutable_sysctls())[Big(1 << 20)] = "1"; },
       "config.linux.sysctls[\"" + Big(kMaxQuotedBytes) + "...\"] name"},
      // What a pod may set is runtime::CheckSysctl's (runtime/sysctl_test.cc):
      // here only that its refusals reach the request's field.
      {"sysctl not namespaced",
       [](C& c) { (*c.mutable_linux()->mutable_sysctls())["kernel.hostname"] = "x"; },
       "config.linux.sysctls[\"kernel.hostname\"]"},
      {"net sysctl with the host network",
       [&](C& c) { sc(c).mutable_namespace_options()->set_network(cri::NODE); },
       "config.linux.sysctls[\"net.ipv4.ip_unprivileged_port_start\"]"},
      {"sysctl value with a newline",
       [](C& c) { (*c.mutable_linux()->mutable_sysctls())["kernel.shmmax"] = "1\nvm.x=1"; },
       "config.linux.sysctls[\"kernel.shmmax\"]"},
      {"bandwidth not a quantity",
       [](C& c) { (*c.mutable_annotations())["kubernetes.io/ingress-bandwidth"] = Big(100000); },
       "config.annotations[\"kubernetes.io/ingress-bandwidth\"]"},
      {"host_ip 1 MB",
       [](C& c) {
         auto* pm = c.add_port_mappings();
         pm->set_container_port(80);
         pm->set_host_ip(Big(1 << 20));
       },
       "config.port_mappings[0].host_ip"},
      {"apparmor RuntimeDefault",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
       },
       "config.linux.security_context.apparmor"},
      {"apparmor present without a type (RuntimeDefault)", [&](C& c) { sc(c).mutable_apparmor(); },
       "config.linux.security_context.apparmor"},
      {"apparmor Localhost",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(cri::SecurityProfile::Localhost);
         sc(c).mutable_apparmor()->set_localhost_ref("k8s-deny-write");
       },
       "config.linux.security_context.apparmor"},
      {"apparmor unknown type",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(
             static_cast<cri::SecurityProfile::ProfileType>(7));
       },
       "config.linux.security_context.apparmor"},
      {"selinux level", [&](C& c) { sc(c).mutable_selinux_options()->set_level("s0:c1,c2"); },
       "config.linux.security_context.selinux_options.level"},
      {"selinux type", [&](C& c) { sc(c).mutable_selinux_options()->set_type("spc_t"); },
       "config.linux.security_context.selinux_options.type"},
      {"userns POD",
       [&](C& c) {
         sc(c).mutable_namespace_options()->mutable_userns_options()->set_mode(cri::POD);
       },
       "config.linux.security_context.namespace_options.userns_options.mode"},
      {"userns present without a mode (POD)",
       [&](C& c) { sc(c).mutable_namespace_options()->mutable_userns_options(); },
       "config.linux.security_context.namespace_options.userns_options.mode"},
      {"userns TARGET",
       [&](C& c) {
         sc(c).mutable_namespace_options()->mutable_userns_options()->set_mode(cri::TARGET);
       },
       "config.linux.security_context.namespace_options.userns_options.mode"},
      {"userns NODE with uid mappings",
       [&](C& c) {
         auto* userns = sc(c).mutable_namespace_options()->mutable_userns_options();
         userns->set_mode(cri::NODE);
         userns->add_uids()->set_length(65536);
       },
       "config.linux.security_context.namespace_options.userns_options.uids"},
  };
  for (const auto& tc : cases) {
    ExpectRefused<C>(tc, GoodPod(), [](const C& c) { return ValidatePodConfig(c); });
  }
}

TEST(ValidateContainer, GoodConfigPasses) {
  EXPECT_TRUE(ValidateContainerConfig(GoodContainer()).ok())
      << ValidateContainerConfig(GoodContainer());
  cri::ContainerConfig c = GoodContainer();
  auto* sc = c.mutable_linux()->mutable_security_context();
  for (int i = 1; i < static_cast<int>(kMaxSupplementalGroups); ++i) sc->add_supplemental_groups(i);
  for (int i = 1; i < static_cast<int>(kMaxEnvEntries); ++i) {
    auto* e = c.add_envs();
    e->set_key(absl::StrCat("K", i));
    e->set_value("v");
  }
  c.mutable_linux()->mutable_resources()->set_oom_score_adj(1000);
  for (const char* key : {"cpu.max", "cpu.weight", "cpuset.cpus", "io.max", "pids.max", "rdma.max",
                          "misc.max", "memory.swap.max", "memory.zswap.max"}) {
    (*c.mutable_linux()->mutable_resources()->mutable_unified())[key] = "max";
  }
  EXPECT_TRUE(ValidateContainerConfig(c).ok()) << ValidateContainerConfig(c);
}

TEST(ValidateContainer, RefusesBadFieldsNamingThem) {
  using C = cri::ContainerConfig;
  auto sc = [](C& c) -> cri::LinuxContainerSecurityContext& {
    return *c.mutable_linux()->mutable_security_context();
  };
  auto unified = [](C& c) -> google::protobuf::Map<std::string, std::string>& {
    return *c.mutable_linux()->mutable_resources()->mutable_unified();
  };
  const std::string u = "config.linux.resources.unified";
  const Case<C> cases[] = {
      {"no metadata", [](C& c) { c.clear_metadata(); }, "config.metadata"},
      {"name with /", [](C& c) { c.mutable_metadata()->set_name("../x"); }, "config.metadata.name"},
      {"name with =", [](C& c) { c.mutable_metadata()->set_name("a=b"); }, "config.metadata.name"},
      {"no image", [](C& c) { c.mutable_image()->set_image(""); }, "config.image.image"},
      {"1 MB image", [](C& c) { c.mutable_image()->set_image(Big(1 << 20, 'a')); },
       "config.image.image"},
      {"image with newline", [](C& c) { c.mutable_image()->set_image("busybox\nx"); },
       "config.image.image"},
      {"run_as_user -1", [&](C& c) { sc(c).mutable_run_as_user()->set_value(-1); },
       "config.linux.security_context.run_as_user.value"},
      {"run_as_user 2^32-1", [&](C& c) { sc(c).mutable_run_as_user()->set_value(4294967295); },
       "config.linux.security_context.run_as_user.value"},
      {"run_as_user 2^32", [&](C& c) { sc(c).mutable_run_as_user()->set_value(1LL << 32); },
       "config.linux.security_context.run_as_user.value"},
      {"run_as_group -1", [&](C& c) { sc(c).mutable_run_as_group()->set_value(-1); },
       "config.linux.security_context.run_as_group.value"},
      {"supplemental group 2^32-1", [&](C& c) { sc(c).add_supplemental_groups(4294967295); },
       "config.linux.security_context.supplemental_groups[1]"},
      {"supplemental group min int64", [&](C& c) { sc(c).add_supplemental_groups(INT64_MIN); },
       "config.linux.security_context.supplemental_groups[1]"},
      {"65537 supplemental groups",
       [&](C& c) {
         for (int i = 0; i < 65536; ++i) sc(c).add_supplemental_groups(i);
       },
       "config.linux.security_context.supplemental_groups"},
      {"unified cgroup.procs", [&](C& c) { unified(c)["cgroup.procs"] = "1"; },
       u + "[\"cgroup.procs\"]"},
      {"unified cgroup.subtree_control",
       [&](C& c) { unified(c)["cgroup.subtree_control"] = "+memory"; },
       u + "[\"cgroup.subtree_control\"]"},
      {"unified cgroup.kill", [&](C& c) { unified(c)["cgroup.kill"] = "1"; },
       u + "[\"cgroup.kill\"]"},
      {"unified cgroup.freeze", [&](C& c) { unified(c)["cgroup.freeze"] = "1"; },
       u + "[\"cgroup.freeze\"]"},
      {"unified cgroup.type", [&](C& c) { unified(c)["cgroup.type"] = "threaded"; },
       u + "[\"cgroup.type\"]"},
      {"unified ../", [&](C& c) { unified(c)["../../cgroup.procs"] = "1"; },
       u + "[\"../../cgroup.procs\"]"},
      {"unified subdir", [&](C& c) { unified(c)["sub/memory.max"] = "1"; },
       u + "[\"sub/memory.max\"]"},
      {"unified ..", [&](C& c) { unified(c)[".."] = "1"; }, u + "[\"..\"]"},
      {"unified empty key", [&](C& c) { unified(c)[""] = "1"; }, u + "[\"\"]"},
      {"unified no file part", [&](C& c) { unified(c)["memory"] = "1"; }, u + "[\"memory\"]"},
      {"unified no controller", [&](C& c) { unified(c)[".max"] = "1"; }, u + "[\".max\"]"},
      {"unified unknown controller", [&](C& c) { unified(c)["devices.allow"] = "a"; },
       u + "[\"devices.allow\"]"},
      {"unified NUL in key", [&](C& c) { unified(c)[std::string("memory.max\0x", 12)] = "1"; },
       u + "[\"memory.max\\x00x\"]"},
      {"unified value with newline", [&](C& c) { unified(c)["memory.max"] = "1\n2"; },
       u + "[\"memory.max\"]"},
      {"device permissions outside rwm",
       [](C& c) {
         auto* d = c.add_devices();
         d->set_host_path("/dev/null");
         d->set_container_path("/dev/x");
         d->set_permissions("rx");
       },
       "config.devices[0].permissions"},
      {"unified value 1 MB", [&](C& c) { unified(c)["memory.max"] = Big(1 << 20, '9'); },
       u + "[\"memory.max\"]"},
      {"unified key 1 MB", [&](C& c) { unified(c)["memory." + Big(1 << 20)] = "1"; },
       u + "[\"memory." + Big(kMaxQuotedBytes - 7) + "...\"]"},
      {"oom_score_adj 1001",
       [](C& c) { c.mutable_linux()->mutable_resources()->set_oom_score_adj(1001); },
       "config.linux.resources.oom_score_adj"},
      {"oom_score_adj -1001",
       [](C& c) { c.mutable_linux()->mutable_resources()->set_oom_score_adj(-1001); },
       "config.linux.resources.oom_score_adj"},
      {"oom_score_adj 2^32 - 1000",
       [](C& c) { c.mutable_linux()->mutable_resources()->set_oom_score_adj((1LL << 32) - 1000); },
       "config.linux.resources.oom_score_adj"},
      {"hugepage size with /",
       [](C& c) {
         c.mutable_linux()->mutable_resources()->add_hugepage_limits()->set_page_size("../2MB");
       },
       "config.linux.resources.hugepage_limits[0].page_size"},
      {"cpuset with newline",
       [](C& c) { c.mutable_linux()->mutable_resources()->set_cpuset_mems("0\n1"); },
       "config.linux.resources.cpuset_mems"},
      {"1025 mounts",
       [](C& c) {
         for (size_t i = 0; i <= kMaxMounts; ++i) {
           auto* m = c.add_mounts();
           m->set_host_path("/h");
           m->set_container_path("/m");
         }
       },
       "config.mounts"},
      {"1025 devices",
       [](C& c) {
         for (size_t i = 0; i <= kMaxDevices; ++i) {
           auto* d = c.add_devices();
           d->set_host_path("/dev/null");
           d->set_container_path("/dev/n");
         }
       },
       "config.devices"},
      {"4097 env entries",
       [](C& c) {
         for (int i = 0; i < 4096; ++i) c.add_envs()->set_key("K");
       },
       "config.envs"},
      {"1 MiB of env",
       [](C& c) {
         auto* e = c.add_envs();
         e->set_key("BIG");
         e->set_value(Big(1 << 20));
       },
       "config.envs"},
      {"env key with =", [](C& c) { c.add_envs()->set_key("A=B"); }, "config.envs[1].key"},
      {"env value with NUL",
       [](C& c) {
         auto* e = c.add_envs();
         e->set_key("B");
         e->set_value(std::string("x\0y", 3));
       },
       "config.envs[1].value"},
      {"1 MiB of args", [](C& c) { c.add_args(Big(1 << 20)); }, "config.command + config.args"},
      {"1 MiB of empty command strings",
       [](C& c) {
         for (int i = 0; i < (1 << 20); ++i) c.add_command("");
       },
       "config.command + config.args"},
      {"arg with NUL", [](C& c) { c.add_args(std::string("a\0b", 3)); }, "config.args[2]"},
      {"labels over 256 KiB", [](C& c) { (*c.mutable_labels())["x"] = Big(300 << 10); },
       "config.labels + config.annotations + config.image.annotations"},
      {"image annotations over 256 KiB",
       [](C& c) { (*c.mutable_image()->mutable_annotations())["x"] = Big(300 << 10); },
       "config.labels + config.annotations + config.image.annotations"},
      {"1 MB working dir", [](C& c) { c.set_working_dir("/" + Big(1 << 20)); },
       "config.working_dir"},
      {"log path escapes", [](C& c) { c.set_log_path("../escape.log"); }, "config.log_path"},
      {"mount host path relative",
       [](C& c) {
         auto* m = c.add_mounts();
         m->set_container_path("/data");
         m->set_host_path("rel");
       },
       "config.mounts[0].host_path"},
      {"1 MB capability",
       [&](C& c) { sc(c).mutable_capabilities()->add_add_capabilities(Big(1 << 20)); },
       "config.linux.security_context.capabilities.add_capabilities[0]"},
      {"apparmor RuntimeDefault",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
       },
       "config.linux.security_context.apparmor"},
      {"apparmor Localhost",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(cri::SecurityProfile::Localhost);
         sc(c).mutable_apparmor()->set_localhost_ref(Big(1 << 20));
       },
       "config.linux.security_context.apparmor"},
      {"deprecated apparmor runtime/default",
       [&](C& c) { sc(c).set_apparmor_profile("runtime/default"); },
       "config.linux.security_context.apparmor_profile"},
      {"deprecated apparmor localhost/",
       [&](C& c) { sc(c).set_apparmor_profile("localhost/k8s-deny-write"); },
       "config.linux.security_context.apparmor_profile"},
      {"deprecated apparmor unknown form",
       [&](C& c) { sc(c).set_apparmor_profile("docker-default"); },
       "config.linux.security_context.apparmor_profile"},
      {"Unconfined does not hide the deprecated field",
       [&](C& c) {
         sc(c).mutable_apparmor()->set_profile_type(cri::SecurityProfile::Unconfined);
         sc(c).set_apparmor_profile("localhost/x");
       },
       "config.linux.security_context.apparmor_profile"},
      {"selinux user", [&](C& c) { sc(c).mutable_selinux_options()->set_user("system_u"); },
       "config.linux.security_context.selinux_options.user"},
      {"selinux role", [&](C& c) { sc(c).mutable_selinux_options()->set_role("system_r"); },
       "config.linux.security_context.selinux_options.role"},
      {"userns POD",
       [&](C& c) {
         sc(c).mutable_namespace_options()->mutable_userns_options()->set_mode(cri::POD);
       },
       "config.linux.security_context.namespace_options.userns_options.mode"},
      {"userns CONTAINER",
       [&](C& c) {
         sc(c).mutable_namespace_options()->mutable_userns_options()->set_mode(cri::CONTAINER);
       },
       "config.linux.security_context.namespace_options.userns_options.mode"},
      {"userns NODE with gid mappings",
       [&](C& c) {
         auto* userns = sc(c).mutable_namespace_options()->mutable_userns_options();
         userns->set_mode(cri::NODE);
         userns->add_gids()->set_length(1);
       },
       "config.linux.security_context.namespace_options.userns_options.gids"},
      {"pid TARGET without target_id",
       [&](C& c) { sc(c).mutable_namespace_options()->set_pid(cri::TARGET); },
       "config.linux.security_context.namespace_options.target_id"},
      {"idmapped mount (uid)",
       [](C& c) {
         auto* m = c.add_mounts();
         m->set_container_path("/data");
         m->set_host_path("/srv");
         m->add_uidmappings()->set_length(65536);
       },
       "config.mounts[0].uidMappings"},
      {"idmapped mount (gid)",
       [](C& c) {
         auto* m = c.add_mounts();
         m->set_container_path("/data");
         m->set_host_path("/srv");
         m->add_gidmappings()->set_length(65536);
       },
       "config.mounts[0].gidMappings"},
      {"bidirectional mount unprivileged",
       [](C& c) {
         auto* m = c.add_mounts();
         m->set_container_path("/data");
         m->set_host_path("/srv");
         m->set_propagation(cri::PROPAGATION_BIDIRECTIONAL);
       },
       "config.mounts[0].propagation"},
  };
  for (const auto& tc : cases) {
    ExpectRefused<C>(tc, GoodContainer(), [](const C& c) { return ValidateContainerConfig(c); });
  }
}

TEST(ValidateFailClosed, WhatIsNotEnforcedButHarmlessPasses) {
  cri::PodSandboxConfig pod = GoodPod();
  auto* psc = pod.mutable_linux()->mutable_security_context();
  psc->mutable_apparmor()->set_profile_type(cri::SecurityProfile::Unconfined);
  psc->mutable_selinux_options();  // present, every field empty
  psc->mutable_namespace_options()->mutable_userns_options()->set_mode(cri::NODE);
  EXPECT_TRUE(ValidatePodConfig(pod).ok()) << ValidatePodConfig(pod);

  cri::ContainerConfig c = GoodContainer();
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_apparmor()->set_profile_type(cri::SecurityProfile::Unconfined);
  sc->set_apparmor_profile("unconfined");
  sc->mutable_selinux_options();
  sc->mutable_namespace_options()->mutable_userns_options()->set_mode(cri::NODE);
  sc->mutable_namespace_options()->set_pid(cri::TARGET);
  sc->mutable_namespace_options()->set_target_id("abc");
  EXPECT_TRUE(ValidateContainerConfig(c).ok()) << ValidateContainerConfig(c);
  // Bidirectional propagation for a privileged container.
  sc->set_privileged(true);
  auto* m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/srv");
  m->set_propagation(cri::PROPAGATION_BIDIRECTIONAL);
  EXPECT_TRUE(ValidateContainerConfig(c).ok()) << ValidateContainerConfig(c);
}

TEST(ValidateFailClosed, AppArmorRefusalSaysWhy) {
  cri::ContainerConfig c = GoodContainer();
  c.mutable_linux()->mutable_security_context()->set_apparmor_profile("runtime/default");
  const absl::Status off = ValidateContainerConfig(c, HostSecurity{false});
  EXPECT_EQ(off.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(off.message()), HasSubstr("podshim cannot enforce AppArmor profiles"));
  EXPECT_THAT(std::string(off.message()), HasSubstr("AppArmor is not enabled on this node"));
  // With AppArmor on the node podshim still applies no profile: refused too.
  const absl::Status on = ValidateContainerConfig(c, HostSecurity{true});
  EXPECT_EQ(on.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(on.message()), HasSubstr("podshim cannot enforce AppArmor profiles"));
}

TEST(ValidateContainerInPod, PrivilegedOnlyInAPrivilegedPod) {
  auto no_lookup = [](absl::string_view) -> absl::StatusOr<std::string> {
    return absl::InternalError("not called");
  };
  cri::PodSandboxConfig pod = GoodPod();
  cri::ContainerConfig c = GoodContainer();
  EXPECT_TRUE(ValidateContainerInPod(c, pod, "p1", no_lookup).ok());
  c.mutable_linux()->mutable_security_context()->set_privileged(true);
  const absl::Status s = ValidateContainerInPod(c, pod, "p1", no_lookup);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("config.linux.security_context.privileged: "));
  pod.mutable_linux()->mutable_security_context()->set_privileged(true);
  EXPECT_TRUE(ValidateContainerInPod(c, pod, "p1", no_lookup).ok());
  // An unprivileged container in a privileged pod is fine.
  c.mutable_linux()->mutable_security_context()->set_privileged(false);
  EXPECT_TRUE(ValidateContainerInPod(c, pod, "p1", no_lookup).ok());
}

TEST(ValidateContainerInPod, PidTargetOnlyInTheSamePod) {
  // Containers "c-same" in pod p1, "c-other" in pod p2.
  auto pod_of = [](absl::string_view id) -> absl::StatusOr<std::string> {
    if (id == "c-same") return std::string("p1");
    if (id == "c-other") return std::string("p2");
    return absl::NotFoundError(absl::StrCat("container `", id, "` not found (target_id)"));
  };
  cri::ContainerConfig c = GoodContainer();
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(cri::TARGET);
  ns->set_target_id("c-same");
  EXPECT_TRUE(ValidateContainerInPod(c, GoodPod(), "p1", pod_of).ok());
  ns->set_target_id("c-other");
  absl::Status s = ValidateContainerInPod(c, GoodPod(), "p1", pod_of);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("config.linux.security_context.namespace_options.target_id: "));
  ns->set_target_id("nothing");
  s = ValidateContainerInPod(c, GoodPod(), "p1", pod_of);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);  // as containerd
  // Not TARGET: the target id is not looked at.
  ns->set_pid(cri::POD);
  EXPECT_TRUE(ValidateContainerInPod(c, GoodPod(), "p1", pod_of).ok());
}

TEST(ValidateDeviceNode, OnlyDevicesAndNoMemoryDevicesUnprivileged) {
  const std::string f = "config.devices[0].host_path";
  auto node = [](char type, int64_t major, int64_t minor, const char* kind) {
    runtime::DeviceNode n;
    n.type = type;
    n.major = major;
    n.minor = minor;
    n.kind = kind;
    return n;
  };
  EXPECT_TRUE(ValidateDeviceNode(node('c', 1, 3, "character device"), "/dev/null", false, f).ok());
  EXPECT_TRUE(ValidateDeviceNode(node('c', 1, 5, "character device"), "/dev/zero", false, f).ok());
  EXPECT_TRUE(ValidateDeviceNode(node('b', 7, 0, "block device"), "/dev/loop0", false, f).ok());
  for (const auto& [n, path] : {std::pair{node(0, 0, 0, "regular file"), "/etc/passwd"},
                                std::pair{node(0, 0, 0, "directory"), "/etc"}}) {
    for (bool privileged : {false, true}) {
      const absl::Status s = ValidateDeviceNode(n, path, privileged, f);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path;
      EXPECT_THAT(std::string(s.message()), StartsWith(f + ": ")) << path;
      EXPECT_THAT(std::string(s.message()), HasSubstr(n.kind));
    }
  }
  for (int64_t minor : {1, 2, 4}) {  // /dev/mem, /dev/kmem, /dev/port
    const runtime::DeviceNode mem = node('c', 1, minor, "character device");
    const absl::Status s = ValidateDeviceNode(mem, "/dev/mem", false, f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << minor;
    EXPECT_THAT(std::string(s.message()), StartsWith(f + ": ")) << minor;
    EXPECT_TRUE(ValidateDeviceNode(mem, "/dev/mem", true, f).ok()) << minor;
  }
  // A block device 1:1 is not /dev/mem.
  EXPECT_TRUE(ValidateDeviceNode(node('b', 1, 1, "block device"), "/dev/ram1", false, f).ok());
}

TEST(Validate, PodConfigNamesTheField) {
  cri::PodSandboxConfig c;
  auto s = ValidatePodConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.metadata"));
  c.mutable_metadata()->set_name("p");
  EXPECT_TRUE(ValidatePodConfig(c).ok());
  c.mutable_metadata()->set_name("a/b");
  EXPECT_THAT(std::string(ValidatePodConfig(c).message()), HasSubstr("config.metadata.name"));
  c.mutable_metadata()->set_name("p");
  c.set_log_directory("relative");
  EXPECT_THAT(std::string(ValidatePodConfig(c).message()), HasSubstr("config.log_directory"));
  c.set_log_directory("/var/log/pods/x");
  c.mutable_linux()->set_cgroup_parent("/a/../b");
  EXPECT_THAT(std::string(ValidatePodConfig(c).message()), HasSubstr("config.linux.cgroup_parent"));
}

TEST(Validate, ContainerConfigNamesTheField) {
  cri::ContainerConfig c;
  EXPECT_THAT(std::string(ValidateContainerConfig(c).message()), HasSubstr("config.metadata"));
  c.mutable_metadata()->set_name("c");
  EXPECT_THAT(std::string(ValidateContainerConfig(c).message()), HasSubstr("config.image.image"));
  c.mutable_image()->set_image("busybox");
  EXPECT_TRUE(ValidateContainerConfig(c).ok());
  c.set_log_path("../escape.log");
  EXPECT_THAT(std::string(ValidateContainerConfig(c).message()), HasSubstr("config.log_path"));
  c.set_log_path("c/0.log");
  auto* m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("rel");
  EXPECT_THAT(std::string(ValidateContainerConfig(c).message()),
              HasSubstr("config.mounts[0].host_path"));
  m->set_host_path("/srv");
  EXPECT_TRUE(ValidateContainerConfig(c).ok());
  c.add_envs()->set_key("A=B");
  EXPECT_THAT(std::string(ValidateContainerConfig(c).message()), HasSubstr("config.envs[0].key"));
}

TEST(ValidateResources, UpdateUsesItsOwnFieldName) {
  cri::LinuxContainerResources r;
  EXPECT_TRUE(ValidateContainerResources(r, "linux").ok());
  (*r.mutable_unified())["memory.max"] = "max";
  EXPECT_TRUE(ValidateContainerResources(r, "linux").ok());
  (*r.mutable_unified())["cgroup.procs"] = "1";
  absl::Status s = ValidateContainerResources(r, "linux");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("linux.unified[\"cgroup.procs\"]: "));
  // The first bad key in key order is named, whatever the map's order.
  (*r.mutable_unified())["cgroup.kill"] = "1";
  EXPECT_THAT(std::string(ValidateContainerResources(r, "linux").message()),
              StartsWith("linux.unified[\"cgroup.kill\"]: "));
}

TEST(ValidateUpdateRequest, ResourcesAndAnnotations) {
  cri::UpdateContainerResourcesRequest req;
  EXPECT_TRUE(ValidateUpdateRequest(req).ok());
  (*req.mutable_annotations())["a"] = "b";
  req.mutable_linux()->set_oom_score_adj(5);
  EXPECT_TRUE(ValidateUpdateRequest(req).ok());
  req.mutable_linux()->set_oom_score_adj(5000);
  EXPECT_THAT(std::string(ValidateUpdateRequest(req).message()),
              StartsWith("linux.oom_score_adj: "));
  req.mutable_linux()->set_oom_score_adj(0);
  (*req.mutable_annotations())["big"] = std::string(kMaxObjectMetaBytes, 'x');
  absl::Status s = ValidateUpdateRequest(req);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("annotations: "));
  EXPECT_LT(s.message().size(), 200u);
}

TEST(QuoteForError, BoundsAndEscapes) {
  EXPECT_EQ(QuoteForError("abc"), "`abc`");
  EXPECT_EQ(QuoteForError("a\nb\tc`\\"), "`a\\nb\\tc\\`\\\\`");
  EXPECT_EQ(QuoteForError(std::string("\0\x7f\xff", 3)), "`\\x00\\x7f\\xff`");
  const std::string q = QuoteForError(Big(1 << 20));
  EXPECT_EQ(q, "`" + Big(kMaxQuotedBytes) + "`... (1048576 bytes)");
  EXPECT_LT(QuoteForError(Big(1 << 20, '\0')).size(), kMaxQuotedBytes + 40);
}

TEST(ValidateUserId, Range) {
  EXPECT_TRUE(ValidateUserId(0, "f").ok());
  EXPECT_TRUE(ValidateUserId(65534, "f").ok());
  EXPECT_TRUE(ValidateUserId(4294967294, "f").ok());
  EXPECT_FALSE(ValidateUserId(4294967295, "f").ok());
  EXPECT_FALSE(ValidateUserId(-1, "f").ok());
  EXPECT_THAT(std::string(ValidateUserId(-1, "f").message()), HasSubstr("-1"));
}

TEST(ValidateImageRef, EmptyLongAndControl) {
  EXPECT_TRUE(ValidateImageRef("busybox", "image.image").ok());
  EXPECT_THAT(std::string(ValidateImageRef("", "image.image").message()),
              StartsWith("image.image: must not be empty"));
  const absl::Status s = ValidateImageRef(Big(1 << 20), "image.image");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_FALSE(ValidateImageRef("a\rb", "image.image").ok());
}

TEST(ValidatePaths, AbsoluteAndRelative) {
  EXPECT_TRUE(ValidateAbsolutePath("/a/b", "f").ok());
  EXPECT_FALSE(ValidateAbsolutePath("a/b", "f").ok());
  EXPECT_FALSE(ValidateAbsolutePath("/a/../b", "f").ok());
  EXPECT_FALSE(ValidateAbsolutePath(std::string("/a\0b", 4), "f").ok());
  EXPECT_TRUE(ValidateRelativePath("", "f").ok());
  EXPECT_TRUE(ValidateRelativePath("c/0.log", "f").ok());
  EXPECT_FALSE(ValidateRelativePath("/abs", "f").ok());
  EXPECT_FALSE(ValidateRelativePath("a/../../b", "f").ok());
}

TEST(CheckCgroupParent, NeverTheRootOrPodshimsOwnParent) {
  struct Row {
    const char* parent;
    const char* says;  // "" when it is fine
  };
  const Row rows[] = {
      {"/kubepods/burstable/podnew", ""},
      {"/kubepods/besteffort/podx//", ""},
      {"/kubepods", ""},  // shared by several pods (critest): fine
      {"/system.slice/other", ""},
      {"/podshimx", ""},  // a sibling with a longer name, not a child
      {"/", "the root cgroup"},
      {"//", "the root cgroup"},
      {"/podshim", "podshim's own cgroup parent /podshim"},
      {"/podshim/", "podshim's own cgroup parent"},
      {"/podshim/pod-new", "lies above or below it"},
  };
  for (const Row& row : rows) {
    absl::Status s = CheckCgroupParent(row.parent, "/podshim");
    if (row.says[0] == '\0') {
      EXPECT_TRUE(s.ok()) << row.parent << ": " << s;
      continue;
    }
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << row.parent;
    EXPECT_THAT(std::string(s.message()), StartsWith("config.linux.cgroup_parent:")) << row.parent;
    EXPECT_THAT(std::string(s.message()), HasSubstr(row.says)) << row.parent;
  }
  EXPECT_FALSE(CheckCgroupParent("/x", "/x/y").ok()) << "above podshim's parent";
  EXPECT_EQ(CleanPath("//a///b/"), "/a/b");
  EXPECT_EQ(CleanPath(""), "/");
  EXPECT_EQ(CleanPath("/a/./b/."), "/a/b");
  EXPECT_TRUE(PathWithin("/a/b", "/a"));
  EXPECT_TRUE(PathWithin("/a", "/a"));
  EXPECT_FALSE(PathWithin("/ab", "/a"));
  EXPECT_TRUE(PathWithin("/a", "/"));
}

TEST(ValidatePodCidr, OneOrMoreCidrs) {
  EXPECT_TRUE(ValidatePodCidr("10.244.1.0/24").ok());
  EXPECT_TRUE(ValidatePodCidr("10.244.1.0/24, fd00::/64").ok());
  const absl::Status s = ValidatePodCidr("10.0.0.0/33");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("runtime_config.network_config.pod_cidr"));
}

}  // namespace
}  // namespace podshim::agent
