// Unit tests of the pieces the plugins share: addresses and prefixes, the
// CNI_* environment, results and errors as JSON, port mapping config and
// the nft table podshim-bridge creates.
#include "cni/plugin_common.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cni/hostport.h"
#include "cni/netlink.h"
#include "runtime/spawn.h"

namespace podshim::cni {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

IpAddress Ip(const char* text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.ok()) << text;
  return ip.ok() ? *ip : IpAddress();
}

IpPrefix Prefix(const char* text) {
  absl::StatusOr<IpPrefix> p = IpPrefix::Parse(text);
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? *p : IpPrefix();
}

TEST(IpAddressTest, ParsesFormatsAndSteps) {
  EXPECT_EQ(Ip("10.0.0.255").Next().ToString(), "10.0.1.0");
  EXPECT_EQ(Ip("10.0.1.0").Prev().ToString(), "10.0.0.255");
  EXPECT_EQ(Ip("255.255.255.255").Next().ToString(), "0.0.0.0");
  EXPECT_EQ(Ip("fd00::ffff").Next().ToString(), "fd00::1:0");
  EXPECT_EQ(Ip("fd00::1").family(), AF_INET6);
  EXPECT_TRUE(Ip("0.0.0.0").IsUnspecified());
  EXPECT_FALSE(Ip("::1").IsUnspecified());
  EXPECT_LT(Ip("10.0.0.9"), Ip("10.0.0.10"));
  EXPECT_LT(Ip("255.255.255.255"), Ip("::"));  // IPv4 before IPv6
  EXPECT_FALSE(IpAddress::Parse("10.0.0").ok());
  EXPECT_FALSE(IpAddress::Parse("").ok());
}

TEST(IpPrefixTest, NetworkFirstLastContains) {
  IpPrefix p = Prefix("10.88.3.7/16");
  EXPECT_EQ(p.Network().ToString(), "10.88.0.0/16");
  EXPECT_EQ(p.Last().ToString(), "10.88.255.255");
  EXPECT_TRUE(p.Contains(Ip("10.88.200.1")));
  EXPECT_FALSE(p.Contains(Ip("10.89.0.1")));
  EXPECT_FALSE(p.Contains(Ip("fd00::1")));
  EXPECT_EQ(Prefix("10.1.2.3/29").First().ToString(), "10.1.2.0");
  EXPECT_EQ(Prefix("10.1.2.3/29").Last().ToString(), "10.1.2.7");
  EXPECT_EQ(Prefix("fd00:1::5/64").Last().ToString(), "fd00:1::ffff:ffff:ffff:ffff");
  EXPECT_EQ(Prefix("0.0.0.0/0").Last().ToString(), "255.255.255.255");
  EXPECT_TRUE(Prefix("10.0.0.0/8").Overlaps(Prefix("10.5.0.0/16")));
  EXPECT_FALSE(Prefix("10.0.0.0/16").Overlaps(Prefix("10.1.0.0/16")));
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "x/8",
                          "fd00::/129", "10.0.0.0/+8"}) {
    EXPECT_FALSE(IpPrefix::Parse(bad).ok()) << bad;
  }
}

// An environment for ParseEnv.
EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

void ExpectEnvError(const std::map<std::string, std::string>& vars, const std::string& naming) {
  absl::StatusOr<CniEnv> env = ParseEnv(Env(vars));
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(CniCodeOf(env.status()), kErrInvalidEnvironment) << env.status();
  EXPECT_THAT(env.status().message(), HasSubstr(naming));
}

TEST(ParseEnvTest, ReadsAndValidates) {
  absl::StatusOr<CniEnv> env = ParseEnv(Env({{"CNI_COMMAND", "ADD"},
                                             {"CNI_CONTAINERID", "abc-1.x_y"},
                                             {"CNI_NETNS", "/run/netns/p"},
                                             {"CNI_IFNAME", "eth0"},
                                             {"CNI_PATH", "/opt/cni/bin"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->command, Command::kAdd);
  EXPECT_EQ(env->container_id, "abc-1.x_y");
  EXPECT_EQ(env->path, "/opt/cni/bin");

  // DEL needs no netns; VERSION nothing but the command.
  EXPECT_TRUE(
      ParseEnv(Env({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "a"}, {"CNI_IFNAME", "e"}})).ok());
  EXPECT_TRUE(ParseEnv(Env({{"CNI_COMMAND", "VERSION"}})).ok());

  ExpectEnvError({}, "CNI_COMMAND is not set");
  ExpectEnvError({{"CNI_COMMAND", "EXPLODE"}}, "CNI_COMMAND \"EXPLODE\"");
  ExpectEnvError({{"CNI_COMMAND", "ADD"}, {"CNI_NETNS", "/n"}, {"CNI_IFNAME", "eth0"}},
                 "CNI_CONTAINERID is not set");
  ExpectEnvError({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "a"}, {"CNI_IFNAME", "eth0"}},
                 "CNI_NETNS is not set");
  ExpectEnvError({{"CNI_COMMAND", "CHECK"}, {"CNI_CONTAINERID", "a"}, {"CNI_NETNS", "/n"}},
                 "CNI_IFNAME is not set");
  ExpectEnvError({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "../x"}, {"CNI_IFNAME", "eth0"}},
                 "CNI_CONTAINERID \"../x\"");
  ExpectEnvError(
      {{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "a"}, {"CNI_IFNAME", "a-name-of-16-chr"}},
      "CNI_IFNAME \"a-name-of-16-chr\"");
  ExpectEnvError({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "a"}, {"CNI_IFNAME", "eth/0"}},
                 "CNI_IFNAME");
}

TEST(VersionTest, SupportedAndCompared) {
  EXPECT_THAT(SupportedVersions(), ElementsAre("0.3.0", "0.3.1", "0.4.0", "1.0.0"));
  EXPECT_TRUE(IsSupportedVersion("0.4.0"));
  EXPECT_FALSE(IsSupportedVersion("0.2.0"));
  EXPECT_FALSE(IsSupportedVersion("1.1.0"));
  EXPECT_LT(CompareVersions("0.3.1", "0.4.0"), 0);
  EXPECT_LT(CompareVersions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(CompareVersions("1.0.0", "1.0.0"), 0);
  EXPECT_GT(CompareVersions("1.0.0", "0.10.0"), 0);

  nlohmann::json v = VersionJson("0.4.0");
  EXPECT_EQ(v["cniVersion"], "0.4.0");
  EXPECT_EQ(v["supportedVersions"].size(), 4U);

  nlohmann::json conf = {{"cniVersion", "1.1.0"}};
  absl::StatusOr<std::string> version = ConfigVersion(conf, "podshim-bridge");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(CniCodeOf(version.status()), kErrIncompatibleVersion);
  EXPECT_THAT(version.status().message(), HasSubstr("\"1.1.0\""));
  EXPECT_EQ(CniCodeOf(ConfigVersion(nlohmann::json::object(), "p").status()), kErrInvalidConfig);
}

CniResult SampleResult() {
  CniResult r;
  r.interfaces = {{"br0", "02:00:00:00:00:01", "", 0},
                  {"eth0", "02:00:00:00:00:02", "/run/netns/x", 0}};
  r.ips = {{Prefix("10.88.0.5/16"), Ip("10.88.0.1"), 1}, {Prefix("fd00::5/64"), std::nullopt, 1}};
  r.routes = {{Prefix("0.0.0.0/0"), Ip("10.88.0.1")}, {Prefix("10.0.0.0/8"), std::nullopt}};
  r.dns.nameservers = {"10.88.0.1"};
  r.dns.search = {"example.test"};
  return r;
}

TEST(ResultJsonTest, VersionOneHasNoIpVersions) {
  nlohmann::json j = ResultToJson(SampleResult(), "1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/run/netns/x");
  EXPECT_EQ(
      j["ips"][0],
      nlohmann::json({{"address", "10.88.0.5/16"}, {"gateway", "10.88.0.1"}, {"interface", 1}}));
  EXPECT_FALSE(j["ips"][1].contains("gateway"));
  EXPECT_EQ(j["routes"][0], nlohmann::json({{"dst", "0.0.0.0/0"}, {"gw", "10.88.0.1"}}));
  EXPECT_EQ(j["routes"][1], nlohmann::json({{"dst", "10.0.0.0/8"}}));
  EXPECT_EQ(j["dns"]["nameservers"][0], "10.88.0.1");
}

TEST(ResultJsonTest, OlderVersionsCarryIpVersions) {
  nlohmann::json j = ResultToJson(SampleResult(), "0.4.0");
  EXPECT_EQ(j["ips"][0]["version"], "4");
  EXPECT_EQ(j["ips"][1]["version"], "6");
}

TEST(ResultJsonTest, RoundTrips) {
  nlohmann::json j = ResultToJson(SampleResult(), "0.3.1");
  absl::StatusOr<CniResult> back = ResultFromJson(j, "prevResult");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ResultToJson(*back, "0.3.1"), j);
}

TEST(ResultJsonTest, ErrorsNameTheMember) {
  auto error_of = [](const char* text) {
    return std::string(
        ResultFromJson(nlohmann::json::parse(text), "prevResult").status().message());
  };
  EXPECT_THAT(error_of(R"({"ips":[{"address":"10.0.0.1"}]})"),
              HasSubstr("prevResult.ips[0].address"));
  EXPECT_THAT(error_of(R"({"ips":[{"address":"10.0.0.1/8","interface":3}]})"),
              HasSubstr("prevResult.ips[0].interface 3"));
  EXPECT_THAT(error_of(R"({"interfaces":[{"mac":"x"}]})"),
              HasSubstr("prevResult.interfaces[0].name is missing"));
  EXPECT_THAT(error_of(R"({"routes":[{"dst":"0.0.0.0/0","gw":"nope"}]})"),
              HasSubstr("prevResult.routes[0].gw"));
  EXPECT_THAT(error_of(R"({"dns":{"nameservers":"1.1.1.1"}})"),
              HasSubstr("prevResult.dns.nameservers must be a list"));
}

TEST(ErrorJsonTest, CarriesCodeAndMessage) {
  nlohmann::json j = ErrorJson(CniError(kErrDecode, "bad input"), "0.4.0");
  EXPECT_EQ(j, nlohmann::json({{"cniVersion", "0.4.0"}, {"code", 6}, {"msg", "bad input"}}));
  // Context keeps the code.
  absl::Status s = Annotate(CniError(kErrTryAgainLater, "busy"), "while doing x");
  EXPECT_EQ(CniCodeOf(s), kErrTryAgainLater);
  EXPECT_EQ(s.message(), "while doing x: busy");
  // Statuses without a CNI code get one from their status code.
  EXPECT_EQ(CniCodeOf(absl::InvalidArgumentError("x")), kErrInvalidConfig);
  EXPECT_EQ(CniCodeOf(absl::InternalError("x")), kErrInternal);
}

TEST(ConfigTest, ParseConfigObjectAndTypedMembers) {
  absl::StatusOr<nlohmann::json> bad = ParseConfigObject("{not json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(CniCodeOf(bad.status()), kErrDecode);
  EXPECT_EQ(CniCodeOf(ParseConfigObject("[1]").status()), kErrDecode);
  // nlohmann's out_of_range for "1E400" is a decode error too, not an
  // uncaught exception (found by fuzz/cni_fuzz.cc).
  EXPECT_EQ(CniCodeOf(ParseConfigObject(R"({"x": 4E4422})").status()), kErrDecode);

  nlohmann::json obj = {{"mtu", "9000"}, {"flag", 1}, {"name", 7}, {"big", 1.5}};
  EXPECT_THAT(OptionalInt(obj, "mtu", "").status().message(), HasSubstr("mtu must be an integer"));
  EXPECT_THAT(OptionalInt(obj, "big", "x").status().message(), HasSubstr("x.big"));
  EXPECT_THAT(OptionalBool(obj, "flag", "").status().message(), HasSubstr("flag must be true"));
  EXPECT_THAT(OptionalString(obj, "name", "ipam").status().message(),
              HasSubstr("ipam.name must be a string"));
  EXPECT_FALSE(OptionalString(obj, "missing", "").value().has_value());
}

TEST(HostVethNameTest, StableDistinctAndShort) {
  std::string a = HostVethName("c1", "eth0");
  EXPECT_EQ(a, HostVethName("c1", "eth0"));
  EXPECT_NE(a, HostVethName("c1", "eth1"));
  EXPECT_NE(a, HostVethName("c2", "eth0"));
  EXPECT_EQ(a.size(), 15U);
  EXPECT_TRUE(IsValidIfName(a));
  EXPECT_EQ(a.substr(0, 4), "veth");
}

TEST(FindPluginTest, NamesWhatIsWrong) {
  EXPECT_EQ(CniCodeOf(FindPlugin("host-local", "").status()), kErrInvalidEnvironment);
  EXPECT_THAT(FindPlugin("../bin/sh", "/usr/bin").status().message(), HasSubstr("ipam.type"));
  EXPECT_THAT(FindPlugin("no-such-plugin-here", "/nonexistent:/usr/bin").status().message(),
              HasSubstr("no executable plugin \"no-such-plugin-here\""));
  absl::StatusOr<std::string> sh = FindPlugin("sh", "/nonexistent:/bin");
  ASSERT_TRUE(sh.ok()) << sh.status();
  EXPECT_EQ(*sh, "/bin/sh");
}

TEST(ExecPluginTest, APluginThatHangsIsKilledAtTheTimeout) {
  char tmpl[] = "/tmp/podshim-execplugin-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string pidfile = dir + "/plugin.pid";
  {
    std::ofstream script(dir + "/hang");
    script << "#!/bin/sh\necho $$ > " << pidfile << "\nexec sleep 1000\n";
  }
  ASSERT_EQ(::chmod((dir + "/hang").c_str(), 0755), 0);
  CniEnv env;
  env.path = dir;
  absl::StatusOr<nlohmann::json> out =
      ExecPlugin("hang", env, "ADD", "{}", absl::Milliseconds(500));
  EXPECT_EQ(CniCodeOf(out.status()), kErrInternal);
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("IPAM plugin \"hang\" did not finish within 500ms and was killed"));
  std::ifstream in(pidfile);
  int plugin = 0;
  ASSERT_TRUE(in >> plugin) << "the plugin ran";
  // Killed and reaped by the runner: gone.
  EXPECT_EQ(runtime::OpenPidfd(plugin).status().code(), absl::StatusCode::kNotFound) << plugin;
  // It ran in this process's group, where a runtime's kill of the bridge's
  // group finds it.
  std::filesystem::remove_all(dir);
}

TEST(ExecPluginTest, APluginsResultAndErrorAreRead) {
  char tmpl[] = "/tmp/podshim-execplugin-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    std::ofstream ok(dir + "/ok");
    ok << "#!/bin/sh\ncat >/dev/null; echo \"{\\\"cmd\\\":\\\"$CNI_COMMAND\\\"}\"\n";
    std::ofstream bad(dir + "/bad");
    bad << "#!/bin/sh\necho '{\"code\":11,\"msg\":\"try later\"}'; exit 1\n";
  }
  ASSERT_EQ(::chmod((dir + "/ok").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir + "/bad").c_str(), 0755), 0);
  CniEnv env;
  env.path = dir;
  absl::StatusOr<nlohmann::json> ok = ExecPlugin("ok", env, "DEL", "{}");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)["cmd"], "DEL") << "CNI_COMMAND is the one asked for";
  absl::StatusOr<nlohmann::json> bad = ExecPlugin("bad", env, "ADD", "{}");
  EXPECT_EQ(CniCodeOf(bad.status()), 11);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("IPAM plugin \"bad\": try later"));
  std::filesystem::remove_all(dir);
}

TEST(PortMappingsTest, Parses) {
  nlohmann::json conf = nlohmann::json::parse(R"({"runtimeConfig":{"portMappings":[
      {"hostPort":8080,"containerPort":80,"protocol":"tcp"},
      {"hostPort":8080,"containerPort":80,"protocol":"UDP","hostIP":"127.0.0.1"},
      {"hostPort":9090,"containerPort":90,"hostIP":"0.0.0.0"},
      {"hostPort":9091,"containerPort":91,"protocol":"sctp","hostIP":""}]}})");
  absl::StatusOr<std::vector<PortMapping>> got = ParsePortMappings(conf);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 4U);
  EXPECT_EQ((*got)[0].protocol, "tcp");
  EXPECT_FALSE((*got)[0].host_ip.has_value());
  EXPECT_EQ((*got)[1].protocol, "udp");
  EXPECT_EQ((*got)[1].host_ip->ToString(), "127.0.0.1");
  EXPECT_TRUE((*got)[2].any_of_family);
  EXPECT_FALSE((*got)[3].host_ip.has_value());
  EXPECT_TRUE(ParsePortMappings(nlohmann::json::object())->empty());
}

TEST(PortMappingsTest, ErrorsNameTheMember) {
  auto error_of = [](const char* mappings) {
    nlohmann::json conf = {{"runtimeConfig", {{"portMappings", nlohmann::json::parse(mappings)}}}};
    absl::StatusOr<std::vector<PortMapping>> got = ParsePortMappings(conf);
    EXPECT_FALSE(got.ok()) << mappings;
    EXPECT_EQ(CniCodeOf(got.status()), kErrInvalidConfig);
    return std::string(got.status().message());
  };
  EXPECT_THAT(error_of(R"([{"containerPort":80}])"),
              HasSubstr("runtimeConfig.portMappings[0].hostPort is missing"));
  EXPECT_THAT(error_of(R"([{"hostPort":1,"containerPort":70000}])"),
              HasSubstr("runtimeConfig.portMappings[0].containerPort 70000"));
  EXPECT_THAT(error_of(R"([{"hostPort":1,"containerPort":1,"protocol":"icmp"}])"),
              HasSubstr("portMappings[0].protocol \"icmp\""));
  EXPECT_THAT(error_of(R"([{"hostPort":1,"containerPort":1,"hostIP":"x"}])"),
              HasSubstr("portMappings[0].hostIP"));
  EXPECT_THAT(error_of(R"([{"hostPort":5,"containerPort":1},{"hostPort":5,"containerPort":2}])"),
              HasSubstr("portMappings[1] maps host port 5/tcp again"));
  EXPECT_THAT(error_of(R"({"hostPort":5})"),
              HasSubstr("runtimeConfig.portMappings must be a list"));
}

TEST(HostPortsTest, TableScriptIsSelfContained) {
  HostPorts hp(HostPortOptions{"podshim_test_table", "/nonexistent/lock"});
  std::string v4 = hp.TableScript(AF_INET);
  EXPECT_THAT(v4, HasSubstr("add table ip podshim_test_table"));
  EXPECT_THAT(v4, HasSubstr("type inet_proto . inet_service : ipv4_addr . inet_service"));
  EXPECT_THAT(v4, HasSubstr("prerouting fib daddr type local jump hostports"));
  EXPECT_THAT(v4, HasSubstr("output fib daddr type local jump hostports"));
  EXPECT_THAT(v4, HasSubstr("ip saddr . ip daddr @masq masquerade"));
  EXPECT_THAT(v4, ::testing::Not(HasSubstr("ip6")));
  EXPECT_THAT(v4, HasSubstr("add set ip podshim_test_table localnet_ifaces { type ifname; }"));
  EXPECT_THAT(v4, HasSubstr("localnet_guard { type filter hook input priority 0;"));
  EXPECT_THAT(v4, HasSubstr("iifname @localnet_ifaces ip daddr 127.0.0.0/8 ip saddr != "
                            "127.0.0.0/8 ct status & dnat == 0 counter drop"));
  std::string v6 = hp.TableScript(AF_INET6);
  EXPECT_THAT(v6, HasSubstr("add table ip6 podshim_test_table"));
  EXPECT_THAT(v6, HasSubstr("ipv6_addr . inet_service"));
  EXPECT_THAT(v6, ::testing::Not(HasSubstr("localnet")));  // route_localnet is IPv4 only
  EXPECT_EQ(HostPortOwner("abc", "eth0"), "abc/eth0");
  EXPECT_EQ(HostPortOwner(std::string(200, 'a'), "eth0").substr(0, 5), "hash:");
}

}  // namespace
}  // namespace podshim::cni
