// Unpacking one OCI image layer (a tar stream, uncompressed, gzip or zstd)
// into a snapshot directory that is later used as an overlayfs lower dir.
//
// The layer is untrusted input. Every entry is resolved inside the snapshot
// with *at() calls from a directory fd, one component at a time and never
// through a symlink; `..` that would leave the snapshot, writes through a
// symlink, hard links to outside or through a symlink, device nodes (unless
// allowed) and overlay xattrs are refused. The stream is decompressed here and
// its uncompressed bytes hashed (sha256) on the way, so memory stays bounded
// whatever the layer size and the result carries the layer's diffID.
//
// What the snapshot looks like (overlayfs form of the OCI layer):
//   - regular files, directories, symlinks, hard links, fifos with the tar's
//     mode (setuid/setgid/sticky included), numeric uid/gid, mtime/atime and
//     xattrs (SCHILY.xattr.*, e.g. security.capability);
//   - `.wh.NAME` becomes a whiteout: a character device 0:0 named NAME;
//   - `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory;
//   - other `.wh..wh.*` names (aufs metadata) are ignored; no `.wh.*` file is
//     ever created.
// Mount the snapshots with overlayfs' default (trusted.*) xattr namespace.
// Needs root (CAP_CHOWN, CAP_FOWNER, CAP_MKNOD, CAP_SYS_ADMIN for trusted.*).
//
// Errors: INVALID_ARGUMENT naming the entry for content that is refused
// (escapes, writes through symlinks, bad whiteouts, overlay xattrs),
// FAILED_PRECONDITION for device nodes that are not allowed, DATA_LOSS for a
// corrupt or truncated stream and for a diffID that does not match,
// RESOURCE_EXHAUSTED for a layer beyond UnpackOptions' caps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "image/digest.h"
#include "image/manifest.h"  // Compression, LayerCompression(media_type)

namespace podshim::image {

struct UnpackOptions {
  // Character and block devices other than whiteouts (char 0:0) are refused
  // unless this is set.
  bool allow_devices = false;
  // The diffID from the image config (rootfs.diff_ids). When set and the
  // uncompressed stream hashes to something else: DATA_LOSS naming both.
  std::optional<Digest> expected_diff_id;
  // Caps against compression bombs (0: none): a layer whose uncompressed
  // stream is longer, or that has more tar entries, is RESOURCE_EXHAUSTED
  // naming the cap (agent config keys max_layer_bytes, max_layer_entries),
  // found as soon as it is passed, and nothing of it is kept.
  uint64_t max_bytes = 0;
  uint64_t max_entries = 0;
};

struct UnpackResult {
  Digest diff_id;                  // sha256 of the whole uncompressed stream
  uint64_t uncompressed_size = 0;  // bytes of the uncompressed stream
  uint64_t entries = 0;            // tar entries read, whiteouts included
};

// The source of the (compressed) layer bytes: fills at most `cap` bytes of
// `buf`, returns how many, 0 at the end of the stream.
using LayerReader = std::function<absl::StatusOr<size_t>(char* buf, size_t cap)>;

// Unpacks the layer from `read` into `target_dir`, which must exist and be
// empty (FAILED_PRECONDITION otherwise). On failure everything created below
// `target_dir` is removed again; `target_dir` itself stays (its own mode,
// owner, times and xattrs may have been changed by a "./" entry), and the
// caller removes it.
absl::StatusOr<UnpackResult> UnpackLayer(const LayerReader& read, Compression compression,
                                         const std::string& target_dir,
                                         const UnpackOptions& options = {});

// UnpackLayer reading the layer blob at `blob_path`.
absl::StatusOr<UnpackResult> UnpackLayerFile(const std::string& blob_path, Compression compression,
                                             const std::string& target_dir,
                                             const UnpackOptions& options = {});

// Unpacks into a fresh temp directory beside `snapshot_dir` (whose parent
// must exist) and renames it to `snapshot_dir` on success; on any failure
// nothing of it is kept. `snapshot_dir` must not exist (an empty directory is
// replaced); ALREADY_EXISTS when it does, e.g. because another pull unpacked
// the same layer first; the temp directory is removed then too.
absl::StatusOr<UnpackResult> UnpackLayerInto(const LayerReader& read, Compression compression,
                                             const std::string& snapshot_dir,
                                             const UnpackOptions& options = {});

// UnpackLayerInto reading the layer blob at `blob_path`.
absl::StatusOr<UnpackResult> UnpackLayerFileInto(const std::string& blob_path,
                                                 Compression compression,
                                                 const std::string& snapshot_dir,
                                                 const UnpackOptions& options = {});

}  // namespace podshim::image
