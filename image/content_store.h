// The content store: verified, immutable blobs named by their digest, as
// containerd keeps them.
//
// Layout under the root (e.g. <root_dir>/content, every directory 0700):
//   blobs/<algorithm>/<hex>   a committed blob, read-only (0444); its content
//                             hashes to its name
//   ingest/<prefix>-<random>  a blob being written; never read by anyone but
//                             its writer, removed on Open (crash leftovers)
//
// A blob appears in blobs/ only through a rename after its size and digest
// were checked and its data fsynced, so a reader never sees a partial or
// unverified blob. One ContentStore per root and process: Open removes every
// ingest it finds, so a second process writing into the same root would lose
// its ingests (the agent's lock file guarantees a single process).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "image/digest.h"
#include "runtime/unique_fd.h"

namespace podshim::image {

class ContentStore;

// One blob being written. Write() the data, then Commit(); an Ingest
// destroyed without a successful Commit removes its partial file. Not
// thread-safe: one writer per Ingest. Must not outlive its ContentStore.
class Ingest {
 public:
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;
  ~Ingest();

  // Appends `data`. DATA_LOSS when the total exceeds the expected size (a
  // registry sending too much is refused before it fills the disk). After
  // any error Commit() fails until Reset().
  absl::Status Write(absl::string_view data);

  // Discards everything written so far, so that a download can start over
  // (e.g. after a broken connection).
  absl::Status Reset();

  // Checks the size (when it was given) and the digest, fsyncs, and renames
  // the data into blobs/. DATA_LOSS naming the expected and the actual
  // digest (or size) on a mismatch; the partial file is then removed. If the
  // blob appeared meanwhile (another writer), the ingest is dropped and
  // Commit succeeds. FAILED_PRECONDITION when called twice.
  absl::Status Commit();

  uint64_t written() const { return written_; }
  const Digest& expected() const { return expected_; }
  // The partial file, ingest/<prefix>-<random>.
  const std::string& path() const { return path_; }

 private:
  friend class ContentStore;
  Ingest(const ContentStore* store, Digest expected, int64_t expected_size, std::string path,
         runtime::UniqueFd fd, Hasher hasher);
  void Discard();

  const ContentStore* store_;
  Digest expected_;
  int64_t expected_size_;  // -1: unknown
  std::string path_;
  runtime::UniqueFd fd_;
  Hasher hasher_;
  uint64_t written_ = 0;
  absl::Status failed_;    // first Write error; Commit refuses while set
  bool finished_ = false;  // committed, or failed and removed
};

class ContentStore {
 public:
  // Creates `root`, blobs/sha256, blobs/sha512 and ingest/ (0700) and
  // removes whatever is left in ingest/ by a crashed process.
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(const std::string& root);

  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  const std::string& root() const { return root_; }

  // blobs/<algorithm>/<hex> under the root, whether or not it exists.
  // `digest` must be valid (as ParseDigest returns it); the other methods
  // check that and return INVALID_ARGUMENT otherwise.
  std::string BlobPath(const Digest& digest) const;

  // Whether the blob is committed. False for an invalid digest.
  bool Has(const Digest& digest) const;

  // The blob's size in bytes. NOT_FOUND naming the digest if absent.
  absl::StatusOr<uint64_t> Size(const Digest& digest) const;

  // Reads a whole blob (a manifest, an index, an image config) and checks
  // its digest again. NOT_FOUND if absent; OUT_OF_RANGE if the blob is
  // larger than `max_size` (nothing is read then); DATA_LOSS if the file no
  // longer matches its digest.
  absl::StatusOr<std::string> ReadBlob(const Digest& digest, uint64_t max_size) const;

  // Verifies that `data` hashes to `expected` (DATA_LOSS naming both digests
  // otherwise, and nothing is written), then commits it. OK at once if the
  // blob exists.
  absl::Status WriteBlob(const Digest& expected, absl::string_view data);

  // Starts writing a blob. `expected_size` is -1 when unknown; otherwise
  // Write refuses more data and Commit refuses less.
  absl::StatusOr<std::unique_ptr<Ingest>> BeginIngest(const Digest& expected,
                                                      int64_t expected_size);

  // Single-flight fetch. If the blob exists, returns OK without calling
  // `download`. If another thread is fetching the same digest, waits for it
  // and returns its result (an error included: the caller decides whether
  // to retry; a retry starts a new fetch). Otherwise runs `download` into a
  // new ingest and commits it; `download` must only Write (and may Reset)
  // the ingest, not Commit it. An error from `download` is returned as is.
  absl::Status Fetch(const Digest& digest, int64_t size,
                     const std::function<absl::Status(Ingest&)>& download);

  // How many threads are waiting in Fetch for another thread's download of
  // `digest` (for tests and metrics).
  int FetchWaiters(const Digest& digest) const;

  // Removes a blob. OK if it is absent.
  absl::Status Delete(const Digest& digest);

  // Every committed blob, sorted by algorithm and hex. Files in blobs/ whose
  // names are not digests are ignored.
  std::vector<Digest> List() const;

  // The sum of the committed blobs' sizes (apparent sizes, st_size).
  absl::StatusOr<uint64_t> TotalBytes() const;

 private:
  // The state of one running Fetch, shared with the threads waiting for it.
  struct Flight {
    bool done = false;
    int waiters = 0;
    absl::Status result;
  };

  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  void FinishFlight(const std::string& key, const std::shared_ptr<Flight>& flight,
                    absl::Status result);

  const std::string root_;

  mutable absl::Mutex mu_;
  absl::CondVar flight_done_;
  std::map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::image
