#include "image/content_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/files.h"

namespace podshim::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-content-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/content";
    auto store = ContentStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> Entries(const std::string& sub) const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root_ + "/" + sub)) {
      if (!e.is_directory()) out.push_back(e.path().string());
    }
    return out;
  }

  std::string dir_;
  std::string root_;
  std::unique_ptr<ContentStore> store_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST_F(ContentStoreTest, OpenCreatesLayoutWithPrivateModes) {
  for (const char* sub : {"", "/blobs", "/blobs/sha256", "/blobs/sha512", "/ingest"}) {
    EXPECT_EQ(ModeOf(root_ + sub), 0700u) << sub;
  }
}

TEST_F(ContentStoreTest, WriteBlobThenReadHasSizeAndReadOnlyFile) {
  Digest d = Sha256Of("hello");
  EXPECT_FALSE(store_->Has(d));
  EXPECT_EQ(store_->Size(d).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store_->ReadBlob(d, 100).status().message(), HasSubstr(d.String()));
  ASSERT_TRUE(store_->WriteBlob(d, "hello").ok());
  EXPECT_TRUE(store_->Has(d));
  EXPECT_EQ(store_->BlobPath(d), root_ + "/blobs/sha256/" + d.hex);
  EXPECT_EQ(ModeOf(store_->BlobPath(d)), 0444u);
  auto size = store_->Size(d);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 5u);
  auto data = store_->ReadBlob(d, 5);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, "hello");
  // Writing it again is a no-op.
  EXPECT_TRUE(store_->WriteBlob(d, "hello").ok());
  EXPECT_THAT(Entries("ingest"), IsEmpty());
}

TEST_F(ContentStoreTest, Sha512Blobs) {
  auto hasher = Hasher::Create("sha512");
  ASSERT_TRUE(hasher.ok());
  hasher->Update("abc");
  Digest d = hasher->Finish();
  ASSERT_TRUE(store_->WriteBlob(d, "abc").ok());
  EXPECT_EQ(store_->BlobPath(d), root_ + "/blobs/sha512/" + d.hex);
  EXPECT_EQ(*store_->ReadBlob(d, 3), "abc");
}

TEST_F(ContentStoreTest, WriteBlobWithWrongDigestLeavesNothing) {
  Digest expected = Sha256Of("good");
  absl::Status s = store_->WriteBlob(expected, "evil");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(expected.String()));
  EXPECT_THAT(s.message(), HasSubstr(Sha256Of("evil").String()));
  EXPECT_FALSE(store_->Has(expected));
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  EXPECT_THAT(Entries("blobs"), IsEmpty());
}

TEST_F(ContentStoreTest, IngestStreamsAndCommits) {
  Digest d = Sha256Of("hello world");
  auto ingest = store_->BeginIngest(d, 11);
  ASSERT_TRUE(ingest.ok()) << ingest.status();
  EXPECT_THAT((*ingest)->path(), HasSubstr(root_ + "/ingest/" + d.hex.substr(0, 12)));
  ASSERT_TRUE((*ingest)->Write("hello").ok());
  ASSERT_TRUE((*ingest)->Write(" world").ok());
  EXPECT_EQ((*ingest)->written(), 11u);
  EXPECT_FALSE(store_->Has(d));  // not visible before Commit
  ASSERT_TRUE((*ingest)->Commit().ok());
  EXPECT_TRUE(store_->Has(d));
  EXPECT_EQ((*ingest)->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*ingest)->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  ingest->reset();
  EXPECT_TRUE(store_->Has(d));  // destruction after Commit keeps the blob
  EXPECT_THAT(Entries("ingest"), IsEmpty());
}

TEST_F(ContentStoreTest, IngestDigestMismatchRemovesPartialFile) {
  Digest expected = Sha256Of("layer");
  auto ingest = store_->BeginIngest(expected, -1);
  ASSERT_TRUE(ingest.ok());
  ASSERT_TRUE((*ingest)->Write("tampered").ok());
  absl::Status s = (*ingest)->Commit();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(expected.String()));
  EXPECT_THAT(s.message(), HasSubstr(Sha256Of("tampered").String()));
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  EXPECT_THAT(Entries("blobs"), IsEmpty());
}

TEST_F(ContentStoreTest, IngestSizeMismatch) {
  Digest d = Sha256Of("12345");
  {
    auto ingest = store_->BeginIngest(d, 6);  // claims one byte more than sent
    ASSERT_TRUE(ingest.ok());
    ASSERT_TRUE((*ingest)->Write("12345").ok());
    absl::Status s = (*ingest)->Commit();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(s.message(), HasSubstr("expected 6 bytes, got 5"));
  }
  {
    auto ingest = store_->BeginIngest(d, 4);  // more data than announced
    ASSERT_TRUE(ingest.ok());
    absl::Status s = (*ingest)->Write("12345");
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(s.message(), HasSubstr("more than the expected 4 bytes"));
    EXPECT_EQ((*ingest)->Commit().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_FALSE(store_->Has(d));
  EXPECT_THAT(Entries("ingest"), IsEmpty());
}

TEST_F(ContentStoreTest, IngestResetStartsOver) {
  Digest d = Sha256Of("abc");
  auto ingest = store_->BeginIngest(d, 3);
  ASSERT_TRUE(ingest.ok());
  ASSERT_TRUE((*ingest)->Write("xy").ok());
  EXPECT_FALSE((*ingest)->Write("zz").ok());  // over the size: the ingest is broken
  ASSERT_TRUE((*ingest)->Reset().ok());
  ASSERT_TRUE((*ingest)->Write("abc").ok());
  ASSERT_TRUE((*ingest)->Commit().ok());
  EXPECT_EQ(*store_->ReadBlob(d, 3), "abc");
}

TEST_F(ContentStoreTest, IngestDroppedWithoutCommitRemovesPartialFile) {
  Digest d = Sha256Of("abc");
  {
    auto ingest = store_->BeginIngest(d, -1);
    ASSERT_TRUE(ingest.ok());
    ASSERT_TRUE((*ingest)->Write("ab").ok());
    EXPECT_EQ(Entries("ingest").size(), 1u);
  }
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  EXPECT_FALSE(store_->Has(d));
}

TEST_F(ContentStoreTest, CommitWhenBlobAppearedMeanwhileDropsIngest) {
  Digest d = Sha256Of("abc");
  auto a = store_->BeginIngest(d, 3);
  auto b = store_->BeginIngest(d, 3);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Write("abc").ok());
  ASSERT_TRUE((*b)->Write("abc").ok());
  ASSERT_TRUE((*a)->Commit().ok());
  ASSERT_TRUE((*b)->Commit().ok());
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  EXPECT_EQ(*store_->ReadBlob(d, 3), "abc");
}

TEST_F(ContentStoreTest, OpenRemovesCrashLeftovers) {
  Digest d = Sha256Of("kept");
  ASSERT_TRUE(store_->WriteBlob(d, "kept").ok());
  {
    std::ofstream(root_ + "/ingest/0123456789ab-XXXXXX") << "partial";
    std::filesystem::create_directories(root_ + "/ingest/odd-dir/sub");
  }
  store_.reset();
  auto reopened = ContentStore::Open(root_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/ingest"));
  EXPECT_TRUE((*reopened)->Has(d));
}

TEST_F(ContentStoreTest, ReadBlobRefusesLargerThanLimit) {
  std::string data(100, 'x');
  Digest d = Sha256Of(data);
  ASSERT_TRUE(store_->WriteBlob(d, data).ok());
  auto too_big = store_->ReadBlob(d, 99);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(too_big.status().message(), HasSubstr("100 bytes, more than the limit of 99"));
  EXPECT_TRUE(store_->ReadBlob(d, 100).ok());
}

TEST_F(ContentStoreTest, ReadBlobDetectsCorruption) {
  Digest d = Sha256Of("original");
  ASSERT_TRUE(store_->WriteBlob(d, "original").ok());
  std::string path = store_->BlobPath(d);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::ofstream(path, std::ios::trunc) << "modified";
  EXPECT_EQ(store_->ReadBlob(d, 100).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ContentStoreTest, InvalidDigestNeverReachesTheFilesystem) {
  Digest bad{"sha256", "../../etc/passwd"};
  EXPECT_FALSE(store_->Has(bad));
  EXPECT_EQ(store_->WriteBlob(bad, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginIngest(bad, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Delete(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadBlob(bad, 10).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ContentStoreTest, DeleteListAndTotalBytes) {
  Digest a = Sha256Of("aaa");
  Digest b = Sha256Of("bbbbb");
  ASSERT_TRUE(store_->WriteBlob(a, "aaa").ok());
  ASSERT_TRUE(store_->WriteBlob(b, "bbbbb").ok());
  std::ofstream(root_ + "/blobs/sha256/not-a-digest") << "junk";
  std::vector<Digest> want = {a, b};
  std::sort(want.begin(), want.end(),
            [](const Digest& x, const Digest& y) { return x.hex < y.hex; });
  EXPECT_EQ(store_->List(), want);
  EXPECT_EQ(*store_->TotalBytes(), 8u);
  ASSERT_TRUE(store_->Delete(a).ok());
  ASSERT_TRUE(store_->Delete(a).ok());  // idempotent
  EXPECT_THAT(store_->List(), ElementsAre(b));
  EXPECT_EQ(*store_->TotalBytes(), 5u);
}

TEST_F(ContentStoreTest, FetchOfExistingBlobDoesNotDownload) {
  Digest d = Sha256Of("x");
  ASSERT_TRUE(store_->WriteBlob(d, "x").ok());
  int calls = 0;
  EXPECT_TRUE(store_
                  ->Fetch(d, 1,
                          [&](Ingest&) {
                            ++calls;
                            return absl::OkStatus();
                          })
                  .ok());
  EXPECT_EQ(calls, 0);
}

// Runs Fetch of `d` from `threads` threads; the download (run once) waits
// until every other thread is waiting for it, then calls `body`.
std::vector<absl::Status> FetchFromThreads(ContentStore& store, const Digest& d, int threads,
                                           std::atomic<int>& calls,
                                           const std::function<absl::Status(Ingest&)>& body) {
  std::vector<absl::Status> results(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  auto download = [&](Ingest& ingest) {
    ++calls;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (store.FetchWaiters(d) < threads - 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return body(ingest);
  };
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] { results[i] = store.Fetch(d, -1, download); });
  }
  for (auto& t : pool) t.join();
  return results;
}

TEST_F(ContentStoreTest, ConcurrentFetchDownloadsOnce) {
  std::string data(size_t{64} * 1024, 'z');
  Digest d = Sha256Of(data);
  std::atomic<int> calls{0};
  auto results = FetchFromThreads(*store_, d, 8, calls, [&](Ingest& ingest) {
    for (size_t off = 0; off < data.size(); off += 4096) {
      if (auto s = ingest.Write(absl::string_view(data).substr(off, 4096)); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  EXPECT_EQ(calls.load(), 1);
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(store_->Has(d));
  EXPECT_EQ(store_->FetchWaiters(d), 0);
  EXPECT_THAT(Entries("ingest"), IsEmpty());
}

TEST_F(ContentStoreTest, FailedFetchIsReportedToAllWaitersAndCanBeRetried) {
  Digest d = Sha256Of("payload");
  std::atomic<int> calls{0};
  auto results = FetchFromThreads(*store_, d, 8, calls, [](Ingest& ingest) {
    (void)ingest.Write("pay");
    return absl::UnavailableError("registry `example.com`: connection reset");
  });
  EXPECT_EQ(calls.load(), 1);
  for (const auto& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(s.message(), HasSubstr("connection reset"));
  }
  EXPECT_FALSE(store_->Has(d));
  EXPECT_THAT(Entries("ingest"), IsEmpty());
  // A later Fetch runs a new download.
  ASSERT_TRUE(store_->Fetch(d, 7, [](Ingest& ingest) { return ingest.Write("payload"); }).ok());
  EXPECT_TRUE(store_->Has(d));
}

TEST_F(ContentStoreTest, FetchVerifiesWhatTheDownloadWrote) {
  Digest d = Sha256Of("payload");
  absl::Status s = store_->Fetch(d, -1, [](Ingest& ingest) { return ingest.Write("malware"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(store_->Has(d));
  EXPECT_THAT(Entries("ingest"), IsEmpty());
}

}  // namespace
}  // namespace podshim::image
