// The CNI client against fake plugins: small shell scripts that log how they
// were called and answer as a test tells them. The real plugins (podshim's
// and Debian's) are exercised by cni/plugin_test.cc and tests/e2e.
#include "cni/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cni/exec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podshim::cni {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cni_client_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/bin");
    fs::create_directories(root_ + "/net.d");
    fs::create_directories(root_ + "/log");
    options_.conf_dir = root_ + "/net.d";
    options_.bin_dirs = {root_ + "/bin"};
    options_.cache_dir = root_ + "/cache";
    options_.default_network = false;
    options_.plugin_timeout = absl::Seconds(20);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A plugin that appends "<name> <CNI_COMMAND>" to log/calls, saves its
  // stdin and environment per call, and then runs `body` (a shell snippet;
  // default: echo its prevResult or a result with one address).
  void Plugin(const std::string& name, const std::string& body = "",
              const std::string& versions = R"(["0.4.0","1.0.0","1.1.0"])") {
    const std::string path = root_ + "/bin/" + name;
    std::ofstream out(path);
    out << "#!/bin/sh\n"
        << "log=" << root_
        << "/log\n"
        // VERSION (asked by Ready) is answered from `versions`, and not logged.
        << "if [ \"$CNI_COMMAND\" = VERSION ]; then echo '{\"cniVersion\":\"1.0.0\","
           "\"supportedVersions\":"
        << versions << "}'; exit 0; fi\n"
        << "echo \"" << name << " $CNI_COMMAND\" >> $log/calls\n"
        << "n=$(wc -l < $log/calls)\n"
        << "cat > $log/$n.stdin\n"
        << "env | grep ^CNI_ | sort > $log/$n.env\n"
        << (body.empty() ? "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                           "  echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\","
                           "\"sandbox\":\"'$CNI_NETNS'\"}],\"ips\":[{\"address\":\"10.1.2.3/24\","
                           "\"interface\":0}]}'\n"
                           "fi\n"
                         : body)
        << "\n";
    out.close();
    ::chmod(path.c_str(), 0755);
  }
  void Conf(const std::string& file, const std::string& text) {
    std::ofstream(root_ + "/net.d/" + file) << text;
  }
  std::vector<std::string> Calls() {
    return absl::StrSplit(Slurp(root_ + "/log/calls"), '\n', absl::SkipEmpty());
  }
  nlohmann::json Stdin(int n) {
    return nlohmann::json::parse(Slurp(absl::StrCat(root_, "/log/", n, ".stdin")));
  }
  std::string Env(int n) { return Slurp(absl::StrCat(root_, "/log/", n, ".env")); }

  PodNetwork Pod() {
    PodNetwork p;
    p.id = "abc123";
    p.netns = "/run/test/netns";
    p.name = "web";
    p.namespace_ = "default";
    p.uid = "uid-1";
    return p;
  }

  std::string root_;
  NetworkOptions options_;
};

constexpr char kChain[] = R"({"cniVersion":"1.0.0","name":"testnet","plugins":[
  {"type":"first","capabilities":{"portMappings":true}},
  {"type":"second","capabilities":{"dns":true}}]})";

TEST_F(ClientTest, AddRunsTheChainWithPrevResultEnvAndRuntimeConfig) {
  Plugin("first");
  // The second plugin passes its prevResult through, as chained plugins do.
  Plugin("second",
         "if [ \"$CNI_COMMAND\" = ADD ]; then python3 -c 'import json,sys; "
         "print(json.dumps(json.load(sys.stdin)[\"prevResult\"]))' < $log/$n.stdin; fi");
  Conf("10-test.conflist", kChain);
  NetworkManager net(options_);
  ASSERT_TRUE(net.Ready().ok()) << net.Ready();
  PodNetwork pod = Pod();
  pod.port_mappings.push_back({"tcp", 80, 8080, ""});
  pod.dns = runtime::DnsSettings{{"10.0.0.10"}, {"svc.local"}, {"ndots:5"}};
  auto a = net.Setup(pod);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->network_name, "testnet");
  EXPECT_THAT(a->ips, ElementsAre("10.1.2.3"));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "second ADD"));

  nlohmann::json first = Stdin(1);
  EXPECT_EQ(first["name"], "testnet");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_FALSE(first.contains("prevResult"));
  // Only the capabilities a plugin declares reach it.
  EXPECT_EQ(first["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  EXPECT_EQ(first["runtimeConfig"]["portMappings"][0]["protocol"], "tcp");
  EXPECT_FALSE(first["runtimeConfig"].contains("dns"));
  nlohmann::json second = Stdin(2);
  EXPECT_EQ(second["prevResult"]["ips"][0]["address"], "10.1.2.3/24");
  EXPECT_EQ(second["runtimeConfig"]["dns"]["servers"][0], "10.0.0.10");
  EXPECT_FALSE(second["runtimeConfig"].contains("portMappings"));

  const std::string env = Env(1);
  EXPECT_THAT(env, HasSubstr("CNI_COMMAND=ADD\n"));
  EXPECT_THAT(env, HasSubstr("CNI_CONTAINERID=abc123\n"));
  EXPECT_THAT(env, HasSubstr("CNI_NETNS=/run/test/netns\n"));
  EXPECT_THAT(env, HasSubstr("CNI_IFNAME=eth0\n"));
  EXPECT_THAT(env, HasSubstr(absl::StrCat("CNI_PATH=", root_, "/bin\n")));
  EXPECT_THAT(env, HasSubstr("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;"
                             "K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc123;"
                             "K8S_POD_UID=uid-1\n"));
}

TEST_F(ClientTest, DelRunsInReverseWithTheCachedResultAfterARestartAndConfigChange) {
  Plugin("first");
  Plugin("second");
  Conf("10-test.conflist", kChain);
  {
    NetworkManager net(options_);
    ASSERT_TRUE(net.Setup(Pod()).ok());
  }
  // The config changes and podshimd restarts: DEL still runs what ADD ran.
  fs::remove(root_ + "/net.d/10-test.conflist");
  Plugin("other");
  Conf("10-other.conf", R"({"cniVersion":"1.0.0","name":"other","type":"other"})");
  NetworkManager net(options_);
  EXPECT_THAT(net.CachedIds(), ElementsAre("abc123"));
  ASSERT_TRUE(net.Teardown(Pod()).ok());
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "second ADD", "second DEL", "first DEL"));
  EXPECT_EQ(Stdin(3)["prevResult"]["ips"][0]["address"], "10.1.2.3/24");
  EXPECT_EQ(Stdin(4)["prevResult"]["ips"][0]["address"], "10.1.2.3/24");
  EXPECT_TRUE(net.CachedIds().empty());
  // A second DEL without a cache entry uses the current network, no prevResult.
  ASSERT_TRUE(net.Teardown(Pod()).ok());
  EXPECT_EQ(Calls().back(), "other DEL");
  EXPECT_FALSE(Stdin(5).contains("prevResult"));
}

TEST_F(ClientTest, FailedAddIsUndoneAndTheErrorCarriesCodeAndMessage) {
  Plugin("first");
  Plugin("second",
         "if [ \"$CNI_COMMAND\" = ADD ]; then echo '{\"cniVersion\":\"1.0.0\",\"code\":11,"
         "\"msg\":\"bridge busy\",\"details\":\"try later\"}'; exit 1; fi");
  Conf("10-test.conflist", kChain);
  NetworkManager net(options_);
  auto a = net.Setup(Pod());
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(a.status().message(), HasSubstr("second"));
  EXPECT_THAT(a.status().message(), HasSubstr("error code 11: bridge busy (try later)"));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "second ADD", "second DEL", "first DEL"));
  EXPECT_TRUE(net.CachedIds().empty());
}

TEST_F(ClientTest, FailedUndoKeepsTheCacheEntryForALaterTeardown) {
  Plugin("first", "if [ \"$CNI_COMMAND\" != VERSION ]; then echo oops >&2; exit 3; fi");
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first"})");
  NetworkManager net(options_);
  auto a = net.Setup(Pod());
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(a.status().message(), HasSubstr("exit code 3: oops"));
  EXPECT_THAT(net.CachedIds(), ElementsAre("abc123"));
}

TEST_F(ClientTest, PluginTimeoutIsDeadlineExceeded) {
  Plugin("first", "sleep 30");
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first"})");
  options_.plugin_timeout = absl::Milliseconds(300);
  NetworkManager net(options_);
  auto a = net.Setup(Pod());
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, ReadyReportsMissingConfigAndMissingPlugins) {
  NetworkManager net(options_);
  auto r = net.Ready();
  EXPECT_EQ(r.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.message(), HasSubstr("no CNI network config"));
  // A config naming a plugin that is not installed.
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first",
                         "ipam":{"type":"myipam"}})");
  r = net.Ready();
  EXPECT_THAT(r.message(), HasSubstr("\"first\" not found"));
  Plugin("first");
  r = net.Ready();
  EXPECT_THAT(r.message(), HasSubstr("\"myipam\" not found"));
  Plugin("myipam");
  EXPECT_TRUE(net.Ready().ok()) << net.Ready();
  // The directory is re-read when a file changes.
  Conf("05-broken.conflist", "{");
  Conf("01-new.conf", R"({"cniVersion":"1.0.0","name":"newer","type":"first"})");
  auto current = net.CurrentNetwork();
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->name, "newer");
}

TEST_F(ClientTest, DefaultNetworkWhenTheDirectoryHasNoConfigFollowsThePodCidr) {
  options_.default_network = true;
  NetworkManager net(options_);
  auto current = net.CurrentNetwork();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->name, "podshim");
  EXPECT_EQ(current->plugins[0]["ipam"]["ranges"][0][0]["subnet"], kDefaultPodSubnet);
  net.SetPodCidr("10.244.1.0/24,fd00:10::/64");
  current = net.CurrentNetwork();
  ASSERT_TRUE(current.ok()) << current.status();
  const auto& ipam = current->plugins[0]["ipam"];
  EXPECT_EQ(ipam["ranges"][0][0]["subnet"], "10.244.1.0/24");
  EXPECT_EQ(ipam["ranges"][1][0]["subnet"], "fd00:10::/64");
  EXPECT_EQ(ipam["routes"].size(), 2u);
  // Without the plugin binaries, the network is not ready, and says why.
  EXPECT_THAT(net.Ready().message(), HasSubstr("\"podshim-bridge\" not found"));
  // Config files on the machine win over the default.
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first"})");
  current = net.CurrentNetwork();
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->name, "one");
}

TEST_F(ClientTest, CheckRunsWithTheCachedResult) {
  Plugin("first");
  Conf("10-one.conflist", R"({"cniVersion":"1.0.0","name":"one","plugins":[{"type":"first"}]})");
  NetworkManager net(options_);
  EXPECT_EQ(net.Check(Pod()).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(net.Setup(Pod()).ok());
  ASSERT_TRUE(net.Check(Pod()).ok());
  EXPECT_EQ(Calls().back(), "first CHECK");
  EXPECT_EQ(Stdin(2)["prevResult"]["ips"][0]["address"], "10.1.2.3/24");
}

TEST_F(ClientTest, ReadyAsksEachPluginForItsVersionsOnce) {
  Plugin("first", "", R"(["0.3.1","0.4.0"])");
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first"})");
  NetworkManager net(options_);
  auto r = net.Ready();
  EXPECT_EQ(r.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.message(), HasSubstr("is CNI 1.0.0, which plugin first does not support"));
  // A plugin that speaks it.
  Plugin("first");
  Conf("10-one.conf", R"({"cniVersion":"1.0.0","name":"one","type":"first","x":1})");
  EXPECT_TRUE(net.Ready().ok()) << net.Ready();
  // The answer is kept for the same config: a broken plugin is not asked again.
  Plugin("first", "", "broken");
  EXPECT_TRUE(net.Ready().ok());
}

TEST_F(ClientTest, GarbageCollectTellsCni11PluginsTheValidAttachments) {
  Plugin("first");
  Conf("10-old.conflist", R"({"cniVersion":"1.0.0","name":"old","plugins":[{"type":"first"}]})");
  NetworkManager net(options_);
  ASSERT_TRUE(net.GarbageCollect({"a1"}).ok());
  EXPECT_FALSE(fs::exists(root_ + "/log/calls"));  // 1.0.0 has no GC
  Conf("10-old.conflist", R"({"cniVersion":"1.1.0","name":"new","plugins":[{"type":"first"}]})");
  ASSERT_TRUE(net.GarbageCollect({"a1", "b2"}).ok());
  EXPECT_THAT(Calls(), ElementsAre("first GC"));
  nlohmann::json in = Stdin(1);
  EXPECT_EQ(in["cni.dev/valid-attachments"],
            nlohmann::json::parse(R"([{"containerID":"a1","ifname":"eth0"},
                                      {"containerID":"b2","ifname":"eth0"}])"));
  EXPECT_THAT(Env(1), Not(HasSubstr("CNI_CONTAINERID")));
}

TEST(PodAddressesTest, TakesSandboxAddressesIpv4First) {
  auto result = nlohmann::json::parse(R"({"interfaces":[{"name":"br0"},{"name":"veth1"},
      {"name":"eth0","sandbox":"/x"}],
      "ips":[{"address":"fd00::5/64","interface":2},{"address":"10.88.0.1/16","interface":0},
             {"address":"10.88.0.5/16","interface":2},{"address":"10.9.9.9/32"}]})");
  EXPECT_THAT(PodAddresses(result), ElementsAre("10.88.0.5", "10.9.9.9", "fd00::5"));
  EXPECT_TRUE(PodAddresses(nlohmann::json::object()).empty());
}

TEST(ParseBandwidthTest, KubernetesQuantities) {
  EXPECT_EQ(*ParseBandwidth("10M"), 10000000u);
  EXPECT_EQ(*ParseBandwidth("1Gi"), 1073741824u);
  EXPECT_EQ(*ParseBandwidth("500k"), 500000u);
  EXPECT_EQ(*ParseBandwidth("1000"), 1000u);
  EXPECT_EQ(*ParseBandwidth("1.5M"), 1500000u);
  EXPECT_FALSE(ParseBandwidth("fast").ok());
  EXPECT_FALSE(ParseBandwidth("M").ok());
  EXPECT_FALSE(ParseBandwidth("-1M").ok());
}

TEST(FindPluginTest, RefusesPathsInTypes) {
  EXPECT_EQ(FindPlugin("../bin/sh", {"/usr/lib/cni"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FindPlugin("nonexistent-plugin", {"/usr/lib/cni"}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace podshim::cni
