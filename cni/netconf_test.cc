#include "cni/netconf.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::cni {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kGoodList[] = R"({
  "cniVersion": "1.0.0",
  "name": "mynet",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
})";

constexpr char kGoodConf[] = R"({
  "cniVersion": "0.4.0",
  "name": "single",
  "type": "bridge",
  "bridge": "br0"
})";

class NetconfDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-netconf-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& data) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  std::string dir_;
};

void ExpectInvalid(const absl::StatusOr<NetworkConfigList>& got, absl::string_view what) {
  ASSERT_FALSE(got.ok()) << "parsed network " << got->name;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr(std::string(what)));
}

TEST(ParseNetworkConfigListTest, ParsesAList) {
  auto got = ParseNetworkConfigList(kGoodList);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "mynet");
  EXPECT_EQ(got->cni_version, "1.0.0");
  EXPECT_FALSE(got->disable_check);
  ASSERT_THAT(got->plugins, SizeIs(2));
  EXPECT_EQ(got->plugins[0]["type"], "bridge");
  EXPECT_EQ(got->plugins[0]["ipam"]["type"], "host-local");
  EXPECT_EQ(got->plugins[1]["capabilities"]["portMappings"], true);
  EXPECT_EQ(got->source, "");
  EXPECT_THAT(got->rejected, IsEmpty());
}

TEST(ParseNetworkConfigListTest, DisableCheck) {
  auto parse = [](const std::string& value) {
    return ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","disableCheck":)" + value +
                                  R"(,"plugins":[{"type":"x"}]})");
  };
  EXPECT_TRUE(parse("true")->disable_check);
  EXPECT_FALSE(parse("false")->disable_check);
  EXPECT_TRUE(parse(R"("TRUE")")->disable_check);
  EXPECT_FALSE(parse(R"("false")")->disable_check);
  ExpectInvalid(parse(R"("yes")"), "\"disableCheck\" must be true or false, got \"yes\"");
  ExpectInvalid(parse("1"), "\"disableCheck\" must be true or false");
}

TEST(ParseNetworkConfigListTest, RejectsMissingOrWrongFields) {
  ExpectInvalid(ParseNetworkConfigList(""), "CNI network list: not valid JSON");
  ExpectInvalid(ParseNetworkConfigList("{"), "not valid JSON");
  // A number too large for a double is nlohmann's out_of_range, not a
  // parse_error (found by fuzz/cni_fuzz.cc: it ended the process).
  ExpectInvalid(ParseNetworkConfigList(R"({"name": "n", "x": 4E4422})"), "number overflow");
  ExpectInvalid(ParseNetworkConfigList("[]"), "want a JSON object, got array");
  ExpectInvalid(ParseNetworkConfigList(R"({"name":"n","plugins":[{"type":"x"}]})"),
                "CNI network list: \"cniVersion\" is missing");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":1,"name":"n","plugins":[{"type":"x"}]})"),
                "\"cniVersion\" must be a string, got number");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"","name":"n","plugins":[{"type":"x"}]})"),
                "\"cniVersion\" is empty");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})"),
                "\"name\" is missing");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":null,"plugins":[]})"),
                "\"name\" must be a string, got null");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n"})"),
                "\"plugins\" is missing");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":{}})"),
                "\"plugins\" must be an array, got object");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":[]})"),
                "\"plugins\" is empty");
  ExpectInvalid(
      ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{}]})"),
      "plugins[1]: \"type\" is missing");
  ExpectInvalid(
      ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":""}]})"),
      "plugins[0]: \"type\" is empty");
  ExpectInvalid(
      ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":7}]})"),
      "plugins[0]: \"type\" must be a string");
  ExpectInvalid(ParseNetworkConfigList(R"({"cniVersion":"1.0.0","name":"n","plugins":["x"]})"),
                "plugins[0]: must be a JSON object, got string");
}

TEST(ParseNetworkConfigListTest, NetworkNames) {
  for (const char* name : {"a", "A", "0", "my-net", "my_net.v2", "k8s-pod-network", "a--__..z"}) {
    auto got = ParseNetworkConfigList(std::string(R"({"cniVersion":"1.0.0","name":")") + name +
                                      R"(","plugins":[{"type":"x"}]})");
    EXPECT_TRUE(got.ok()) << name << ": " << got.status();
  }
  for (const char* name : {"-a", "_a", ".a", "a b", "a/b", "a:b", "ü", "a\\u0000"}) {
    auto got = ParseNetworkConfigList(std::string(R"({"cniVersion":"1.0.0","name":")") + name +
                                      R"(","plugins":[{"type":"x"}]})");
    ExpectInvalid(got, "\"name\" \"");
  }
}

TEST(ParseNetworkConfigTest, WrapsASingleConfig) {
  auto got = ParseNetworkConfig(kGoodConf);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "single");
  EXPECT_EQ(got->cni_version, "0.4.0");
  ASSERT_THAT(got->plugins, SizeIs(1));
  EXPECT_EQ(got->plugins[0]["type"], "bridge");
  EXPECT_EQ(got->plugins[0]["bridge"], "br0");
}

TEST(ParseNetworkConfigTest, RejectsMissingType) {
  ExpectInvalid(ParseNetworkConfig(R"({"cniVersion":"1.0.0","name":"n"})"),
                "CNI network config: \"type\" is missing");
  // A list is not a single config.
  ExpectInvalid(ParseNetworkConfig(kGoodList), "\"type\" is missing");
  ExpectInvalid(ParseNetworkConfig(R"({"name":"n","type":"x"})"), "\"cniVersion\" is missing");
  ExpectInvalid(ParseNetworkConfig("7"), "want a JSON object, got number");
}

TEST_F(NetconfDirTest, LoadNetworkFileByExtension) {
  auto list = LoadNetworkFile(Write("a.conflist", kGoodList));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->name, "mynet");
  EXPECT_EQ(list->source, dir_ + "/a.conflist");

  auto conf = LoadNetworkFile(Write("b.conf", kGoodConf));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->name, "single");

  // .json: a list when it has "plugins", a single config otherwise.
  EXPECT_EQ(LoadNetworkFile(Write("c.json", kGoodList))->plugins.size(), 2u);
  EXPECT_EQ(LoadNetworkFile(Write("d.json", kGoodConf))->plugins.size(), 1u);

  // A list in a .conf file is read as a single config and has no type.
  auto wrong = LoadNetworkFile(Write("e.conf", kGoodList));
  ExpectInvalid(wrong, "\"type\" is missing");
  EXPECT_THAT(wrong.status().message(), HasSubstr("CNI config file \"" + dir_ + "/e.conf\": "));
}

TEST_F(NetconfDirTest, LoadNetworkFileErrorsNameTheFile) {
  auto missing = LoadNetworkFile(dir_ + "/nope.conf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_ + "/nope.conf"));

  auto ext = LoadNetworkFile(Write("x.yaml", kGoodList));
  ExpectInvalid(ext, "extension \".yaml\" is not one of");

  std::filesystem::create_directory(dir_ + "/d.conf");
  auto dir = LoadNetworkFile(dir_ + "/d.conf");
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().message(), HasSubstr("not a regular file"));

  auto big = LoadNetworkFile(Write("big.conf", std::string((1 << 20) + 1, ' ')));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("more than the 1048576 allowed"));
}

TEST_F(NetconfDirTest, FirstByNameWins) {
  Write("20-second.conflist", R"({"cniVersion":"1.0.0","name":"second","plugins":[{"type":"x"}]})");
  Write("10-first.conflist", R"({"cniVersion":"1.0.0","name":"first","plugins":[{"type":"x"}]})");
  Write("30-third.conf", R"({"cniVersion":"1.0.0","name":"third","type":"x"})");
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "first");
  EXPECT_EQ(got->source, dir_ + "/10-first.conflist");
  EXPECT_THAT(got->rejected, IsEmpty());
}

TEST_F(NetconfDirTest, SortsByFileNameNotExtension) {
  // "a.conf" < "a.conflist" < "b.json" as plain strings.
  Write("b.json", R"({"cniVersion":"1.0.0","name":"b","type":"x"})");
  Write("a.conflist", R"({"cniVersion":"1.0.0","name":"alist","plugins":[{"type":"x"}]})");
  Write("a.conf", R"({"cniVersion":"1.0.0","name":"aconf","type":"x"})");
  EXPECT_EQ(LoadDefaultNetwork(dir_)->name, "aconf");
}

TEST_F(NetconfDirTest, BrokenFilesAreSkippedAndReported) {
  Write("00-broken.conflist", "{ not json");
  Write("05-noname.conf", R"({"cniVersion":"1.0.0","type":"bridge"})");
  Write("10-good.conflist", kGoodList);
  Write("20-later-broken.conf", "garbage");
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "mynet");
  ASSERT_THAT(got->rejected, ElementsAre(Field(&RejectedFile::path, dir_ + "/00-broken.conflist"),
                                         Field(&RejectedFile::path, dir_ + "/05-noname.conf")));
  EXPECT_THAT(got->rejected[0].error.message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(got->rejected[1].error.message(), HasSubstr("\"name\" is missing"));
}

TEST_F(NetconfDirTest, IgnoresOtherFilesAndDirectories) {
  Write("00-readme.txt", "hello");
  Write("01-old.conf.bak", "junk");
  Write("02-editor.conflist~", "junk");
  Write("03-upper.CONF", "junk");
  std::filesystem::create_directory(dir_ + "/04-dir.conflist");
  Write("99-good.conf", kGoodConf);
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "single");
  EXPECT_THAT(got->rejected, IsEmpty());
}

TEST_F(NetconfDirTest, FollowsSymlinksToFiles) {
  std::string target = Write("real.txt", kGoodConf);
  std::filesystem::create_symlink(target, dir_ + "/10-link.conf");
  std::filesystem::create_symlink(dir_ + "/missing", dir_ + "/05-dangling.conf");
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->source, dir_ + "/10-link.conf");
  ASSERT_THAT(got->rejected, SizeIs(1));
  EXPECT_EQ(got->rejected[0].error.code(), absl::StatusCode::kNotFound);
}

TEST_F(NetconfDirTest, NotFoundWhenEmpty) {
  Write("readme.md", "x");
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("\"" + dir_ + "\""));
  EXPECT_THAT(got.status().message(), HasSubstr("no *.conflist, *.conf or *.json files"));
}

TEST_F(NetconfDirTest, NotFoundWhenDirectoryMissing) {
  auto got = LoadDefaultNetwork(dir_ + "/none");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr(dir_ + "/none\": the directory does not exist"));
}

TEST_F(NetconfDirTest, NotFoundListsWhyEachFileWasRejected) {
  Write("10-a.conflist", R"({"cniVersion":"1.0.0","name":"a","plugins":[]})");
  Write("20-b.conf", R"({"cniVersion":"1.0.0","name":"-b","type":"x"})");
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("no usable CNI network config in \"" + dir_));
  EXPECT_THAT(got.status().message(), HasSubstr("10-a.conflist\": \"plugins\" is empty; "));
  EXPECT_THAT(got.status().message(), HasSubstr("20-b.conf\": \"name\" \"-b\" must be"));
}

TEST_F(NetconfDirTest, NotADirectory) {
  std::string file = Write("file", "x");
  auto got = LoadDefaultNetwork(file);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr(file));
}

TEST(DefaultBridgeConflistTest, IsAValidListWithTheDocumentedShape) {
  std::string text = DefaultBridgeConflist();
  auto got = ParseNetworkConfigList(text);
  ASSERT_TRUE(got.ok()) << got.status() << "\n" << text;
  EXPECT_EQ(got->name, "podshim");
  EXPECT_EQ(got->cni_version, "1.0.0");
  ASSERT_THAT(got->plugins, SizeIs(1));
  const nlohmann::json& p = got->plugins[0];
  EXPECT_EQ(p["type"], "podshim-bridge");
  EXPECT_EQ(p["bridge"], "podshim0");
  EXPECT_EQ(p["isGateway"], true);
  EXPECT_EQ(p["ipMasq"], false);
  EXPECT_EQ(p["hairpinMode"], true);
  EXPECT_EQ(p["capabilities"], nlohmann::json({{"portMappings", true}}));
  EXPECT_EQ(p["ipam"]["type"], "podshim-ipam");
  EXPECT_EQ(p["ipam"]["ranges"], nlohmann::json::parse(R"([[{"subnet":"10.88.0.0/16"}]])"));
  EXPECT_EQ(p["ipam"]["routes"], nlohmann::json::parse(R"([{"dst":"0.0.0.0/0"}])"));
  // Readable on disk: indented, keys in the written order, trailing newline.
  EXPECT_THAT(text, HasSubstr("{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"podshim\""));
  EXPECT_EQ(text.back(), '\n');
}

TEST(DefaultBridgeConflistTest, CustomAndEmptySubnet) {
  auto custom = nlohmann::json::parse(DefaultBridgeConflist("10.244.0.0/24"));
  EXPECT_EQ(custom["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.0.0/24");
  auto empty = nlohmann::json::parse(DefaultBridgeConflist(""));
  EXPECT_EQ(empty["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], kDefaultPodSubnet);
  auto v6 = nlohmann::json::parse(DefaultBridgeConflist("fd00:88::/64"));
  EXPECT_EQ(v6["plugins"][0]["ipam"]["routes"][0]["dst"], "::/0");
  // The subnet is data, not JSON text.
  auto odd = nlohmann::json::parse(DefaultBridgeConflist("\"}, {"));
  EXPECT_EQ(odd["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "\"}, {");
}

TEST_F(NetconfDirTest, DefaultConflistWrittenToDiskIsLoaded) {
  Write("99-podshim.conflist", DefaultBridgeConflist());
  auto got = LoadDefaultNetwork(dir_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "podshim");
}

}  // namespace
}  // namespace podshim::cni
