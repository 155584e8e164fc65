// The image side of podshim in one place: pulls images from registries into
// the content store, unpacks their layers into shared snapshots (one per
// diffID, used as overlayfs lower dirs) and keeps the image records that the
// CRI ImageService reports.
//
// Under its root dir:
//   content/    blobs by digest (content_store.h)
//   images/     one record per image (image_store.h)
//   snapshots/  snapshots/<alg>/<hex>: the unpacked layer with that diffID
//   leases/     one file per container: the diffIDs it keeps alive
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "image/content_store.h"
#include "image/image_store.h"
#include "image/registry_client.h"

namespace podshim::image {

// `s` with "context: " before its message (OK stays OK).
absl::Status WithContext(const absl::Status& s, absl::string_view context);

struct ImageManagerOptions {
  std::string root_dir;  // e.g. /var/lib/podshim
  RegistryClientOptions registry;
  // Credentials per registry host, used when a pull brings none.
  std::map<std::string, RegistryAuth> auths;
  int max_concurrent_downloads = 3;
  // Caps on one layer's unpacked bytes and tar entries (UnpackOptions; 0: none).
  uint64_t max_layer_bytes = 0;
  uint64_t max_layer_entries = 0;
};

class ImageManager {
 public:
  // Opens (and creates) the stores under options.root_dir; leftovers of an
  // interrupted pull (partial downloads, half-unpacked snapshots, blobs no
  // image record references) are removed.
  static absl::StatusOr<std::unique_ptr<ImageManager>> Open(ImageManagerOptions options);

  // Pulls `ref` ("busybox", "host:5000/app:v1", "repo@sha256:...") and
  // returns the stored image. Two pulls of the same image or layer at once
  // download it once. INVALID_ARGUMENT for a bad reference; NOT_FOUND when
  // the registry has no such image; DEADLINE_EXCEEDED / CANCELLED when the
  // call's deadline passes or it is cancelled; nothing half-written is kept.
  absl::StatusOr<ImageRecord> Pull(absl::string_view ref, const RegistryAuth& auth,
                                   const CallOptions& call);

  // Imports the images of an OCI image layout directory, an OCI archive (a
  // tar of such a layout) or a Docker archive (`docker save`), with no
  // registry. An image is named by its ref.name annotation when that is a
  // full reference ("docker.io/library/busybox:latest"), by the Docker
  // archive's RepoTags, or by `name` (which wins; it needs exactly one image
  // in the source). INVALID_ARGUMENT when an image has no usable name;
  // DATA_LOSS when a blob does not match its digest. Blobs are verified and
  // layers unpacked exactly as for a pull.
  absl::StatusOr<std::vector<ImageRecord>> Import(const std::string& path, absl::string_view name);

  // The image named by an ID, ID prefix, tag or digest reference.
  absl::StatusOr<ImageRecord> Get(absl::string_view id_or_ref) const;

  std::vector<ImageRecord> List() const;

  // Removes the image named by `id_or_ref` with all its tags and digests,
  // then the blobs and snapshots no other image uses. OK if there is none.
  absl::Status Remove(absl::string_view id_or_ref);

  // The image's snapshots as an overlayfs lowerdir list, top layer first.
  absl::StatusOr<std::vector<std::string>> LowerDirs(const ImageRecord& image) const;

  std::string SnapshotPath(absl::string_view diff_id) const;

  // Leases keep snapshots alive while a container uses them, whatever
  // happens to the image: garbage collection never removes a snapshot named
  // by a lease. AcquireLease records (atomically, under leases/) that
  // `holder` (a container ID) uses `image`'s layers and returns its lower
  // dirs as LowerDirs does; acquiring again for the same holder replaces the
  // lease. ReleaseLease drops it and collects what only it kept; releasing a
  // lease that does not exist is OK.
  absl::StatusOr<std::vector<std::string>> AcquireLease(absl::string_view holder,
                                                        const ImageRecord& image);
  absl::Status ReleaseLease(absl::string_view holder);
  // Holders of the leases on disk, for the agent's start-up reconciliation.
  std::vector<std::string> ListLeases() const;
  const std::string& snapshots_dir() const { return snapshots_dir_; }
  ContentStore& content() { return *content_; }

 private:
  ImageManager(ImageManagerOptions options, std::unique_ptr<ContentStore> content,
               std::unique_ptr<ImageStore> images);

  absl::StatusOr<ImageRecord> PullLocked(const Reference& ref, const RegistryAuth& auth,
                                         const CallOptions& call);
  // Everything after the blobs are in the content store: parse the config,
  // check it against the manifest, unpack the layers, write the record.
  absl::StatusOr<ImageRecord> Commit(const Reference* name, const std::string& repo_digest,
                                     const std::string& manifest_digest,
                                     const std::string& manifest_media_type,
                                     const Descriptor& config,
                                     const std::vector<Descriptor>& layers);
  absl::StatusOr<std::vector<ImageRecord>> ImportLocked(const std::string& path,
                                                        absl::string_view name);
  absl::StatusOr<std::vector<ImageRecord>> ImportLayout(const std::string& dir,
                                                        absl::string_view name);
  absl::StatusOr<std::vector<ImageRecord>> ImportDockerArchive(const std::string& dir,
                                                               absl::string_view name);
  // Copies the file `path` into the content store as `digest` (verified).
  absl::Status CopyBlob(const std::string& path, const Digest& digest, int64_t size);
  absl::Status FetchLayers(const Reference& ref, const std::vector<Descriptor>& layers,
                           const RegistryAuth& auth, const CallOptions& call);
  absl::Status UnpackLayers(const std::vector<Descriptor>& layers,
                            const std::vector<std::string>& diff_ids);
  // Deletes blobs and snapshots that no image record references. Runs only
  // while no pull is in flight (a pull's blobs have no record yet).
  void CollectGarbage();
  // CollectGarbage now if no pull or import is in flight, else when the last
  // one finishes.
  void CollectSoon();
  // Called by a pull or import after it let go of gc_mu_: collects what a
  // Remove deferred, and, when `collect`, what a failed pull left.
  void FinishWork(bool collect);

  const ImageManagerOptions options_;
  const std::string snapshots_dir_;
  const std::string leases_dir_;
  std::unique_ptr<ContentStore> content_;
  std::unique_ptr<ImageStore> images_;
  RegistryClient registry_;

  // Pulls hold this shared; garbage collection exclusive.
  absl::Mutex gc_mu_;
  absl::Mutex pending_mu_;
  bool gc_pending_ ABSL_GUARDED_BY(pending_mu_) = false;
};

}  // namespace podshim::image
