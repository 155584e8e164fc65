#include "agent/store.h"

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

namespace podshim::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

struct Rec {
  std::string id;
  std::string state = "running";
  int memory = 0;
  std::string label;
};

// Files kept in memory; can be told to fail.
class FakeFiles final : public RecordFiles {
 public:
  absl::Status Write(const std::string& id, const std::string& text) override {
    absl::MutexLock lock(&mu);
    if (fail) return absl::UnavailableError("disk full");
    files[id] = text;
    return absl::OkStatus();
  }
  absl::Status Remove(const std::string& id) override {
    absl::MutexLock lock(&mu);
    files.erase(id);
    return absl::OkStatus();
  }
  absl::Mutex mu;
  std::map<std::string, std::string> files;
  bool fail = false;
};

Rec R(std::string id, std::string state = "running", int memory = 0) {
  Rec r;
  r.id = std::move(id);
  r.state = std::move(state);
  r.memory = memory;
  return r;
}

std::string ToText(const Rec& r) { return absl::StrCat(r.state, ",", r.memory, ",", r.label); }

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() {
    auto f = std::make_unique<FakeFiles>();
    files_ = f.get();
    store_ = std::make_unique<RecordStore<Rec>>(
        std::move(f),
        RecordStore<Rec>::Hooks{ToText,
                                [this](const Rec* before, const Rec* after) {
                                  absl::MutexLock lock(&events_mu_);
                                  events_.emplace_back(before ? before->state : "-",
                                                       after ? after->state : "-");
                                }},
        "thing");
  }
  std::vector<std::pair<std::string, std::string>> Events() {
    absl::MutexLock lock(&events_mu_);
    return events_;
  }
  FakeFiles* files_;
  std::unique_ptr<RecordStore<Rec>> store_;
  absl::Mutex events_mu_;
  std::vector<std::pair<std::string, std::string>> events_;
};

TEST_F(StoreTest, AddUpdateRemoveWriteTheFileAndPublishEachChangeOnce) {
  ASSERT_TRUE(store_->Add(R("a1", "created", 0)).ok());
  EXPECT_EQ(files_->files["a1"], "created,0,");
  auto r = store_->Update("a1", [](Rec& x) {
    x.state = "running";
    return absl::OkStatus();
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, "running");
  EXPECT_EQ(files_->files["a1"], "running,0,");
  ASSERT_TRUE(store_->Remove("a1").ok());
  EXPECT_FALSE(files_->files.contains("a1"));
  EXPECT_FALSE(store_->Contains("a1"));
  EXPECT_EQ(store_->update_locks(), 0u);
  EXPECT_THAT(Events(),
              ElementsAre(Pair("-", "created"), Pair("created", "running"), Pair("running", "-")));
  EXPECT_TRUE(store_->Remove("a1").ok()) << "removing what is gone is fine";
  EXPECT_EQ(Events().size(), 3u) << "and publishes nothing";
}

TEST_F(StoreTest, AnUpdateThatFailsOrCannotBeWrittenChangesNothing) {
  ASSERT_TRUE(store_->Add(R("a1", "running", 1)).ok());
  auto refused = store_->Update("a1", [](Rec& x) {
    x.memory = 2;
    return absl::FailedPreconditionError("no");
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Get("a1")->memory, 1);
  files_->fail = true;
  auto unwritten = store_->Update("a1", [](Rec& x) {
    x.memory = 3;
    return absl::OkStatus();
  });
  EXPECT_EQ(unwritten.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Get("a1")->memory, 1) << "memory and disk agree: neither changed";
  EXPECT_EQ(files_->files["a1"], "running,1,");
  EXPECT_EQ(Events().size(), 1u) << "only the Add was published";
}

TEST_F(StoreTest, UpdateOfAMissingRecordIsNotFoundAndTheKeyIsNotFnsToChange) {
  EXPECT_EQ(store_->Update("nope", [](Rec&) { return absl::OkStatus(); }).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->update_locks(), 0u) << "an update of nothing leaves no lock behind";
  ASSERT_TRUE(store_->Add(R("a1")).ok());
  auto r = store_->Update("a1", [](Rec& x) {
    x.id = "b2";
    return absl::OkStatus();
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->id, "a1");
  EXPECT_FALSE(store_->Contains("b2"));
  EXPECT_EQ(store_->Add(R("a1")).code(), absl::StatusCode::kAlreadyExists);
}

// Today's lost update, as PodRuntime made it before the stores: the exit
// watcher records an exit while UpdateContainerResources holds a copy it
// read before, and then saves that whole copy with its new memory limit.
// Written here with the store's own calls (Get, then an Update that writes
// back the stale copy), it loses the exit, deterministically.
TEST_F(StoreTest, SavingAStaleCopyLosesAConcurrentChange) {
  ASSERT_TRUE(store_->Add(R("c1", "running", 100)).ok());
  Rec copy = *store_->Get("c1");  // UpdateContainerResources reads the record
  ASSERT_TRUE(store_
                  ->Update("c1",
                           [](Rec& r) {  // the exit watcher records the exit
                             r.state = "exited";
                             return absl::OkStatus();
                           })
                  .ok());
  copy.memory = 200;
  ASSERT_TRUE(store_
                  ->Update("c1",
                           [&](Rec& r) {  // ... and saves its whole copy
                             r = copy;
                             return absl::OkStatus();
                           })
                  .ok());
  EXPECT_EQ(store_->Get("c1")->state, "running") << "the exit is lost";
}

// The same two writers as PodRuntime now makes them, each changing only its
// field of the record as it is: both changes survive, whichever order the
// threads run in. The first writer is held inside its Update until the
// second has begun, so they really overlap.
TEST_F(StoreTest, ConcurrentUpdatesOfOneRecordAreNeverLost) {
  for (int round = 0; round < 50; ++round) {
    const std::string id = absl::StrCat("c", round);
    ASSERT_TRUE(store_->Add(R(id, "running", 100)).ok());
    absl::Notification inside, second_started;
    std::thread resources([&] {
      ASSERT_TRUE(store_
                      ->Update(id,
                               [&](Rec& r) {
                                 inside.Notify();
                                 second_started.WaitForNotificationWithTimeout(
                                     absl::Milliseconds(50));
                                 r.memory = 200;
                                 return absl::OkStatus();
                               })
                      .ok());
    });
    inside.WaitForNotification();
    std::thread exit_watcher([&] {
      second_started.Notify();
      ASSERT_TRUE(store_
                      ->Update(id,
                               [](Rec& r) {
                                 r.state = "exited";
                                 return absl::OkStatus();
                               })
                      .ok());
    });
    resources.join();
    exit_watcher.join();
    auto r = store_->Get(id);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, "exited");
    EXPECT_EQ(r->memory, 200);
    EXPECT_EQ(files_->files[id], "exited,200,") << "and the file says the same";
  }
}

TEST_F(StoreTest, WriteIntentIsOnDiskOnlyAndRemoveClearsIt) {
  ASSERT_TRUE(store_->WriteIntent(R("n1", "creating")).ok());
  EXPECT_EQ(files_->files["n1"], "creating,0,");
  EXPECT_FALSE(store_->Contains("n1"));
  EXPECT_TRUE(Events().empty());
  ASSERT_TRUE(store_->Remove("n1").ok());
  EXPECT_FALSE(files_->files.contains("n1"));
  EXPECT_TRUE(Events().empty()) << "never visible, so never published";
}

TEST_F(StoreTest, ResolveTakesAUniquePrefix) {
  for (const char* id : {"abc1", "abc2", "abd"}) ASSERT_TRUE(store_->Add(R(id)).ok());
  EXPECT_EQ(*store_->Resolve("abd", "thing_id"), "abd");
  EXPECT_EQ(*store_->Resolve("abc1", "thing_id"), "abc1");
  auto ambiguous = store_->Resolve("abc", "thing_id");
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ambiguous.status().message(), "thing_id: `abc` names more than one thing");
  auto none = store_->Resolve("x", "thing_id");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(none.status().message(), "thing `x` not found (thing_id)");
  EXPECT_EQ(store_->Resolve("", "thing_id").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, WaitUntilWakesOnTheChangeItWaitsFor) {
  ASSERT_TRUE(store_->Add(R("c1", "running")).ok());
  auto exited = [](const Rec* r) { return r == nullptr || r->state == "exited"; };
  EXPECT_FALSE(store_->WaitUntil("c1", exited, absl::Now()));
  std::thread t([&] {
    (void)store_->Update("c1", [](Rec& r) {
      r.state = "exited";
      return absl::OkStatus();
    });
  });
  EXPECT_TRUE(store_->WaitUntil("c1", exited, absl::InfiniteFuture()));
  t.join();
  EXPECT_TRUE(store_->WaitUntil("gone", exited, absl::Now())) << "a missing record counts as null";
}

TEST_F(StoreTest, LoadKeepsWithoutWritingOrPublishing) {
  store_->Load(R("l1", "running"));
  EXPECT_TRUE(store_->Contains("l1"));
  EXPECT_TRUE(files_->files.empty());
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(store_->List([](const Rec& r) { return r.state == "running"; }).size(), 1u);
}

TEST(NameRegistryTest, ReserveReleaseAndHolders) {
  NameRegistry names;
  ASSERT_TRUE(names.Reserve("web_default", "id1", "pod sandbox name").ok());
  EXPECT_TRUE(names.Reserve("web_default", "id1", "pod sandbox name").ok()) << "idempotent";
  auto taken = names.Reserve("web_default", "id2", "pod sandbox name");
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.message(), "pod sandbox name `web_default` is reserved by id1");
  names.Release("web_default", "id2");
  EXPECT_EQ(names.Holder("web_default"), "id1") << "only its holder frees a name";
  names.ReleaseId("id1");
  EXPECT_EQ(names.Holder("web_default"), "");
}

}  // namespace
}  // namespace podshim::agent
