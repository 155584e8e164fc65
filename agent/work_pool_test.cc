#include "agent/work_pool.h"

#include <atomic>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

namespace podshim::agent {
namespace {

TEST(WorkPool, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    WorkPool pool(3);
    for (int i = 0; i < 100; ++i) pool.Run([&] { ran++; });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(WorkPool, TasksRunConcurrently) {
  WorkPool pool(2);
  absl::Notification first_started, second_done;
  // The first task waits for the second: only possible with two threads.
  pool.Run([&] {
    first_started.Notify();
    second_done.WaitForNotification();
  });
  first_started.WaitForNotification();
  pool.Run([&] { second_done.Notify(); });
  EXPECT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

}  // namespace
}  // namespace podshim::agent
