#include "runtime/random.h"

#include <set>

#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

TEST(RandomHex, LengthAlphabetAndNoRepeats) {
  EXPECT_EQ(RandomHex(0), "");
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = RandomHex(32);
    ASSERT_EQ(id.size(), 64u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
}

}  // namespace
}  // namespace podshim::runtime
