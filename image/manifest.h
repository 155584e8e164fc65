// OCI and Docker image manifests: media types, descriptors, parsing of
// indexes (manifest lists), manifests and image configs, and choosing the
// manifest for a platform out of an index.
//
// Every parser treats its input as untrusted: a wrong type, a missing field
// or an invalid digest is an INVALID_ARGUMENT naming the field, e.g.
//   manifest: layers[2].digest: digest "sha256:xyz": sha256 needs 64 hex digits, got 3
// A well-formed document this code cannot use (a schema 1 manifest, a
// foreign layer) is FAILED_PRECONDITION.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::image {

// OCI image spec media types.
inline constexpr char kMediaTypeOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kMediaTypeOciLayer[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kMediaTypeOciLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kMediaTypeOciLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kMediaTypeOciLayerNondistributable[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr char kMediaTypeOciLayerNondistributableGzip[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr char kMediaTypeOciLayerNondistributableZstd[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Docker image manifest v2 schema 2 media types.
inline constexpr char kMediaTypeDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kMediaTypeDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kMediaTypeDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kMediaTypeDockerLayer[] = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr char kMediaTypeDockerLayerGzip[] =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kMediaTypeDockerLayerZstd[] =
    "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr char kMediaTypeDockerForeignLayerGzip[] =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Docker schema 1 (deprecated, signed with JWS): recognised only to be refused.
inline constexpr char kMediaTypeDockerSchema1Manifest[] =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr char kMediaTypeDockerSchema1SignedManifest[] =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// True for the OCI index and the Docker manifest list.
bool IsIndexMediaType(absl::string_view media_type);
// True for the OCI image manifest and the Docker schema 2 manifest.
bool IsManifestMediaType(absl::string_view media_type);

// The platform an image (or a manifest in an index) is built for, with Go's
// names: os "linux", architecture "amd64" / "arm64" / "arm", variant "v7".
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  // "linux/arm64/v8", "linux/amd64".
  std::string String() const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

// A pointer to content: what it is, its digest and its size.
struct Descriptor {
  std::string media_type;
  std::string digest;  // validated with ParseDigest
  int64_t size = 0;    // >= 0
  std::optional<Platform> platform;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

// The media type of a fetched manifest document: its "mediaType" field when
// present, otherwise `content_type` (the HTTP Content-Type, parameters
// ignored), otherwise guessed from the shape ("manifests" -> OCI index,
// "config" -> OCI manifest). FAILED_PRECONDITION for schema 1 (also when
// recognised by its "schemaVersion": 1) and for media types that are neither
// an index nor a manifest; INVALID_ARGUMENT when `body` is not a JSON object.
absl::StatusOr<std::string> DetectManifestMediaType(absl::string_view body,
                                                    absl::string_view content_type);

// Parses an OCI index or Docker manifest list into its manifest descriptors.
absl::StatusOr<std::vector<Descriptor>> ParseIndex(absl::string_view json);

// An OCI image manifest or Docker schema 2 manifest.
struct Manifest {
  std::string media_type;  // as written in the document; may be empty for OCI
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

// Parses a manifest; checks schemaVersion 2 and that config and layers are
// present. Layer media types are not checked here (see LayerCompression).
absl::StatusOr<Manifest> ParseManifest(absl::string_view json);

// The parts of an image config (OCI image-spec config, Docker's container
// image v1) the runtime uses.
struct ImageConfig {
  std::string user;
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // keys: "80/tcp"
  std::vector<std::string> volumes;        // keys: "/data"
  std::string stop_signal;
  std::string os;
  std::string architecture;
  std::string variant;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, validated digests
  std::string created;                // RFC 3339 as written, or empty
};

// Parses an image config. rootfs.type must be "layers"; "config" may be
// absent or null (an image with no defaults).
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json);

// How a layer blob is compressed.
enum class Compression { kNone, kGzip, kZstd };

// The compression of a layer with `media_type`: OCI and Docker layer types,
// nondistributable ones included. FAILED_PRECONDITION naming the media type
// for foreign (Windows) layers, encrypted layers and anything unknown.
absl::StatusOr<Compression> LayerCompression(absl::string_view media_type);

// The platform podshim runs on: "linux" and `uname -m` translated to Go's
// architecture names (x86_64 -> amd64, aarch64 -> arm64 with variant v8,
// armv7l -> arm v7, ...).
Platform HostPlatform();

// Translates a machine name as `uname -m` prints it into a Platform's
// architecture and variant (os left empty). Unknown names are passed through.
Platform PlatformFromMachine(absl::string_view machine);

// Normalizes names the way containerd does: lower case, "x86_64" -> "amd64",
// "aarch64" -> "arm64", arm64 variant "" / "8" -> "v8", arm variant "" ->
// "v7", "7" -> "v7", amd64 variant "v1" -> "".
Platform NormalizePlatform(Platform platform);

// Picks the manifest for `host` out of an index's descriptors, as containerd
// does: os and architecture must match; the variant must match exactly, except
// that an arm64 host also runs arm v8/v7/v6/v5 and an arm vN host runs arm
// variants below N, each less preferred than an exact match. An amd64 host
// takes amd64 without variant (or "v1"), then 386. Descriptors that are not manifests
// and attestation manifests (platform unknown/unknown) are skipped; one without
// a platform is taken only when nothing matched. Among equally good matches
// the first wins. NOT_FOUND naming the host platform and the platforms
// offered when nothing fits.
absl::StatusOr<Descriptor> SelectPlatform(const std::vector<Descriptor>& manifests,
                                          const Platform& host);

}  // namespace podshim::image
