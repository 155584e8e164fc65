#include "image/image_manager.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/unpack.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::image {
namespace {

constexpr uint64_t kMaxConfigBytes = 8 << 20;

// Removes half-made snapshot temp dirs ("<dir>/.tmp-*" and the like) that a
// crash left behind: complete snapshots are the entries named by a hex
// digest.
void RemoveSnapshotLeftovers(const std::string& dir) {
  std::error_code ec;
  for (const auto& alg : std::filesystem::directory_iterator(dir, ec)) {
    if (!alg.is_directory()) continue;
    for (const auto& entry : std::filesystem::directory_iterator(alg.path(), ec)) {
      std::string name = entry.path().filename().string();
      if (!ParseDigest(absl::StrCat(alg.path().filename().string(), ":", name)).ok()) {
        std::filesystem::remove_all(entry.path(), ec);
      }
    }
  }
}

}  // namespace

absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

ImageManager::ImageManager(ImageManagerOptions options, std::unique_ptr<ContentStore> content,
                           std::unique_ptr<ImageStore> images)
    : options_(std::move(options)),
      snapshots_dir_(options_.root_dir + "/snapshots"),
      leases_dir_(options_.root_dir + "/leases"),
      content_(std::move(content)),
      images_(std::move(images)),
      registry_(options_.registry) {}

absl::StatusOr<std::unique_ptr<ImageManager>> ImageManager::Open(ImageManagerOptions options) {
  auto content = ContentStore::Open(options.root_dir + "/content");
  if (!content.ok()) return content.status();
  auto images = ImageStore::Open(options.root_dir + "/images");
  if (!images.ok()) return images.status();
  const std::string snapshots = options.root_dir + "/snapshots";
  for (const auto& dir :
       {snapshots, snapshots + "/sha256", snapshots + "/sha512", options.root_dir + "/leases"}) {
    if (auto s = runtime::MakeDirs(dir, 0700); !s.ok()) return s;
  }
  RemoveSnapshotLeftovers(snapshots);
  std::unique_ptr<ImageManager> manager(
      new ImageManager(std::move(options), std::move(*content), std::move(*images)));
  // Blobs a pull committed before the process died have no record: drop them.
  manager->CollectGarbage();
  return manager;
}

std::string ImageManager::SnapshotPath(absl::string_view diff_id) const {
  auto d = ParseDigest(diff_id);
  if (!d.ok()) return "";
  return absl::StrCat(snapshots_dir_, "/", d->algorithm, "/", d->hex);
}

absl::StatusOr<ImageRecord> ImageManager::Pull(absl::string_view text, const RegistryAuth& auth,
                                               const CallOptions& call) {
  auto ref = ParseReference(text);
  if (!ref.ok()) return ref.status();
  RegistryAuth effective = auth;
  bool no_auth = auth.username.empty() && auth.password.empty() && auth.auth.empty() &&
                 auth.identity_token.empty() && auth.registry_token.empty();
  if (no_auth) {
    if (auto it = options_.auths.find(ref->domain); it != options_.auths.end()) {
      effective = it->second;
    }
  }
  absl::StatusOr<ImageRecord> result;
  {
    absl::ReaderMutexLock pulling(&gc_mu_);
    result = PullLocked(*ref, effective, call);
  }
  // A failed pull may have committed some blobs (config, early layers):
  // collect them, as a Remove would.
  FinishWork(/*collect=*/!result.ok());
  if (!result.ok()) return WithContext(result.status(), absl::StrCat("pull ", ref->String()));
  return result;
}

absl::StatusOr<ImageRecord> ImageManager::PullLocked(const Reference& ref, const RegistryAuth& auth,
                                                     const CallOptions& call) {
  auto resolved = registry_.Resolve(ref, auth, call);
  if (!resolved.ok()) return resolved.status();

  // Manifest (and index) blobs: small and already verified by Resolve.
  for (const auto& [digest, body] : {std::pair{resolved->manifest_digest, resolved->manifest_json},
                                     std::pair{resolved->repo_digest, resolved->index_json}}) {
    if (body.empty()) continue;
    auto d = ParseDigest(digest);
    if (!d.ok()) return d.status();
    if (auto s = content_->WriteBlob(*d, body); !s.ok()) return s;
  }

  // The image config (whose digest is the image ID), then the layers.
  if (auto s = FetchLayers(ref, {resolved->config}, auth, call); !s.ok()) return s;
  if (auto s = FetchLayers(ref, resolved->layers, auth, call); !s.ok()) return s;
  return Commit(&ref, resolved->repo_digest, resolved->manifest_digest,
                resolved->manifest_media_type, resolved->config, resolved->layers);
}

absl::StatusOr<ImageRecord> ImageManager::Commit(const Reference* name,
                                                 const std::string& repo_digest,
                                                 const std::string& manifest_digest,
                                                 const std::string& manifest_media_type,
                                                 const Descriptor& config_desc,
                                                 const std::vector<Descriptor>& layers) {
  auto config_digest = ParseDigest(config_desc.digest);
  if (!config_digest.ok()) return config_digest.status();
  auto config_json = content_->ReadBlob(*config_digest, kMaxConfigBytes);
  if (!config_json.ok()) return config_json.status();
  auto config = ParseImageConfig(*config_json);
  if (!config.ok()) return WithContext(config.status(), "image config");
  if (config->diff_ids.size() != layers.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("image config lists ", config->diff_ids.size(), " diff_ids but the manifest ",
                     layers.size(), " layers"));
  }
  if (auto s = UnpackLayers(layers, config->diff_ids); !s.ok()) return s;

  ImageRecord record;
  record.id = config_digest->String();
  if (name != nullptr && !name->tag.empty()) {
    Reference tagged = *name;
    tagged.digest.clear();
    record.repo_tags.push_back(tagged.String());
  }
  if (name != nullptr && !repo_digest.empty()) {
    record.repo_digests.push_back(absl::StrCat(name->Name(), "@", repo_digest));
  }
  record.size = static_cast<uint64_t>(config_desc.size);
  for (const auto& layer : layers) {
    record.size += static_cast<uint64_t>(layer.size);
    record.layer_digests.push_back(layer.digest);
  }
  record.manifest_digest = manifest_digest;
  record.config_digest = record.id;
  record.diff_ids = config->diff_ids;
  record.media_type = manifest_media_type;
  try {
    record.config = nlohmann::json::parse(*config_json);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("image config: ", e.what()));
  }
  if (auto s = images_->Put(record); !s.ok()) return s;
  return images_->Get(record.id);
}

absl::Status ImageManager::FetchLayers(const Reference& ref, const std::vector<Descriptor>& layers,
                                       const RegistryAuth& auth, const CallOptions& call) {
  // A bounded set of threads takes the blobs in order; the first error stops
  // the others (their transfers are cancelled through `stop`).
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  absl::Status first_error;
  CallOptions inner = call;
  inner.cancelled = [&stop, outer = call.cancelled] { return stop.load() || (outer && outer()); };
  auto worker = [&] {
    for (size_t i = next++; i < layers.size() && !stop.load(); i = next++) {
      const Descriptor& blob = layers[i];
      auto digest = ParseDigest(blob.digest);
      absl::Status s = digest.status();
      if (s.ok()) {
        s = content_->Fetch(*digest, blob.size, [&](Ingest& ingest) {
          return registry_.FetchBlob(ref, blob, auth, inner,
                                     [&](absl::string_view chunk) { return ingest.Write(chunk); });
        });
      }
      if (!s.ok()) {
        absl::MutexLock lock(&mu);
        // A worker stopped by another's failure reports CANCELLED; keep the
        // real cause.
        if (first_error.ok()) first_error = s;
        stop = true;
      }
    }
  };
  const size_t n = std::min<size_t>(
      layers.size(), static_cast<size_t>(std::max(1, options_.max_concurrent_downloads)));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  absl::MutexLock lock(&mu);
  return first_error;
}

absl::Status ImageManager::UnpackLayers(const std::vector<Descriptor>& layers,
                                        const std::vector<std::string>& diff_ids) {
  for (size_t i = 0; i < layers.size(); ++i) {
    auto diff_id = ParseDigest(diff_ids[i]);
    if (!diff_id.ok()) return diff_id.status();
    const std::string target = SnapshotPath(diff_ids[i]);
    std::error_code ec;
    if (std::filesystem::exists(target, ec)) continue;  // shared with another image
    auto compression = LayerCompression(layers[i].media_type);
    if (!compression.ok()) return compression.status();
    auto digest = ParseDigest(layers[i].digest);
    if (!digest.ok()) return digest.status();
    UnpackOptions opts;
    opts.expected_diff_id = *diff_id;
    opts.max_bytes = options_.max_layer_bytes;
    opts.max_entries = options_.max_layer_entries;
    auto result = UnpackLayerFileInto(content_->BlobPath(*digest), *compression, target, opts);
    if (!result.ok() && result.status().code() != absl::StatusCode::kAlreadyExists) {
      return WithContext(result.status(), absl::StrCat("layer ", layers[i].digest));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageRecord> ImageManager::Get(absl::string_view id_or_ref) const {
  return images_->Get(id_or_ref);
}

std::vector<ImageRecord> ImageManager::List() const { return images_->List(); }

absl::Status ImageManager::Remove(absl::string_view id_or_ref) {
  auto image = images_->Get(id_or_ref);
  if (!image.ok()) {
    if (image.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    return image.status();
  }
  if (auto s = images_->Remove(image->id); !s.ok()) return s;
  CollectSoon();
  return absl::OkStatus();
}

void ImageManager::CollectSoon() {
  if (gc_mu_.WriterTryLock()) {
    gc_mu_.WriterUnlock();
    CollectGarbage();
  } else {
    absl::MutexLock lock(&pending_mu_);
    gc_pending_ = true;  // the pull or import that finishes last collects
  }
}

void ImageManager::FinishWork(bool collect) {
  {
    absl::MutexLock lock(&pending_mu_);
    collect = std::exchange(gc_pending_, false) || collect;
  }
  if (collect) CollectSoon();
}

void ImageManager::CollectGarbage() {
  absl::WriterMutexLock lock(&gc_mu_);
  std::set<std::string> blobs, snapshots;
  for (const auto& image : images_->List()) {
    blobs.insert(image.config_digest);
    blobs.insert(image.manifest_digest);
    for (const auto& d : image.repo_digests) blobs.insert(d.substr(d.find('@') + 1));
    for (const auto& d : image.layer_digests) blobs.insert(d);
    for (const auto& d : image.diff_ids) snapshots.insert(SnapshotPath(d));
  }
  std::error_code lease_ec;
  for (const auto& entry : std::filesystem::directory_iterator(leases_dir_, lease_ec)) {
    auto text = runtime::ReadFile(entry.path().string());
    if (!text.ok()) continue;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_array()) continue;
    for (const auto& d : j) {
      if (d.is_string()) snapshots.insert(SnapshotPath(d.get<std::string>()));
    }
  }
  for (const auto& digest : content_->List()) {
    if (!blobs.contains(digest.String())) (void)content_->Delete(digest);
  }
  std::error_code ec;
  for (const auto& alg : std::filesystem::directory_iterator(snapshots_dir_, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(alg.path(), ec)) {
      if (!snapshots.contains(entry.path().string())) std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

namespace {

// A lease holder is a container ID: one plain file name.
absl::Status CheckHolder(absl::string_view holder) {
  if (holder.empty() || holder.size() > 128 || holder == "." || holder == ".." ||
      holder.find_first_of("/\0") != absl::string_view::npos || holder[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat("lease holder `", holder, "` is not valid"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ImageManager::AcquireLease(absl::string_view holder,
                                                                    const ImageRecord& image) {
  if (auto s = CheckHolder(holder); !s.ok()) return s;
  // Shared with pulls, exclusive with garbage collection: the snapshots
  // checked here cannot go away before the lease names them.
  absl::ReaderMutexLock lock(&gc_mu_);
  auto dirs = LowerDirs(image);
  if (!dirs.ok()) return dirs.status();
  nlohmann::json ids = image.diff_ids;
  // Not fsynced: a lease protects the snapshots of a container, and after a
  // crash of the machine no container is left (its state is on /run). A
  // lease lost or emptied then only lets the next collection free what no
  // container uses any more; the collector skips unreadable leases.
  if (auto s = runtime::ReplaceFile(absl::StrCat(leases_dir_, "/", holder), ids.dump()); !s.ok()) {
    return WithContext(s, "write lease");
  }
  return dirs;
}

absl::Status ImageManager::ReleaseLease(absl::string_view holder) {
  if (auto s = CheckHolder(holder); !s.ok()) return s;
  const std::string path = absl::StrCat(leases_dir_, "/", holder);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return runtime::ErrnoError(errno, "remove lease", path);
  }
  CollectSoon();
  return absl::OkStatus();
}

std::vector<std::string> ImageManager::ListLeases() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(leases_dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] != '.') out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> ImageManager::LowerDirs(const ImageRecord& image) const {
  std::vector<std::string> dirs;
  for (auto it = image.diff_ids.rbegin(); it != image.diff_ids.rend(); ++it) {
    std::string path = SnapshotPath(*it);
    std::error_code ec;
    if (path.empty() || !std::filesystem::is_directory(path, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("image ", image.id, ": snapshot of layer ", *it, " is missing"));
    }
    dirs.push_back(std::move(path));
  }
  return dirs;
}

}  // namespace podshim::image
