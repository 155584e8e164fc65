#include "image/digest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::image {
namespace {

using ::testing::HasSubstr;

constexpr char kEmptySha256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, KnownVectors) {
  EXPECT_EQ(Sha256Of("").String(), kEmptySha256);
  EXPECT_EQ(Sha256Of("abc").String(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto h = Hasher::Create("sha512");
  ASSERT_TRUE(h.ok());
  h->Update("abc");
  EXPECT_EQ(h->Finish().hex.substr(0, 16), "ddaf35a193617aba");
}

TEST(Digest, IncrementalEqualsOneShot) {
  Hasher h = Hasher::Sha256();
  h.Update("a");
  h.Update("");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
}

TEST(Digest, ParseAcceptsValidAndRejectsWithReason) {
  auto d = ParseDigest(kEmptySha256);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->algorithm, "sha256");
  EXPECT_EQ(d->String(), kEmptySha256);
  EXPECT_THAT(ParseDigest("e3b0c442").status().message(), HasSubstr("<algorithm>:<hex>"));
  EXPECT_THAT(ParseDigest("md5:abcd").status().message(), HasSubstr("unsupported algorithm"));
  EXPECT_THAT(ParseDigest("sha256:abcd").status().message(), HasSubstr("64 hex digits"));
  std::string upper = kEmptySha256;
  upper[10] = 'C';
  EXPECT_THAT(ParseDigest(upper).status().message(), HasSubstr("0-9 or a-f"));
  EXPECT_EQ(ParseDigest("sha256:../../etc").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace podshim::image
