#include "kubelet/backoff.h"

#include <gtest/gtest.h>

namespace podshim::kubelet {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(BackoffTest, FirstRestartIsImmediateThenDoublesUpToMax) {
  Backoff b(absl::Seconds(10), absl::Seconds(40));
  EXPECT_FALSE(b.IsInBackOffSince("c", kT0, kT0));
  EXPECT_EQ(b.Get("c"), absl::ZeroDuration());

  b.Next("c", kT0);
  EXPECT_EQ(b.Get("c"), absl::Seconds(10));
  // The next exit, 1 s later: must wait 10 s from it.
  absl::Time exit = kT0 + absl::Seconds(1);
  EXPECT_TRUE(b.IsInBackOffSince("c", exit, exit + absl::Seconds(9)));
  EXPECT_FALSE(b.IsInBackOffSince("c", exit, exit + absl::Seconds(10)));

  b.Next("c", exit);
  EXPECT_EQ(b.Get("c"), absl::Seconds(20));
  b.Next("c", exit + absl::Seconds(21));
  EXPECT_EQ(b.Get("c"), absl::Seconds(40));
  b.Next("c", exit + absl::Seconds(62));
  EXPECT_EQ(b.Get("c"), absl::Seconds(40));  // capped
}

TEST(BackoffTest, KeysAreIndependent) {
  Backoff b(absl::Seconds(1), absl::Seconds(8));
  b.Next("a", kT0);
  b.Next("a", kT0);
  EXPECT_EQ(b.Get("a"), absl::Seconds(2));
  EXPECT_EQ(b.Get("b"), absl::ZeroDuration());
}

TEST(BackoffTest, StartsOverAfterTwiceMaxWithoutUse) {
  Backoff b(absl::Seconds(1), absl::Seconds(4));
  b.Next("c", kT0);
  b.Next("c", kT0 + absl::Seconds(1));
  EXPECT_EQ(b.Get("c"), absl::Seconds(2));
  // 8 s (2 * max) later the entry no longer holds anything back...
  EXPECT_FALSE(b.IsInBackOffSince("c", kT0 + absl::Seconds(1), kT0 + absl::Seconds(10)));
  // ... and the next restart starts over at the initial delay.
  b.Next("c", kT0 + absl::Seconds(10));
  EXPECT_EQ(b.Get("c"), absl::Seconds(1));
}

TEST(BackoffTest, ResetAndGarbageCollect) {
  Backoff b(absl::Seconds(1), absl::Seconds(4));
  b.Next("a", kT0);
  b.Next("b", kT0 + absl::Seconds(7));
  b.Reset("a");
  EXPECT_EQ(b.Get("a"), absl::ZeroDuration());
  b.Next("a", kT0);
  b.GarbageCollect(kT0 + absl::Seconds(9));
  EXPECT_EQ(b.Get("a"), absl::ZeroDuration());
  EXPECT_EQ(b.Get("b"), absl::Seconds(1));
}

}  // namespace
}  // namespace podshim::kubelet
