#include "image/manifest.h"

#include <sys/utsname.h>

#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "image/digest.h"

namespace podshim::image {
namespace {

using Json = nlohmann::json;

// "field" under "path": "layers[2]" + "digest" -> "layers[2].digest".
std::string Field(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

const char* TypeName(const Json& j) { return j.type_name(); }

absl::Status FieldError(absl::string_view doc, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(doc, ": ", field, ": ", what));
}

// Parses `text` as a JSON object; INVALID_ARGUMENT "doc: ..." otherwise.
absl::StatusOr<Json> ParseObject(absl::string_view doc, absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(doc, ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(doc, ": expected a JSON object, got ", TypeName(j)));
  }
  return j;
}

// The member `key` of object `obj`, or nullptr when absent or null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& obj, absl::string_view doc,
                                      absl::string_view path, const char* key, bool required) {
  const Json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return FieldError(doc, Field(path, key), "missing");
    return std::string();
  }
  if (!v->is_string()) {
    return FieldError(doc, Field(path, key), absl::StrCat("expected a string, got ", TypeName(*v)));
  }
  return v->get<std::string>();
}

absl::StatusOr<std::vector<std::string>> GetStringArray(const Json& obj, absl::string_view doc,
                                                        absl::string_view path, const char* key) {
  std::vector<std::string> out;
  const Json* v = Member(obj, key);
  if (v == nullptr) return out;
  if (!v->is_array()) {
    return FieldError(doc, Field(path, key), absl::StrCat("expected an array, got ", TypeName(*v)));
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) {
      return FieldError(doc, absl::StrCat(Field(path, key), "[", i, "]"),
                        absl::StrCat("expected a string, got ", TypeName(e)));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> GetStringMap(const Json& obj,
                                                                absl::string_view doc,
                                                                absl::string_view path,
                                                                const char* key) {
  std::map<std::string, std::string> out;
  const Json* v = Member(obj, key);
  if (v == nullptr) return out;
  if (!v->is_object()) {
    return FieldError(doc, Field(path, key),
                      absl::StrCat("expected an object, got ", TypeName(*v)));
  }
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) {
      return FieldError(doc, absl::StrCat(Field(path, key), "[\"", k, "\"]"),
                        absl::StrCat("expected a string, got ", TypeName(e)));
    }
    out.emplace(k, e.get<std::string>());
  }
  return out;
}

// The keys of an object-valued member ("ExposedPorts": {"80/tcp": {}}).
absl::StatusOr<std::vector<std::string>> GetKeys(const Json& obj, absl::string_view doc,
                                                 absl::string_view path, const char* key) {
  std::vector<std::string> out;
  const Json* v = Member(obj, key);
  if (v == nullptr) return out;
  if (!v->is_object()) {
    return FieldError(doc, Field(path, key),
                      absl::StrCat("expected an object, got ", TypeName(*v)));
  }
  for (const auto& item : v->items()) out.push_back(item.key());
  return out;
}

absl::StatusOr<Platform> ParsePlatform(const Json& j, absl::string_view doc,
                                       absl::string_view path) {
  if (!j.is_object()) {
    return FieldError(doc, path, absl::StrCat("expected an object, got ", TypeName(j)));
  }
  Platform p;
  auto os = GetString(j, doc, path, "os", /*required=*/true);
  if (!os.ok()) return os.status();
  auto arch = GetString(j, doc, path, "architecture", /*required=*/true);
  if (!arch.ok()) return arch.status();
  auto variant = GetString(j, doc, path, "variant", /*required=*/false);
  if (!variant.ok()) return variant.status();
  p.os = *std::move(os);
  p.architecture = *std::move(arch);
  p.variant = *std::move(variant);
  return p;
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& j, absl::string_view doc,
                                           absl::string_view path) {
  if (!j.is_object()) {
    return FieldError(doc, path, absl::StrCat("expected an object, got ", TypeName(j)));
  }
  Descriptor d;
  auto media_type = GetString(j, doc, path, "mediaType", /*required=*/true);
  if (!media_type.ok()) return media_type.status();
  d.media_type = *std::move(media_type);
  if (d.media_type.empty()) return FieldError(doc, Field(path, "mediaType"), "empty");

  auto digest = GetString(j, doc, path, "digest", /*required=*/true);
  if (!digest.ok()) return digest.status();
  if (auto parsed = ParseDigest(*digest); !parsed.ok()) {
    return FieldError(doc, Field(path, "digest"), parsed.status().message());
  }
  d.digest = *std::move(digest);

  const Json* size = Member(j, "size");
  if (size == nullptr) return FieldError(doc, Field(path, "size"), "missing");
  if (size->is_number_unsigned()) {
    uint64_t v = size->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      return FieldError(doc, Field(path, "size"), "too large");
    }
    d.size = static_cast<int64_t>(v);
  } else if (size->is_number_integer()) {
    return FieldError(doc, Field(path, "size"), "negative");
  } else {
    return FieldError(doc, Field(path, "size"),
                      absl::StrCat("expected a non-negative integer, got ", TypeName(*size)));
  }

  if (const Json* platform = Member(j, "platform"); platform != nullptr) {
    auto p = ParsePlatform(*platform, doc, Field(path, "platform"));
    if (!p.ok()) return p.status();
    d.platform = *std::move(p);
  }
  auto urls = GetStringArray(j, doc, path, "urls");
  if (!urls.ok()) return urls.status();
  d.urls = *std::move(urls);
  auto annotations = GetStringMap(j, doc, path, "annotations");
  if (!annotations.ok()) return annotations.status();
  d.annotations = *std::move(annotations);
  return d;
}

absl::Status CheckSchemaVersion(const Json& j, absl::string_view doc) {
  const Json* v = Member(j, "schemaVersion");
  if (v == nullptr) return FieldError(doc, "schemaVersion", "missing");
  if (!v->is_number_integer()) {
    return FieldError(doc, "schemaVersion",
                      absl::StrCat("expected an integer, got ", TypeName(*v)));
  }
  int64_t version = v->get<int64_t>();
  if (version == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        doc,
        ": Docker image manifest schema 1 is not supported (deprecated; push the image again "
        "with a current client)"));
  }
  if (version != 2) {
    return FieldError(doc, "schemaVersion", absl::StrCat("unsupported version ", version));
  }
  return absl::OkStatus();
}

bool IsSchema1(absl::string_view media_type) {
  return media_type == kMediaTypeDockerSchema1Manifest ||
         media_type == kMediaTypeDockerSchema1SignedManifest;
}

absl::Status Schema1Error(absl::string_view doc) {
  return absl::FailedPreconditionError(
      absl::StrCat(doc,
                   ": Docker image manifest schema 1 is not supported (deprecated; push the "
                   "image again with a current client)"));
}

// Normalizes an architecture name and its variant as containerd does.
void NormalizeArch(std::string& arch, std::string& variant) {
  arch = absl::AsciiStrToLower(arch);
  variant = absl::AsciiStrToLower(variant);
  if (arch == "i386" || arch == "i486" || arch == "i586" || arch == "i686") {
    arch = "386";
    variant.clear();
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    arch = "amd64";
    if (variant == "v1") variant.clear();
  } else if (arch == "aarch64" || arch == "arm64") {
    arch = "arm64";
    if (variant.empty() || variant == "8" || variant == "v8.0") variant = "v8";
    if (variant == "9" || variant == "v9.0") variant = "v9";
  } else if (arch == "armhf") {
    arch = "arm";
    variant = "v7";
  } else if (arch == "armel") {
    arch = "arm";
    variant = "v6";
  } else if (arch == "arm") {
    if (variant.empty() || variant == "7") {
      variant = "v7";
    } else if (variant == "5" || variant == "6" || variant == "8") {
      variant = absl::StrCat("v", variant);
    }
  }
}

// The platforms a host runs, most preferred first (containerd's "Only").
std::vector<Platform> CompatiblePlatforms(const Platform& host) {
  std::vector<Platform> out = {host};
  auto arm_below = [&](absl::string_view variant, bool include_self) {
    int version = 0;
    if (!absl::SimpleAtoi(absl::StripPrefix(variant, "v"), &version)) return;
    for (int v = include_self ? version : version - 1; v >= 5; --v) {
      out.push_back(Platform{host.os, "arm", absl::StrCat("v", v)});
    }
  };
  if (host.architecture == "amd64") {
    out.push_back(Platform{host.os, "386", ""});
  } else if (host.architecture == "arm") {
    arm_below(host.variant, /*include_self=*/false);
  } else if (host.architecture == "arm64") {
    arm_below(host.variant, /*include_self=*/true);
  }
  return out;
}

bool IsAttestation(const Descriptor& d) {
  if (d.platform.has_value() && d.platform->os == "unknown" &&
      d.platform->architecture == "unknown") {
    return true;
  }
  auto it = d.annotations.find("vnd.docker.reference.type");
  return it != d.annotations.end() && it->second == "attestation-manifest";
}

}  // namespace

bool IsIndexMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList;
}

bool IsManifestMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciManifest || media_type == kMediaTypeDockerManifest;
}

std::string Platform::String() const {
  std::string s = absl::StrCat(os, "/", architecture);
  if (!variant.empty()) absl::StrAppend(&s, "/", variant);
  return s;
}

absl::StatusOr<std::string> DetectManifestMediaType(absl::string_view body,
                                                    absl::string_view content_type) {
  constexpr absl::string_view kDoc = "manifest";
  auto j = ParseObject(kDoc, body);
  if (!j.ok()) return j.status();
  auto media_type = GetString(*j, kDoc, "", "mediaType", /*required=*/false);
  if (!media_type.ok()) return media_type.status();
  std::string type = *std::move(media_type);
  if (type.empty()) {
    // "application/json; charset=utf-8" -> "application/json".
    absl::string_view ct = content_type.substr(0, content_type.find(';'));
    type = std::string(absl::StripAsciiWhitespace(ct));
    if (!IsIndexMediaType(type) && !IsManifestMediaType(type) && !IsSchema1(type)) type.clear();
  }
  if (const Json* v = Member(*j, "schemaVersion");
      v != nullptr && v->is_number_integer() && v->get<int64_t>() == 1) {
    return Schema1Error(kDoc);
  }
  if (type.empty()) {
    if (j->contains("manifests")) {
      type = kMediaTypeOciIndex;
    } else if (j->contains("config")) {
      type = kMediaTypeOciManifest;
    } else {
      return absl::InvalidArgumentError(
          "manifest: no mediaType, and neither \"manifests\" nor \"config\" present");
    }
  }
  if (IsSchema1(type)) return Schema1Error(kDoc);
  if (!IsIndexMediaType(type) && !IsManifestMediaType(type)) {
    return absl::FailedPreconditionError(
        absl::StrCat("manifest: unsupported media type \"", type, "\""));
  }
  return type;
}

absl::StatusOr<std::vector<Descriptor>> ParseIndex(absl::string_view json) {
  constexpr absl::string_view kDoc = "index";
  auto j = ParseObject(kDoc, json);
  if (!j.ok()) return j.status();
  if (auto s = CheckSchemaVersion(*j, kDoc); !s.ok()) return s;
  auto media_type = GetString(*j, kDoc, "", "mediaType", /*required=*/false);
  if (!media_type.ok()) return media_type.status();
  if (!media_type->empty() && !IsIndexMediaType(*media_type)) {
    return FieldError(kDoc, "mediaType",
                      absl::StrCat("\"", *media_type, "\" is not an index media type"));
  }
  const Json* manifests = Member(*j, "manifests");
  if (manifests == nullptr) return FieldError(kDoc, "manifests", "missing");
  if (!manifests->is_array()) {
    return FieldError(kDoc, "manifests",
                      absl::StrCat("expected an array, got ", TypeName(*manifests)));
  }
  std::vector<Descriptor> out;
  out.reserve(manifests->size());
  for (size_t i = 0; i < manifests->size(); ++i) {
    auto d = ParseDescriptor((*manifests)[i], kDoc, absl::StrCat("manifests[", i, "]"));
    if (!d.ok()) return d.status();
    out.push_back(*std::move(d));
  }
  return out;
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view json) {
  constexpr absl::string_view kDoc = "manifest";
  auto j = ParseObject(kDoc, json);
  if (!j.ok()) return j.status();
  if (auto s = CheckSchemaVersion(*j, kDoc); !s.ok()) return s;
  Manifest m;
  auto media_type = GetString(*j, kDoc, "", "mediaType", /*required=*/false);
  if (!media_type.ok()) return media_type.status();
  if (IsSchema1(*media_type)) return Schema1Error(kDoc);
  if (!media_type->empty() && !IsManifestMediaType(*media_type)) {
    return FieldError(kDoc, "mediaType",
                      absl::StrCat("\"", *media_type, "\" is not an image manifest media type"));
  }
  m.media_type = *std::move(media_type);

  const Json* config = Member(*j, "config");
  if (config == nullptr) return FieldError(kDoc, "config", "missing");
  auto config_desc = ParseDescriptor(*config, kDoc, "config");
  if (!config_desc.ok()) return config_desc.status();
  m.config = *std::move(config_desc);

  const Json* layers = Member(*j, "layers");
  if (layers == nullptr) return FieldError(kDoc, "layers", "missing");
  if (!layers->is_array()) {
    return FieldError(kDoc, "layers", absl::StrCat("expected an array, got ", TypeName(*layers)));
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = ParseDescriptor((*layers)[i], kDoc, absl::StrCat("layers[", i, "]"));
    if (!d.ok()) return d.status();
    m.layers.push_back(*std::move(d));
  }
  auto annotations = GetStringMap(*j, kDoc, "", "annotations");
  if (!annotations.ok()) return annotations.status();
  m.annotations = *std::move(annotations);
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json) {
  constexpr absl::string_view kDoc = "image config";
  auto j = ParseObject(kDoc, json);
  if (!j.ok()) return j.status();
  ImageConfig c;

#define PODSHIM_ASSIGN(dest, expr)    \
  do {                                \
    auto _v = (expr);                 \
    if (!_v.ok()) return _v.status(); \
    (dest) = *std::move(_v);          \
  } while (0)

  PODSHIM_ASSIGN(c.os, GetString(*j, kDoc, "", "os", /*required=*/false));
  PODSHIM_ASSIGN(c.architecture, GetString(*j, kDoc, "", "architecture", /*required=*/false));
  PODSHIM_ASSIGN(c.variant, GetString(*j, kDoc, "", "variant", /*required=*/false));
  PODSHIM_ASSIGN(c.created, GetString(*j, kDoc, "", "created", /*required=*/false));

  if (const Json* config = Member(*j, "config"); config != nullptr) {
    if (!config->is_object()) {
      return FieldError(kDoc, "config",
                        absl::StrCat("expected an object, got ", TypeName(*config)));
    }
    const Json& cfg = *config;
    PODSHIM_ASSIGN(c.user, GetString(cfg, kDoc, "config", "User", /*required=*/false));
    PODSHIM_ASSIGN(c.env, GetStringArray(cfg, kDoc, "config", "Env"));
    PODSHIM_ASSIGN(c.entrypoint, GetStringArray(cfg, kDoc, "config", "Entrypoint"));
    PODSHIM_ASSIGN(c.cmd, GetStringArray(cfg, kDoc, "config", "Cmd"));
    PODSHIM_ASSIGN(c.working_dir, GetString(cfg, kDoc, "config", "WorkingDir", false));
    PODSHIM_ASSIGN(c.labels, GetStringMap(cfg, kDoc, "config", "Labels"));
    PODSHIM_ASSIGN(c.exposed_ports, GetKeys(cfg, kDoc, "config", "ExposedPorts"));
    PODSHIM_ASSIGN(c.volumes, GetKeys(cfg, kDoc, "config", "Volumes"));
    PODSHIM_ASSIGN(c.stop_signal, GetString(cfg, kDoc, "config", "StopSignal", false));
  }

  const Json* rootfs = Member(*j, "rootfs");
  if (rootfs == nullptr) return FieldError(kDoc, "rootfs", "missing");
  if (!rootfs->is_object()) {
    return FieldError(kDoc, "rootfs", absl::StrCat("expected an object, got ", TypeName(*rootfs)));
  }
  std::string type;
  PODSHIM_ASSIGN(type, GetString(*rootfs, kDoc, "rootfs", "type", /*required=*/true));
  if (type != "layers") {
    return FieldError(kDoc, "rootfs.type", absl::StrCat("expected \"layers\", got \"", type, "\""));
  }
  PODSHIM_ASSIGN(c.diff_ids, GetStringArray(*rootfs, kDoc, "rootfs", "diff_ids"));
#undef PODSHIM_ASSIGN
  for (size_t i = 0; i < c.diff_ids.size(); ++i) {
    if (auto d = ParseDigest(c.diff_ids[i]); !d.ok()) {
      return FieldError(kDoc, absl::StrCat("rootfs.diff_ids[", i, "]"), d.status().message());
    }
  }
  return c;
}

absl::StatusOr<Compression> LayerCompression(absl::string_view media_type) {
  if (media_type == kMediaTypeOciLayer || media_type == kMediaTypeOciLayerNondistributable ||
      media_type == kMediaTypeDockerLayer) {
    return Compression::kNone;
  }
  if (media_type == kMediaTypeOciLayerGzip ||
      media_type == kMediaTypeOciLayerNondistributableGzip ||
      media_type == kMediaTypeDockerLayerGzip) {
    return Compression::kGzip;
  }
  if (media_type == kMediaTypeOciLayerZstd ||
      media_type == kMediaTypeOciLayerNondistributableZstd ||
      media_type == kMediaTypeDockerLayerZstd) {
    return Compression::kZstd;
  }
  if (media_type == kMediaTypeDockerForeignLayerGzip) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer media type \"", media_type, "\": foreign (Windows) layers are not supported"));
  }
  if (absl::StrContains(media_type, "+encrypted")) {
    return absl::FailedPreconditionError(
        absl::StrCat("layer media type \"", media_type, "\": encrypted layers are not supported"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("layer media type \"", media_type, "\" is not supported"));
}

Platform PlatformFromMachine(absl::string_view machine) {
  Platform p;
  std::string m = absl::AsciiStrToLower(machine);
  if (m == "x86_64" || m == "amd64") {
    p.architecture = "amd64";
  } else if (m == "aarch64" || m == "arm64" || m == "armv8l" || m == "aarch64_be") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (absl::StartsWith(m, "armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (absl::StartsWith(m, "armv6")) {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (absl::StartsWith(m, "armv5")) {
    p.architecture = "arm";
    p.variant = "v5";
  } else if (m == "i386" || m == "i486" || m == "i586" || m == "i686") {
    p.architecture = "386";
  } else if (m == "ppc64le") {
    p.architecture = "ppc64le";
  } else if (m == "ppc64") {
    p.architecture = "ppc64";
  } else if (m == "s390x") {
    p.architecture = "s390x";
  } else if (m == "riscv64") {
    p.architecture = "riscv64";
  } else if (m == "mips64") {
    p.architecture = "mips64";
  } else if (m == "loongarch64") {
    p.architecture = "loong64";
  } else {
    p.architecture = m;
  }
  return p;
}

Platform HostPlatform() {
  struct utsname u;
  Platform p;
  if (::uname(&u) == 0) {
    p = PlatformFromMachine(u.machine);
  } else {
    p.architecture = "amd64";  // uname(2) does not fail in practice
  }
  p.os = "linux";
  return p;
}

Platform NormalizePlatform(Platform platform) {
  platform.os = absl::AsciiStrToLower(platform.os);
  if (platform.os == "macos") platform.os = "darwin";
  NormalizeArch(platform.architecture, platform.variant);
  return platform;
}

absl::StatusOr<Descriptor> SelectPlatform(const std::vector<Descriptor>& manifests,
                                          const Platform& host) {
  const std::vector<Platform> wanted = CompatiblePlatforms(NormalizePlatform(host));
  const Descriptor* best = nullptr;
  size_t best_rank = wanted.size();
  const Descriptor* unplatformed = nullptr;
  std::vector<std::string> offered;
  for (const Descriptor& d : manifests) {
    if (!IsManifestMediaType(d.media_type) || IsAttestation(d)) continue;
    if (!d.platform.has_value()) {
      if (unplatformed == nullptr) unplatformed = &d;
      continue;
    }
    Platform p = NormalizePlatform(*d.platform);
    offered.push_back(p.String());
    for (size_t rank = 0; rank < best_rank; ++rank) {
      if (p == wanted[rank]) {
        best = &d;
        best_rank = rank;
        break;
      }
    }
  }
  if (best != nullptr) return *best;
  if (unplatformed != nullptr) return *unplatformed;
  return absl::NotFoundError(absl::StrCat(
      "no manifest for platform ", host.String(),
      " in the index (offered: ", offered.empty() ? "none" : absl::StrJoin(offered, ", "), ")"));
}

}  // namespace podshim::image
