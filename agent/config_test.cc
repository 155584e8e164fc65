#include "agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::agent {
namespace {

using ::testing::HasSubstr;

TEST(Config, EmbeddedDefaultsAreValid) {
  Config c;
  EXPECT_EQ(c.socket, "/run/podshim/podshim.sock");
  EXPECT_EQ(c.state_dir, "/run/podshim");
  EXPECT_EQ(c.root_dir, "/var/lib/podshim");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(Config, FileValuesReplaceBaseAndOthersStay) {
  Config base;
  base.root_dir = "/srv/podshim";
  auto c = ParseConfigToml("socket = \"/tmp/p.sock\"\nlog_level = \"debug\"\n", "t.toml", base);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->socket, "/tmp/p.sock");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->root_dir, "/srv/podshim");
  EXPECT_EQ(c->state_dir, Config{}.state_dir);
}

TEST(Config, UnknownKeyIsRejectedByName) {
  auto c = ParseConfigToml("sokcet = \"/tmp/p.sock\"\n", "my.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("sokcet"));
  EXPECT_THAT(c.status().message(), HasSubstr("my.toml"));
}

TEST(Config, WrongTypeIsRejectedByName) {
  auto c = ParseConfigToml("log_level = 3\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("log_level"));
}

TEST(Config, SyntaxErrorNamesTheFile) {
  auto c = ParseConfigToml("socket = \n", "broken.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("broken.toml"));
}

// TOML is UTF-8; toml11 3.7 read past its buffer on "'\xd6'\xd6" (found by
// fuzz/config_fuzz.cc), so invalid UTF-8 is refused before it parses.
TEST(Config, InvalidUtf8IsRefusedWithItsOffset) {
  for (const char* text : {"'\xd6'\xd6", "socket = \"\xc0\xaf\"", "a = \"\xed\xa0\x80\"",
                           "a = \"\xf4\x90\x80\x80\"", "a = \"\xe2\x82\""}) {
    auto c = ParseConfigToml(text, "bad.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("bad.toml: not UTF-8 (byte "));
  }
  // Well-formed multi-byte text still parses.
  auto ok = ParseConfigToml("# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3\n", "good.toml");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(Config, ValidationNamesTheKey) {
  Config c;
  c.state_dir = "relative/dir";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("state_dir"));
  c = Config{};
  c.socket = "/" + std::string(200, 'x');
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("socket"));
  c = Config{};
  c.log_level = "loud";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("log_level"));
  c = Config{};
  c.log_format = "xml";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("log_format"));
}

TEST(Config, JsonCarriesEveryKey) {
  Config c;
  c.root_dir = "/x";
  auto j = ConfigToJson(c);
  EXPECT_EQ(j["root_dir"], "/x");
  EXPECT_EQ(j["socket"], c.socket);
  EXPECT_EQ(j["cgroup_parent"], "/podshim");
  EXPECT_EQ(j["cni"]["conf_dir"], "/etc/cni/net.d");
  EXPECT_EQ(j["pids_limit"], 0);
  EXPECT_EQ(j["cgroup_favor_dynmods"], true);
  EXPECT_EQ(j["handoff_ttl_seconds"], 300);
  EXPECT_EQ(j["rpc_queue_limit"], 1024);
  EXPECT_EQ(j["exec_sync_max_timeout_seconds"], 600);
  EXPECT_EQ(j["max_layer_bytes"], int64_t{32} << 30);
  EXPECT_EQ(j["max_layer_entries"], 1'000'000);
  EXPECT_EQ(j["streaming_address"], "127.0.0.1:0");
  EXPECT_EQ(j["streaming_idle_timeout"], "4h");
  EXPECT_EQ(j["streaming_token_ttl"], "1m");
  EXPECT_EQ(j["streaming_max_streams"], 256);
  EXPECT_EQ(j.size(), 20u);
}

TEST(Config, Streaming) {
  auto c = ParseConfigToml(
      "streaming_address = \"0.0.0.0:10010\"\nstreaming_idle_timeout = \"30m\"\n"
      "streaming_token_ttl = \"90s\"\nstreaming_max_streams = 8\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->streaming_address, "0.0.0.0:10010");
  EXPECT_EQ(*StreamingDuration(c->streaming_idle_timeout), absl::Minutes(30));
  EXPECT_EQ(*StreamingDuration(c->streaming_token_ttl), absl::Seconds(90));
  EXPECT_EQ(c->streaming_max_streams, 8);
  EXPECT_TRUE(ValidateConfig(*c).ok());
  for (const char* bad : {"streaming_max_streams = 0\n", "streaming_max_streams = \"8\"\n",
                          "streaming_token_ttl = 60\n"}) {
    auto parsed = ParseConfigToml(bad, "t.toml");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("streaming_")) << bad;
  }
  for (const char* bad : {"4", "0s", "-1m", "inf", "soon"}) {
    Config config;
    config.streaming_idle_timeout = bad;
    EXPECT_THAT(std::string(ValidateConfig(config).message()), HasSubstr("streaming_idle_timeout"))
        << bad;
  }
  Config config;
  config.streaming_address = "localhost";
  EXPECT_THAT(std::string(ValidateConfig(config).message()), HasSubstr("streaming_address"));
}

TEST(Config, ExecSyncMaxTimeout) {
  auto c = ParseConfigToml("exec_sync_max_timeout_seconds = 3\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->exec_sync_max_timeout_seconds, 3);
  for (const char* bad :
       {"exec_sync_max_timeout_seconds = 0\n", "exec_sync_max_timeout_seconds = \"1h\"\n"}) {
    auto parsed = ParseConfigToml(bad, "t.toml");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("exec_sync_max_timeout_seconds"));
  }
}

TEST(Config, LayerCaps) {
  auto c = ParseConfigToml("max_layer_bytes = 4096\nmax_layer_entries = 10\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_layer_bytes, 4096);
  EXPECT_EQ(c->max_layer_entries, 10);
  for (const char* bad :
       {"max_layer_bytes = 0\n", "max_layer_bytes = \"1G\"\n", "max_layer_entries = -1\n"}) {
    auto parsed = ParseConfigToml(bad, "t.toml");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("max_layer_"));
  }
  Config config;
  config.max_layer_entries = 0;
  EXPECT_THAT(std::string(ValidateConfig(config).message()), HasSubstr("max_layer_entries"));
}

TEST(Config, RpcQueueLimit) {
  auto c = ParseConfigToml("rpc_queue_limit = 8\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rpc_queue_limit, 8);
  EXPECT_TRUE(ValidateConfig(*c).ok());
  for (const char* bad :
       {"rpc_queue_limit = 0\n", "rpc_queue_limit = -1\n", "rpc_queue_limit = \"many\"\n"}) {
    auto parsed = ParseConfigToml(bad, "t.toml");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("rpc_queue_limit")) << bad;
  }
  Config zero;
  zero.rpc_queue_limit = 0;
  EXPECT_THAT(std::string(ValidateConfig(zero).message()), HasSubstr("rpc_queue_limit"));
}

TEST(Config, HandoffTtl) {
  EXPECT_EQ(Config{}.handoff_ttl_seconds, 300);
  auto c = ParseConfigToml("handoff_ttl_seconds = 2\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->handoff_ttl_seconds, 2);
  EXPECT_TRUE(ValidateConfig(*c).ok());
  for (const char* bad : {"handoff_ttl_seconds = 0\n", "handoff_ttl_seconds = -5\n",
                          "handoff_ttl_seconds = \"5m\"\n", "handoff_ttl_seconds = 1.5\n"}) {
    auto parsed = ParseConfigToml(bad, "t.toml");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("handoff_ttl_seconds")) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("more than 0")) << bad;
  }
  // A value set by a flag is checked by ValidateConfig.
  Config zero;
  zero.handoff_ttl_seconds = 0;
  EXPECT_EQ(ValidateConfig(zero).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ValidateConfig(zero).message(), HasSubstr("handoff_ttl_seconds"));
  zero.handoff_ttl_seconds = -1;
  EXPECT_THAT(ValidateConfig(zero).message(), HasSubstr("more than 0"));
}

TEST(Config, PidsLimit) {
  auto c = ParseConfigToml("pids_limit = 4096\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pids_limit, 4096);
  EXPECT_THAT(ParseConfigToml("pids_limit = -1\n", "t.toml").status().message(),
              HasSubstr("pids_limit"));
  EXPECT_THAT(ParseConfigToml("pids_limit = \"many\"\n", "t.toml").status().message(),
              HasSubstr("pids_limit"));
}

TEST(Config, CgroupFavorDynmods) {
  EXPECT_TRUE(Config{}.cgroup_favor_dynmods);
  auto c = ParseConfigToml("cgroup_favor_dynmods = false\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->cgroup_favor_dynmods);
  EXPECT_FALSE(ConfigToJson(*c)["cgroup_favor_dynmods"].get<bool>());
  EXPECT_THAT(ParseConfigToml("cgroup_favor_dynmods = 1\n", "t.toml").status().message(),
              HasSubstr("cgroup_favor_dynmods"));
}

TEST(Config, CniSection) {
  auto c = ParseConfigToml(R"(
[cni]
conf_dir = "/etc/podshim/net.d"
bin_dirs = ["/opt/cni/bin"]
default_subnet = "10.99.0.0/16"
default_network = false
plugin_timeout_seconds = 5
)",
                           "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cni.conf_dir, "/etc/podshim/net.d");
  EXPECT_EQ(c->cni.bin_dirs, std::vector<std::string>{"/opt/cni/bin"});
  EXPECT_EQ(c->cni.default_subnet, "10.99.0.0/16");
  EXPECT_FALSE(c->cni.default_network);
  EXPECT_TRUE(c->cni.enabled);
  EXPECT_EQ(c->cni.plugin_timeout_seconds, 5);
  EXPECT_THAT(ParseConfigToml("[cni]\nbogus = 1\n", "t.toml").status().message(),
              HasSubstr("cni.bogus: unknown key"));
  EXPECT_THAT(ParseConfigToml("[cni]\nplugin_timeout_seconds = 0\n", "t.toml").status().message(),
              HasSubstr("cni.plugin_timeout_seconds"));
  Config bad;
  bad.cni.bin_dirs = {"relative/dir"};
  EXPECT_THAT(ValidateConfig(bad).message(), HasSubstr("cni.bin_dirs"));
}

TEST(Config, RegistrySection) {
  auto c = ParseConfigToml(R"(
[registry]
plain_http = ["reg.lan:5000"]
max_concurrent_downloads = 5
upstream_fallback = false
[registry.mirrors]
"docker.io" = ["http://127.0.0.1:5000", "https://mirror.example"]
[registry.auths."reg.lan:5000"]
username = "u"
password = "secret"
)",
                           "r.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->registry.mirrors.at("docker.io").size(), 2u);
  EXPECT_EQ(c->registry.plain_http, std::vector<std::string>{"reg.lan:5000"});
  EXPECT_EQ(c->registry.auths.at("reg.lan:5000").password, "secret");
  EXPECT_EQ(c->registry.max_concurrent_downloads, 5);
  EXPECT_FALSE(c->registry.upstream_fallback);
  auto j = ConfigToJson(*c);
  EXPECT_EQ(j["registry"]["auths"][0], "reg.lan:5000");
  EXPECT_EQ(j.dump().find("secret"), std::string::npos);
}

TEST(Config, RegistryErrorsNameTheKey) {
  EXPECT_THAT(ParseConfigToml("[registry]\nmirors = 1\n", "t").status().message(),
              HasSubstr("registry.mirors"));
  EXPECT_THAT(ParseConfigToml("[registry.mirrors]\n\"docker.io\" = [\"ftp://x\"]\n", "t")
                  .status()
                  .message(),
              HasSubstr("http://"));
  EXPECT_THAT(ParseConfigToml("[registry]\nmax_concurrent_downloads = 0\n", "t").status().message(),
              HasSubstr("max_concurrent_downloads"));
  EXPECT_THAT(ParseConfigToml("[registry.auths.\"h\"]\nuser = \"x\"\n", "t").status().message(),
              HasSubstr("registry.auths.\"h\".user"));
}

}  // namespace
}  // namespace podshim::agent
