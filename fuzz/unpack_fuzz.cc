// Image layers (image/unpack.h): a tar stream, plain, gzip or zstd (the first
// byte picks which), unpacked as root the way a pull does, into a folder on a
// tmpfs, with every other mount of the machine read-only (fuzz/confine.h).
//
// Checks what unpack.h promises: a refused layer leaves nothing below its
// target; an unpacked one reports the bytes and entries it read, within the
// caps; and what it made can be removed again with podshim's own RemoveTree
// (a snapshot podshim cannot remove would fill the disk).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz/confine.h"
#include "image/manifest.h"
#include "image/unpack.h"
#include "runtime/files.h"

namespace {

std::string g_scratch;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "unpack_fuzz: %s\n", what.c_str());
  std::abort();
}

bool IsEmptyDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe): d is ours alone
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  g_scratch = podshim::fuzz::ConfineWrites();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace image = podshim::image;
  if (size < 1) return 0;
  static const image::Compression kCompressions[] = {
      image::Compression::kNone, image::Compression::kGzip, image::Compression::kZstd};
  const image::Compression compression = kCompressions[data[0] % 3];
  // Small reads at odd sizes, so entries straddle the reader's chunks.
  const size_t chunk = 1 + data[0] / 3 * 37;
  const uint8_t* next = data + 1;
  const uint8_t* end = data + size;
  image::LayerReader read = [&](char* buf, size_t cap) -> absl::StatusOr<size_t> {
    size_t n = std::min({cap, chunk, static_cast<size_t>(end - next)});
    std::memcpy(buf, next, n);
    next += n;
    return n;
  };
  image::UnpackOptions options;
  options.max_bytes = 64 << 20;
  options.max_entries = 4096;

  const std::string target = g_scratch + "/layer";
  if (::mkdir(target.c_str(), 0755) != 0) Fail("cannot make " + target);
  auto result = image::UnpackLayer(read, compression, target, options);
  if (!result.ok()) {
    if (!IsEmptyDir(target)) Fail("a refused layer left files: " + result.status().ToString());
  } else if (result->uncompressed_size > options.max_bytes ||
             result->entries > options.max_entries) {
    Fail("an unpacked layer passed its caps");
  }
  if (auto removed = podshim::runtime::RemoveTree(target); !removed.ok())
    Fail("RemoveTree of an unpacked layer: " + removed.ToString());
  if (!IsEmptyDir(g_scratch)) Fail("something was made beside the target");
  return 0;
}
