// ImageManager on real temp directories: import of an OCI layout built here,
// lower dirs, removal with garbage collection, and a corrupt layer.
#include "image/image_manager.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "image/digest.h"
#include "runtime/files.h"

namespace podshim::image {
namespace {

using ::testing::HasSubstr;

// A tar stream with one file.
std::string TarWith(const std::string& name, const std::string& content) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  archive_write_header(a, e);
  archive_write_data(a, content.data(), content.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

class ImageManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-image-manager-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ImageManagerOptions options;
    options.root_dir = dir_ + "/root";
    auto m = ImageManager::Open(options);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Blob(const std::string& layout, const std::string& data) {
    Digest d = Sha256Of(data);
    EXPECT_TRUE(runtime::WriteFileAtomic(layout + "/blobs/sha256/" + d.hex, data).ok());
    return d.String();
  }

  // An OCI layout with one image of one uncompressed layer; returns its dir.
  // `ref_name` is the ref.name annotation; empty: "<name>:v1".
  std::string Layout(const std::string& name, const std::string& layer, bool corrupt = false,
                     const std::string& ref_name = "") {
    std::string layout = dir_ + "/" + name;
    EXPECT_TRUE(runtime::MakeDirs(layout + "/blobs/sha256", 0755).ok());
    EXPECT_TRUE(
        runtime::WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})").ok());
    std::string layer_digest = Blob(layout, layer);
    std::string config = R"({"architecture":"amd64","os":"linux","config":{"User":"7"},)"
                         R"("rootfs":{"type":"layers","diff_ids":[")" +
                         Sha256Of(layer).String() + R"("]}})";
    std::string config_digest = Blob(layout, config);
    std::string manifest =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
        config_digest + R"(","size":)" + std::to_string(config.size()) +
        R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
        layer_digest + R"(","size":)" + std::to_string(layer.size()) + "}]}";
    std::string manifest_digest = Blob(layout, manifest);
    EXPECT_TRUE(runtime::WriteFileAtomic(
                    layout + "/index.json",
                    R"({"schemaVersion":2,"manifests":[{"mediaType":)"
                    R"("application/vnd.oci.image.manifest.v1+json","digest":")" +
                        manifest_digest + R"(","size":)" + std::to_string(manifest.size()) +
                        R"(,"annotations":{"org.opencontainers.image.ref.name":")" +
                        (ref_name.empty() ? name + ":v1" : ref_name) + R"("}}]})")
                    .ok());
    if (corrupt) {
      std::string bad = layer;
      bad[bad.size() / 3] ^= 0x5a;
      EXPECT_TRUE(
          runtime::WriteFileAtomic(layout + "/blobs/sha256/" + layer_digest.substr(7), bad).ok());
    }
    return layout;
  }

  std::string dir_;
  std::unique_ptr<ImageManager> manager_;
};

TEST_F(ImageManagerTest, ImportedImageHasRecordSnapshotAndLowerDirs) {
  auto imported = manager_->Import(Layout("example.com/app", TarWith("hello", "hi\n")), "");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 1u);
  auto image = manager_->Get("example.com/app:v1");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->repo_tags, std::vector<std::string>{"example.com/app:v1"});
  auto lower = manager_->LowerDirs(*image);
  ASSERT_TRUE(lower.ok()) << lower.status();
  ASSERT_EQ(lower->size(), 1u);
  auto hello = runtime::ReadFile((*lower)[0] + "/hello");
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(*hello, "hi\n");
}

TEST_F(ImageManagerTest, RemoveCollectsOnlyWhatNoOtherImageUses) {
  const std::string shared = TarWith("shared", "same bytes\n");
  ASSERT_TRUE(manager_->Import(Layout("example.com/one", shared), "").ok());
  ASSERT_TRUE(manager_->Import(Layout("example.com/two", shared), "example.com/two:v2").ok());
  auto one = manager_->Get("example.com/one:v1");
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(manager_->Remove("example.com/one:v1").ok());
  EXPECT_EQ(manager_->Get("example.com/one:v1").status().code(), absl::StatusCode::kNotFound);
  // Both layouts have the same config and layer, so the image ID is shared
  // and removing by one tag removes the image with all its names.
  EXPECT_EQ(manager_->Get("example.com/two:v2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager_->content().List().empty());
  EXPECT_TRUE(std::filesystem::is_empty(manager_->snapshots_dir() + "/sha256"));
  EXPECT_TRUE(manager_->Remove("example.com/one:v1").ok());  // idempotent
}

TEST_F(ImageManagerTest, LeaseKeepsSnapshotsOfARemovedImageUntilReleased) {
  ASSERT_TRUE(manager_->Import(Layout("example.com/leased", TarWith("f", "kept\n")), "").ok());
  auto image = manager_->Get("example.com/leased:v1");
  ASSERT_TRUE(image.ok());
  auto lower = manager_->AcquireLease("c1", *image);
  ASSERT_TRUE(lower.ok()) << lower.status();
  EXPECT_EQ(manager_->ListLeases(), std::vector<std::string>{"c1"});
  ASSERT_TRUE(manager_->Remove("example.com/leased:v1").ok());
  // The image is gone, its layer stays while the container holds it, also
  // across a restart (garbage collection at Open).
  EXPECT_TRUE(std::filesystem::is_directory((*lower)[0]));
  ImageManagerOptions options;
  options.root_dir = dir_ + "/root";
  manager_.reset();
  auto reopened = ImageManager::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  manager_ = std::move(*reopened);
  EXPECT_TRUE(std::filesystem::is_directory((*lower)[0]));
  ASSERT_TRUE(manager_->ReleaseLease("c1").ok());
  EXPECT_FALSE(std::filesystem::exists((*lower)[0]));
  EXPECT_TRUE(manager_->ReleaseLease("c1").ok());  // idempotent
  EXPECT_TRUE(manager_->ListLeases().empty());
}

TEST_F(ImageManagerTest, LeaseHolderMustBeAPlainName) {
  ASSERT_TRUE(manager_->Import(Layout("example.com/h", TarWith("f", "x")), "").ok());
  auto image = manager_->Get("example.com/h:v1");
  ASSERT_TRUE(image.ok());
  for (const char* bad : {"", "..", "a/b", ".hidden"}) {
    EXPECT_EQ(manager_->AcquireLease(bad, *image).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(ImageManagerTest, CorruptLayerIsRefusedAndNothingIsKept) {
  auto imported = manager_->Import(Layout("example.com/bad", TarWith("f", "x"), true), "");
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(manager_->List().size(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(manager_->snapshots_dir() + "/sha256"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/root/content/ingest"));
}

TEST_F(ImageManagerTest, ImportNeedsANameForABareTag) {
  // A bare tag, as umoci writes it, says nothing about the repository.
  std::string layout = Layout("bare", TarWith("f", "x"), false, "v1");
  auto imported = manager_->Import(layout, "");
  ASSERT_FALSE(imported.ok());
  EXPECT_THAT(imported.status().message(), HasSubstr("--name"));
  EXPECT_TRUE(manager_->Import(layout, "registry.local/bare:1").ok());
  EXPECT_TRUE(manager_->Get("registry.local/bare:1").ok());
}

TEST_F(ImageManagerTest, MissingSourceIsNotFound) {
  EXPECT_EQ(manager_->Import(dir_ + "/nope", "a/b:c").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace podshim::image
