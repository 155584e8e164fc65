#include "streaming/channels.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace podshim::streaming {
namespace {

using ::testing::HasSubstr;

TEST(NegotiateTest, TakesTheClientsFirstKnownProtocol) {
  auto p = NegotiateChannelProtocol("v5.channel.k8s.io");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "v5.channel.k8s.io");
  EXPECT_EQ(p->version, 5);
  EXPECT_FALSE(p->base64);
  p = NegotiateChannelProtocol("x.k8s.io, v4.base64.channel.k8s.io ,v4.channel.k8s.io");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "v4.base64.channel.k8s.io");
  EXPECT_TRUE(p->base64);
  EXPECT_EQ(p->version, 4);
  p = NegotiateChannelProtocol("base64.channel.k8s.io");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->version, 1);
  EXPECT_TRUE(p->base64);
}

TEST(NegotiateTest, NoneOfferedIsTheLegacyBinaryProtocol) {
  auto p = NegotiateChannelProtocol("  ");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "");
  EXPECT_EQ(p->version, 1);
  EXPECT_FALSE(p->base64);
}

TEST(NegotiateTest, OnlyUnknownOnesIsNone) {
  EXPECT_FALSE(NegotiateChannelProtocol("SPDY/3.1+portforward.k8s.io").has_value());
  EXPECT_FALSE(NegotiateChannelProtocol("v3.channel.k8s.io,chat").has_value());
}

TEST(MessageTest, BinaryMessagesLeadWithTheChannelByte) {
  ChannelProtocol binary{"v5.channel.k8s.io", false, 5};
  EXPECT_EQ(EncodeChannelMessage(binary, 1, "hi"), std::string("\x01hi", 3));
  EXPECT_EQ(EncodeChannelMessage(binary, 3, ""), std::string("\x03", 1));
  auto d = DecodeChannelMessage(binary, std::string("\x00"
                                                    "abc",
                                                    4));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, 0);
  EXPECT_EQ(d->second, "abc");
  d = DecodeChannelMessage(binary, std::string("\xff\x00", 2));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, 255);
  EXPECT_EQ(d->second, std::string("\x00", 1));
}

TEST(MessageTest, Base64MessagesLeadWithADigit) {
  ChannelProtocol b64{"base64.channel.k8s.io", true, 1};
  EXPECT_EQ(EncodeChannelMessage(b64, 1, "hello"), "1aGVsbG8=");
  EXPECT_EQ(EncodeChannelMessage(b64, 2, ""), "2");
  auto d = DecodeChannelMessage(b64, "0aGVsbG8=");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, 0);
  EXPECT_EQ(d->second, "hello");
}

TEST(MessageTest, MalformedMessagesAreErrors) {
  ChannelProtocol b64{"base64.channel.k8s.io", true, 1};
  ChannelProtocol binary{"v4.channel.k8s.io", false, 4};
  EXPECT_FALSE(DecodeChannelMessage(binary, "").ok());
  EXPECT_FALSE(DecodeChannelMessage(b64, "").ok());
  EXPECT_THAT(DecodeChannelMessage(b64, "xaGk=").status().message(), HasSubstr("digit"));
  EXPECT_THAT(DecodeChannelMessage(b64, "0!!!").status().message(), HasSubstr("base64"));
}

TEST(OutcomeTest, V4WritesAStatusWithTheExitCode) {
  auto ok = nlohmann::json::parse(ExecOutcomeMessage(4, 0, nullptr));
  EXPECT_EQ(ok, nlohmann::json::parse(R"({"metadata":{},"status":"Success"})"));
  auto failed = nlohmann::json::parse(ExecOutcomeMessage(5, 3, nullptr));
  EXPECT_EQ(failed["status"], "Failure");
  EXPECT_EQ(failed["reason"], "NonZeroExitCode");
  EXPECT_EQ(failed["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(failed["details"]["causes"][0]["message"], "3");
  const std::string why = "container c1 is not running";
  auto error = nlohmann::json::parse(ExecOutcomeMessage(4, 0, &why));
  EXPECT_EQ(error["status"], "Failure");
  EXPECT_EQ(error["reason"], "InternalError");
  EXPECT_EQ(error["message"], why);
  EXPECT_EQ(error["code"], 500);
}

TEST(OutcomeTest, V1WritesTextAndNothingOnSuccess) {
  EXPECT_EQ(ExecOutcomeMessage(1, 0, nullptr), "");
  EXPECT_THAT(ExecOutcomeMessage(1, 7, nullptr), HasSubstr("exit status 7"));
  const std::string why = "gone";
  EXPECT_EQ(ExecOutcomeMessage(1, 0, &why), "gone");
}

TEST(ResizeTest, ParsesWidthAndHeight) {
  auto r = ParseResize(R"({"Width":120,"Height":40})"
                       "\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first, 120);
  EXPECT_EQ(r->second, 40);
}

TEST(ResizeTest, RefusesAnythingElse) {
  for (const char* bad :
       {"", "{}", "[1,2]", R"({"Width":-1,"Height":2})", R"({"Width":70000,"Height":2})",
        R"({"Width":"80","Height":2})", "{\"Width\":1,"}) {
    EXPECT_FALSE(ParseResize(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace podshim::streaming
