#include "image/image_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "image/digest.h"
#include "runtime/files.h"

namespace podshim::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-images-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/images";
    Reopen();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Reopen() {
    store_.reset();
    auto store = ImageStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string RecordFile(const std::string& id) const {
    std::string name = id;
    name[name.find(':')] = '_';
    return root_ + "/" + name + ".json";
  }

  std::string dir_;
  std::string root_;
  std::unique_ptr<ImageStore> store_;
};

// An image whose ID is the sha256 of `seed`.
ImageRecord MakeImage(const std::string& seed, std::vector<std::string> tags = {},
                      std::vector<std::string> digests = {}) {
  ImageRecord r;
  r.id = Sha256Of(seed).String();
  r.config_digest = r.id;
  r.manifest_digest = Sha256Of("manifest-" + seed).String();
  r.repo_tags = std::move(tags);
  r.repo_digests = std::move(digests);
  r.size = 1234;
  r.layer_digests = {Sha256Of("layer-" + seed).String()};
  r.diff_ids = {Sha256Of("diff-" + seed).String()};
  r.media_type = "application/vnd.oci.image.manifest.v1+json";
  r.config = {{"config", {{"Entrypoint", {"/bin/sh"}}, {"User", "1000"}}}};
  r.annotations = {{"io.cri-containerd.pinned", "false"}};
  r.created_unix_ns = 42;
  return r;
}

std::string RepoDigest(const std::string& name, const std::string& seed) {
  return absl::StrCat(name, "@", Sha256Of("manifest-" + seed).String());
}

constexpr char kBusybox[] = "docker.io/library/busybox:latest";
constexpr char kBusyboxOld[] = "docker.io/library/busybox:1.36";
constexpr char kAlpine[] = "docker.io/library/alpine:3.19";

TEST_F(ImageStoreTest, PutGetListRoundTrip) {
  ImageRecord a = MakeImage("a", {kBusybox});
  ASSERT_TRUE(store_->Put(a).ok());
  auto got = store_->Get(a.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, a);
  EXPECT_EQ((*got).config["config"]["User"], "1000");
  EXPECT_THAT(store_->List(), ElementsAre(a));
  EXPECT_EQ(store_->Get("sha256:" + std::string(64, '0')).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(store_->Get("nothing:here").status().message(), HasSubstr("nothing:here"));
}

TEST_F(ImageStoreTest, PutValidates) {
  ImageRecord bad = MakeImage("a");
  bad.id = "not-a-digest";
  EXPECT_EQ(store_->Put(bad).code(), absl::StatusCode::kInvalidArgument);
  ImageRecord untagged_name = MakeImage("a", {"docker.io/library/busybox"});
  EXPECT_THAT(store_->Put(untagged_name).message(), HasSubstr("not <name>:<tag>"));
  ImageRecord bad_digest = MakeImage("a", {}, {"docker.io/library/busybox:1@sha256:00"});
  EXPECT_THAT(store_->Put(bad_digest).message(), HasSubstr("not <name>@<digest>"));
  EXPECT_THAT(store_->List(), IsEmpty());
}

TEST_F(ImageStoreTest, GetByEveryForm) {
  ImageRecord a = MakeImage("a", {kBusybox}, {RepoDigest("docker.io/library/busybox", "a")});
  ImageRecord b = MakeImage("b", {"localhost:5000/team/app:v1"});
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  std::string hex = a.id.substr(7);
  std::string digest = Sha256Of("manifest-a").String();
  for (const std::string& q : {
           a.id,                                          // full ID
           hex,                                           // bare ID
           hex.substr(0, 12),                             // short ID
           "sha256:" + hex.substr(0, 20),                 // prefixed short ID
           std::string(kBusybox),                         // repo tag
           "docker.io/library/busybox@" + digest,         // repo digest
           "docker.io/library/busybox:latest@" + digest,  // Reference::String()
           std::string("busybox"),                        // familiar names
           std::string("library/busybox:latest"),
           "busybox@" + digest,
       }) {
    auto got = store_->Get(q);
    ASSERT_TRUE(got.ok()) << q << ": " << got.status();
    EXPECT_EQ(got->id, a.id) << q;
  }
  auto app = store_->Get("localhost:5000/team/app:v1");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->id, b.id);
  // Too short a prefix is not an ID; a tag that is not there is not found.
  EXPECT_EQ(store_->Get(hex.substr(0, 11)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("busybox:1.0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("").status().code(), absl::StatusCode::kNotFound);
  // A huge query is quoted in part only.
  auto huge = store_->Get(std::string(1 << 20, 'x'));
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kNotFound);
  EXPECT_LT(huge.status().message().size(), 200u);
}

TEST_F(ImageStoreTest, AmbiguousPrefixIsInvalidArgument) {
  // Find two seeds whose IDs share their first 3 hex digits... then
  // craft IDs directly: the store does not care how an ID came about.
  ImageRecord a = MakeImage("a");
  ImageRecord b = MakeImage("b");
  a.id = "sha256:abcdef012345" + std::string(52, '1');
  b.id = "sha256:abcdef012345" + std::string(52, '2');
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  auto got = store_->Get("abcdef012345");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("ambiguous"));
  EXPECT_EQ(store_->Get("sha256:abcdef012345").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("abcdef0123451")->id, a.id);
  EXPECT_EQ(store_->Get("abcdef0123452")->id, b.id);
}

TEST_F(ImageStoreTest, TagMovesToTheNewImageAndOldImageStaysUntagged) {
  ImageRecord old_image = MakeImage("old", {kBusybox, kBusyboxOld});
  ASSERT_TRUE(store_->Put(old_image).ok());
  ImageRecord new_image = MakeImage("new", {kBusybox});
  ASSERT_TRUE(store_->Put(new_image).ok());
  EXPECT_EQ(store_->Get(kBusybox)->id, new_image.id);
  EXPECT_THAT(store_->Get(old_image.id)->repo_tags, ElementsAre(kBusyboxOld));
  // Losing its last tag leaves an untagged image, as in containerd.
  ImageRecord newer = MakeImage("newer", {kBusyboxOld});
  ASSERT_TRUE(store_->Put(newer).ok());
  auto untagged = store_->Get(old_image.id);
  ASSERT_TRUE(untagged.ok());
  EXPECT_THAT(untagged->repo_tags, IsEmpty());
  EXPECT_THAT(store_->List(), SizeIs(3));
  // The move is durable, on every record involved.
  Reopen();
  EXPECT_EQ(store_->Get(kBusybox)->id, new_image.id);
  EXPECT_EQ(store_->Get(kBusyboxOld)->id, newer.id);
  EXPECT_THAT(store_->Get(old_image.id)->repo_tags, IsEmpty());
}

TEST_F(ImageStoreTest, PutOfSameIdMergesNamesAndKeepsCreated) {
  ImageRecord a = MakeImage("a", {kBusybox}, {RepoDigest("docker.io/library/busybox", "a")});
  ASSERT_TRUE(store_->Put(a).ok());
  ImageRecord again =
      MakeImage("a", {kBusyboxOld, kBusybox}, {RepoDigest("quay.io/mirror/busybox", "a")});
  again.created_unix_ns = 99;
  again.annotations = {{"io.cri-containerd.pinned", "true"}, {"extra", "1"}};
  ASSERT_TRUE(store_->Put(again).ok());
  auto got = store_->Get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->repo_tags, ElementsAre(kBusyboxOld, kBusybox));
  EXPECT_THAT(got->repo_digests, ElementsAre(RepoDigest("docker.io/library/busybox", "a"),
                                             RepoDigest("quay.io/mirror/busybox", "a")));
  EXPECT_EQ(got->created_unix_ns, 42);
  EXPECT_EQ(got->annotations.at("io.cri-containerd.pinned"), "true");
  EXPECT_EQ(got->annotations.at("extra"), "1");
  EXPECT_THAT(store_->List(), SizeIs(1));
}

TEST_F(ImageStoreTest, RepoDigestMovesLikeATag) {
  std::string rd = RepoDigest("docker.io/library/busybox", "shared");
  ImageRecord a = MakeImage("a", {}, {rd});
  ImageRecord b = MakeImage("b", {}, {rd});
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  EXPECT_EQ(store_->Get(rd)->id, b.id);
  EXPECT_THAT(store_->Get(a.id)->repo_digests, IsEmpty());
}

TEST_F(ImageStoreTest, CreatedDefaultsToNow) {
  ImageRecord a = MakeImage("a");
  a.created_unix_ns = 0;
  ASSERT_TRUE(store_->Put(a).ok());
  EXPECT_GT(store_->Get(a.id)->created_unix_ns, 1600000000LL * 1000000000LL);
}

TEST_F(ImageStoreTest, RemoveAndRemoveTagAreIdempotent) {
  ImageRecord a = MakeImage("a", {kBusybox, kBusyboxOld});
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->RemoveTag(kBusybox).ok());
  ASSERT_TRUE(store_->RemoveTag(kBusybox).ok());
  EXPECT_THAT(store_->Get(a.id)->repo_tags, ElementsAre(kBusyboxOld));
  ASSERT_TRUE(store_->Remove(a.id).ok());
  EXPECT_FALSE(std::filesystem::exists(RecordFile(a.id)));
  EXPECT_EQ(store_->Get(a.id).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Remove(a.id).ok());
  EXPECT_EQ(store_->Remove("busybox").code(), absl::StatusCode::kInvalidArgument);
  Reopen();
  EXPECT_THAT(store_->List(), IsEmpty());
}

TEST_F(ImageStoreTest, PersistsAcrossReopen) {
  ImageRecord a = MakeImage("a", {kBusybox}, {RepoDigest("docker.io/library/busybox", "a")});
  ImageRecord b = MakeImage("b", {kAlpine});
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  struct stat st {};
  ASSERT_EQ(::stat(RecordFile(a.id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  Reopen();
  EXPECT_THAT(store_->load_errors(), IsEmpty());
  std::vector<ImageRecord> want = {a, b};
  std::sort(want.begin(), want.end(),
            [](const ImageRecord& x, const ImageRecord& y) { return x.id < y.id; });
  EXPECT_EQ(store_->List(), want);
}

TEST_F(ImageStoreTest, CorruptRecordIsMovedAsideWhileOthersLoad) {
  ImageRecord a = MakeImage("a", {kBusybox});
  ImageRecord b = MakeImage("b", {kAlpine});
  ImageRecord c = MakeImage("c");
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  ASSERT_TRUE(store_->Put(c).ok());
  std::ofstream(RecordFile(b.id), std::ios::trunc) << "{\"schema\": 1, \"seq\": ";
  std::ofstream(RecordFile(c.id), std::ios::trunc)
      << R"({"schema": 1, "seq": 3, "image": {"id": ")" << c.id << R"(", "size": "big"}})";
  std::ofstream(root_ + "/.leftover.json.tmp-abcdef") << "partial";
  Reopen();
  auto errors = store_->load_errors();
  ASSERT_THAT(errors, SizeIs(2));
  std::string all = errors[0] + "\n" + errors[1];
  EXPECT_THAT(all, HasSubstr(RecordFile(b.id) + "`: not valid JSON"));
  EXPECT_THAT(all, HasSubstr("field `size` must be an unsigned integer"));
  EXPECT_TRUE(std::filesystem::exists(RecordFile(b.id) + ".corrupt"));
  EXPECT_TRUE(std::filesystem::exists(RecordFile(c.id) + ".corrupt"));
  EXPECT_FALSE(std::filesystem::exists(RecordFile(b.id)));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/.leftover.json.tmp-abcdef"));
  EXPECT_THAT(store_->List(), ElementsAre(a));
  // The next open is clean: the corrupt files are out of the way.
  Reopen();
  EXPECT_THAT(store_->load_errors(), IsEmpty());
  EXPECT_THAT(store_->List(), ElementsAre(a));
}

TEST_F(ImageStoreTest, RecordUnderTheWrongNameIsCorrupt) {
  ImageRecord a = MakeImage("a");
  ASSERT_TRUE(store_->Put(a).ok());
  std::string other = RecordFile(Sha256Of("other").String());
  std::filesystem::rename(RecordFile(a.id), other);
  Reopen();
  ASSERT_THAT(store_->load_errors(), SizeIs(1));
  EXPECT_THAT(store_->load_errors()[0], HasSubstr("not the one its name says"));
  EXPECT_THAT(store_->List(), IsEmpty());
}

TEST_F(ImageStoreTest, CrashBetweenWritesOfATagMoveResolvesToTheLatest) {
  ImageRecord a = MakeImage("a", {kBusybox});
  ASSERT_TRUE(store_->Put(a).ok());
  std::string a_before = *runtime::ReadFile(RecordFile(a.id));
  ImageRecord b = MakeImage("b", {kBusybox});
  ASSERT_TRUE(store_->Put(b).ok());
  // Simulate a crash after b's record was written but before a's rewrite.
  ASSERT_TRUE(runtime::WriteFileAtomic(RecordFile(a.id), a_before).ok());
  Reopen();
  EXPECT_EQ(store_->Get(kBusybox)->id, b.id);
  EXPECT_THAT(store_->Get(a.id)->repo_tags, IsEmpty());
  // ... and the fix-up was persisted.
  Reopen();
  EXPECT_THAT(store_->Get(a.id)->repo_tags, IsEmpty());
  EXPECT_THAT(store_->load_errors(), IsEmpty());
}

TEST_F(ImageStoreTest, FailedWriteChangesNothing) {
  ImageRecord a = MakeImage("a", {kBusybox});
  ASSERT_TRUE(store_->Put(a).ok());
  // A directory where b's record file must go makes its rename fail (root
  // ignores file modes, so a read-only directory would not).
  ImageRecord b = MakeImage("b", {kBusybox});
  ASSERT_TRUE(std::filesystem::create_directory(RecordFile(b.id)));
  absl::Status s = store_->Put(b);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(b.id));
  EXPECT_EQ(store_->Get(kBusybox)->id, a.id);
  EXPECT_EQ(store_->Get(b.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store_->List(), ElementsAre(a));

  // The same for Update of an existing image.
  ASSERT_TRUE(std::filesystem::remove(RecordFile(a.id)));
  ASSERT_TRUE(std::filesystem::create_directory(RecordFile(a.id)));
  s = store_->Update(a.id, [](ImageRecord& r) {
    r.annotations["io.cri-containerd.pinned"] = "true";
    return absl::OkStatus();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store_->Get(a.id)->annotations.at("io.cri-containerd.pinned"), "false");
  for (const auto& e : std::filesystem::directory_iterator(root_)) {
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp-")));
  }
}

TEST_F(ImageStoreTest, UpdateAppliesPersistsAndGuardsTheId) {
  ImageRecord a = MakeImage("a", {kBusybox});
  ImageRecord b = MakeImage("b");
  ASSERT_TRUE(store_->Put(a).ok());
  ASSERT_TRUE(store_->Put(b).ok());
  ASSERT_TRUE(store_
                  ->Update(b.id,
                           [](ImageRecord& r) {
                             r.annotations["io.cri-containerd.pinned"] = "true";
                             r.repo_tags.push_back(kBusybox);  // moves like in Put
                             return absl::OkStatus();
                           })
                  .ok());
  EXPECT_EQ(store_->Get(kBusybox)->id, b.id);
  EXPECT_THAT(store_->Get(a.id)->repo_tags, IsEmpty());
  EXPECT_EQ(store_
                ->Update(a.id,
                         [](ImageRecord& r) {
                           r.id = Sha256Of("x").String();
                           return absl::OkStatus();
                         })
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Update(a.id, [](ImageRecord&) { return absl::AbortedError("no"); }).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(
      store_
          ->Update("sha256:" + std::string(64, 'f'), [](ImageRecord&) { return absl::OkStatus(); })
          .code(),
      absl::StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(store_->Get(b.id)->annotations.at("io.cri-containerd.pinned"), "true");
  EXPECT_EQ(store_->Get(kBusybox)->id, b.id);
}

TEST_F(ImageStoreTest, ConcurrentUseKeepsEveryTagOnOneImage) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 40;
  const std::vector<std::string> tags = {"docker.io/library/t:1", "docker.io/library/t:2",
                                         "docker.io/library/t:3"};
  std::vector<std::thread> pool;
  pool.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        ImageRecord r = MakeImage(absl::StrCat("img", (t * 7 + i) % 10), {tags[(t + i) % 3]});
        if (!store_->Put(r).ok()) ++failures;
        (void)store_->Get(tags[i % 3]);
        (void)store_->List();
        (void)store_->Update(r.id, [&](ImageRecord& rec) {
          rec.annotations["touched"] = absl::StrCat(t);
          return absl::OkStatus();
        });
        if (i % 10 == 9) (void)store_->Remove(r.id);
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto check = [&] {
    std::map<std::string, int> owners;
    for (const auto& r : store_->List()) {
      for (const auto& tag : r.repo_tags) ++owners[tag];
    }
    for (const auto& [tag, n] : owners) EXPECT_EQ(n, 1) << tag;
  };
  check();
  auto before = store_->List();
  Reopen();
  EXPECT_EQ(store_->List(), before);
  check();
}

}  // namespace
}  // namespace podshim::image
