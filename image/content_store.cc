#include "image/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/files.h"

namespace podshim::image {
namespace {

using runtime::ErrnoError;
using runtime::FsyncDir;
using runtime::UniqueFd;
using runtime::WriteAll;

constexpr mode_t kDirMode = 0700;
constexpr mode_t kBlobMode = 0444;
constexpr const char* kAlgorithms[] = {"sha256", "sha512"};

// A Digest is a plain struct; anything that turns one into a path checks it
// first so that "../" never reaches the filesystem.
absl::Status CheckDigest(const Digest& digest) { return ParseDigest(digest.String()).status(); }

absl::Status NotFound(const Digest& digest) {
  return absl::NotFoundError(absl::StrCat("content blob `", digest.String(), "` not found"));
}

}  // namespace

// ---------------------------------------------------------------- Ingest

Ingest::Ingest(const ContentStore* store, Digest expected, int64_t expected_size, std::string path,
               UniqueFd fd, Hasher hasher)
    : store_(store),
      expected_(std::move(expected)),
      expected_size_(expected_size),
      path_(std::move(path)),
      fd_(std::move(fd)),
      hasher_(std::move(hasher)) {}

Ingest::~Ingest() { Discard(); }

void Ingest::Discard() {
  if (finished_) return;
  finished_ = true;
  fd_.Reset();
  ::unlink(path_.c_str());
}

absl::Status Ingest::Write(absl::string_view data) {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat("write to ingest of `", expected_.String(), "`: already finished"));
  }
  if (!failed_.ok()) return failed_;
  if (expected_size_ >= 0 && written_ + data.size() > static_cast<uint64_t>(expected_size_)) {
    failed_ = absl::DataLossError(absl::StrCat("blob `", expected_.String(),
                                               "`: received more than the expected ",
                                               expected_size_, " bytes"));
    return failed_;
  }
  if (auto s = WriteAll(fd_.get(), data, path_); !s.ok()) {
    failed_ = s;
    return s;
  }
  hasher_.Update(data);
  written_ += data.size();
  return absl::OkStatus();
}

absl::Status Ingest::Reset() {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat("reset ingest of `", expected_.String(), "`: already finished"));
  }
  if (::ftruncate(fd_.get(), 0) != 0) return ErrnoError(errno, "truncate", path_);
  if (::lseek(fd_.get(), 0, SEEK_SET) != 0) return ErrnoError(errno, "seek", path_);
  auto hasher = Hasher::Create(expected_.algorithm);
  if (!hasher.ok()) return hasher.status();
  hasher_ = std::move(*hasher);
  written_ = 0;
  failed_ = absl::OkStatus();
  return absl::OkStatus();
}

absl::Status Ingest::Commit() {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ingest of `", expected_.String(), "`: already finished"));
  }
  // Every way out below either renames the file into place or removes it.
  auto fail = [this](absl::Status s) {
    Discard();
    return s;
  };
  if (!failed_.ok()) return fail(failed_);
  if (expected_size_ >= 0 && written_ != static_cast<uint64_t>(expected_size_)) {
    return fail(absl::DataLossError(absl::StrCat("blob `", expected_.String(), "`: expected ",
                                                 expected_size_, " bytes, got ", written_)));
  }
  Digest actual = hasher_.Finish();
  if (actual != expected_) {
    return fail(
        absl::DataLossError(absl::StrCat("blob `", expected_.String(), "`: content has digest `",
                                         actual.String(), "` (", written_, " bytes)")));
  }
  if (::fchmod(fd_.get(), kBlobMode) != 0) return fail(ErrnoError(errno, "chmod", path_));
  if (::fsync(fd_.get()) != 0) return fail(ErrnoError(errno, "fsync", path_));
  fd_.Reset();
  std::string target = store_->BlobPath(expected_);
  if (store_->Has(expected_)) {
    // Another writer won; its blob has the same content.
    Discard();
    return absl::OkStatus();
  }
  if (::rename(path_.c_str(), target.c_str()) != 0) {
    return fail(ErrnoError(errno, "rename ingest into", target));
  }
  finished_ = true;
  return FsyncDir(std::filesystem::path(target).parent_path().string());
}

// ---------------------------------------------------------- ContentStore

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& root) {
  if (auto s = runtime::MakeDirs(root, kDirMode); !s.ok()) return s;
  if (auto s = runtime::MakeDirs(root + "/blobs", kDirMode); !s.ok()) return s;
  for (const char* alg : kAlgorithms) {
    if (auto s = runtime::MakeDirs(absl::StrCat(root, "/blobs/", alg), kDirMode); !s.ok()) {
      return s;
    }
  }
  std::string ingest = root + "/ingest";
  if (auto s = runtime::MakeDirs(ingest, kDirMode); !s.ok()) return s;
  // Leftovers of a crashed process: partial downloads nobody will finish.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(ingest, ec)) {
    std::error_code rm_ec;
    std::filesystem::remove_all(entry.path(), rm_ec);
    if (rm_ec) {
      return ErrnoError(rm_ec.value(), "remove leftover ingest", entry.path().string());
    }
  }
  if (ec) return ErrnoError(ec.value(), "list", ingest);
  return std::unique_ptr<ContentStore>(new ContentStore(root));
}

std::string ContentStore::BlobPath(const Digest& digest) const {
  return absl::StrCat(root_, "/blobs/", digest.algorithm, "/", digest.hex);
}

bool ContentStore::Has(const Digest& digest) const {
  if (!CheckDigest(digest).ok()) return false;
  struct stat st {};
  return ::stat(BlobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<uint64_t> ContentStore::Size(const Digest& digest) const {
  if (auto s = CheckDigest(digest); !s.ok()) return s;
  struct stat st {};
  if (::stat(BlobPath(digest).c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound(digest);
    return ErrnoError(errno, "stat", BlobPath(digest));
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<std::string> ContentStore::ReadBlob(const Digest& digest, uint64_t max_size) const {
  if (auto s = CheckDigest(digest); !s.ok()) return s;
  std::string path = BlobPath(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(digest);
    return ErrnoError(errno, "open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat", path);
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_size) {
    return absl::OutOfRangeError(absl::StrCat("content blob `", digest.String(), "` is ", size,
                                              " bytes, more than the limit of ", max_size));
  }
  std::string data(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd.get(), data.data() + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  auto hasher = Hasher::Create(digest.algorithm);
  if (!hasher.ok()) return hasher.status();
  hasher->Update(data);
  if (Digest actual = hasher->Finish(); actual != digest) {
    return absl::DataLossError(absl::StrCat("content blob `", digest.String(),
                                            "` is corrupt: its content has digest `",
                                            actual.String(), "`"));
  }
  return data;
}

absl::Status ContentStore::WriteBlob(const Digest& expected, absl::string_view data) {
  if (auto s = CheckDigest(expected); !s.ok()) return s;
  auto hasher = Hasher::Create(expected.algorithm);
  if (!hasher.ok()) return hasher.status();
  hasher->Update(data);
  if (Digest actual = hasher->Finish(); actual != expected) {
    return absl::DataLossError(absl::StrCat("blob `", expected.String(), "`: content has digest `",
                                            actual.String(), "` (", data.size(), " bytes)"));
  }
  if (Has(expected)) return absl::OkStatus();
  auto ingest = BeginIngest(expected, static_cast<int64_t>(data.size()));
  if (!ingest.ok()) return ingest.status();
  if (auto s = (*ingest)->Write(data); !s.ok()) return s;
  return (*ingest)->Commit();
}

absl::StatusOr<std::unique_ptr<Ingest>> ContentStore::BeginIngest(const Digest& expected,
                                                                  int64_t expected_size) {
  if (auto s = CheckDigest(expected); !s.ok()) return s;
  auto hasher = Hasher::Create(expected.algorithm);
  if (!hasher.ok()) return hasher.status();
  // The digest prefix only helps a human looking at ingest/.
  std::string path = absl::StrCat(root_, "/ingest/", expected.hex.substr(0, 12), "-XXXXXX");
  UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "create ingest file", path);
  return std::unique_ptr<Ingest>(new Ingest(this, expected, expected_size, std::move(path),
                                            std::move(fd), std::move(*hasher)));
}

absl::Status ContentStore::Fetch(const Digest& digest, int64_t size,
                                 const std::function<absl::Status(Ingest&)>& download) {
  if (auto s = CheckDigest(digest); !s.ok()) return s;
  if (Has(digest)) return absl::OkStatus();
  const std::string key = digest.String();
  std::shared_ptr<Flight> flight;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      flight = it->second;
      ++flight->waiters;
      while (!flight->done) flight_done_.Wait(&mu_);
      --flight->waiters;
      return flight->result;
    }
    flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
  }
  // This thread leads. A flight that finished between Has() above and taking
  // the lock may have committed the blob already.
  if (Has(digest)) {
    FinishFlight(key, flight, absl::OkStatus());
    return absl::OkStatus();
  }
  absl::Status result;
  if (auto ingest = BeginIngest(digest, size); !ingest.ok()) {
    result = ingest.status();
  } else {
    result = download(**ingest);
    if (result.ok()) result = (*ingest)->Commit();
  }
  FinishFlight(key, flight, result);
  return result;
}

void ContentStore::FinishFlight(const std::string& key, const std::shared_ptr<Flight>& flight,
                                absl::Status result) {
  absl::MutexLock lock(&mu_);
  flight->done = true;
  flight->result = std::move(result);
  flights_.erase(key);
  flight_done_.SignalAll();
}

int ContentStore::FetchWaiters(const Digest& digest) const {
  absl::MutexLock lock(&mu_);
  auto it = flights_.find(digest.String());
  return it == flights_.end() ? 0 : it->second->waiters;
}

absl::Status ContentStore::Delete(const Digest& digest) {
  if (auto s = CheckDigest(digest); !s.ok()) return s;
  std::string path = BlobPath(digest);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "remove", path);
  return absl::OkStatus();
}

std::vector<Digest> ContentStore::List() const {
  std::vector<Digest> out;
  for (const char* alg : kAlgorithms) {
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(absl::StrCat(root_, "/blobs/", alg), ec)) {
      std::error_code type_ec;
      if (!entry.is_regular_file(type_ec)) continue;
      auto digest = ParseDigest(absl::StrCat(alg, ":", entry.path().filename().string()));
      if (digest.ok()) out.push_back(*std::move(digest));
    }
  }
  std::sort(out.begin(), out.end(), [](const Digest& a, const Digest& b) {
    return std::tie(a.algorithm, a.hex) < std::tie(b.algorithm, b.hex);
  });
  return out;
}

absl::StatusOr<uint64_t> ContentStore::TotalBytes() const {
  uint64_t total = 0;
  for (const Digest& digest : List()) {
    auto size = Size(digest);
    if (size.status().code() == absl::StatusCode::kNotFound) continue;  // deleted meanwhile
    if (!size.ok()) return size.status();
    total += *size;
  }
  return total;
}

}  // namespace podshim::image
