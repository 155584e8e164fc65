#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace podshim::image {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr time_t kMtime = 1700000000;

// Builds a tar stream in memory with libarchive (pax where needed).
class Tar {
 public:
  Tar() {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_open(a_, this, nullptr, &Tar::WriteCb, nullptr);
  }
  ~Tar() { archive_write_free(a_); }
  Tar(const Tar&) = delete;
  Tar& operator=(const Tar&) = delete;

  // Adds an entry; content only for regular files.
  Tar& Add(const std::string& path, mode_t type, mode_t perm, const std::string& content = "",
           const std::string& link = "", int64_t uid = 0, int64_t gid = 0,
           const std::vector<std::pair<std::string, std::string>>& xattrs = {}, dev_t rdev = 0,
           bool hardlink = false) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, kMtime, 123456789);
    if (type == AE_IFLNK) archive_entry_set_symlink(e, link.c_str());
    if (hardlink) archive_entry_set_hardlink(e, link.c_str());
    if (type == AE_IFCHR || type == AE_IFBLK) archive_entry_set_rdev(e, rdev);
    for (const auto& [k, v] : xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    archive_entry_set_size(e, type == AE_IFREG && !hardlink ? content.size() : 0);
    EXPECT_EQ(archive_write_header(a_, e), ARCHIVE_OK) << archive_error_string(a_);
    if (type == AE_IFREG && !hardlink && !content.empty()) {
      EXPECT_EQ(archive_write_data(a_, content.data(), content.size()),
                static_cast<la_ssize_t>(content.size()));
    }
    archive_entry_free(e);
    return *this;
  }
  Tar& File(const std::string& path, const std::string& content, mode_t perm = 0644) {
    return Add(path, AE_IFREG, perm, content);
  }
  Tar& Dir(const std::string& path, mode_t perm = 0755) { return Add(path, AE_IFDIR, perm); }
  Tar& Symlink(const std::string& path, const std::string& target) {
    return Add(path, AE_IFLNK, 0777, "", target);
  }
  Tar& Hardlink(const std::string& path, const std::string& target) {
    return Add(path, AE_IFREG, 0644, "", target, 0, 0, {}, 0, /*hardlink=*/true);
  }

  std::string Finish() {
    EXPECT_EQ(archive_write_close(a_), ARCHIVE_OK);
    return std::move(out_);
  }

 private:
  static la_ssize_t WriteCb(archive*, void* self, const void* buf, size_t n) {
    static_cast<Tar*>(self)->out_.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive* a_;
  std::string out_;
};

std::string Gzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A reader over `data`, handing out at most `chunk` bytes per call.
LayerReader ReaderOf(std::string data, size_t chunk = 1000) {
  auto pos = std::make_shared<size_t>(0);
  auto buf = std::make_shared<std::string>(std::move(data));
  return [buf, pos, chunk](char* out, size_t cap) -> absl::StatusOr<size_t> {
    size_t n = std::min({cap, chunk, buf->size() - *pos});
    std::copy_n(buf->data() + *pos, n, out);
    *pos += n;
    return n;
  };
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0)
      << path << ": " << std::error_code(errno, std::generic_category()).message();
  return st;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string ReadAll(const std::string& path) {
  std::string out;
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return "<missing>";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

std::string GetXattr(const std::string& path, const std::string& name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  if (n < 0) return "<none>";
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    out.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-unpack-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    sandbox_ = tmpl;
    target_ = sandbox_ + "/target";
    ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0);
    // Something outside the target that escapes would reach.
    ASSERT_EQ(::mkdir((sandbox_ + "/outside").c_str(), 0755), 0);
    FILE* f = fopen((sandbox_ + "/outside/secret").c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("secret", f);
    fclose(f);
  }
  void TearDown() override { std::filesystem::remove_all(sandbox_); }

  absl::StatusOr<UnpackResult> Unpack(const std::string& tar, Compression c = Compression::kNone,
                                      const UnpackOptions& options = {}) {
    return UnpackLayer(ReaderOf(tar), c, target_, options);
  }
  std::string T(const std::string& rel) { return target_ + "/" + rel; }

  // Nothing outside the target changed, nothing inside was kept.
  void ExpectNothingKept() {
    EXPECT_THAT(Listing(target_), ::testing::IsEmpty());
    EXPECT_THAT(Listing(sandbox_ + "/outside"), ::testing::ElementsAre("secret"));
    EXPECT_EQ(ReadAll(sandbox_ + "/outside/secret"), "secret");
    EXPECT_EQ(Lstat(sandbox_ + "/outside/secret").st_nlink, 1u);
  }

  std::string sandbox_;
  std::string target_;
};

TEST_F(UnpackTest, PlainEntriesKeepModeOwnerTimesAndXattrs) {
  // A valid VFS_CAP_REVISION_2 blob: effective, permitted = CAP_NET_BIND_SERVICE.
  const std::string cap(
      "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
      "\x00\x00\x00\x00",
      20);
  std::string tar =
      Tar()
          .Add("etc", AE_IFDIR, 0750, "", "", 1000, 1001, {{"user.dir", "d"}})
          .Add("etc/motd", AE_IFREG, 0640, "hello\n", "", 1000, 1001, {{"user.note", "n"}})
          .Add("bin/ping", AE_IFREG, 04755, "ELF", "", 0, 0, {{"security.capability", cap}})
          .Add("tmp", AE_IFDIR, 01777)
          .Add("etc/sgid", AE_IFREG, 02755, "x", "", 5, 6)
          .Symlink("etc/link", "/no/such/target")
          .Hardlink("etc/motd2", "etc/motd")
          .Add("run/fifo", AE_IFIFO, 0620, "", "", 7, 8)
          .Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 8u);
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
  EXPECT_EQ(r->uncompressed_size, tar.size());

  struct stat st = Lstat(T("etc"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  // Directory times are set after its contents were written.
  EXPECT_EQ(st.st_mtim.tv_sec, kMtime);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(GetXattr(T("etc"), "user.dir"), "d");

  st = Lstat(T("etc/motd"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_mtim.tv_sec, kMtime);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(ReadAll(T("etc/motd")), "hello\n");
  EXPECT_EQ(GetXattr(T("etc/motd"), "user.note"), "n");
  EXPECT_EQ(Lstat(T("etc/motd2")).st_ino, st.st_ino);

  st = Lstat(T("bin/ping"));
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(GetXattr(T("bin/ping"), "security.capability"), cap);
  // The missing parent was created with 0755.
  EXPECT_EQ(Lstat(T("bin")).st_mode & 07777, 0755u);

  EXPECT_EQ(Lstat(T("tmp")).st_mode & 07777, 01777u);
  st = Lstat(T("etc/sgid"));
  EXPECT_EQ(st.st_mode & 07777, 02755u);
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_EQ(st.st_gid, 6u);

  st = Lstat(T("etc/link"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_mtim.tv_sec, kMtime);
  EXPECT_EQ(std::filesystem::read_symlink(T("etc/link")), "/no/such/target");

  st = Lstat(T("run/fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  EXPECT_EQ(st.st_uid, 7u);
}

TEST_F(UnpackTest, MissingParentsAreCreated) {
  std::string tar = Tar().File("a/b/c/d.txt", "deep").Finish();
  ASSERT_TRUE(Unpack(tar).ok());
  EXPECT_EQ(ReadAll(T("a/b/c/d.txt")), "deep");
  for (const char* d : {"a", "a/b", "a/b/c"}) {
    struct stat st = Lstat(T(d));
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << d;
  }
}

TEST_F(UnpackTest, RootEntryAppliesToTheTargetItself) {
  std::string tar =
      Tar().Dir("./", 0711).File("./etc/hostname", "h").Dir("/", 0711).File("/x", "y").Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st = Lstat(target_);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_mtim.tv_sec, kMtime);
  EXPECT_EQ(ReadAll(T("etc/hostname")), "h");
  EXPECT_EQ(ReadAll(T("x")), "y");
}

TEST_F(UnpackTest, AbsoluteNamesLandInsideTheTarget) {
  const std::string host = "/etc/podshim-unpack-test-absolute";
  ASSERT_FALSE(Exists(host));
  std::string tar = Tar().File(host, "inside").File("/a/../b", "also inside").Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(T("etc/podshim-unpack-test-absolute")), "inside");
  EXPECT_EQ(ReadAll(T("b")), "also inside");
  EXPECT_FALSE(Exists(host));
}

TEST_F(UnpackTest, GzipAndZstdGiveTheUncompressedDiffId) {
  std::string tar = Tar().Dir("d").File("d/f", std::string(300000, 'q')).Finish();
  for (auto [c, blob] :
       {std::pair{Compression::kGzip, Gzip(tar)}, std::pair{Compression::kZstd, Zstd(tar)},
        std::pair{Compression::kNone, tar}}) {
    std::filesystem::remove_all(target_);
    ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0);
    auto r = UnpackLayer(ReaderOf(blob, 777), c, target_);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->diff_id, Sha256Of(tar));
    EXPECT_EQ(r->uncompressed_size, tar.size());
    EXPECT_EQ(r->entries, 2u);
    EXPECT_EQ(ReadAll(T("d/f")), std::string(300000, 'q'));
  }
}

TEST_F(UnpackTest, ConcatenatedGzipMembersAndZstdFrames) {
  std::string tar = Tar().File("f", std::string(5000, 'z')).Finish();
  std::string half1 = tar.substr(0, 3000);
  std::string half2 = tar.substr(3000);
  auto r = UnpackLayer(ReaderOf(Gzip(half1) + Gzip(half2)), Compression::kGzip, target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
  std::filesystem::remove_all(target_);
  ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0);
  r = UnpackLayer(ReaderOf(Zstd(half1) + Zstd(half2)), Compression::kZstd, target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
}

TEST_F(UnpackTest, DiffIdCoversBytesAfterTheEndOfArchive) {
  std::string tar = Tar().File("f", "x").Finish() + std::string(4096, '\0') + "trailing";
  auto r = Unpack(Gzip(tar), Compression::kGzip);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
  EXPECT_EQ(r->uncompressed_size, tar.size());
}

TEST_F(UnpackTest, ExpectedDiffId) {
  std::string tar = Tar().File("f", "x").Finish();
  UnpackOptions good;
  good.expected_diff_id = Sha256Of(tar);
  ASSERT_TRUE(Unpack(tar, Compression::kNone, good).ok());

  std::filesystem::remove_all(target_);
  ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0);
  UnpackOptions bad;
  bad.expected_diff_id = Sha256Of("something else");
  auto r = Unpack(tar, Compression::kNone, bad);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(bad.expected_diff_id->String()));
  EXPECT_THAT(r.status().message(), HasSubstr(Sha256Of(tar).String()));
  ExpectNothingKept();
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayWhiteouts) {
  std::string tar = Tar()
                        .File(".wh.gone", "")
                        .Dir("d")
                        .File("d/.wh..wh..opq", "")
                        .File("d/kept", "k")
                        .File("e/.wh..wh..opq", "")  // parent missing: created
                        .File(".wh..wh.plnk", "")    // aufs metadata: ignored
                        .File("x/.wh.sub", "")
                        .File(".wh..wh..opq", "")  // opaque root
                        .Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st = Lstat(T("gone"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  st = Lstat(T("x/sub"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(GetXattr(T("d"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(T("e"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(target_, "trusted.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(T("x"), "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(ReadAll(T("d/kept")), "k");
  for (const std::string& p : Listing(target_)) {
    EXPECT_THAT(std::filesystem::path(p).filename().string(),
                ::testing::Not(::testing::StartsWith(".wh.")))
        << p;
  }
}

TEST_F(UnpackTest, WhiteoutAndEntryOfTheSameNameInOneLayer) {
  // OCI: a whiteout hides lower layers only; this layer's own entries stay.
  std::string tar = Tar()
                        .File("f", "mine")
                        .File(".wh.f", "")
                        .Dir("d")
                        .File("d/x", "x")
                        .File(".wh.d", "")
                        .File(".wh.later", "")
                        .Dir("later")  // replaces the whiteout, hides the lower one
                        .Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(T("f")), "mine");
  EXPECT_EQ(ReadAll(T("d/x")), "x");
  EXPECT_EQ(GetXattr(T("d"), "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(S_ISDIR(Lstat(T("later")).st_mode));
  EXPECT_EQ(GetXattr(T("later"), "trusted.overlay.opaque"), "y");
}

TEST_F(UnpackTest, ReplacementWithinOneLayer) {
  std::string tar = Tar()
                        .File("a", "file")
                        .Dir("a")  // directory replaces a file
                        .File("a/inner", "i")
                        .Dir("b")
                        .File("b/deep/x", "x")
                        .File("b", "now a file")  // file replaces a directory tree
                        .File("c", "1")
                        .File("c", "2")  // file replaces a file
                        .Dir("e")
                        .Dir("e", 0700)  // directory exists: metadata updated
                        .Symlink("s", "/etc")
                        .File("s", "not through the link")  // replaces the symlink
                        .File("t", "t")
                        .Symlink("t", "elsewhere")
                        .Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(T("a/inner")), "i");
  EXPECT_EQ(ReadAll(T("b")), "now a file");
  EXPECT_EQ(ReadAll(T("c")), "2");
  EXPECT_EQ(Lstat(T("e")).st_mode & 07777, 0700u);
  EXPECT_TRUE(S_ISREG(Lstat(T("s")).st_mode));
  EXPECT_EQ(ReadAll(T("s")), "not through the link");
  EXPECT_TRUE(S_ISLNK(Lstat(T("t")).st_mode));
}

TEST_F(UnpackTest, DevicesRefusedByDefaultAllowedWhenAsked) {
  std::string tar = Tar().Add("dev/null", AE_IFCHR, 0666, "", "", 0, 0, {}, makedev(1, 3)).Finish();
  auto r = Unpack(tar);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("dev/null"));
  ExpectNothingKept();

  UnpackOptions allow;
  allow.allow_devices = true;
  r = Unpack(tar, Compression::kNone, allow);
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st = Lstat(T("dev/null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
}

TEST_F(UnpackTest, OverlayFormWhiteoutDeviceIsAccepted) {
  std::string tar = Tar().Add("gone", AE_IFCHR, 0, "", "", 0, 0, {}, makedev(0, 0)).Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(S_ISCHR(Lstat(T("gone")).st_mode));
}

struct Escape {
  const char* name;
  std::string tar;
  const char* entry;  // named in the error
};

TEST_F(UnpackTest, EscapesAreRefusedAndNothingIsKept) {
  std::vector<Escape> cases = {
      {"dotdot", Tar().File("ok", "1").File("../outside/x", "x").Finish(), "../outside/x"},
      {"inner dotdot", Tar().File("a/../../x", "x").Finish(), "a/../../x"},
      {"symlink to root then write",
       Tar().Symlink("l", "/").File("l/etc/passwd", "root::0:0").Finish(), "l/etc/passwd"},
      {"symlink to parent then write",
       Tar().Symlink("up", "..").File("up/outside/secret", "pwned").Finish(), "up/outside/secret"},
      {"symlink to outside dir then write",
       Tar().Symlink("o", "../outside").File("o/new", "pwned").Finish(), "o/new"},
      {"symlink then directory through it", Tar().Symlink("l", "/tmp").Dir("l/sub").Finish(),
       "l/sub"},
      {"hard link outside", Tar().Hardlink("h", "../outside/secret").Finish(), "h"},
      {"hard link through symlink",
       Tar().Symlink("l", "../outside").Hardlink("h", "l/secret").Finish(), "h"},
      {"hard link to missing", Tar().Hardlink("h", "nothere").Finish(), "h"},
      {"whiteout through symlink",
       Tar().Symlink("l", "../outside").File("l/.wh.secret", "").Finish(), "l/.wh.secret"},
      {"opaque through symlink",
       Tar().Symlink("l", "../outside").File("l/.wh..wh..opq", "").Finish(), "l/.wh..wh..opq"},
      {"block device", Tar().Add("sda", AE_IFBLK, 0600, "", "", 0, 0, {}, makedev(8, 0)).Finish(),
       "sda"},
      {"overlay opaque xattr",
       Tar().Add("d", AE_IFDIR, 0755, "", "", 0, 0, {{"trusted.overlay.opaque", "y"}}).Finish(),
       "trusted.overlay.opaque"},
      {"overlay redirect xattr",
       Tar().Add("f", AE_IFREG, 0644, "", "", 0, 0, {{"trusted.overlay.redirect", "/x"}}).Finish(),
       "trusted.overlay.redirect"},
      {"whiteout-named directory", Tar().File(".wh.d/f", "x").Finish(), ".wh.d"},
      {"file under a file", Tar().File("f", "x").File("f/g", "y").Finish(), "f/g"},
  };
  for (const Escape& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Unpack(c.tar);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().code(),
                AnyOf(absl::StatusCode::kInvalidArgument, absl::StatusCode::kFailedPrecondition))
        << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(c.entry));
    ExpectNothingKept();
    EXPECT_FALSE(Exists("/etc/passwd") && ReadAll("/etc/passwd") == "root::0:0");

    // The Into variant leaves no trace either.
    auto into = UnpackLayerInto(ReaderOf(c.tar), Compression::kNone, sandbox_ + "/snap");
    EXPECT_FALSE(into.ok());
    EXPECT_THAT(Listing(sandbox_),
                ::testing::UnorderedElementsAre("target", "outside", "outside/secret"));
  }
}

TEST_F(UnpackTest, SymlinksMayPointAnywhere) {
  std::string tar =
      Tar().Symlink("abs", "/etc/shadow").Symlink("up", "../../..").Symlink("dot", ".").Finish();
  ASSERT_TRUE(Unpack(tar).ok());
  EXPECT_EQ(std::filesystem::read_symlink(T("abs")), "/etc/shadow");
  EXPECT_EQ(std::filesystem::read_symlink(T("up")), "../../..");
}

TEST_F(UnpackTest, HardLinkToSymlinkLinksTheSymlinkItself) {
  std::string tar = Tar().Symlink("l", "/etc/passwd").Hardlink("h", "l").Finish();
  ASSERT_TRUE(Unpack(tar).ok());
  EXPECT_TRUE(S_ISLNK(Lstat(T("h")).st_mode));
  EXPECT_EQ(Lstat(T("h")).st_ino, Lstat(T("l")).st_ino);
}

TEST_F(UnpackTest, CorruptAndTruncatedStreams) {
  std::string tar = Tar().File("a", std::string(50000, 'a')).File("b", "b").Finish();
  std::string gz = Gzip(tar);
  std::string zs = Zstd(tar);
  std::string bad_gz = gz;
  bad_gz[gz.size() / 2] ^= 0x55;
  bad_gz[gz.size() / 2 + 1] ^= 0x55;
  std::vector<std::pair<std::string, std::pair<Compression, std::string>>> cases = {
      {"truncated tar", {Compression::kNone, tar.substr(0, 20000)}},
      {"garbage", {Compression::kNone, std::string(2048, 'g')}},
      {"truncated gzip", {Compression::kGzip, gz.substr(0, gz.size() / 2)}},
      {"corrupt gzip", {Compression::kGzip, bad_gz}},
      {"gzip trailing garbage", {Compression::kGzip, gz + "garbage!"}},
      {"not gzip", {Compression::kGzip, tar}},
      {"truncated zstd", {Compression::kZstd, zs.substr(0, zs.size() - 3)}},
      {"not zstd", {Compression::kZstd, tar}},
      {"empty gzip", {Compression::kGzip, ""}},
  };
  for (const auto& [name, input] : cases) {
    SCOPED_TRACE(name);
    auto r = UnpackLayer(ReaderOf(input.second), input.first, target_);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().code(),
                AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kInvalidArgument))
        << r.status();
    ExpectNothingKept();
    auto into = UnpackLayerInto(ReaderOf(input.second), input.first, sandbox_ + "/snap");
    EXPECT_FALSE(into.ok());
    EXPECT_THAT(Listing(sandbox_),
                ::testing::UnorderedElementsAre("target", "outside", "outside/secret"));
  }
}

TEST_F(UnpackTest, CapsOnSizeAndEntriesStopABombEarly) {
  // 8 MiB of zeros in a 9 KiB gzip: the cap is met long before the end.
  const std::string bomb = Gzip(Tar().File("zeros", std::string(size_t{8} << 20, '\0')).Finish());
  ASSERT_LT(bomb.size(), size_t{64} << 10);
  UnpackOptions small;
  small.max_bytes = size_t{1} << 20;
  auto r = Unpack(bomb, Compression::kGzip, small);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("max_layer_bytes"));
  ExpectNothingKept();

  Tar many;
  for (int i = 0; i < 20; ++i) many.File(absl::StrCat("f", i), "x");
  const std::string tar = many.Finish();
  UnpackOptions few;
  few.max_entries = 10;
  r = Unpack(tar, Compression::kNone, few);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("max_layer_entries"));
  ExpectNothingKept();
  auto into = UnpackLayerInto(ReaderOf(tar), Compression::kNone, sandbox_ + "/snap", few);
  EXPECT_EQ(into.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(Exists(sandbox_ + "/snap"));

  // At the caps exactly: unpacked.
  few.max_entries = 20;
  few.max_bytes = tar.size();
  r = Unpack(tar, Compression::kNone, few);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 20u);
}

TEST_F(UnpackTest, ReaderErrorIsReported) {
  LayerReader failing = [](char*, size_t) -> absl::StatusOr<size_t> {
    return absl::UnavailableError("connection reset");
  };
  auto r = UnpackLayer(failing, Compression::kGzip, target_);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("connection reset"));
}

TEST_F(UnpackTest, EmptyStreamIsAnEmptyLayer) {
  auto r = Unpack("");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 0u);
  EXPECT_EQ(r->diff_id, Sha256Of(""));
}

TEST_F(UnpackTest, TargetMustBeEmpty) {
  ASSERT_EQ(::mkdir(T("x").c_str(), 0755), 0);
  auto r = Unpack(Tar().File("f", "x").Finish());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(Exists(T("x")));
}

TEST_F(UnpackTest, IntoRenamesOnSuccessAndRefusesAnExistingSnapshot) {
  std::string tar = Tar().Dir("./", 0755).File("etc/os-release", "ID=test").Finish();
  const std::string snap = sandbox_ + "/snapshots/1/fs";
  std::filesystem::create_directories(sandbox_ + "/snapshots/1");
  auto r = UnpackLayerInto(ReaderOf(Zstd(tar)), Compression::kZstd, snap);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));
  EXPECT_EQ(ReadAll(snap + "/etc/os-release"), "ID=test");
  EXPECT_EQ(Lstat(snap).st_mode & 07777, 0755u);
  EXPECT_THAT(Listing(sandbox_ + "/snapshots/1"),
              ::testing::ElementsAre("fs", "fs/etc", "fs/etc/os-release"));

  auto again = UnpackLayerInto(ReaderOf(tar), Compression::kNone, snap);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(Listing(sandbox_ + "/snapshots/1"),
              ::testing::ElementsAre("fs", "fs/etc", "fs/etc/os-release"));
}

TEST_F(UnpackTest, FromBlobFile) {
  std::string tar = Tar().File("f", "from a file").Finish();
  const std::string blob = sandbox_ + "/blob";
  FILE* f = fopen(blob.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::string gz = Gzip(tar);
  fwrite(gz.data(), 1, gz.size(), f);
  fclose(f);
  auto r = UnpackLayerFile(blob, Compression::kGzip, target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(T("f")), "from a file");
  auto into = UnpackLayerFileInto(blob, Compression::kGzip, sandbox_ + "/snap");
  ASSERT_TRUE(into.ok()) << into.status();
  EXPECT_EQ(into->diff_id, r->diff_id);
  EXPECT_EQ(ReadAll(sandbox_ + "/snap/f"), "from a file");
  EXPECT_EQ(UnpackLayerFile(sandbox_ + "/nope", Compression::kGzip, target_).status().code(),
            absl::StatusCode::kNotFound);
}

std::string UstarHeader(const std::string& name, uint64_t size, char type = '0');

// A pax extended header setting `path` (UTF-8, as Go's archive/tar writes
// it), then a regular file with `content`.
std::string PaxFile(const std::string& path, const std::string& content) {
  std::string body = "path=" + path + "\n";
  size_t len = body.size() + 3;
  while (std::to_string(len).size() + 1 + body.size() != len) ++len;
  std::string record = std::to_string(len) + " " + body;
  auto pad = [](std::string s) {
    s.resize((s.size() + 511) / 512 * 512, '\0');
    return s;
  };
  return UstarHeader("PaxHeaders/x", record.size(), 'x') + pad(record) +
         UstarHeader("placeholder", content.size()) + pad(content);
}

TEST_F(UnpackTest, NonAsciiAndLongNames) {
  std::string deep;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&deep, "directory-level-", i, "/");
  std::string tar = PaxFile("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac", "utf8") +
                    Tar().File(deep + "f", "deep").Finish();
  auto r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(T("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac")), "utf8");
  EXPECT_EQ(ReadAll(T(deep + "f")), "deep");
}

// Hand-built ustar header for a regular file of `size` bytes.
std::string UstarHeader(const std::string& name, uint64_t size, char type) {
  std::string h(512, '\0');
  auto put = [&](size_t off, size_t len, const std::string& v) {
    memcpy(h.data() + off, v.data(), std::min(len, v.size()));
  };
  auto octal = [](uint64_t v, int width) {
    char buf[32];
    snprintf(buf, sizeof buf, "%0*llo", width, static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  put(0, 100, name);
  put(100, 8, octal(0644, 7));
  put(108, 8, octal(0, 7));
  put(116, 8, octal(0, 7));
  put(124, 12, octal(size, 11));
  put(136, 12, octal(static_cast<uint64_t>(kMtime), 11));
  put(148, 8, "        ");
  h[156] = type;
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put(148, 8, octal(sum, 6) + std::string("\0 ", 2));
  return h;
}

long MaxRssKiB() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

TEST_F(UnpackTest, LargeLayerIsStreamedWithBoundedMemory) {
  constexpr uint64_t kSize = 64ull << 20;
  const std::string header = UstarHeader("big.img", kSize);
  uint64_t total = 512 + kSize + 1024;
  // The stream is generated on the fly: header, mostly zeros with a marker
  // every MiB, then the two zero blocks.
  uint64_t pos = 0;
  Hasher expected = Hasher::Sha256();
  auto byte_at = [&](uint64_t p) -> char {
    if (p < 512) return header[p];
    uint64_t d = p - 512;
    if (d < kSize && d % (1 << 20) == 0) return 'M';
    return '\0';
  };
  LayerReader gen = [&](char* buf, size_t cap) -> absl::StatusOr<size_t> {
    size_t n = static_cast<size_t>(std::min<uint64_t>(cap, total - pos));
    for (size_t i = 0; i < n; ++i) buf[i] = byte_at(pos + i);
    expected.Update(buf, n);
    pos += n;
    return n;
  };
  long before = MaxRssKiB();
  auto r = UnpackLayer(gen, Compression::kNone, target_);
  long after = MaxRssKiB();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->uncompressed_size, total);
  EXPECT_EQ(r->diff_id, expected.Finish());
  EXPECT_EQ(static_cast<uint64_t>(Lstat(T("big.img")).st_size), kSize);
  // Nothing close to the layer's size was held in memory.
  EXPECT_LT(after - before, 32 * 1024) << "max RSS grew by " << (after - before) << " KiB";
  int fd = ::open(T("big.img").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char c = 0;
  EXPECT_EQ(::pread(fd, &c, 1, 5 << 20), 1);
  EXPECT_EQ(c, 'M');
  ::close(fd);
}

}  // namespace
}  // namespace podshim::image
