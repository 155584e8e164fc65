#include "streaming/token_cache.h"

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::streaming {
namespace {

class TokenCacheTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1000);
  TokenCache::Clock clock_ = [this] { return now_; };
};

TEST_F(TokenCacheTest, ATokenIsGoodForOneConnection) {
  TokenCache cache(absl::Minutes(1), 10, clock_);
  std::string token = cache.Insert(ExecRequest{"c1", {"ls"}, false, false, true, true});
  auto got = cache.Consume(token);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::get<ExecRequest>(*got).container_id, "c1");
  EXPECT_EQ(std::get<ExecRequest>(*got).cmd, std::vector<std::string>{"ls"});
  EXPECT_FALSE(cache.Consume(token).has_value());
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(TokenCacheTest, TokensAreUrlSafeAndUnguessable) {
  TokenCache cache(absl::Minutes(1), 1000, clock_);
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    std::string token = cache.Insert(PortForwardRequest{"p", {80}});
    EXPECT_EQ(token.size(), 22u);  // 128 bits
    EXPECT_EQ(
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << token;
    EXPECT_TRUE(seen.insert(token).second);
  }
}

TEST_F(TokenCacheTest, ATokenExpiresAfterItsTtl) {
  TokenCache cache(absl::Minutes(1), 10, clock_);
  std::string early = cache.Insert(AttachRequest{"c1"});
  now_ += absl::Seconds(30);
  std::string late = cache.Insert(AttachRequest{"c2"});
  now_ += absl::Seconds(30);  // `early` is a minute old now
  EXPECT_FALSE(cache.Consume(early).has_value());
  ASSERT_TRUE(cache.Consume(late).has_value());
}

TEST_F(TokenCacheTest, TheOldestIsDroppedBeyondTheCapacity) {
  TokenCache cache(absl::Minutes(1), 3, clock_);
  std::vector<std::string> tokens;
  tokens.reserve(5);
  for (int i = 0; i < 5; ++i) tokens.push_back(cache.Insert(AttachRequest{std::to_string(i)}));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.Consume(tokens[0]).has_value());
  EXPECT_FALSE(cache.Consume(tokens[1]).has_value());
  for (int i = 2; i < 5; ++i) {
    auto got = cache.Consume(tokens[i]);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(std::get<AttachRequest>(*got).container_id, std::to_string(i));
  }
}

TEST_F(TokenCacheTest, AnUnknownTokenIsNothing) {
  TokenCache cache(absl::Minutes(1), 3, clock_);
  EXPECT_FALSE(cache.Consume("").has_value());
  EXPECT_FALSE(cache.Consume("AAAAAAAAAAAAAAAAAAAAAA").has_value());
}

TEST(VerbOfTest, NamesTheUrlPath) {
  EXPECT_STREQ(VerbOf(ExecRequest{}), "exec");
  EXPECT_STREQ(VerbOf(AttachRequest{}), "attach");
  EXPECT_STREQ(VerbOf(PortForwardRequest{}), "portforward");
}

}  // namespace
}  // namespace podshim::streaming
