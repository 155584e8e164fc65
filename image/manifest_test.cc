#include "image/manifest.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace podshim::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');
const std::string kD3 = "sha256:" + std::string(64, 'c');
const std::string kD4 = "sha256:" + std::string(64, 'd');

// Replaces $1.. $4 in `json` with the test digests.
std::string WithDigests(const std::string& json) {
  return absl::StrReplaceAll(json, {{"$1", kD1}, {"$2", kD2}, {"$3", kD3}, {"$4", kD4}});
}

void ExpectError(const absl::Status& s, absl::StatusCode code, absl::string_view what) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_THAT(s.message(), HasSubstr(std::string(what))) << s;
}

// ---- Index ----

const char kIndex[] = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "$1", "size": 100,
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "$2", "size": 200,
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
     "annotations": {"a": "b"}, "urls": ["https://example.com/x"]},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "$3", "size": 300,
     "platform": {"os": "unknown", "architecture": "unknown"},
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
  ]
})";

TEST(ManifestIndexTest, ParsesDescriptors) {
  auto index = ParseIndex(WithDigests(kIndex));
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->size(), 3u);
  const Descriptor& d = (*index)[1];
  EXPECT_EQ(d.media_type, kMediaTypeOciManifest);
  EXPECT_EQ(d.digest, kD2);
  EXPECT_EQ(d.size, 200);
  ASSERT_TRUE(d.platform.has_value());
  EXPECT_EQ(d.platform->String(), "linux/arm64/v8");
  EXPECT_THAT(d.annotations, ElementsAre(Pair("a", "b")));
  EXPECT_THAT(d.urls, ElementsAre("https://example.com/x"));
  EXPECT_TRUE((*index)[0].platform->variant.empty());
}

TEST(ManifestIndexTest, ParsesDockerManifestList) {
  auto index = ParseIndex(WithDigests(R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "digest": "$1", "size": 7, "platform": {"architecture": "amd64", "os": "linux"}}]
  })"));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->at(0).media_type, kMediaTypeDockerManifest);
}

TEST(ManifestIndexTest, RejectsJunkNamingTheField) {
  struct Case {
    std::string json;
    const char* what;
  };
  std::vector<Case> cases = {
      {"", "index: not valid JSON"},
      {"[]", "expected a JSON object, got array"},
      {"{\"schemaVersion\": 2, \"manifests\": [}", "not valid JSON"},
      {R"({"manifests": []})", "schemaVersion: missing"},
      {R"({"schemaVersion": "2", "manifests": []})", "schemaVersion: expected an integer"},
      {R"({"schemaVersion": 3, "manifests": []})", "unsupported version 3"},
      {R"({"schemaVersion": 2})", "manifests: missing"},
      {R"({"schemaVersion": 2, "manifests": {}})", "manifests: expected an array, got object"},
      {R"({"schemaVersion": 2, "manifests": [1]})", "manifests[0]: expected an object, got number"},
      {R"({"schemaVersion": 2, "manifests": [{"digest": "$1", "size": 1}]})",
       "manifests[0].mediaType: missing"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": 5, "digest": "$1", "size": 1}]})",
       "manifests[0].mediaType: expected a string, got number"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1}]})",
       "manifests[0].digest: missing"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:xyz", "size": 1}]})",
       "manifests[0].digest: digest \"sha256:xyz\""},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1"}]})",
       "manifests[0].size: missing"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": -1}]})",
       "manifests[0].size: negative"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1.5}]})",
       "manifests[0].size: expected a non-negative integer, got number"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": "1"}]})",
       "manifests[0].size: expected a non-negative integer, got string"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1,
           "platform": {"os": "linux"}}]})",
       "manifests[0].platform.architecture: missing"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1,
           "platform": "linux"}]})",
       "manifests[0].platform: expected an object"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1,
           "urls": "u"}]})",
       "manifests[0].urls: expected an array"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1,
           "urls": [1]}]})",
       "manifests[0].urls[0]: expected a string"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "$1", "size": 1,
           "annotations": {"k": 1}}]})",
       "manifests[0].annotations[\"k\"]: expected a string"},
      {R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "manifests": []})",
       "is not an index media type"},
  };
  for (const Case& c : cases) {
    auto r = ParseIndex(WithDigests(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    ExpectError(r.status(), absl::StatusCode::kInvalidArgument, c.what);
    EXPECT_THAT(r.status().message(), HasSubstr("index: ")) << r.status();
  }
}

// ---- Manifest ----

const char kOciManifest[] = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "$1", "size": 10},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "$2", "size": 20},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "$3", "size": 30}
  ],
  "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
})";

TEST(ManifestTest, ParsesOciManifest) {
  auto m = ParseManifest(WithDigests(kOciManifest));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->config.digest, kD1);
  EXPECT_EQ(m->config.size, 10);
  EXPECT_EQ(m->config.media_type, kMediaTypeOciConfig);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest, kD2);
  EXPECT_EQ(m->layers[1].size, 30);
  EXPECT_EQ(m->annotations.size(), 1u);
}

TEST(ManifestTest, ParsesDockerSchema2Manifest) {
  auto m = ParseManifest(WithDigests(R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "$1"},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2, "digest": "$2"}]
  })"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(m->layers.at(0).media_type, kMediaTypeDockerLayerGzip);
}

TEST(ManifestTest, AcceptsOciManifestWithoutMediaTypeAndNoLayers) {
  auto m = ParseManifest(WithDigests(R"({"schemaVersion": 2,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "$1", "size": 2},
    "layers": []})"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->media_type.empty());
  EXPECT_TRUE(m->layers.empty());
}

TEST(ManifestTest, RejectsSchema1) {
  auto m = ParseManifest(R"({"schemaVersion": 1, "name": "x", "fsLayers": []})");
  ASSERT_FALSE(m.ok());
  ExpectError(m.status(), absl::StatusCode::kFailedPrecondition, "schema 1 is not supported");

  auto t = DetectManifestMediaType(R"({"schemaVersion": 1, "name": "x"})",
                                   "application/vnd.docker.distribution.manifest.v1+prettyjws");
  ExpectError(t.status(), absl::StatusCode::kFailedPrecondition, "schema 1");
  t = DetectManifestMediaType(R"({"name": "x"})",
                              "application/vnd.docker.distribution.manifest.v1+json");
  ExpectError(t.status(), absl::StatusCode::kFailedPrecondition, "schema 1");
}

TEST(ManifestTest, RejectsJunkNamingTheField) {
  struct Case {
    std::string json;
    const char* what;
  };
  const std::string config =
      R"("config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "$1", "size": 1})";
  std::vector<Case> cases = {
      {"null", "expected a JSON object, got null"},
      {R"({"schemaVersion": 2, "layers": []})", "config: missing"},
      {R"({"schemaVersion": 2, "config": [], "layers": []})", "config: expected an object"},
      {R"({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "md5:00", "size": 1},
           "layers": []})",
       "config.digest: digest \"md5:00\""},
      {"{\"schemaVersion\": 2, " + config + "}", "layers: missing"},
      {"{\"schemaVersion\": 2, " + config + ", \"layers\": \"x\"}", "layers: expected an array"},
      {"{\"schemaVersion\": 2, " + config +
           R"(, "layers": [{"mediaType": "x", "digest": "$2", "size": 1}, {"mediaType": "x"}]})",
       "layers[1].digest: missing"},
      {"{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\", " +
           config + ", \"layers\": []}",
       "is not an image manifest media type"},
      {"{\"schemaVersion\": 2, " + config + ", \"layers\": [], \"annotations\": []}",
       "annotations: expected an object"},
  };
  for (const Case& c : cases) {
    auto r = ParseManifest(WithDigests(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    ExpectError(r.status(), absl::StatusCode::kInvalidArgument, c.what);
    EXPECT_THAT(r.status().message(), HasSubstr("manifest: ")) << r.status();
  }
}

TEST(ManifestTest, DetectsMediaType) {
  EXPECT_EQ(*DetectManifestMediaType(WithDigests(kOciManifest), "text/plain"),
            kMediaTypeOciManifest);
  EXPECT_EQ(*DetectManifestMediaType(WithDigests(kIndex), ""), kMediaTypeOciIndex);
  // No mediaType field: the Content-Type decides, parameters ignored.
  EXPECT_EQ(*DetectManifestMediaType(
                R"({"schemaVersion": 2, "manifests": []})",
                "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
            kMediaTypeDockerManifestList);
  // Neither: the shape decides.
  EXPECT_EQ(
      *DetectManifestMediaType(R"({"schemaVersion": 2, "manifests": []})", "application/json"),
      kMediaTypeOciIndex);
  EXPECT_EQ(*DetectManifestMediaType(R"({"schemaVersion": 2, "config": {}})", ""),
            kMediaTypeOciManifest);
  ExpectError(DetectManifestMediaType(R"({"schemaVersion": 2})", "").status(),
              absl::StatusCode::kInvalidArgument, "no mediaType");
  ExpectError(DetectManifestMediaType(R"({"mediaType": "application/vnd.foo"})", "").status(),
              absl::StatusCode::kFailedPrecondition,
              "unsupported media type \"application/vnd.foo\"");
  ExpectError(DetectManifestMediaType("<html>", "text/html").status(),
              absl::StatusCode::kInvalidArgument, "not valid JSON");
  EXPECT_TRUE(IsIndexMediaType(kMediaTypeDockerManifestList));
  EXPECT_FALSE(IsIndexMediaType(kMediaTypeOciManifest));
  EXPECT_TRUE(IsManifestMediaType(kMediaTypeDockerManifest));
  EXPECT_FALSE(IsManifestMediaType(kMediaTypeDockerSchema1Manifest));
}

// ---- Image config ----

TEST(ManifestImageConfigTest, ParsesEverything) {
  auto c = ParseImageConfig(WithDigests(R"({
    "created": "2024-05-01T10:00:00.123Z",
    "architecture": "arm", "variant": "v7", "os": "linux",
    "config": {
      "User": "1000:1000", "Env": ["PATH=/bin", "A=b=c"], "Entrypoint": ["/init"],
      "Cmd": ["serve", "--port", "80"], "WorkingDir": "/srv",
      "Labels": {"maintainer": "me"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
      "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT"
    },
    "rootfs": {"type": "layers", "diff_ids": ["$1", "$2"]},
    "history": [{"created_by": "x"}]
  })"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_THAT(c->env, ElementsAre("PATH=/bin", "A=b=c"));
  EXPECT_THAT(c->entrypoint, ElementsAre("/init"));
  EXPECT_THAT(c->cmd, ElementsAre("serve", "--port", "80"));
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_THAT(c->labels, ElementsAre(Pair("maintainer", "me")));
  EXPECT_THAT(c->exposed_ports, ElementsAre("53/udp", "80/tcp"));
  EXPECT_THAT(c->volumes, ElementsAre("/data"));
  EXPECT_EQ(c->stop_signal, "SIGQUIT");
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->architecture, "arm");
  EXPECT_EQ(c->variant, "v7");
  EXPECT_THAT(c->diff_ids, ElementsAre(kD1, kD2));
  EXPECT_EQ(c->created, "2024-05-01T10:00:00.123Z");
}

TEST(ManifestImageConfigTest, NullsAndMissingConfigAreEmpty) {
  auto c = ParseImageConfig(R"({"os": "linux", "architecture": "amd64",
    "config": {"Env": null, "Cmd": null, "Entrypoint": null, "Labels": null},
    "rootfs": {"type": "layers", "diff_ids": []}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_TRUE(c->labels.empty());
  c = ParseImageConfig(R"({"rootfs": {"type": "layers"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->diff_ids.empty());
}

TEST(ManifestImageConfigTest, RejectsJunkNamingTheField) {
  struct Case {
    std::string json;
    const char* what;
  };
  std::vector<Case> cases = {
      {"42", "expected a JSON object"},
      {R"({"os": "linux"})", "rootfs: missing"},
      {R"({"rootfs": []})", "rootfs: expected an object"},
      {R"({"rootfs": {"diff_ids": []}})", "rootfs.type: missing"},
      {R"({"rootfs": {"type": "tar", "diff_ids": []}})", "rootfs.type: expected \"layers\""},
      {R"({"rootfs": {"type": "layers", "diff_ids": ["nope"]}})", "rootfs.diff_ids[0]: digest"},
      {R"({"rootfs": {"type": "layers", "diff_ids": [1]}})",
       "rootfs.diff_ids[0]: expected a string"},
      {R"({"os": 1, "rootfs": {"type": "layers"}})", "os: expected a string"},
      {R"({"config": "x", "rootfs": {"type": "layers"}})", "config: expected an object"},
      {R"({"config": {"Env": "A=b"}, "rootfs": {"type": "layers"}})",
       "config.Env: expected an array"},
      {R"({"config": {"Cmd": ["a", null]}, "rootfs": {"type": "layers"}})",
       "config.Cmd[1]: expected a string, got null"},
      {R"({"config": {"User": 0}, "rootfs": {"type": "layers"}})",
       "config.User: expected a string"},
      {R"({"config": {"ExposedPorts": ["80/tcp"]}, "rootfs": {"type": "layers"}})",
       "config.ExposedPorts: expected an object"},
      {R"({"config": {"Labels": {"a": true}}, "rootfs": {"type": "layers"}})",
       "config.Labels[\"a\"]: expected a string"},
  };
  for (const Case& c : cases) {
    auto r = ParseImageConfig(WithDigests(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    ExpectError(r.status(), absl::StatusCode::kInvalidArgument, c.what);
    EXPECT_THAT(r.status().message(), HasSubstr("image config: ")) << r.status();
  }
}

// ---- Layers ----

TEST(ManifestLayerTest, Compression) {
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayer), Compression::kNone);
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayerGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayerZstd), Compression::kZstd);
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayerNondistributable), Compression::kNone);
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayerNondistributableGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kMediaTypeOciLayerNondistributableZstd), Compression::kZstd);
  EXPECT_EQ(*LayerCompression(kMediaTypeDockerLayer), Compression::kNone);
  EXPECT_EQ(*LayerCompression(kMediaTypeDockerLayerGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kMediaTypeDockerLayerZstd), Compression::kZstd);
  ExpectError(LayerCompression(kMediaTypeDockerForeignLayerGzip).status(),
              absl::StatusCode::kFailedPrecondition, "foreign");
  ExpectError(LayerCompression("application/vnd.oci.image.layer.v1.tar+gzip+encrypted").status(),
              absl::StatusCode::kFailedPrecondition, "encrypted");
  ExpectError(LayerCompression("application/octet-stream").status(),
              absl::StatusCode::kFailedPrecondition,
              "layer media type \"application/octet-stream\" is not supported");
}

// ---- Platforms ----

TEST(ManifestPlatformTest, FromMachine) {
  EXPECT_EQ(PlatformFromMachine("x86_64"), (Platform{"", "amd64", ""}));
  EXPECT_EQ(PlatformFromMachine("aarch64"), (Platform{"", "arm64", "v8"}));
  EXPECT_EQ(PlatformFromMachine("armv7l"), (Platform{"", "arm", "v7"}));
  EXPECT_EQ(PlatformFromMachine("armv6l"), (Platform{"", "arm", "v6"}));
  EXPECT_EQ(PlatformFromMachine("armv5tel"), (Platform{"", "arm", "v5"}));
  EXPECT_EQ(PlatformFromMachine("i686"), (Platform{"", "386", ""}));
  EXPECT_EQ(PlatformFromMachine("ppc64le"), (Platform{"", "ppc64le", ""}));
  EXPECT_EQ(PlatformFromMachine("s390x"), (Platform{"", "s390x", ""}));
  EXPECT_EQ(PlatformFromMachine("riscv64"), (Platform{"", "riscv64", ""}));
  Platform host = HostPlatform();
  EXPECT_EQ(host.os, "linux");
  EXPECT_FALSE(host.architecture.empty());
  EXPECT_NE(host.architecture, "x86_64");
}

TEST(ManifestPlatformTest, Normalize) {
  EXPECT_EQ(NormalizePlatform({"Linux", "x86_64", ""}), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "amd64", "v1"}), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "aarch64", ""}), (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(NormalizePlatform({"linux", "arm64", "8"}), (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(NormalizePlatform({"linux", "arm", ""}), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(NormalizePlatform({"linux", "arm", "6"}), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(NormalizePlatform({"linux", "armhf", ""}), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(NormalizePlatform({"linux", "armel", ""}), (Platform{"linux", "arm", "v6"}));
  EXPECT_EQ(NormalizePlatform({"linux", "i386", ""}), (Platform{"linux", "386", ""}));
  EXPECT_EQ(NormalizePlatform({"macos", "arm64", ""}), (Platform{"darwin", "arm64", "v8"}));
}

Descriptor Manifest(const std::string& digest, Platform p) {
  return Descriptor{kMediaTypeOciManifest, digest, 1, std::move(p), {}, {}};
}

TEST(ManifestPlatformTest, SelectsExactMatchOverFallback) {
  std::vector<Descriptor> index = {
      Manifest(kD1, {"linux", "arm", "v6"}),
      Manifest(kD2, {"linux", "arm", "v7"}),
      Manifest(kD3, {"linux", "arm64", ""}),
      Manifest(kD4, {"linux", "amd64", ""}),
  };
  EXPECT_EQ(SelectPlatform(index, {"linux", "amd64", ""})->digest, kD4);
  // arm64 without variant in the index matches an arm64/v8 host.
  EXPECT_EQ(SelectPlatform(index, {"linux", "arm64", "v8"})->digest, kD3);
  EXPECT_EQ(SelectPlatform(index, {"linux", "arm", "v7"})->digest, kD2);
  EXPECT_EQ(SelectPlatform(index, {"linux", "arm", "v6"})->digest, kD1);
  // An arm v5 host cannot run v6 or v7.
  ExpectError(SelectPlatform(index, {"linux", "arm", "v5"}).status(), absl::StatusCode::kNotFound,
              "no manifest for platform linux/arm/v5");
}

TEST(ManifestPlatformTest, ArmFallbacks) {
  // arm64 host with only 32-bit arm images: the highest variant wins.
  std::vector<Descriptor> index = {Manifest(kD1, {"linux", "arm", "v6"}),
                                   Manifest(kD2, {"linux", "arm", "v7"})};
  EXPECT_EQ(SelectPlatform(index, {"linux", "arm64", "v8"})->digest, kD2);
  // arm v7 host takes v6 when there is no v7.
  std::vector<Descriptor> v6 = {Manifest(kD1, {"linux", "arm", "v6"})};
  EXPECT_EQ(SelectPlatform(v6, {"linux", "arm", "v7"})->digest, kD1);
  // An arm variant "" in the index means v7.
  std::vector<Descriptor> plain_arm = {Manifest(kD3, {"linux", "arm", ""})};
  EXPECT_EQ(SelectPlatform(plain_arm, {"linux", "arm", "v7"})->digest, kD3);
  ExpectError(SelectPlatform(plain_arm, {"linux", "arm", "v6"}).status(),
              absl::StatusCode::kNotFound, "offered: linux/arm/v7");
}

TEST(ManifestPlatformTest, Amd64Variants) {
  std::vector<Descriptor> index = {Manifest(kD1, {"linux", "amd64", "v3"}),
                                   Manifest(kD2, {"linux", "amd64", "v1"})};
  EXPECT_EQ(SelectPlatform(index, {"linux", "amd64", ""})->digest, kD2);
  std::vector<Descriptor> only386 = {Manifest(kD3, {"linux", "386", ""})};
  EXPECT_EQ(SelectPlatform(only386, {"linux", "amd64", ""})->digest, kD3);
  std::vector<Descriptor> only_v3 = {Manifest(kD1, {"linux", "amd64", "v3"})};
  EXPECT_FALSE(SelectPlatform(only_v3, {"linux", "amd64", ""}).ok());
}

TEST(ManifestPlatformTest, OsMustMatch) {
  std::vector<Descriptor> index = {Manifest(kD1, {"windows", "amd64", ""}),
                                   Manifest(kD2, {"linux", "amd64", ""})};
  EXPECT_EQ(SelectPlatform(index, {"linux", "amd64", ""})->digest, kD2);
  std::vector<Descriptor> windows = {Manifest(kD1, {"windows", "amd64", ""})};
  ExpectError(SelectPlatform(windows, {"linux", "amd64", ""}).status(), absl::StatusCode::kNotFound,
              "offered: windows/amd64");
}

TEST(ManifestPlatformTest, SkipsAttestationsAndNonManifests) {
  auto index = ParseIndex(WithDigests(kIndex));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(SelectPlatform(*index, {"linux", "amd64", ""})->digest, kD1);
  ExpectError(SelectPlatform(*index, {"linux", "s390x", ""}).status(), absl::StatusCode::kNotFound,
              "offered: linux/amd64, linux/arm64/v8)");

  std::vector<Descriptor> with_nested = {
      Descriptor{kMediaTypeOciIndex, kD1, 1, Platform{"linux", "amd64", ""}, {}, {}},
      Manifest(kD2, {"linux", "amd64", ""})};
  EXPECT_EQ(SelectPlatform(with_nested, {"linux", "amd64", ""})->digest, kD2);
}

TEST(ManifestPlatformTest, UnplatformedManifestIsLastResort) {
  std::vector<Descriptor> index = {Descriptor{kMediaTypeOciManifest, kD1, 1, {}, {}, {}},
                                   Manifest(kD2, {"linux", "amd64", ""})};
  EXPECT_EQ(SelectPlatform(index, {"linux", "amd64", ""})->digest, kD2);
  EXPECT_EQ(SelectPlatform(index, {"linux", "arm64", "v8"})->digest, kD1);
  ExpectError(SelectPlatform({}, {"linux", "amd64", ""}).status(), absl::StatusCode::kNotFound,
              "offered: none");
}

}  // namespace
}  // namespace podshim::image
