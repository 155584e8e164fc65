// Unpacking a layer: the blob decompressed (gzip, zstd) and hashed on its way
// to libarchive's tar reader, entries handed to the Extractor; the entry points.
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "image/digest.h"
#include "image/unpack_internal.h"
#include "runtime/unique_fd.h"

namespace podshim::image {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;
using unpack_internal::Extractor;
using unpack_internal::RemoveContents;
using unpack_internal::RemovePath;
using unpack_internal::SplitParent;
using unpack_internal::WithEntry;

// Fixed buffers: compressed input, uncompressed output handed to libarchive.
constexpr size_t kInBufSize = size_t{64} << 10;
constexpr size_t kOutBufSize = size_t{128} << 10;

// ---------------------------------------------------------------------------
// Decompression: turns the caller's (compressed) byte source into the
// uncompressed tar stream. Read() returns 0 once at the end of the stream and
// keeps returning 0 after that.

class Decompressor {
 public:
  Decompressor(const LayerReader& read, Compression compression)
      : read_(read), compression_(compression) {}
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  ~Decompressor() {
    if (zlib_ready_) inflateEnd(&zs_);
    ZSTD_freeDCtx(zstd_);
  }

  absl::Status Init() {
    switch (compression_) {
      case Compression::kNone:
        return absl::OkStatus();
      case Compression::kGzip:
        in_ = std::make_unique<char[]>(kInBufSize);
        // 16 + MAX_WBITS: a gzip header and trailer (not zlib, not raw).
        if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
          return absl::InternalError("gzip: inflateInit2 failed");
        }
        zlib_ready_ = true;
        return absl::OkStatus();
      case Compression::kZstd:
        in_ = std::make_unique<char[]>(kInBufSize);
        zstd_ = ZSTD_createDCtx();
        if (zstd_ == nullptr) return absl::InternalError("zstd: ZSTD_createDCtx failed");
        return absl::OkStatus();
    }
    return absl::InvalidArgumentError("unknown layer compression");
  }

  absl::StatusOr<size_t> Read(char* out, size_t cap) {
    if (done_) return 0;
    absl::StatusOr<size_t> n = 0;
    switch (compression_) {
      case Compression::kNone:
        n = ReadSource(out, cap);
        break;
      case Compression::kGzip:
        n = ReadGzip(out, cap);
        break;
      case Compression::kZstd:
        n = ReadZstd(out, cap);
        break;
    }
    if (n.ok() && *n == 0) done_ = true;
    return n;
  }

 private:
  absl::StatusOr<size_t> ReadSource(char* buf, size_t cap) {
    auto n = read_(buf, cap);
    if (!n.ok()) {
      return absl::Status(n.status().code(),
                          absl::StrCat("read layer blob: ", n.status().message()));
    }
    if (*n > cap) return absl::InternalError("read layer blob: reader returned more than asked");
    return *n;
  }

  // Refills the input buffer once it is used up; sets in_eof_ at the end.
  absl::Status Fill() {
    if (in_pos_ < in_len_ || in_eof_) return absl::OkStatus();
    auto n = ReadSource(in_.get(), kInBufSize);
    if (!n.ok()) return n.status();
    in_pos_ = 0;
    in_len_ = *n;
    if (*n == 0) in_eof_ = true;
    return absl::OkStatus();
  }

  // Gzip, including several concatenated members (as pigz and others write).
  absl::StatusOr<size_t> ReadGzip(char* out, size_t cap) {
    while (true) {
      if (member_done_) {
        if (auto s = Fill(); !s.ok()) return s;
        if (in_pos_ == in_len_) return 0;  // clean end after a complete member
        if (inflateReset(&zs_) != Z_OK) return absl::InternalError("gzip: inflateReset failed");
        member_done_ = false;
      }
      if (auto s = Fill(); !s.ok()) return s;
      const bool at_eof = in_pos_ == in_len_;
      zs_.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
      zs_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      zs_.next_out = reinterpret_cast<Bytef*>(out);
      zs_.avail_out = static_cast<uInt>(std::min<size_t>(cap, UINT32_MAX));
      const size_t avail_out = zs_.avail_out;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      in_pos_ = in_len_ - zs_.avail_in;
      const size_t produced = avail_out - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        member_done_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return absl::DataLossError(absl::StrCat("gzip: corrupt stream: ",
                                                zs_.msg != nullptr ? zs_.msg : "inflate failed"));
      }
      if (produced > 0) return produced;
      if (member_done_) continue;
      if (at_eof) return absl::DataLossError("gzip: stream truncated");
    }
  }

  // Zstandard, any number of frames (skippable frames included).
  absl::StatusOr<size_t> ReadZstd(char* out, size_t cap) {
    while (true) {
      if (auto s = Fill(); !s.ok()) return s;
      const bool at_eof = in_pos_ == in_len_;
      ZSTD_inBuffer in{in_.get(), in_len_, in_pos_};
      ZSTD_outBuffer o{out, cap, 0};
      size_t rc = ZSTD_decompressStream(zstd_, &o, &in);
      if (ZSTD_isError(rc)) {
        return absl::DataLossError(absl::StrCat("zstd: corrupt stream: ", ZSTD_getErrorName(rc)));
      }
      const bool progress = in.pos > in_pos_ || o.pos > 0;
      in_pos_ = in.pos;
      // rc == 0: a frame is complete and flushed. A call that neither reads
      // nor writes says nothing new (at a frame boundary it asks for the
      // next frame's header).
      if (progress) zstd_frame_done_ = rc == 0;
      if (o.pos > 0) return o.pos;
      if (at_eof) {
        if (!zstd_frame_done_ && rc != 0) return absl::DataLossError("zstd: stream truncated");
        return 0;
      }
    }
  }

  const LayerReader& read_;
  Compression compression_;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool in_eof_ = false;
  bool done_ = false;
  z_stream zs_{};
  bool zlib_ready_ = false;
  bool member_done_ = false;
  ZSTD_DCtx* zstd_ = nullptr;
  bool zstd_frame_done_ = false;
};

// The uncompressed stream as libarchive pulls it: every byte handed over is
// hashed and counted first.
struct Stream {
  Stream(Decompressor* s, uint64_t cap) : source(s), max_bytes(cap) {}
  Decompressor* source;
  const uint64_t max_bytes;  // 0: none
  Hasher hasher = Hasher::Sha256();
  uint64_t size = 0;
  std::unique_ptr<char[]> buf = std::make_unique<char[]>(kOutBufSize);
  absl::Status error;

  absl::StatusOr<size_t> Pull() {
    auto n = source->Read(buf.get(), kOutBufSize);
    if (!n.ok()) return n;
    hasher.Update(buf.get(), *n);
    size += *n;
    if (max_bytes > 0 && size > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the layer unpacks to more than ", max_bytes,
                       " bytes (max_layer_bytes); a compression bomb, or raise the cap"));
    }
    return n;
  }
};

la_ssize_t ArchiveRead(struct archive* a, void* client, const void** out) {
  auto* stream = static_cast<Stream*>(client);
  auto n = stream->Pull();
  if (!n.ok()) {
    stream->error = n.status();
    archive_set_error(a, EIO, "%s", std::string(n.status().message()).c_str());
    return -1;
  }
  *out = stream->buf.get();
  return static_cast<la_ssize_t>(*n);
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// ---------------------------------------------------------------------------

absl::StatusOr<UnpackResult> Unpack(const LayerReader& read, Compression compression, int root,
                                    const UnpackOptions& options) {
  Decompressor source(read, compression);
  if (auto s = source.Init(); !s.ok()) return s;
  Stream stream(&source, options.max_bytes);
  std::unique_ptr<struct archive, ArchiveFree> ar(archive_read_new());
  if (ar == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
  // Only tar (ustar, pax, GNU) and an empty stream; no libarchive filters:
  // decompression is ours, so the hash sees exactly the uncompressed bytes.
  archive_read_support_format_tar(ar.get());
  archive_read_support_format_empty(ar.get());
  auto archive_status = [&](absl::string_view action) {
    if (!stream.error.ok()) return stream.error;
    const char* msg = archive_error_string(ar.get());
    return absl::DataLossError(
        absl::StrCat(action, ": ", msg != nullptr ? msg : "libarchive error"));
  };
  if (archive_read_open(ar.get(), &stream, nullptr, &ArchiveRead, nullptr) != ARCHIVE_OK) {
    return archive_status("open tar stream");
  }
  Extractor extractor(root, options);
  UnpackResult result;
  while (true) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(ar.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return archive_status(absl::StrCat("read tar header after ", result.entries, " entries"));
    }
    ++result.entries;
    if (options.max_entries > 0 && result.entries > options.max_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the layer has more than ", options.max_entries,
                       " entries (max_layer_entries); a tar bomb, or raise the cap"));
    }
    if (auto s = extractor.Apply(ar.get(), e); !s.ok()) {
      // A failed read of file data shows up as DATA_LOSS from Apply; prefer
      // the source's own error (gzip corrupt, reader failed) when there is one.
      if (!stream.error.ok()) return WithEntry(archive_entry_pathname(e), stream.error);
      return s;
    }
  }
  // The diffID covers the whole uncompressed stream, also what follows the
  // tar's end-of-archive blocks.
  while (true) {
    auto n = stream.Pull();
    if (!n.ok()) return n.status();
    if (*n == 0) break;
  }
  if (auto s = extractor.Finish(); !s.ok()) return s;
  result.diff_id = stream.hasher.Finish();
  result.uncompressed_size = stream.size;
  if (options.expected_diff_id.has_value() && *options.expected_diff_id != result.diff_id) {
    return absl::DataLossError(absl::StrCat("layer diffID mismatch: expected ",
                                            options.expected_diff_id->String(), ", got ",
                                            result.diff_id.String()));
  }
  return result;
}

LayerReader FileReader(int fd) {
  return [fd](char* buf, size_t cap) -> absl::StatusOr<size_t> {
    while (true) {
      ssize_t n = ::read(fd, buf, cap);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, "read", "layer blob");
    }
  };
}

absl::Status Annotate(absl::string_view target, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("unpack layer into `", target, "`: ", s.message()));
}

}  // namespace

absl::StatusOr<UnpackResult> UnpackLayer(const LayerReader& read, Compression compression,
                                         const std::string& target_dir,
                                         const UnpackOptions& options) {
  UniqueFd root(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(errno, "open snapshot directory", target_dir);
  {
    UniqueFd scan(::fcntl(root.get(), F_DUPFD_CLOEXEC, 0));
    DIR* dir = scan.valid() ? ::fdopendir(scan.get()) : nullptr;
    if (dir == nullptr) return ErrnoError(errno, "read snapshot directory", target_dir);
    scan.Release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
    while (struct dirent* d = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe): private stream
      absl::string_view name = d->d_name;
      if (name != "." && name != "..") {
        return absl::FailedPreconditionError(
            absl::StrCat("unpack layer: target directory `", target_dir, "` is not empty"));
      }
    }
  }
  auto result = Unpack(read, compression, root.get(), options);
  if (!result.ok()) {
    // Nothing of a failed layer is kept; the first error is the one reported.
    (void)RemoveContents(root.get(), target_dir);
    return Annotate(target_dir, result.status());
  }
  return result;
}

absl::StatusOr<UnpackResult> UnpackLayerFile(const std::string& blob_path, Compression compression,
                                             const std::string& target_dir,
                                             const UnpackOptions& options) {
  UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open layer blob", blob_path);
  return UnpackLayer(FileReader(fd.get()), compression, target_dir, options);
}

absl::StatusOr<UnpackResult> UnpackLayerInto(const LayerReader& read, Compression compression,
                                             const std::string& snapshot_dir,
                                             const UnpackOptions& options) {
  std::string final_path = snapshot_dir;
  while (final_path.size() > 1 && final_path.back() == '/') final_path.pop_back();
  const auto [parent, base] = SplitParent(final_path);
  if (base.empty() || base == "." || base == ".." || base == "/") {
    return absl::InvalidArgumentError(
        absl::StrCat("unpack layer: invalid snapshot path `", snapshot_dir, "`"));
  }
  struct stat st {};
  if (::lstat(final_path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat("unpack layer: `", final_path, "` exists and is not a directory"));
  }
  std::string tmp = absl::StrCat(parent, "/.", base, ".unpack-XXXXXX");
  if (::mkdtemp(tmp.data()) == nullptr) return ErrnoError(errno, "create temp directory", tmp);
  if (::chmod(tmp.c_str(), 0755) != 0) {
    absl::Status s = ErrnoError(errno, "chmod", tmp);
    (void)RemovePath(tmp);
    return s;
  }
  auto result = UnpackLayer(read, compression, tmp, options);
  if (!result.ok()) {
    (void)RemovePath(tmp);
    return result.status();
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    (void)RemovePath(tmp);
    if (err == EEXIST || err == ENOTEMPTY) {
      return absl::AlreadyExistsError(
          absl::StrCat("unpack layer: snapshot `", final_path, "` already exists"));
    }
    return ErrnoError(err, absl::StrCat("rename `", tmp, "` to"), final_path);
  }
  return result;
}

absl::StatusOr<UnpackResult> UnpackLayerFileInto(const std::string& blob_path,
                                                 Compression compression,
                                                 const std::string& snapshot_dir,
                                                 const UnpackOptions& options) {
  UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open layer blob", blob_path);
  return UnpackLayerInto(FileReader(fd.get()), compression, snapshot_dir, options);
}

}  // namespace podshim::image
