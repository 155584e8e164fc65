// ImageManager::Import: OCI image layouts, OCI archives and Docker archives
// into the stores, without a registry.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "image/image_manager.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::image {
namespace {

constexpr uint64_t kMaxJsonBytes = 4 << 20;
constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";
constexpr char kContainerdNameAnnotation[] = "io.containerd.image.name";

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("`", path, "`: ", ec.message()));
  if (size > kMaxJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("`", path, "` is larger than 4 MiB"));
  }
  return runtime::ReadFile(path);
}

// Normalizes `path` (relative to the archive root): no absolute paths, no
// ".." above the root. Empty on refusal.
std::string InsideArchive(absl::string_view path) {
  if (path.empty() || path.front() == '/') return "";
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return "";
      parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  return absl::StrJoin(parts, "/");
}

// Extracts the regular files and directories of the tar at `archive_path`
// into `dir`. Symbolic and hard links to a file inside the archive (as
// `docker save` and skopeo write them) become hard links to that file once
// everything is out. Anything else (devices, links leaving the archive) and
// any name that is absolute or climbs with ".." is refused: an archive is
// untrusted input.
absl::Status ExtractArchive(const std::string& archive_path, const std::string& dir) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  if (archive_read_open_filename(a.get(), archive_path.c_str(), size_t{64} * 1024) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("archive `", archive_path, "`: ", archive_error_string(a.get())));
  }
  struct archive_entry* entry = nullptr;
  std::vector<std::pair<std::string, std::string>> links;  // (name, target), inside the archive
  for (;;) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      return absl::DataLossError(
          absl::StrCat("archive `", archive_path, "`: ", archive_error_string(a.get())));
    }
    std::string name = archive_entry_pathname(entry);
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    if (name.empty() || name == ".") continue;
    if (name.front() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("archive `", archive_path, "`: absolute entry `", name, "`"));
    }
    for (absl::string_view part : absl::StrSplit(name, '/')) {
      if (part == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("archive `", archive_path, "`: entry `", name, "` climbs out"));
      }
    }
    const std::string target = absl::StrCat(dir, "/", name);
    const auto type = archive_entry_filetype(entry);
    const char* hardlink = archive_entry_hardlink(entry);
    if (type == AE_IFLNK || hardlink != nullptr) {
      // A symlink's target is relative to its directory; a hard link's to the root.
      std::string base = std::filesystem::path(name).parent_path().string();
      std::string to =
          hardlink != nullptr
              ? InsideArchive(hardlink)
              : InsideArchive(base.empty() ? std::string(archive_entry_symlink(entry))
                                           : absl::StrCat(base, "/", archive_entry_symlink(entry)));
      if (to.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("archive `", archive_path, "`: link `", name, "` leaves the archive"));
      }
      links.emplace_back(name, to);
      continue;
    }
    if (type == AE_IFDIR) {
      if (auto s = runtime::MakeDirs(target, 0700); !s.ok()) return s;
      continue;
    }
    if (type != AE_IFREG) {
      return absl::InvalidArgumentError(absl::StrCat("archive `", archive_path, "`: entry `", name,
                                                     "` is not a file or directory"));
    }
    std::string parent = std::filesystem::path(target).parent_path().string();
    if (auto s = runtime::MakeDirs(parent, 0700); !s.ok()) return s;
    // Parents were made by this function from checked names, so no
    // component is a symlink; O_NOFOLLOW|O_EXCL guards the last one.
    runtime::UniqueFd fd(
        ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return runtime::ErrnoError(errno, "create", target);
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(a.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
      if (::lseek(fd.get(), offset, SEEK_SET) < 0)
        return runtime::ErrnoError(errno, "seek", target);
      if (auto s = runtime::WriteAll(
              fd.get(), absl::string_view(static_cast<const char*>(buf), size), target);
          !s.ok()) {
        return s;
      }
    }
    if (rc != ARCHIVE_EOF) {
      return absl::DataLossError(
          absl::StrCat("archive `", archive_path, "`: ", archive_error_string(a.get())));
    }
  }
  for (const auto& [name, to] : links) {
    const std::string from = absl::StrCat(dir, "/", to);
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("archive `", archive_path, "`: link `", name,
                                                     "` does not point at a file of the archive"));
    }
    const std::string link = absl::StrCat(dir, "/", name);
    if (auto s = runtime::MakeDirs(std::filesystem::path(link).parent_path().string(), 0700);
        !s.ok()) {
      return s;
    }
    if (::link(from.c_str(), link.c_str()) != 0) return runtime::ErrnoError(errno, "link", link);
  }
  return absl::OkStatus();
}

// The name an index entry gives its image, if it is a full reference.
absl::StatusOr<Reference> NameOf(const Descriptor& d) {
  for (const char* key : {kContainerdNameAnnotation, kRefNameAnnotation}) {
    auto it = d.annotations.find(key);
    if (it == d.annotations.end()) continue;
    // A bare tag ("latest", "busybox") says nothing about the repository.
    if (it->second.find('/') == std::string::npos && it->second.find(':') == std::string::npos) {
      continue;
    }
    return ParseReference(it->second);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "image ", d.digest, " has no name in the archive; give one (podshimd import --name=REF)"));
}

}  // namespace

absl::Status ImageManager::CopyBlob(const std::string& path, const Digest& digest, int64_t size) {
  return content_->Fetch(digest, size, [&](Ingest& ingest) -> absl::Status {
    runtime::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return runtime::ErrnoError(errno, "open", path);
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return runtime::ErrnoError(errno, "read", path);
      }
      if (n == 0) return absl::OkStatus();
      if (auto s = ingest.Write(absl::string_view(buf, static_cast<size_t>(n))); !s.ok()) return s;
    }
  });
}

absl::StatusOr<std::vector<ImageRecord>> ImageManager::Import(const std::string& path,
                                                              absl::string_view name) {
  absl::StatusOr<std::vector<ImageRecord>> result;
  {
    absl::ReaderMutexLock importing(&gc_mu_);
    result = ImportLocked(path, name);
  }
  // A failed import may have committed some blobs: collect them.
  FinishWork(/*collect=*/!result.ok());
  return result;
}

absl::StatusOr<std::vector<ImageRecord>> ImageManager::ImportLocked(const std::string& path,
                                                                    absl::string_view name) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path + "/oci-layout", ec)) return ImportLayout(path, name);
    if (std::filesystem::exists(path + "/manifest.json", ec))
      return ImportDockerArchive(path, name);
    return absl::InvalidArgumentError(
        absl::StrCat("`", path,
                     "` is neither an OCI image layout (no oci-layout) nor a Docker archive "
                     "(no manifest.json)"));
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("import: `", path, "` does not exist"));
  }
  // An archive: unpack it next to the stores, import, and remove the copy.
  std::string tmp = options_.root_dir + "/import-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return runtime::ErrnoError(errno, "mkdtemp", tmp);
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code e;
      std::filesystem::remove_all(dir, e);
    }
  } remove{tmp};
  if (auto s = ExtractArchive(path, tmp); !s.ok()) return s;
  if (std::filesystem::exists(tmp + "/oci-layout", ec)) return ImportLayout(tmp, name);
  if (std::filesystem::exists(tmp + "/manifest.json", ec)) return ImportDockerArchive(tmp, name);
  return absl::InvalidArgumentError(
      absl::StrCat("archive `", path, "` holds neither an OCI image layout nor a Docker archive"));
}

absl::StatusOr<std::vector<ImageRecord>> ImageManager::ImportLayout(const std::string& dir,
                                                                    absl::string_view name) {
  auto layout = ReadSmallFile(dir + "/oci-layout");
  if (!layout.ok()) return layout.status();
  auto index_json = ReadSmallFile(dir + "/index.json");
  if (!index_json.ok()) return index_json.status();
  auto index = ParseIndex(*index_json);
  if (!index.ok()) return WithContext(index.status(), absl::StrCat(dir, "/index.json"));
  if (index->empty()) return absl::InvalidArgumentError(absl::StrCat(dir, ": index.json is empty"));
  if (!name.empty() && index->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " holds ", index->size(), " images; a name can only be given to one"));
  }
  auto blob_path = [&](const Digest& d) {
    return absl::StrCat(dir, "/blobs/", d.algorithm, "/", d.hex);
  };
  auto read_json_blob = [&](const Descriptor& d) -> absl::StatusOr<std::string> {
    auto digest = ParseDigest(d.digest);
    if (!digest.ok()) return digest.status();
    if (auto s = CopyBlob(blob_path(*digest), *digest, d.size); !s.ok()) return s;
    return content_->ReadBlob(*digest, kMaxJsonBytes);
  };

  std::vector<ImageRecord> out;
  for (const Descriptor& entry : *index) {
    absl::StatusOr<Reference> ref = name.empty() ? NameOf(entry) : ParseReference(name);
    if (!ref.ok()) return ref.status();
    Descriptor manifest_desc = entry;
    std::string media_type = entry.media_type;
    if (IsIndexMediaType(entry.media_type)) {
      auto nested = read_json_blob(entry);
      if (!nested.ok()) return nested.status();
      auto entries = ParseIndex(*nested);
      if (!entries.ok()) return entries.status();
      auto chosen = SelectPlatform(*entries, HostPlatform());
      if (!chosen.ok()) return chosen.status();
      manifest_desc = *chosen;
    }
    auto manifest_json = read_json_blob(manifest_desc);
    if (!manifest_json.ok()) return manifest_json.status();
    auto manifest = ParseManifest(*manifest_json);
    if (!manifest.ok()) return manifest.status();
    std::vector<Descriptor> blobs = manifest->layers;
    blobs.push_back(manifest->config);
    for (const Descriptor& b : blobs) {
      auto digest = ParseDigest(b.digest);
      if (!digest.ok()) return digest.status();
      if (auto s = CopyBlob(blob_path(*digest), *digest, b.size); !s.ok()) {
        return WithContext(s, absl::StrCat("blob ", b.digest));
      }
    }
    auto record =
        Commit(&*ref, entry.digest, manifest_desc.digest,
               manifest->media_type.empty() ? manifest_desc.media_type : manifest->media_type,
               manifest->config, manifest->layers);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
  return out;
}

absl::StatusOr<std::vector<ImageRecord>> ImageManager::ImportDockerArchive(const std::string& dir,
                                                                           absl::string_view name) {
  auto text = ReadSmallFile(dir + "/manifest.json");
  if (!text.ok()) return text.status();
  nlohmann::json entries;
  try {
    entries = nlohmann::json::parse(*text);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json: ", e.what()));
  }
  if (!entries.is_array() || entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json: expected a list"));
  }
  if (!name.empty() && entries.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " holds ", entries.size(), " images; a name can only be given to one"));
  }
  // A file of the archive, by a name that must stay inside it.
  auto member = [&](const nlohmann::json& v,
                    absl::string_view what) -> absl::StatusOr<std::string> {
    if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat("manifest.json: ", what));
    std::string rel = v.get<std::string>();
    for (absl::string_view part : absl::StrSplit(rel, '/')) {
      if (part == ".." || rel.empty() || rel.front() == '/') {
        return absl::InvalidArgumentError(
            absl::StrCat("manifest.json: ", what, " `", rel, "` leaves the archive"));
      }
    }
    return dir + "/" + rel;
  };
  // Hashes a file and copies it into the content store.
  auto store = [&](const std::string& path, const char* media_type) -> absl::StatusOr<Descriptor> {
    Hasher hasher = Hasher::Sha256();
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("`", path, "` is missing"));
    char buf[64 * 1024];
    int64_t size = 0;
    unsigned char magic[2] = {0, 0};
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      if (size == 0 && in.gcount() >= 2) std::memcpy(magic, buf, 2);
      hasher.Update(buf, static_cast<size_t>(in.gcount()));
      size += in.gcount();
    }
    Digest digest = hasher.Finish();
    if (auto s = CopyBlob(path, digest, size); !s.ok()) return s;
    Descriptor d;
    d.digest = digest.String();
    d.size = size;
    d.media_type = media_type != nullptr                    ? media_type
                   : (magic[0] == 0x1f && magic[1] == 0x8b) ? kMediaTypeDockerLayerGzip
                                                            : kMediaTypeDockerLayer;
    return d;
  };

  std::vector<ImageRecord> out;
  for (const auto& e : entries) {
    if (!e.is_object()) return absl::InvalidArgumentError("manifest.json: entries must be objects");
    auto config_path = member(e.value("Config", nlohmann::json()), "Config");
    if (!config_path.ok()) return config_path.status();
    auto config = store(*config_path, kMediaTypeDockerConfig);
    if (!config.ok()) return config.status();
    std::vector<Descriptor> layers;
    for (const auto& l : e.value("Layers", nlohmann::json::array())) {
      auto layer_path = member(l, "Layers[]");
      if (!layer_path.ok()) return layer_path.status();
      auto layer = store(*layer_path, nullptr);
      if (!layer.ok()) return layer.status();
      layers.push_back(*layer);
    }
    // The manifest a registry would have served for these blobs.
    nlohmann::json manifest = {
        {"schemaVersion", 2},
        {"mediaType", kMediaTypeDockerManifest},
        {"config",
         {{"mediaType", config->media_type}, {"digest", config->digest}, {"size", config->size}}},
        {"layers", nlohmann::json::array()}};
    for (const auto& l : layers) {
      manifest["layers"].push_back(
          {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
    }
    const std::string manifest_json = manifest.dump();
    const Digest manifest_digest = Sha256Of(manifest_json);
    if (auto s = content_->WriteBlob(manifest_digest, manifest_json); !s.ok()) return s;

    std::vector<std::string> tags;
    if (!name.empty()) {
      tags.emplace_back(name);
    } else {
      for (const auto& t : e.value("RepoTags", nlohmann::json::array())) {
        if (t.is_string()) tags.push_back(t.get<std::string>());
      }
    }
    if (tags.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", config->digest,
                       " has no RepoTags; give it a name (podshimd import --name=REF)"));
    }
    absl::StatusOr<ImageRecord> record = absl::UnknownError("no tag");
    for (const auto& tag : tags) {
      auto ref = ParseReference(tag);
      if (!ref.ok()) return ref.status();
      // `docker save` has no registry digest: the record gets tags only.
      record =
          Commit(&*ref, "", manifest_digest.String(), kMediaTypeDockerManifest, *config, layers);
      if (!record.ok()) return record.status();
    }
    out.push_back(*std::move(record));
  }
  return out;
}

}  // namespace podshim::image
