// Unit tests of podshim-ipam's config parsing and allocator, on a state
// directory under a fresh temp dir.
#include "cni/ipam.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cni/netconf.h"

namespace podshim::cni {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

// A temp directory removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "podshim-ipam-test-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

nlohmann::json Conf(const nlohmann::json& ipam) {
  return {{"cniVersion", "1.0.0"}, {"name", "testnet"}, {"type", "podshim-bridge"}, {"ipam", ipam}};
}

IpamConfig MustParse(const nlohmann::json& ipam) {
  absl::StatusOr<IpamConfig> config = ParseIpamConfig(Conf(ipam));
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : IpamConfig();
}

std::string ConfigError(const nlohmann::json& ipam) {
  absl::StatusOr<IpamConfig> config = ParseIpamConfig(Conf(ipam));
  EXPECT_FALSE(config.ok()) << ipam.dump();
  EXPECT_EQ(CniCodeOf(config.status()), kErrInvalidConfig) << config.status();
  return std::string(config.status().message());
}

nlohmann::json Ranges(const char* text) { return nlohmann::json::parse(text); }

TEST(IpamConfigTest, DefaultsFromTheSubnet) {
  IpamConfig c =
      MustParse({{"type", "podshim-ipam"}, {"ranges", Ranges(R"([[{"subnet":"10.9.0.7/24"}]])")}});
  ASSERT_EQ(c.range_sets.size(), 1U);
  const IpamRange& r = c.range_sets[0].ranges[0];
  EXPECT_EQ(r.subnet.ToString(), "10.9.0.0/24");
  EXPECT_EQ(r.gateway.ToString(), "10.9.0.1");
  EXPECT_EQ(r.range_start.ToString(), "10.9.0.1");
  EXPECT_EQ(r.range_end.ToString(), "10.9.0.254");
  EXPECT_EQ(c.data_dir, kDefaultIpamDataDir);
  EXPECT_EQ(c.network, "testnet");

  IpamConfig v6 = MustParse({{"ranges", Ranges(R"([[{"subnet":"fd00:9::/120"}]])")}});
  EXPECT_EQ(v6.range_sets[0].ranges[0].range_end.ToString(), "fd00:9::ff");
}

TEST(IpamConfigTest, AcceptsPodshimsDefaultNetwork) {
  nlohmann::json list = nlohmann::json::parse(DefaultBridgeConflist());
  nlohmann::json plugin = list["plugins"][0];
  plugin["name"] = list["name"];
  plugin["cniVersion"] = list["cniVersion"];
  absl::StatusOr<IpamConfig> c = ParseIpamConfig(plugin);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->range_sets[0].ranges[0].subnet.ToString(), kDefaultPodSubnet);
  ASSERT_EQ(c->routes.size(), 1U);
  EXPECT_EQ(c->routes[0].dst.ToString(), "0.0.0.0/0");
}

TEST(IpamConfigTest, HostLocalStyleSingleRange) {
  IpamConfig c = MustParse(
      {{"subnet", "10.9.0.0/24"}, {"rangeStart", "10.9.0.100"}, {"gateway", "10.9.0.254"}});
  ASSERT_EQ(c.range_sets.size(), 1U);
  EXPECT_EQ(c.range_sets[0].ranges[0].range_start.ToString(), "10.9.0.100");
  EXPECT_EQ(c.range_sets[0].ranges[0].gateway.ToString(), "10.9.0.254");
}

TEST(IpamConfigTest, ErrorsNameTheKey) {
  EXPECT_THAT(ConfigError({{"type", "podshim-ipam"}}), HasSubstr("ipam.ranges is missing"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges("[]")}}), HasSubstr("ipam.ranges is empty"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges("[[]]")}}), HasSubstr("ipam.ranges[0] is empty"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"gateway":"10.0.0.1"}]])")}}),
              HasSubstr("ipam.ranges[0][0].subnet is missing"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/33"}]])")}}),
              HasSubstr("ipam.ranges[0][0].subnet"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/31"}]])")}}),
              HasSubstr("ipam.ranges[0][0].subnet 10.0.0.0/31 is too small"));
  EXPECT_THAT(
      ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}]])")}}),
      HasSubstr("ipam.ranges[0][0].rangeStart 10.0.1.5 is not in subnet 10.0.0.0/24"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24",
      "rangeStart":"10.0.0.50","rangeEnd":"10.0.0.40"}]])")}}),
              HasSubstr("ipam.ranges[0][0].rangeEnd 10.0.0.40 is below rangeStart"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24","gateway":7}]])")}}),
              HasSubstr("ipam.ranges[0][0].gateway must be a string"));
  EXPECT_THAT(
      ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]])")}}),
      HasSubstr("ipam.ranges[0][1] mixes IPv4 and IPv6"));
  EXPECT_THAT(ConfigError({{"ranges",
                            Ranges(R"([[{"subnet":"10.0.0.0/16"}],[{"subnet":"10.0.5.0/24"}]])")}}),
              HasSubstr("ipam.ranges[1][0] overlaps ipam.ranges[0][0]"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24"}]])")},
                           {"routes", Ranges(R"([{"gw":"10.0.0.1"}])")}}),
              HasSubstr("ipam.routes[0].dst is missing"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24"}]])")},
                           {"routes", Ranges(R"([{"dst":"0.0.0.0/0","gw":"fd00::1"}])")}}),
              HasSubstr("ipam.routes[0].gw fd00::1 is not of the family"));
  EXPECT_THAT(ConfigError({{"ranges", Ranges(R"([[{"subnet":"10.0.0.0/24"}]])")},
                           {"dataDir", "relative/dir"}}),
              HasSubstr("ipam.dataDir \"relative/dir\" must be an absolute path"));

  nlohmann::json no_name = {{"cniVersion", "1.0.0"}, {"ipam", {{"subnet", "10.0.0.0/24"}}}};
  EXPECT_THAT(ParseIpamConfig(no_name).status().message(), HasSubstr("\"name\" is missing"));
  EXPECT_THAT(ParseIpamConfig({{"name", "n"}}).status().message(), HasSubstr("ipam is missing"));
}

class IpamStoreTest : public ::testing::Test {
 protected:
  IpamConfig Config(const char* ranges) {
    IpamConfig c = MustParse({{"ranges", Ranges(ranges)},
                              {"routes", Ranges(R"([{"dst":"0.0.0.0/0"}])")},
                              {"dataDir", dir_.path()}});
    return c;
  }
  IpamStore Store(const IpamConfig& c) {
    absl::StatusOr<IpamStore> store = IpamStore::Open(c);
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }
  static std::string IpOf(const absl::StatusOr<CniResult>& r, size_t i = 0) {
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->ips.size() <= i) return "";
    return r->ips[i].address.address.ToString();
  }

  TempDir dir_;
};

TEST_F(IpamStoreTest, NeverHandsOutNetworkGatewayOrBroadcastAndReportsExhaustion) {
  // A /29: .0 network, .1 gateway, .7 broadcast; .2 to .6 are usable.
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.0.0/29"}]])"));
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<CniResult> r = store.Allocate({absl::StrCat("c", i), "eth0"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->ips[0].address.length, 29);
    EXPECT_EQ(r->ips[0].gateway->ToString(), "10.77.0.1");
    ASSERT_EQ(r->routes.size(), 1U);
    got.insert(IpOf(r));
  }
  EXPECT_EQ(got, (std::set<std::string>{"10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5",
                                        "10.77.0.6"}));
  absl::StatusOr<CniResult> full = store.Allocate({"c-last", "eth0"});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(CniCodeOf(full.status()), kErrAddressesExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("no free address left in ipam.ranges[0]"));
  EXPECT_THAT(full.status().message(), HasSubstr("testnet"));
}

TEST_F(IpamStoreTest, RotatesInsteadOfReusingAFreedAddressAtOnce) {
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.1.0/24"}]])"));
  std::string first = IpOf(store.Allocate({"a", "eth0"}));
  EXPECT_EQ(first, "10.77.1.2");
  ASSERT_TRUE(store.Release({"a", "eth0"}).ok());
  std::string second = IpOf(store.Allocate({"b", "eth0"}));
  EXPECT_EQ(second, "10.77.1.3");  // not the one just freed
}

TEST_F(IpamStoreTest, WrapsAroundTheRangeAndSkipsTakenAddresses) {
  IpamStore store = Store(
      Config(R"([[{"subnet":"10.77.2.0/24","rangeStart":"10.77.2.10","rangeEnd":"10.77.2.12"}]])"));
  EXPECT_EQ(IpOf(store.Allocate({"a", "eth0"})), "10.77.2.10");
  EXPECT_EQ(IpOf(store.Allocate({"b", "eth0"})), "10.77.2.11");
  EXPECT_EQ(IpOf(store.Allocate({"c", "eth0"})), "10.77.2.12");
  ASSERT_TRUE(store.Release({"a", "eth0"}).ok());
  EXPECT_EQ(IpOf(store.Allocate({"d", "eth0"})), "10.77.2.10");  // wrapped
  EXPECT_FALSE(store.Allocate({"e", "eth0"}).ok());
}

TEST_F(IpamStoreTest, SecondAddForTheSameOwnerReturnsTheSameAddress) {
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.3.0/24"}]])"));
  std::string first = IpOf(store.Allocate({"a", "eth0"}));
  EXPECT_EQ(IpOf(store.Allocate({"a", "eth0"})), first);
  EXPECT_NE(IpOf(store.Allocate({"a", "eth1"})), first);  // another interface, another address
  absl::StatusOr<std::map<IpAddress, IpamOwner>> all = store.Allocations();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2U);
}

TEST_F(IpamStoreTest, ReleaseIsIdempotentAndOnlyFreesTheOwner) {
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.4.0/24"}]])"));
  std::string a = IpOf(store.Allocate({"a", "eth0"}));
  std::string b = IpOf(store.Allocate({"b", "eth0"}));
  ASSERT_TRUE(store.Release({"a", "eth0"}).ok());
  ASSERT_TRUE(store.Release({"a", "eth0"}).ok());
  ASSERT_TRUE(store.Release({"never-added", "eth0"}).ok());
  absl::StatusOr<std::map<IpAddress, IpamOwner>> all = store.Allocations();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1U);
  EXPECT_EQ(all->begin()->first.ToString(), b);
  EXPECT_EQ(all->begin()->second, (IpamOwner{"b", "eth0"}));
  EXPECT_FALSE(fs::exists(fs::path(store.dir()) / a));
}

TEST_F(IpamStoreTest, FilesHoldOwnerAndStateLivesUnderTheNetworkName) {
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.5.0/24"}]])"));
  std::string ip = IpOf(store.Allocate({"cid123", "net1"}));
  EXPECT_EQ(store.dir(), dir_.path() + "/testnet");
  std::ifstream in(fs::path(store.dir()) / ip);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "cid123\nnet1");
  EXPECT_TRUE(fs::exists(fs::path(store.dir()) / "lock"));
  EXPECT_TRUE(fs::exists(fs::path(store.dir()) / "last_reserved_ip.0"));
}

TEST_F(IpamStoreTest, OneAddressPerRangeSetBothFamilies) {
  IpamStore store = Store(Config(
      R"([[{"subnet":"10.77.6.0/24"}],[{"subnet":"fd00:77:6::/64","gateway":"fd00:77:6::fe"}]])"));
  absl::StatusOr<CniResult> r = store.Allocate({"a", "eth0"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->ips.size(), 2U);
  EXPECT_EQ(r->ips[0].address.ToString(), "10.77.6.2/24");
  EXPECT_EQ(r->ips[1].address.ToString(), "fd00:77:6::1/64");
  EXPECT_EQ(r->ips[1].gateway->ToString(), "fd00:77:6::fe");
  absl::StatusOr<CniResult> held = store.Check({"a", "eth0"});
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->ips.size(), 2U);
  EXPECT_FALSE(store.Check({"b", "eth0"}).ok());
}

TEST_F(IpamStoreTest, MultipleRangesInASetAreUsedInTurn) {
  IpamStore store = Store(Config(R"([[
      {"subnet":"10.77.7.0/30"},
      {"subnet":"10.77.8.0/30"}]])"));
  // A /30 has one usable address besides its gateway.
  EXPECT_EQ(IpOf(store.Allocate({"a", "eth0"})), "10.77.7.2");
  EXPECT_EQ(IpOf(store.Allocate({"b", "eth0"})), "10.77.8.2");
  absl::StatusOr<CniResult> c = store.Allocate({"c", "eth0"});
  EXPECT_EQ(CniCodeOf(c.status()), kErrAddressesExhausted);
}

TEST_F(IpamStoreTest, FailedAllocationKeepsNothing) {
  // The second range set is full after one allocation.
  IpamStore store = Store(Config(R"([[{"subnet":"10.77.9.0/24"}],[{"subnet":"10.77.10.0/30"}]])"));
  ASSERT_TRUE(store.Allocate({"a", "eth0"}).ok());
  absl::StatusOr<CniResult> b = store.Allocate({"b", "eth0"});
  ASSERT_FALSE(b.ok());
  absl::StatusOr<std::map<IpAddress, IpamOwner>> all = store.Allocations();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2U);  // only a's two addresses
}

TEST_F(IpamStoreTest, TwentyConcurrentProcessesGetTwentyDistinctAddresses) {
  IpamConfig config = Config(R"([[{"subnet":"10.77.11.0/24"}]])");
  constexpr int kProcs = 20;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(pipefd[0]);
      absl::StatusOr<IpamStore> store = IpamStore::Open(config);
      if (!store.ok()) _exit(2);
      absl::StatusOr<CniResult> r = store->Allocate({absl::StrCat("proc", i), "eth0"});
      if (!r.ok()) _exit(3);
      std::string line = r->ips[0].address.address.ToString() + "\n";
      // Lines are far below PIPE_BUF, so each write lands whole.
      if (write(pipefd[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
      _exit(0);
    }
    children.push_back(pid);
  }
  close(pipefd[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(pipefd[0]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  std::set<std::string> distinct;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) distinct.insert(line);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kProcs));
  absl::StatusOr<std::map<IpAddress, IpamOwner>> all = Store(config).Allocations();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(kProcs));
}

}  // namespace
}  // namespace podshim::cni
