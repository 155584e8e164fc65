#include "agent/pull_jobs.h"

#include <atomic>
#include <memory>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace podshim::agent {
namespace {

using ::testing::HasSubstr;

// A pull that blocks until released or cancelled, and remembers what it saw.
class FakePull {
 public:
  PullJobs::PullFn Fn() {
    return [this](const std::string& ref, const image::RegistryAuth& auth,
                  const image::CallOptions& call) -> absl::StatusOr<image::ImageRecord> {
      {
        absl::MutexLock lock(&mu_);
        ++calls_;
        users_.push_back(auth.username);
      }
      for (;;) {
        {
          absl::MutexLock lock(&mu_);
          if (released_) break;
        }
        if (call.cancelled && call.cancelled()) {
          absl::MutexLock lock(&mu_);
          ++cancels_;
          return absl::CancelledError("fake pull: cancelled");
        }
        absl::SleepFor(absl::Milliseconds(1));
      }
      image::ImageRecord r;
      r.id = "sha256:" + ref;
      return r;
    };
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int cancels() {
    absl::MutexLock lock(&mu_);
    return cancels_;
  }
  std::vector<std::string> users() {
    absl::MutexLock lock(&mu_);
    return users_;
  }

 private:
  absl::Mutex mu_;
  bool released_ = false;
  int calls_ = 0;
  int cancels_ = 0;
  std::vector<std::string> users_;
};

// Waits (without a time limit of its own: ctest's timeout is the bound)
// until `pred` holds.
template <typename Pred>
void WaitUntil(Pred pred) {
  while (!pred()) absl::SleepFor(absl::Milliseconds(1));
}

ClientCall NoDeadline() { return {}; }

ClientCall DeadlineIn(absl::Duration d) {
  ClientCall c;
  c.deadline = absl::Now() + d;
  return c;
}

ClientCall Cancellable(std::atomic<bool>* flag) {
  ClientCall c;
  c.cancelled = [flag] { return flag->load(); };
  return c;
}

// One caller of PullJobs::Pull on a thread of its own.
class Caller {
 public:
  Caller(PullJobs& jobs, const std::string& key, const ClientCall& call,
         const std::string& user = "")
      : thread_([this, &jobs, key, call, user] {
          image::RegistryAuth auth;
          auth.username = user;
          result_ = jobs.Pull(key, key, auth, call);
        }) {}
  absl::StatusOr<image::ImageRecord> Result() {
    thread_.join();
    return result_;
  }

 private:
  absl::StatusOr<image::ImageRecord> result_;
  std::thread thread_;
};

constexpr absl::Duration kLongTtl = absl::Hours(1);

TEST(PullJobs, TwoCallersOfOneImageShareOnePull) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  Caller a(jobs, "docker.io/library/busybox:latest", NoDeadline(), "first");
  WaitUntil([&] { return jobs.Waiters("docker.io/library/busybox:latest") == 1; });
  Caller b(jobs, "docker.io/library/busybox:latest", NoDeadline(), "second");
  WaitUntil([&] { return jobs.Waiters("docker.io/library/busybox:latest") == 2; });
  fake.Release();
  auto ra = a.Result();
  auto rb = b.Result();
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(ra->id, rb->id);
  EXPECT_EQ(fake.calls(), 1);
  // The first caller's credentials made the pull.
  EXPECT_EQ(fake.users(), std::vector<std::string>{"first"});
}

TEST(PullJobs, DifferentImagesArePulledApart) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  Caller a(jobs, "example.org/a:1", NoDeadline());
  Caller b(jobs, "example.org/b:1", NoDeadline());
  WaitUntil([&] { return jobs.Running() == 2; });
  fake.Release();
  EXPECT_EQ(a.Result()->id, "sha256:example.org/a:1");
  EXPECT_EQ(b.Result()->id, "sha256:example.org/b:1");
  EXPECT_EQ(fake.calls(), 2);
}

TEST(PullJobs, DeadlinePassesThenTheRetryJoinsThePullStillRunning) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  auto first = jobs.Pull("r:1", "r:1", {}, DeadlineIn(absl::Milliseconds(30)));
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(first.status().message(), HasSubstr("background"));
  // Nobody waits, and the pull goes on.
  EXPECT_EQ(jobs.Waiters("r:1"), 0);
  EXPECT_EQ(jobs.Running(), 1);
  EXPECT_EQ(fake.cancels(), 0);

  Caller retry(jobs, "r:1", NoDeadline());
  WaitUntil([&] { return jobs.Waiters("r:1") == 1; });
  fake.Release();
  auto r = retry.Result();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "sha256:r:1");
  EXPECT_EQ(fake.calls(), 1);
  EXPECT_EQ(fake.cancels(), 0);
}

TEST(PullJobs, APullWhoseCallerLeftFinishesInTheBackground) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  auto first = jobs.Pull("r:1", "r:1", {}, DeadlineIn(absl::Milliseconds(30)));
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  fake.Release();
  WaitUntil([&] { return jobs.Running() == 0; });
  EXPECT_EQ(fake.calls(), 1);
  EXPECT_EQ(fake.cancels(), 0);
  // Done and gone: the next caller starts a new pull (which, in podshimd,
  // finds the image's blobs already stored).
  auto again = jobs.Pull("r:1", "r:1", {}, NoDeadline());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(fake.calls(), 2);
}

TEST(PullJobs, AnUnclaimedPullIsCancelledAfterTheTtl) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), absl::Milliseconds(1));
  auto first = jobs.Pull("r:1", "r:1", {}, DeadlineIn(absl::Milliseconds(30)));
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  // Never released: only the TTL ends it.
  WaitUntil([&] { return jobs.Running() == 0; });
  EXPECT_EQ(fake.cancels(), 1);
}

TEST(PullJobs, CancelOfTheOnlyCallerCancelsThePull) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  std::atomic<bool> cancel{false};
  Caller a(jobs, "r:1", Cancellable(&cancel));
  WaitUntil([&] { return jobs.Waiters("r:1") == 1; });
  cancel = true;
  auto r = a.Result();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  WaitUntil([&] { return jobs.Running() == 0; });
  EXPECT_EQ(fake.cancels(), 1);
}

TEST(PullJobs, ACallerAfterACancelStartsAfresh) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  std::atomic<bool> cancel{false};
  Caller a(jobs, "r:1", Cancellable(&cancel));
  WaitUntil([&] { return jobs.Waiters("r:1") == 1; });
  cancel = true;
  EXPECT_EQ(a.Result().status().code(), absl::StatusCode::kCancelled);
  // Whether or not the cancelled pull has stopped yet, this one is new.
  Caller b(jobs, "r:1", NoDeadline());
  WaitUntil([&] { return fake.calls() == 2 && jobs.Waiters("r:1") == 1; });
  fake.Release();
  auto r = b.Result();
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST(PullJobs, CancelOfOneOfTwoCallersLeavesThePullToTheOther) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  std::atomic<bool> cancel{false};
  Caller a(jobs, "r:1", Cancellable(&cancel));
  WaitUntil([&] { return jobs.Waiters("r:1") == 1; });
  Caller b(jobs, "r:1", NoDeadline());
  WaitUntil([&] { return jobs.Waiters("r:1") == 2; });
  cancel = true;
  auto ra = a.Result();
  EXPECT_EQ(ra.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(ra.status().message(), HasSubstr("goes on"));
  EXPECT_EQ(jobs.Waiters("r:1"), 1);
  fake.Release();
  auto rb = b.Result();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(fake.calls(), 1);
  EXPECT_EQ(fake.cancels(), 0);
}

TEST(PullJobs, DeadlineOfOneOfTwoCallersLeavesThePullToTheOther) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  Caller b(jobs, "r:1", NoDeadline());
  WaitUntil([&] { return jobs.Waiters("r:1") == 1; });
  auto ra = jobs.Pull("r:1", "r:1", {}, DeadlineIn(absl::Milliseconds(30)));
  EXPECT_EQ(ra.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(jobs.Waiters("r:1"), 1);
  fake.Release();
  auto rb = b.Result();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(fake.calls(), 1);
  EXPECT_EQ(fake.cancels(), 0);
}

TEST(PullJobs, ACancelAtTheDeadlineIsTheDeadline) {
  // gRPC cancels a call whose deadline passed; that is not the client's
  // cancel, so the pull is handed to the background, not cancelled.
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  ClientCall call;
  call.deadline = absl::Now() + ClientCall::kDeadlineSlack / 2;
  call.cancelled = [] { return true; };
  auto r = jobs.Pull("r:1", "r:1", {}, call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(jobs.Running(), 1);
  fake.Release();
  WaitUntil([&] { return jobs.Running() == 0; });
  EXPECT_EQ(fake.cancels(), 0);
}

TEST(PullJobs, ACallWhoseDeadlineHadPassedStartsNothing) {
  FakePull fake;
  PullJobs jobs(fake.Fn(), kLongTtl);
  ClientCall call;
  call.deadline = absl::InfinitePast();
  auto r = jobs.Pull("r:1", "r:1", {}, call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(jobs.Running(), 0);
  EXPECT_EQ(fake.calls(), 0);
}

TEST(PullJobs, DestructionCancelsPullsInTheBackground) {
  FakePull fake;
  {
    PullJobs jobs(fake.Fn(), kLongTtl);
    auto r = jobs.Pull("r:1", "r:1", {}, DeadlineIn(absl::Milliseconds(30)));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(jobs.Running(), 1);
  }
  EXPECT_EQ(fake.cancels(), 1);
}

}  // namespace
}  // namespace podshim::agent
