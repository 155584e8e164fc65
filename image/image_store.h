// The image store: one record per local image, keyed by the image ID (the
// digest of the image config, which is what CRI calls the image ID), with
// the tags and repo digests that name it. Persisted as one JSON file per
// image under a root directory (e.g. <root_dir>/images):
//   <root>/<algorithm>_<hex>.json           written with WriteFileAtomic
//   <root>/<algorithm>_<hex>.json.corrupt   a record that failed to load
//
// Naming rules (those of containerd's CRI image store):
//  - A repo tag ("docker.io/library/busybox:latest") belongs to at most one
//    image. Putting an image with a tag another image has moves the tag; the
//    other image loses it. An image left without tags and digests is kept,
//    as an untagged ("<none>") image, as containerd keeps it; garbage
//    collecting it is RemoveImage's or the image GC's job, not the store's.
//  - A repo digest ("docker.io/library/busybox@sha256:...") names one
//    manifest and so one image; it moves like a tag. Tags and digests of a
//    Put for an ID that exists are merged into the existing record.
//
// Crash safety: every change writes the changed image's record first (the
// commit point), then the records of images that lost a tag or digest.
// Each file carries a sequence number; on Open, a name claimed by several
// records (a crash between those writes) goes to the highest sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace podshim::image {

// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's noexcept move asserts.
struct ImageRecord {
  // "sha256:<hex>" of the config blob: the CRI image ID.
  std::string id;
  // Normalized references, each "domain/path:tag", e.g.
  // "docker.io/library/busybox:latest". Sorted, unique.
  std::vector<std::string> repo_tags;
  // Normalized "domain/path@sha256:<manifest or index digest>". Sorted, unique.
  std::vector<std::string> repo_digests;
  // Sum of the compressed layer sizes and the config size, as containerd
  // reports an image's size.
  uint64_t size = 0;
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;  // compressed, in manifest order
  std::vector<std::string> diff_ids;       // uncompressed, from the config's rootfs
  std::string media_type;                  // of the manifest
  nlohmann::json config;  // the parsed image config (config.Entrypoint, Cmd, User, Env, ...)
  std::map<std::string, std::string> annotations;  // e.g. pinned
  int64_t created_unix_ns = 0;                     // when the image was first stored

  friend bool operator==(const ImageRecord&, const ImageRecord&) = default;
};

nlohmann::json ImageRecordToJson(const ImageRecord& record);
// INVALID_ARGUMENT naming the field that is missing or has the wrong type.
absl::StatusOr<ImageRecord> ImageRecordFromJson(const nlohmann::json& json);

class ImageStore {
 public:
  // Creates `root` (0700) and loads every record in it. A record that cannot
  // be read or parsed is renamed to <file>.corrupt and described in
  // load_errors(); the others load. Errors only when the directory itself
  // cannot be created or listed.
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(const std::string& root);

  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  const std::string& root() const { return root_; }

  // What went wrong while loading, one message per record file.
  std::vector<std::string> load_errors() const;

  // Adds an image or merges into the existing one with the same ID: tags,
  // digests and annotations are merged, the other fields are replaced by
  // `record`'s, created_unix_ns keeps the first value (0 in `record` means
  // now). Tags and digests move away from other images (see above).
  // INVALID_ARGUMENT when the ID is not a digest, a tag is not "name:tag" or
  // a repo digest not "name@digest". On a failed write nothing changes.
  absl::Status Put(ImageRecord record);

  // Resolves, in this order:
  //   "sha256:<hex>"                       the full ID
  //   "<name>@<digest>"                    a repo digest; also the
  //                                        "<name>:<tag>@<digest>" form
  //   "<name>:<tag>"                       a repo tag
  //   "<64 hex>"                           a bare ID
  //   12 to 63 hex digits                  a unique ID prefix; INVALID_ARGUMENT
  //                                        if it matches several images (as
  //                                        containerd's truncindex does)
  //   anything image::ParseReference takes ("busybox"), normalized and
  //                                        looked up as a tag or repo digest
  // NOT_FOUND naming `id_or_ref` otherwise.
  absl::StatusOr<ImageRecord> Get(absl::string_view id_or_ref) const;

  // Every image, sorted by ID.
  std::vector<ImageRecord> List() const;

  // Removes the image with this full ID ("sha256:<hex>") and its record
  // file. OK if there is none.
  absl::Status Remove(absl::string_view id);

  // Removes one repo tag from whichever image has it; the image stays even
  // when it has no names left. OK if no image has the tag.
  absl::Status RemoveTag(absl::string_view repo_tag);

  // Applies `fn` to a copy of the image `id`, persists the copy, then swaps
  // it in; if `fn` or the write fails nothing changes. `fn` must not change
  // the ID (INVALID_ARGUMENT) and must not call into the store (it runs
  // under the store's lock). Changed tags and digests move as in Put.
  // NOT_FOUND if there is no such image.
  absl::Status Update(absl::string_view id, const std::function<absl::Status(ImageRecord&)>& fn);

 private:
  // NOLINTNEXTLINE(bugprone-exception-escape): as ImageRecord.
  struct Entry {
    ImageRecord record;
    uint64_t seq = 0;  // the sequence number of its last write
  };

  explicit ImageStore(std::string root) : root_(std::move(root)) {}
  std::string RecordPath(absl::string_view id) const;
  void Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteEntry(const ImageRecord& record, uint64_t seq) const;
  // Persists `record` (new or changed) and takes its tags and digests away
  // from other images; see the crash-safety note above.
  absl::Status CommitLocked(ImageRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ImageRecord> GetLocked(absl::string_view id_or_ref) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const ImageRecord* FindByName(absl::string_view name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::string root_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> images_ ABSL_GUARDED_BY(mu_);  // by ID
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::string> load_errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::image
