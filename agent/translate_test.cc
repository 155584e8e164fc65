// Translation, field by field and refusal by refusal (containerd's spec
// generation tests are the model): each row names a request, what it must
// become, or the code and message prefix it must be refused with.
#include "agent/translate.h"

#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/cri_convert.h"

namespace podshim::agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

SandboxRecord Pod() {
  SandboxRecord p;
  p.id = "pod1";
  p.cgroup = "/podshim/pod-pod1";
  p.net_ns = "/s/pods/pod1/ns/net";
  p.ipc_ns = "/s/pods/pod1/ns/ipc";
  p.uts_ns = "/s/pods/pod1/ns/uts";
  p.hostname = "web-0";
  p.hostname_file = "/s/pods/pod1/hostname";
  p.hosts_file = "/s/pods/pod1/hosts";
  p.resolv_file = "/s/pods/pod1/resolv.conf";
  p.shm_dir = "/s/pods/pod1/shm";
  p.config.set_log_directory("/var/log/pods/ns_web-0_uid");
  return p;
}

// Plans a container from a config edited by `edit`, in pod `pod`, from an
// image whose config is `image`.
absl::StatusOr<ContainerPlan> Plan(const std::function<void(cri::ContainerConfig&)>& edit,
                                   const std::function<void(ContainerSource&)>& source_edit = {},
                                   SandboxRecord pod = Pod()) {
  static cri::ContainerConfig config;
  config = cri::ContainerConfig();
  config.mutable_metadata()->set_name("app");
  config.mutable_image()->set_image("busybox");
  config.add_command("sleep");
  if (edit) edit(config);
  static SandboxRecord pod_copy;
  pod_copy = std::move(pod);
  ContainerSource in;
  in.id = "c1";
  in.config = &config;
  in.pod = &pod_copy;
  in.bundle = "/s/containers/c1";
  in.layer_dir = "/r/containers/c1";
  for (int i = 0; i < config.devices_size(); ++i)
    in.device_nodes.push_back({'c', 10, 200, "character device"});
  if (source_edit) source_edit(in);
  return PlanContainer(in);
}

cri::LinuxContainerSecurityContext& Sc(cri::ContainerConfig& c) {
  return *c.mutable_linux()->mutable_security_context();
}

TEST(PlanContainerTest, PlacesAndRootfs) {
  auto p = Plan([](auto& c) { Sc(c).set_readonly_rootfs(true); });
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->spec.id, "c1");
  EXPECT_EQ(p->spec.bundle, "/s/containers/c1");
  EXPECT_EQ(p->spec.rootfs.upper, "/r/containers/c1/upper");
  EXPECT_EQ(p->spec.rootfs.work, "/r/containers/c1/work");
  EXPECT_EQ(p->spec.rootfs.target, "/s/containers/c1/rootfs");
  EXPECT_TRUE(p->spec.rootfs.readonly);
  EXPECT_TRUE(p->spec.rootfs.lower.empty()) << "the image lease fills it, not translation";
  EXPECT_EQ(p->cgroup, "/podshim/pod-pod1/c1");
}

TEST(PlanContainerTest, ArgsEnvAndWorkingDirFromRequestAndImage) {
  struct Row {
    const char* name;
    std::vector<std::string> command, args;
    nlohmann::json image;
    std::vector<std::string> want_args;
    std::string want_cwd;
  };
  const std::vector<Row> rows = {
      {"command only", {"sh"}, {}, {}, {"sh"}, "/"},
      {"command and args", {"sh"}, {"-c", "x"}, {}, {"sh", "-c", "x"}, "/"},
      {"image entrypoint and request args",
       {},
       {"a"},
       {{"Entrypoint", {"/ep"}}, {"Cmd", {"c"}}, {"WorkingDir", "/w"}},
       {"/ep", "a"},
       "/w"},
      {"image entrypoint and cmd",
       {},
       {},
       {{"Entrypoint", {"/ep"}}, {"Cmd", {"c"}}},
       {"/ep", "c"},
       "/"},
  };
  for (const auto& row : rows) {
    auto p = Plan(
        [&](auto& c) {
          c.clear_command();
          for (const auto& s : row.command) c.add_command(s);
          for (const auto& s : row.args) c.add_args(s);
        },
        [&](auto& in) {
          in.image_config = row.image.is_null() ? nlohmann::json::object() : row.image;
        });
    ASSERT_TRUE(p.ok()) << row.name << ": " << p.status();
    EXPECT_EQ(p->spec.process.args, row.want_args) << row.name;
    EXPECT_EQ(p->spec.process.cwd, row.want_cwd) << row.name;
  }
  auto empty = Plan([](auto& c) { c.clear_command(); });
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument) << "nothing to run";

  auto p = Plan(
      [](auto& c) {
        auto* kv = c.add_envs();
        kv->set_key("A");
        kv->set_value("request");
        c.set_working_dir("/req");
      },
      [](auto& in) {
        in.image_config = {{"Env", {"A=image", "B=image"}}, {"WorkingDir", "/w"}};
      });
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(p->spec.process.env, Contains("A=request"));
  EXPECT_THAT(p->spec.process.env, Contains("B=image"));
  EXPECT_THAT(p->spec.process.env, Contains("HOSTNAME=web-0")) << "the pod's hostname";
  EXPECT_EQ(p->spec.process.cwd, "/req");
}

TEST(PlanContainerTest, UserAndGroups) {
  auto p = Plan(
      [](auto& c) {
        Sc(c).mutable_run_as_user()->set_value(1000);
        Sc(c).mutable_run_as_group()->set_value(2000);
        Sc(c).add_supplemental_groups(3000);
        Sc(c).add_supplemental_groups(4294967294);
      },
      [](auto& in) {
        in.image_config = {{"User", "nobody"}};
      });
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->spec.process.user.uid, 1000u);
  EXPECT_EQ(p->spec.process.user.gid, 2000u);
  EXPECT_THAT(p->spec.process.user.supplemental_groups, ElementsAre(3000u, 4294967294u));
  EXPECT_EQ(p->spec.process.user.image_user, "nobody");

  auto by_name = Plan([](auto& c) { Sc(c).set_run_as_username("www"); });
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->spec.process.user.username, "www");
  EXPECT_FALSE(by_name->spec.process.user.uid.has_value());

  auto group_alone = Plan([](auto& c) { Sc(c).mutable_run_as_group()->set_value(5); });
  EXPECT_EQ(group_alone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(group_alone.status().message()),
              StartsWith("config.linux.security_context.run_as_group:"));
}

TEST(PlanContainerTest, Capabilities) {
  auto p = Plan([](auto& c) {
    Sc(c).mutable_capabilities()->add_add_capabilities("NET_ADMIN");
    Sc(c).mutable_capabilities()->add_drop_capabilities("CAP_CHOWN");
  });
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->spec.process.capabilities, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(p->spec.process.capabilities, Not(Contains("CAP_CHOWN")));
  EXPECT_THAT(p->spec.process.capabilities, Contains("CAP_KILL")) << "a default stays";

  auto unknown = Plan([](auto& c) { Sc(c).mutable_capabilities()->add_add_capabilities("FLY"); });
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()),
              StartsWith("config.linux.security_context.capabilities:"));

  auto no_new_privs = Plan([](auto& c) { Sc(c).set_no_new_privs(true); });
  ASSERT_TRUE(no_new_privs.ok());
  EXPECT_TRUE(no_new_privs->spec.process.no_new_privs);
}

TEST(PlanContainerTest, NoMknodWhereDevicesAreNotRestricted) {
  auto v2 = [](ContainerSource& in) { in.devices_enforced = false; };
  // Where the devices cgroup holds (v1), CAP_MKNOD is a default, as containerd's.
  auto v1 = Plan({});
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_THAT(v1->spec.process.capabilities, Contains("CAP_MKNOD"));
  // Where nothing restricts devices: not in the defaults, and not to be had.
  auto p = Plan({}, v2);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->spec.process.capabilities, Not(Contains("CAP_MKNOD")));
  EXPECT_THAT(p->spec.process.capabilities, Contains("CAP_CHOWN")) << "the other defaults stay";
  for (const char* name : {"MKNOD", "cap_mknod", "ALL"}) {
    auto asked =
        Plan([&](auto& c) { Sc(c).mutable_capabilities()->add_add_capabilities(name); }, v2);
    EXPECT_EQ(asked.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(asked.status().message()),
                StartsWith("config.linux.security_context.capabilities.add_capabilities: `"))
        << name;
  }
  // A privileged container is unrestricted anyway.
  auto privileged = Plan([](auto& c) { Sc(c).set_privileged(true); }, v2);
  ASSERT_TRUE(privileged.ok()) << privileged.status();
  EXPECT_THAT(privileged->spec.process.capabilities, Contains("CAP_MKNOD"));
}

TEST(PlanContainerTest, Seccomp) {
  auto none = Plan(nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->spec.process.seccomp_json, "") << "unset: unconfined, as the CRI says";

  auto runtime_default = Plan([](auto& c) {
    Sc(c).mutable_seccomp()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
  });
  ASSERT_TRUE(runtime_default.ok()) << runtime_default.status();
  EXPECT_EQ(runtime_default->spec.process.seccomp_json, runtime::RuntimeDefaultSeccompJson());

  auto localhost_edit = [](auto& c) {
    Sc(c).mutable_seccomp()->set_profile_type(cri::SecurityProfile::Localhost);
    Sc(c).mutable_seccomp()->set_localhost_ref("/p.json");
  };
  auto localhost = Plan(localhost_edit, [](auto& in) {
    in.localhost_seccomp = R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]})";
  });
  ASSERT_TRUE(localhost.ok()) << localhost.status();
  EXPECT_THAT(localhost->spec.process.seccomp_json, HasSubstr("SCMP_ACT_ALLOW"));

  auto bad =
      Plan(localhost_edit, [](auto& in) { in.localhost_seccomp = R"({"defaultAction":"X"})"; });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              StartsWith("config.linux.security_context.seccomp:"));

  auto privileged = Plan([](auto& c) {
    Sc(c).set_privileged(true);
    Sc(c).mutable_seccomp()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
  });
  ASSERT_TRUE(privileged.ok());
  EXPECT_EQ(privileged->spec.process.seccomp_json, "") << "privileged runs unconfined";
}

TEST(PlanContainerTest, OomScoreAdjAndStopSignal) {
  auto p = Plan([](auto& c) { c.mutable_linux()->mutable_resources()->set_oom_score_adj(500); });
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->spec.process.oom_score_adj, 500);
  EXPECT_FALSE(Plan(nullptr)->spec.process.oom_score_adj.has_value());

  EXPECT_EQ(Plan(nullptr)->stop_signal, 15) << "SIGTERM by default";
  EXPECT_EQ(Plan(nullptr,
                 [](auto& in) {
                   in.image_config = {{"StopSignal", "SIGQUIT"}};
                 })
                ->stop_signal,
            3)
      << "the image's";
  EXPECT_EQ(Plan([](auto& c) { c.set_stop_signal(cri::SIGNAL_SIGINT); },
                 [](auto& in) {
                   in.image_config = {{"StopSignal", "SIGQUIT"}};
                 })
                ->stop_signal,
            2)
      << "the request's before the image's";
}

TEST(PlanContainerTest, Namespaces) {
  auto p = Plan(nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->spec.net.mode, runtime::NsMode::kJoin);
  EXPECT_EQ(p->spec.net.path, "/s/pods/pod1/ns/net");
  EXPECT_EQ(p->spec.ipc.path, "/s/pods/pod1/ns/ipc");
  EXPECT_EQ(p->spec.uts.path, "/s/pods/pod1/ns/uts");
  EXPECT_EQ(p->spec.pid.mode, runtime::NsMode::kNew) << "CONTAINER by default";
  EXPECT_EQ(p->spec.cgroup.mode, runtime::NsMode::kHost);

  SandboxRecord host_pod = Pod();
  host_pod.net_ns.clear();
  host_pod.ipc_ns.clear();
  auto host = Plan(nullptr, {}, host_pod);
  EXPECT_EQ(host->spec.net.mode, runtime::NsMode::kHost) << "a host-network pod";
  EXPECT_EQ(host->spec.ipc.mode, runtime::NsMode::kHost);

  auto pid = [](cri::NamespaceMode m) {
    return [m](cri::ContainerConfig& c) { Sc(c).mutable_namespace_options()->set_pid(m); };
  };
  EXPECT_EQ(Plan(pid(cri::NODE))->spec.pid.mode, runtime::NsMode::kHost);
  EXPECT_EQ(Plan(pid(cri::POD))->spec.pid.mode, runtime::NsMode::kNew)
      << "a pod without a pinned pid namespace";
  SandboxRecord shared = Pod();
  shared.pid_ns = "/s/pods/pod1/ns/pid";
  auto pod_pid = Plan(pid(cri::POD), {}, shared);
  EXPECT_EQ(pod_pid->spec.pid.mode, runtime::NsMode::kJoin);
  EXPECT_EQ(pod_pid->spec.pid.path, "/s/pods/pod1/ns/pid");
  auto target = Plan(pid(cri::TARGET), [](auto& in) {
    in.target_pid = 42;
    in.target_start_time = 4242;
  });
  EXPECT_EQ(target->spec.pid.path, "/proc/42/ns/pid");
  EXPECT_EQ(target->spec.pid.owner_pid, 42) << "the joiner checks it is still that process";
  EXPECT_EQ(target->spec.pid.owner_start_time, 4242u);
  auto stopped_target = Plan(pid(cri::TARGET));
  EXPECT_EQ(stopped_target.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(stopped_target.status().message()),
              StartsWith("config.linux.security_context.namespace_options.target_id:"));
}

TEST(PlanContainerTest, MountsThePodsFilesThenTheRequests) {
  auto p = Plan([](auto& c) {
    auto* m = c.add_mounts();
    m->set_host_path("/data");
    m->set_container_path("/d");
    m->set_readonly(true);
    m->set_propagation(cri::PROPAGATION_HOST_TO_CONTAINER);
    auto* hosts = c.add_mounts();
    hosts->set_host_path("/my/hosts");
    hosts->set_container_path("/etc/hosts");
  });
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> dests;
  for (const auto& m : p->spec.mounts) dests.push_back(m.destination);
  EXPECT_THAT(dests,
              ElementsAre("/etc/hostname", "/etc/resolv.conf", "/dev/shm", "/d", "/etc/hosts"))
      << "the request's /etc/hosts replaces the pod's";
  const auto& data = p->spec.mounts[3];
  EXPECT_EQ(data.source, "/data");
  EXPECT_TRUE(data.readonly);
  EXPECT_EQ(data.propagation, runtime::Propagation::kRslave);
  EXPECT_TRUE(data.recursive);
  EXPECT_FALSE(p->spec.mounts[0].recursive) << "a pod file is a single bind";

  auto rro = Plan([](auto& c) {
    auto* m = c.add_mounts();
    m->set_host_path("/data");
    m->set_container_path("/d");
    m->set_recursive_read_only(true);
  });
  EXPECT_EQ(rro.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rro.status().message()),
              StartsWith("config.mounts[0].recursive_read_only:"));
}

TEST(PlanContainerTest, NothingBeneathABidirectionalMount) {
  auto add = [](cri::ContainerConfig& c, const char* host, const char* dest,
                cri::MountPropagation prop = cri::PROPAGATION_PRIVATE) {
    auto* m = c.add_mounts();
    m->set_host_path(host);
    m->set_container_path(dest);
    m->set_propagation(prop);
  };
  struct Case {
    std::string what;
    std::function<void(cri::ContainerConfig&)> edit;
    std::string message;  // empty: planned
    bool privileged = true;
  };
  const std::vector<Case> cases = {
      {"a mount beneath it",
       [&](auto& c) {
         add(c, "/shared", "/data", cri::PROPAGATION_BIDIRECTIONAL);
         add(c, "/other", "/data/sub");
       },
       "config.mounts[0].container_path: `/data` is PROPAGATION_BIDIRECTIONAL and "
       "config.mounts[1] `/data/sub` lies beneath it"},
      {"one beneath it given first",
       [&](auto& c) {
         add(c, "/other", "/data/./sub/");
         add(c, "/shared", "/data/", cri::PROPAGATION_BIDIRECTIONAL);
       },
       "config.mounts[1].container_path: `/data/` is PROPAGATION_BIDIRECTIONAL and "
       "config.mounts[0] `/data/./sub/` lies beneath it"},
      {"a device beneath it",
       [&](auto& c) {
         add(c, "/shared", "/dev/x", cri::PROPAGATION_BIDIRECTIONAL);
         auto* d = c.add_devices();
         d->set_host_path("/dev/null");
         d->set_container_path("/dev/x/null");
       },
       "config.devices[0] `/dev/x/null` lies beneath it"},
      {"a sibling with the same prefix",
       [&](auto& c) {
         add(c, "/shared", "/data", cri::PROPAGATION_BIDIRECTIONAL);
         add(c, "/other", "/data2");
       },
       ""},
      {"the default masked paths beneath it (unprivileged)",
       [&](auto& c) { add(c, "/shared", "/proc", cri::PROPAGATION_BIDIRECTIONAL); },
       "the masked or read-only path `/proc/", false},
      {"the same path again",
       [&](auto& c) {
         add(c, "/shared", "/data", cri::PROPAGATION_BIDIRECTIONAL);
         add(c, "/other", "/data");
       },
       ""},
      {"beneath a host-to-container mount",
       [&](auto& c) {
         add(c, "/shared", "/data", cri::PROPAGATION_HOST_TO_CONTAINER);
         add(c, "/other", "/data/sub");
       },
       ""},
  };
  for (const auto& k : cases) {
    auto p = Plan([&](auto& c) {
      Sc(c).set_privileged(k.privileged);
      k.edit(c);
      for (auto& d : *c.mutable_devices()) d.set_permissions("rw");
    });
    if (k.message.empty()) {
      EXPECT_TRUE(p.ok()) << k.what << ": " << p.status();
    } else {
      EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << k.what;
      EXPECT_THAT(std::string(p.status().message()), HasSubstr(k.message)) << k.what;
    }
  }
}

TEST(PlanContainerTest, DevicesAndMaskedPaths) {
  auto p = Plan([](auto& c) {
    auto* d = c.add_devices();
    d->set_host_path("/dev/fuse");
    d->set_container_path("/dev/fuse");
    d->set_permissions("rw");
    auto* all = c.add_devices();
    all->set_host_path("/dev/fuse");
    all->set_container_path("/dev/f2");
  });
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->device_rules.has_value());
  const auto defaults = runtime::DefaultDeviceRules();
  ASSERT_EQ(p->device_rules->size(), defaults.size() + 2);
  EXPECT_EQ(p->device_rules->at(defaults.size()), (runtime::DeviceRule{'c', 10, 200, "rw"}));
  EXPECT_EQ(p->device_rules->back(), (runtime::DeviceRule{'c', 10, 200, "rwm"}))
      << "no permissions means all";
  ASSERT_EQ(p->spec.devices.size(), 2u);
  EXPECT_EQ(p->spec.devices[1].container_path, "/dev/f2");
  EXPECT_EQ(p->spec.masked_paths, DefaultMaskedPaths());
  EXPECT_EQ(p->spec.readonly_paths, DefaultReadonlyPaths());

  auto privileged = Plan([](auto& c) { Sc(c).set_privileged(true); });
  ASSERT_TRUE(privileged.ok());
  EXPECT_FALSE(privileged->device_rules.has_value()) << "every device";
  EXPECT_THAT(privileged->spec.masked_paths, IsEmpty());
  EXPECT_TRUE(privileged->spec.privileged);

  auto given = Plan([](auto& c) { Sc(c).add_masked_paths("/proc/kcore"); });
  EXPECT_THAT(given->spec.masked_paths, ElementsAre("/proc/kcore"));
  EXPECT_THAT(given->spec.readonly_paths, IsEmpty()) << "the request's lists, not the defaults";

  auto missing_node = Plan([](auto& c) { c.add_devices()->set_host_path("/dev/x"); },
                           [](auto& in) { in.device_nodes.clear(); });
  EXPECT_EQ(missing_node.status().code(), absl::StatusCode::kInternal);
}

TEST(PlanContainerTest, LogPathLimitsAndResources) {
  auto p = Plan([](auto& c) {
    c.set_log_path("app/0.log");
    auto* r = c.mutable_linux()->mutable_resources();
    r->set_cpu_period(100000);
    r->set_cpu_quota(50000);
    r->set_cpu_shares(512);
    r->set_memory_limit_in_bytes(1 << 26);
    r->set_cpuset_cpus("0");
    (*r->mutable_unified())["memory.high"] = "1000000";
  });
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->log_path, "/var/log/pods/ns_web-0_uid/app/0.log");
  EXPECT_EQ(p->spec.log_path, p->log_path);
  EXPECT_EQ(p->limits.cpu_period, 100000);
  EXPECT_EQ(p->limits.cpu_quota, 50000);
  EXPECT_EQ(p->limits.cpu_shares, 512);
  EXPECT_EQ(p->limits.memory_limit_in_bytes, 1 << 26);
  EXPECT_EQ(p->limits.cpuset_cpus, "0");
  EXPECT_EQ(p->limits.unified.at("memory.high"), "1000000");
  EXPECT_FALSE(p->limits.memory_swap_limit_in_bytes.has_value()) << "zero is unset";

  SandboxRecord no_dir = Pod();
  no_dir.config.clear_log_directory();
  EXPECT_EQ(Plan([](auto& c) { c.set_log_path("a.log"); }, {}, no_dir)->log_path, "")
      << "no pod log directory, no log";
}

TEST(PlanPodTest, CgroupNamespacesDnsAndSysctls) {
  const PodPlace place{"p1", "/s/pods/p1", "/podshim", "/bin/pinns"};
  cri::PodSandboxConfig config;
  config.set_hostname("web-0");
  auto own = PlanPod(config, place);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->cgroup, "/podshim/pod-p1") << "a child of podshim's parent";
  EXPECT_EQ(own->dir, "/s/pods/p1");
  EXPECT_EQ(own->hostname, "web-0");
  EXPECT_EQ(own->pinns_binary, "/bin/pinns");
  EXPECT_FALSE(own->host_network);
  EXPECT_FALSE(own->has_dns);

  config.mutable_linux()->set_cgroup_parent("/kubepods/burstable/poduid");
  auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(cri::NODE);
  ns->set_ipc(cri::NODE);
  ns->set_pid(cri::POD);
  config.mutable_dns_config()->add_servers("10.0.0.10");
  config.mutable_dns_config()->add_searches("svc.cluster.local");
  config.mutable_dns_config()->add_options("ndots:5");
  auto kubelet = PlanPod(config, place);
  ASSERT_TRUE(kubelet.ok());
  EXPECT_EQ(kubelet->cgroup, "/kubepods/burstable/poduid") << "the kubelet's pod cgroup itself";
  EXPECT_TRUE(kubelet->host_network);
  EXPECT_TRUE(kubelet->host_ipc);
  EXPECT_TRUE(kubelet->shared_pid);
  ASSERT_TRUE(kubelet->has_dns);
  EXPECT_THAT(kubelet->dns.servers, ElementsAre("10.0.0.10"));
  EXPECT_THAT(kubelet->dns.searches, ElementsAre("svc.cluster.local"));
  EXPECT_THAT(kubelet->dns.options, ElementsAre("ndots:5"));

  (*config.mutable_linux()->mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  auto host_net_sysctl = PlanPod(config, place);
  EXPECT_EQ(host_net_sysctl.status().code(), absl::StatusCode::kInvalidArgument)
      << "a net.* sysctl would change the host's network namespace";
  EXPECT_THAT(std::string(host_net_sysctl.status().message()), StartsWith("config.linux.sysctls:"));
  ns->set_network(cri::POD);
  auto own_net_sysctl = PlanPod(config, place);
  ASSERT_TRUE(own_net_sysctl.ok()) << own_net_sysctl.status();
  EXPECT_THAT(own_net_sysctl->sysctls,
              Contains(std::pair<std::string, std::string>("net.ipv4.ip_forward", "1")));
}

TEST(PodNetworkOfTest, PublishedPortsDnsAndBandwidth) {
  SandboxRecord pod = Pod();
  pod.config.mutable_metadata()->set_name("web-0");
  pod.config.mutable_metadata()->set_namespace_("ns");
  pod.config.mutable_metadata()->set_uid("uid");
  auto* published = pod.config.add_port_mappings();
  published->set_protocol(cri::UDP);
  published->set_container_port(53);
  published->set_host_port(5353);
  published->set_host_ip("127.0.0.1");
  pod.config.add_port_mappings()->set_container_port(80);  // not published
  pod.config.mutable_dns_config()->add_servers("10.0.0.10");
  (*pod.config.mutable_annotations())[kIngressBandwidth] = "1M";
  const cni::PodNetwork n = PodNetworkOf(pod);
  EXPECT_EQ(n.id, "pod1");
  EXPECT_EQ(n.netns, "/s/pods/pod1/ns/net");
  EXPECT_EQ(n.name, "web-0");
  EXPECT_EQ(n.namespace_, "ns");
  EXPECT_EQ(n.uid, "uid");
  ASSERT_EQ(n.port_mappings.size(), 1u) << "only published ports";
  EXPECT_EQ(n.port_mappings[0].protocol, "udp");
  EXPECT_EQ(n.port_mappings[0].host_port, 5353);
  EXPECT_EQ(n.port_mappings[0].host_ip, "127.0.0.1");
  ASSERT_TRUE(n.dns.has_value());
  EXPECT_THAT(n.dns->servers, ElementsAre("10.0.0.10"));
  EXPECT_EQ(n.ingress_bps, 1000000u);
  EXPECT_EQ(n.egress_bps, 0u);
}

}  // namespace
}  // namespace podshim::agent
