#include "agent/logging.h"

#include <gtest/gtest.h>

namespace podshim::agent {
namespace {

TEST(Logging, JsonEscapeHandlesQuotesControlAndBackslash) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
  EXPECT_EQ(JsonEscape("plain"), "plain");
}

TEST(Logging, UnknownLevelOrFormatIsRejected) {
  EXPECT_FALSE(SetupLogging("loud", "text").ok());
  EXPECT_FALSE(SetupLogging("info", "xml").ok());
  EXPECT_TRUE(SetupLogging("debug", "json").ok());
}

TEST(Logging, ComponentLoggersAreSharedAndFollowTheLevel) {
  ASSERT_TRUE(SetupLogging("warn", "text").ok());
  auto a = Log("component-a");
  EXPECT_EQ(a, Log("component-a"));
  EXPECT_EQ(a->level(), spdlog::level::warn);
  ASSERT_TRUE(SetupLogging("debug", "text").ok());
  EXPECT_EQ(a->level(), spdlog::level::debug);
  EXPECT_EQ(Log("component-b")->level(), spdlog::level::debug);
}

}  // namespace
}  // namespace podshim::agent
