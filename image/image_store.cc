#include "image/image_store.h"

#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "image/digest.h"
#include "image/reference.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::image {
namespace {

using json = nlohmann::json;

constexpr int kSchema = 1;
constexpr size_t kMinIdPrefix = 12;
constexpr absl::string_view kRecordSuffix = ".json";
constexpr absl::string_view kCorruptSuffix = ".corrupt";

// "name:tag" with the colon after the last slash (a registry port comes
// before it), and no digest.
bool IsRepoTag(absl::string_view s) {
  if (absl::StrContains(s, '@')) return false;
  size_t colon = s.rfind(':');
  size_t slash = s.rfind('/');
  return colon != absl::string_view::npos && colon > 0 && colon + 1 < s.size() &&
         (slash == absl::string_view::npos || colon > slash);
}

// "name@<digest>" with a name without tag.
bool IsRepoDigest(absl::string_view s) {
  size_t at = s.find('@');
  if (at == absl::string_view::npos || at == 0) return false;
  absl::string_view name = s.substr(0, at);
  size_t colon = name.rfind(':');
  size_t slash = name.rfind('/');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    return false;
  }
  return ParseDigest(s.substr(at + 1)).ok();
}

bool IsLowerHex(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Sorts and dedupes the names and checks the ID and the names.
absl::Status Normalize(ImageRecord& record) {
  if (!ParseDigest(record.id).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image ID `", record.id, "` is not a digest (sha256:<hex>)"));
  }
  SortUnique(record.repo_tags);
  SortUnique(record.repo_digests);
  for (const auto& tag : record.repo_tags) {
    if (!IsRepoTag(tag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("image `", record.id, "`: repo tag `", tag, "` is not <name>:<tag>"));
    }
  }
  for (const auto& digest : record.repo_digests) {
    if (!IsRepoDigest(digest)) {
      return absl::InvalidArgumentError(absl::StrCat("image `", record.id, "`: repo digest `",
                                                     digest, "` is not <name>@<digest>"));
    }
  }
  return absl::OkStatus();
}

// Removes every element of `remove` from `v` (both sorted); true if any was.
bool EraseAll(std::vector<std::string>& v, const std::vector<std::string>& remove) {
  size_t before = v.size();
  v.erase(std::remove_if(v.begin(), v.end(),
                         [&](const std::string& s) {
                           return std::binary_search(remove.begin(), remove.end(), s);
                         }),
          v.end());
  return v.size() != before;
}

// Typed field readers for ImageRecordFromJson: absent fields keep their
// default, present fields must have the right type.
absl::Status FieldError(absl::string_view key, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("field `", key, "` must be ", want));
}

absl::Status ReadString(const json& j, absl::string_view key, std::string& out) {
  auto it = j.find(std::string(key));
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(key, "a string");
  out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadStrings(const json& j, absl::string_view key, std::vector<std::string>& out) {
  auto it = j.find(std::string(key));
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return FieldError(key, "an array of strings");
  for (const auto& e : *it) {
    if (!e.is_string()) return FieldError(key, "an array of strings");
    out.push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

json ImageRecordToJson(const ImageRecord& r) {
  return json{
      {"id", r.id},
      {"repo_tags", r.repo_tags},
      {"repo_digests", r.repo_digests},
      {"size", r.size},
      {"manifest_digest", r.manifest_digest},
      {"config_digest", r.config_digest},
      {"layer_digests", r.layer_digests},
      {"diff_ids", r.diff_ids},
      {"media_type", r.media_type},
      {"config", r.config},
      {"annotations", r.annotations},
      {"created_unix_ns", r.created_unix_ns},
  };
}

absl::StatusOr<ImageRecord> ImageRecordFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("image record is not a JSON object");
  ImageRecord r;
  if (!j.contains("id")) return absl::InvalidArgumentError("field `id` is missing");
  for (auto [key, field] : {std::pair{"id", &r.id},
                            {"manifest_digest", &r.manifest_digest},
                            {"config_digest", &r.config_digest},
                            {"media_type", &r.media_type}}) {
    if (auto s = ReadString(j, key, *field); !s.ok()) return s;
  }
  for (auto [key, field] : {std::pair{"repo_tags", &r.repo_tags},
                            {"repo_digests", &r.repo_digests},
                            {"layer_digests", &r.layer_digests},
                            {"diff_ids", &r.diff_ids}}) {
    if (auto s = ReadStrings(j, key, *field); !s.ok()) return s;
  }
  if (auto it = j.find("size"); it != j.end()) {
    if (!it->is_number_unsigned()) return FieldError("size", "an unsigned integer");
    r.size = it->get<uint64_t>();
  }
  if (auto it = j.find("created_unix_ns"); it != j.end()) {
    if (!it->is_number_integer()) return FieldError("created_unix_ns", "an integer");
    r.created_unix_ns = it->get<int64_t>();
  }
  if (auto it = j.find("config"); it != j.end()) r.config = *it;
  if (auto it = j.find("annotations"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return FieldError("annotations", "an object of strings");
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string()) return FieldError("annotations", "an object of strings");
      r.annotations[key] = value.get<std::string>();
    }
  }
  return r;
}

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root) {
  if (auto s = runtime::MakeDirs(root, 0700); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::directory_iterator probe(root, ec);
  if (ec) return runtime::ErrnoError(ec.value(), "list", root);
  std::unique_ptr<ImageStore> store(new ImageStore(root));
  {
    absl::MutexLock lock(&store->mu_);
    store->Load();
  }
  return store;
}

std::string ImageStore::RecordPath(absl::string_view id) const {
  std::string name(id);
  std::replace(name.begin(), name.end(), ':', '_');
  return absl::StrCat(root_, "/", name, kRecordSuffix);
}

void ImageStore::Load() {
  std::error_code ec;
  for (const auto& dirent : std::filesystem::directory_iterator(root_, ec)) {
    const std::string path = dirent.path().string();
    const std::string name = dirent.path().filename().string();
    if (absl::StartsWith(name, ".") && absl::StrContains(name, ".tmp-")) {
      // A temp file of a WriteFileAtomic that never reached its rename.
      ::unlink(path.c_str());
      continue;
    }
    if (!absl::EndsWith(name, kRecordSuffix)) continue;  // *.corrupt and strangers
    auto load = [&]() -> absl::StatusOr<Entry> {
      auto text = runtime::ReadFile(path);
      if (!text.ok()) return text.status();
      json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
      if (!j.is_object() || !j.contains("image")) {
        return absl::InvalidArgumentError("field `image` is missing");
      }
      if (j.value("schema", 0) != kSchema) {
        return absl::InvalidArgumentError(absl::StrCat("unknown schema, want ", kSchema));
      }
      auto seq = j.find("seq");
      if (seq == j.end() || !seq->is_number_unsigned()) {
        return FieldError("seq", "an unsigned integer");
      }
      auto record = ImageRecordFromJson(j["image"]);
      if (!record.ok()) return record.status();
      if (auto s = Normalize(*record); !s.ok()) return s;
      if (RecordPath(record->id) != path) {
        return absl::InvalidArgumentError(
            absl::StrCat("holds image `", record->id, "`, not the one its name says"));
      }
      return Entry{*std::move(record), seq->get<uint64_t>()};
    };
    auto entry = load();
    if (!entry.ok()) {
      std::string aside = absl::StrCat(path, kCorruptSuffix);
      std::string message = absl::StrCat("image record `", path, "`: ", entry.status().message(),
                                         "; moved to `", aside, "`");
      if (::rename(path.c_str(), aside.c_str()) != 0) {
        message = absl::StrCat("image record `", path, "`: ", entry.status().message(), "; ",
                               runtime::ErrnoError(errno, "rename", path).message());
      }
      load_errors_.push_back(std::move(message));
      continue;
    }
    next_seq_ = std::max(next_seq_, entry->seq + 1);
    std::string id = entry->record.id;
    images_[id] = *std::move(entry);
  }
  if (ec) {
    load_errors_.push_back(absl::StrCat("list image records: ",
                                        runtime::ErrnoError(ec.value(), "list", root_).message()));
  }

  // A crash between the writes of one change can leave a name in two
  // records; the most recent write owns it.
  std::map<std::string, std::pair<uint64_t, std::string>> owner;  // name -> (seq, id)
  for (const auto& [id, entry] : images_) {
    for (const auto* names : {&entry.record.repo_tags, &entry.record.repo_digests}) {
      for (const auto& n : *names) {
        auto [it, inserted] = owner.emplace(n, std::pair{entry.seq, id});
        if (!inserted && it->second.first < entry.seq) it->second = {entry.seq, id};
      }
    }
  }
  for (auto& [id, entry] : images_) {
    bool changed = false;
    for (auto* names : {&entry.record.repo_tags, &entry.record.repo_digests}) {
      size_t before = names->size();
      names->erase(
          std::remove_if(names->begin(), names->end(),
                         [&, &id = id](const std::string& n) { return owner.at(n).second != id; }),
          names->end());
      changed = changed || names->size() != before;
    }
    if (changed) {
      entry.seq = next_seq_++;
      // Best effort: if this fails, the next load resolves the same way.
      (void)WriteEntry(entry.record, entry.seq);
    }
  }
}

std::vector<std::string> ImageStore::load_errors() const {
  absl::MutexLock lock(&mu_);
  return load_errors_;
}

absl::Status ImageStore::WriteEntry(const ImageRecord& record, uint64_t seq) const {
  json j = {{"schema", kSchema}, {"seq", seq}, {"image", ImageRecordToJson(record)}};
  std::string path = RecordPath(record.id);
  if (auto s = runtime::WriteFileAtomic(path, j.dump(), 0600); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("persist image `", record.id, "`: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status ImageStore::CommitLocked(ImageRecord record) {
  // The commit point: once this record is on disk, it owns its names.
  const uint64_t seq = next_seq_;
  if (auto s = WriteEntry(record, seq); !s.ok()) return s;
  next_seq_ = seq + 1;

  std::vector<ImageRecord> losers;
  for (const auto& [id, entry] : images_) {
    if (id == record.id) continue;
    ImageRecord copy = entry.record;
    bool lost = EraseAll(copy.repo_tags, record.repo_tags);
    lost = EraseAll(copy.repo_digests, record.repo_digests) || lost;
    if (lost) losers.push_back(std::move(copy));
  }
  std::string id = record.id;
  images_[id] = Entry{std::move(record), seq};
  for (auto& loser : losers) {
    uint64_t loser_seq = next_seq_++;
    // Best effort: a loser whose file keeps the name has a lower sequence
    // number than the winner, so a reload gives the name to the winner.
    (void)WriteEntry(loser, loser_seq);
    std::string loser_id = loser.id;
    images_[loser_id] = Entry{std::move(loser), loser_seq};
  }
  return absl::OkStatus();
}

absl::Status ImageStore::Put(ImageRecord record) {
  if (auto s = Normalize(record); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (auto it = images_.find(record.id); it != images_.end()) {
    const ImageRecord& old = it->second.record;
    record.repo_tags.insert(record.repo_tags.end(), old.repo_tags.begin(), old.repo_tags.end());
    record.repo_digests.insert(record.repo_digests.end(), old.repo_digests.begin(),
                               old.repo_digests.end());
    SortUnique(record.repo_tags);
    SortUnique(record.repo_digests);
    for (const auto& [key, value] : old.annotations) record.annotations.emplace(key, value);
    if (old.created_unix_ns != 0) record.created_unix_ns = old.created_unix_ns;
  }
  if (record.created_unix_ns == 0) record.created_unix_ns = absl::ToUnixNanos(absl::Now());
  return CommitLocked(std::move(record));
}

const ImageRecord* ImageStore::FindByName(absl::string_view name) const {
  for (const auto& [id, entry] : images_) {
    const ImageRecord& r = entry.record;
    if (std::binary_search(r.repo_tags.begin(), r.repo_tags.end(), name) ||
        std::binary_search(r.repo_digests.begin(), r.repo_digests.end(), name)) {
      return &r;
    }
  }
  return nullptr;
}

absl::StatusOr<ImageRecord> ImageStore::GetLocked(absl::string_view q) const {
  // At most 100 bytes of the query: a huge one must not make a huge error.
  auto not_found = [&] {
    return absl::NotFoundError(absl::StrCat("image `", absl::CHexEscape(q.substr(0, 100)),
                                            q.size() > 100 ? "...` not found" : "` not found"));
  };
  // A unique ID prefix (hex digits after "<algorithm>:").
  auto by_prefix = [&](absl::string_view algorithm, absl::string_view hex)
                       ABSL_SHARED_LOCKS_REQUIRED(mu_) -> absl::StatusOr<const ImageRecord*> {
    std::string prefix = absl::StrCat(algorithm, ":", hex);
    const ImageRecord* found = nullptr;
    int matches = 0;
    for (auto it = images_.lower_bound(prefix);
         it != images_.end() && absl::StartsWith(it->first, prefix); ++it) {
      found = &it->second.record;
      ++matches;
    }
    if (matches > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image ID prefix `", hex, "` is ambiguous: it matches ", matches, " images"));
    }
    return found;
  };

  if (q.empty()) return not_found();
  for (absl::string_view algorithm : {"sha256", "sha512"}) {
    std::string alg_prefix = absl::StrCat(algorithm, ":");
    if (!absl::StartsWith(q, alg_prefix)) continue;
    if (auto it = images_.find(std::string(q)); it != images_.end()) return it->second.record;
    absl::string_view hex = q.substr(alg_prefix.size());
    if (hex.size() >= kMinIdPrefix && IsLowerHex(hex)) {
      auto found = by_prefix(algorithm, hex);
      if (!found.ok()) return found.status();
      if (*found != nullptr) return **found;
    }
    return not_found();
  }
  if (const ImageRecord* r = FindByName(q); r != nullptr) return *r;
  if (size_t at = q.find('@'); at != absl::string_view::npos) {
    // "<name>:<tag>@<digest>": the tag does not matter once a digest is given.
    absl::string_view name = q.substr(0, at);
    size_t colon = name.rfind(':');
    size_t slash = name.rfind('/');
    if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
      std::string stripped = absl::StrCat(name.substr(0, colon), q.substr(at));
      if (const ImageRecord* r = FindByName(stripped); r != nullptr) return *r;
    }
  }
  if (IsLowerHex(q) && q.size() >= kMinIdPrefix && q.size() <= 64) {
    auto found = by_prefix("sha256", q);
    if (!found.ok()) return found.status();
    if (*found != nullptr) return **found;
  }
  if (auto ref = ParseReference(q); ref.ok()) {
    std::string name =
        ref->digest.empty() ? ref->String() : absl::StrCat(ref->Name(), "@", ref->digest);
    if (const ImageRecord* r = FindByName(name); r != nullptr) return *r;
  }
  return not_found();
}

absl::StatusOr<ImageRecord> ImageStore::Get(absl::string_view id_or_ref) const {
  absl::MutexLock lock(&mu_);
  return GetLocked(id_or_ref);
}

std::vector<ImageRecord> ImageStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ImageRecord> out;
  out.reserve(images_.size());
  for (const auto& [id, entry] : images_) out.push_back(entry.record);
  return out;
}

absl::Status ImageStore::Remove(absl::string_view id) {
  std::string full(id);
  if (IsLowerHex(id) && id.size() == 64) full = absl::StrCat("sha256:", id);
  if (!ParseDigest(full).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("remove image: `", id, "` is not an image ID"));
  }
  absl::MutexLock lock(&mu_);
  std::string path = RecordPath(full);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return runtime::ErrnoError(errno, absl::StrCat("remove record of image `", full, "`"), path);
  }
  images_.erase(full);
  return absl::OkStatus();
}

absl::Status ImageStore::RemoveTag(absl::string_view repo_tag) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : images_) {
    const auto& tags = entry.record.repo_tags;
    if (!std::binary_search(tags.begin(), tags.end(), repo_tag)) continue;
    ImageRecord copy = entry.record;
    copy.repo_tags.erase(std::find(copy.repo_tags.begin(), copy.repo_tags.end(), repo_tag));
    return CommitLocked(std::move(copy));
  }
  return absl::OkStatus();
}

absl::Status ImageStore::Update(absl::string_view id,
                                const std::function<absl::Status(ImageRecord&)>& fn) {
  absl::MutexLock lock(&mu_);
  auto it = images_.find(std::string(id));
  if (it == images_.end()) {
    return absl::NotFoundError(absl::StrCat("update image `", id, "`: not found"));
  }
  ImageRecord copy = it->second.record;
  if (auto s = fn(copy); !s.ok()) return s;
  if (copy.id != id) {
    return absl::InvalidArgumentError(
        absl::StrCat("update image `", id, "`: the ID cannot change (to `", copy.id, "`)"));
  }
  if (auto s = Normalize(copy); !s.ok()) return s;
  return CommitLocked(std::move(copy));
}

}  // namespace podshim::image
