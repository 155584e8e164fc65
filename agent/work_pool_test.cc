#include "agent/work_pool.h"

#include <atomic>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace podshim::agent {
namespace {

TEST(WorkPool, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    WorkPool pool("test", 3, 1000);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.Run([&] { ran++; }).ok());
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(WorkPool, TasksRunConcurrently) {
  WorkPool pool("test", 2, 10);
  absl::Notification first_started, second_done;
  // The first task waits for the second: only possible with two threads.
  ASSERT_TRUE(pool.Run([&] {
                    first_started.Notify();
                    second_done.WaitForNotification();
                  })
                  .ok());
  first_started.WaitForNotification();
  ASSERT_TRUE(pool.Run([&] { second_done.Notify(); }).ok());
  EXPECT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(WorkPool, AFullQueueRefusesWorkWithResourceExhausted) {
  absl::Notification busy, release;
  std::atomic<int> ran{0};
  {
    WorkPool pool("runtime", 1, 2);
    ASSERT_TRUE(pool.Run([&] {
                      busy.Notify();
                      release.WaitForNotification();
                    })
                    .ok());
    busy.WaitForNotification();  // the one worker is taken: what follows waits
    ASSERT_TRUE(pool.Run([&] { ran++; }).ok());
    ASSERT_TRUE(pool.Run([&] { ran++; }).ok());
    EXPECT_EQ(pool.queued(), 2u);
    auto refused = pool.Run([&] { ran += 100; });
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(refused.message()),
                ::testing::HasSubstr("all 1 runtime workers are taken"));
    EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("rpc_queue_limit"));
    release.Notify();
  }  // the destructor runs what was queued
  EXPECT_EQ(ran.load(), 2) << "the refused task never ran";
}

TEST(WorkPool, WorkWhoseDeadlinePassedWhileQueuedRunsItsExpiredHandlerInstead) {
  WorkPool pool("test", 1, 10);
  absl::Notification busy, release, done;
  ASSERT_TRUE(pool.Run([&] {
                    busy.Notify();
                    release.WaitForNotification();
                  })
                  .ok());
  busy.WaitForNotification();
  std::atomic<bool> ran{false}, expired{false}, live_ran{false};
  WorkPool::Task late;
  late.deadline = absl::Now();  // passes while the worker is busy
  late.run = [&] { ran = true; };
  late.expired = [&] { expired = true; };
  ASSERT_TRUE(pool.Run(std::move(late)).ok());
  WorkPool::Task live;
  live.deadline = absl::InfiniteFuture();
  live.run = [&] {
    live_ran = true;
    done.Notify();
  };
  live.expired = [&] { done.Notify(); };
  ASSERT_TRUE(pool.Run(std::move(live)).ok());
  release.Notify();
  done.WaitForNotification();
  EXPECT_FALSE(ran.load());
  EXPECT_TRUE(expired.load());
  EXPECT_TRUE(live_ran.load());
}

}  // namespace
}  // namespace podshim::agent
