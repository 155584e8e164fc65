#include "image/reference.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace podshim::image {
namespace {

using ::testing::HasSubstr;

const std::string kHex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kHex128 = kHex64 + kHex64;
const std::string kSha256 = "sha256:" + kHex64;

Reference MustParse(absl::string_view s) {
  auto r = ParseReference(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status();
  return r.ok() ? *r : Reference{};
}

// Expects `s` to be rejected with INVALID_ARGUMENT whose message names the
// reference and contains `what`.
void ExpectInvalid(absl::string_view s, absl::string_view what) {
  auto r = ParseReference(s);
  ASSERT_FALSE(r.ok()) << s << " parsed as " << r->String();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("reference \"")) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(std::string(what))) << r.status();
}

struct NormCase {
  const char* input;
  const char* normalized;
  const char* familiar;
};

class NormalizeTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(NormalizeTest, NormalizesAndShortens) {
  Reference r = MustParse(GetParam().input);
  EXPECT_EQ(r.String(), GetParam().normalized);
  EXPECT_EQ(r.Familiar(), GetParam().familiar);
  // The normalized form parses to itself.
  EXPECT_EQ(MustParse(r.String()), r);
  // So does the familiar form.
  EXPECT_EQ(MustParse(r.Familiar()), r);
}

INSTANTIATE_TEST_SUITE_P(
    References, NormalizeTest,
    ::testing::Values(
        NormCase{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormCase{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
        NormCase{"user/repo", "docker.io/user/repo:latest", "user/repo:latest"},
        NormCase{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormCase{"index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormCase{"docker.io/library/busybox:musl", "docker.io/library/busybox:musl",
                 "busybox:musl"},
        NormCase{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormCase{"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
        NormCase{"quay.io/org/app:v1", "quay.io/org/app:v1", "quay.io/org/app:v1"},
        NormCase{"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9",
                 "registry.k8s.io/pause:3.9"},
        NormCase{"localhost/x", "localhost/x:latest", "localhost/x:latest"},
        NormCase{"localhost:5000/x/y:t", "localhost:5000/x/y:t", "localhost:5000/x/y:t"},
        NormCase{"myhost:5000/repo:tag", "myhost:5000/repo:tag", "myhost:5000/repo:tag"},
        NormCase{"127.0.0.1:5000/repo", "127.0.0.1:5000/repo:latest", "127.0.0.1:5000/repo:latest"},
        NormCase{"[::1]:5000/repo", "[::1]:5000/repo:latest", "[::1]:5000/repo:latest"},
        NormCase{"[fe80::1]/repo:v2", "[fe80::1]/repo:v2", "[fe80::1]/repo:v2"},
        NormCase{"Quay.IO/org/app", "Quay.IO/org/app:latest", "Quay.IO/org/app:latest"},
        NormCase{"a.b-c.d/e", "a.b-c.d/e:latest", "a.b-c.d/e:latest"},
        // A docker.io path whose first component reads as a registry keeps
        // its domain (found by fuzz/reference_fuzz.cc: "cker.io/rr" is
        // another registry's image).
        NormCase{"docker.io/cker.io/rr", "docker.io/cker.io/rr:latest",
                 "docker.io/cker.io/rr:latest"},
        NormCase{"docker.io/localhost/x", "docker.io/localhost/x:latest",
                 "docker.io/localhost/x:latest"},
        // A colon with no '/' after it is a tag, not a port.
        NormCase{"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"},
        // Path component separators.
        NormCase{"a_b__c---d/e.f-g0", "docker.io/a_b__c---d/e.f-g0:latest",
                 "a_b__c---d/e.f-g0:latest"},
        // Tags may use upper case and '_' first.
        NormCase{"repo:V1.0-RC_1", "docker.io/library/repo:V1.0-RC_1", "repo:V1.0-RC_1"},
        NormCase{"repo:_x", "docker.io/library/repo:_x", "repo:_x"}));

TEST(ParseReferenceTest, SplitsFields) {
  Reference r = MustParse("host.example:443/team/app:1.2");
  EXPECT_EQ(r.domain, "host.example:443");
  EXPECT_EQ(r.path, "team/app");
  EXPECT_EQ(r.tag, "1.2");
  EXPECT_EQ(r.digest, "");
  EXPECT_EQ(r.Name(), "host.example:443/team/app");
}

TEST(ParseReferenceTest, DigestOnlyGetsNoDefaultTag) {
  Reference r = MustParse("busybox@" + kSha256);
  EXPECT_EQ(r.tag, "");
  EXPECT_EQ(r.digest, kSha256);
  EXPECT_EQ(r.String(), "docker.io/library/busybox@" + kSha256);
  EXPECT_EQ(r.Familiar(), "busybox@" + kSha256);
}

TEST(ParseReferenceTest, TagAndDigestAreBothKept) {
  Reference r = MustParse("quay.io/org/app:v1@" + kSha256);
  EXPECT_EQ(r.tag, "v1");
  EXPECT_EQ(r.digest, kSha256);
  EXPECT_EQ(r.String(), "quay.io/org/app:v1@" + kSha256);
  EXPECT_EQ(MustParse(r.String()), r);
}

TEST(ParseReferenceTest, DigestWithPortedRegistry) {
  Reference r = MustParse("localhost:5000/app@" + kSha256);
  EXPECT_EQ(r.domain, "localhost:5000");
  EXPECT_EQ(r.path, "app");
  EXPECT_EQ(r.tag, "");
}

TEST(ParseReferenceTest, Sha512Digest) {
  Reference r = MustParse("app@sha512:" + kHex128);
  EXPECT_EQ(r.digest, "sha512:" + kHex128);
}

TEST(ParseReferenceTest, MaximalTagIsAccepted) {
  std::string tag(128, 'a');
  EXPECT_EQ(MustParse("app:" + tag).tag, tag);
}

TEST(ParseReferenceTest, NameAtLengthLimitIsAccepted) {
  // "docker.io/" (10) + "u/" (2) + 243 = 255.
  std::string name = "docker.io/u/" + std::string(243, 'a');
  ASSERT_EQ(name.size(), 255u);
  EXPECT_EQ(MustParse(name).Name(), name);
}

TEST(ParseReferenceErrorsTest, Empty) { ExpectInvalid("", "is empty"); }

TEST(ParseReferenceErrorsTest, Uppercase) {
  auto r = ParseReference("Foo:bar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "reference \"Foo:bar\": repository name must be lowercase");
  ExpectInvalid("quay.io/Org/app", "must be lowercase");
  // An upper-case first component without '.' or ':' is not a domain.
  ExpectInvalid("Foo/bar", "must be lowercase");
}

TEST(ParseReferenceErrorsTest, BadPathComponents) {
  ExpectInvalid("a..b", "path component \"a..b\"");
  ExpectInvalid("a___b", "path component");
  ExpectInvalid("a._b", "path component");
  ExpectInvalid("-a", "path component");
  ExpectInvalid("a-", "path component");
  ExpectInvalid("_a", "path component");
  ExpectInvalid("a.", "path component");
  ExpectInvalid("a b", "path component");
  ExpectInvalid("a+b", "path component");
  ExpectInvalid("a//b", "empty component");
  ExpectInvalid("a/", "empty component");
  ExpectInvalid("/a", "empty component");
  ExpectInvalid("quay.io/", "repository path is empty");
}

TEST(ParseReferenceErrorsTest, BadTags) {
  ExpectInvalid("app:", "tag is empty");
  ExpectInvalid("app:.x", "tag \".x\"");
  ExpectInvalid("app:-x", "tag \"-x\"");
  // A ':' before the last '/' belongs to the first component, which is then a host.
  ExpectInvalid("app:a/b", "registry host \"app:a\"");
  ExpectInvalid("app:a+b", "tag \"a+b\"");
  ExpectInvalid("app:a:b", "tag \"a:b\"");
  ExpectInvalid("app:" + std::string(129, 'a'), "longer than 128");
  ExpectInvalid(":tag", "repository name is empty");
}

TEST(ParseReferenceErrorsTest, BadDigests) {
  ExpectInvalid("app@", "algorithm:hex");
  ExpectInvalid("app@sha256", "algorithm:hex");
  ExpectInvalid("app@md5:" + kHex64, "\"md5\" is not supported");
  ExpectInvalid("app@sha256:" + kHex64.substr(1), "64 lowercase hex");
  ExpectInvalid("app@sha256:" + kHex64 + "0", "64 lowercase hex");
  std::string upper = kHex64;
  upper[10] = 'A';
  ExpectInvalid("app@sha256:" + upper, "64 lowercase hex");
  ExpectInvalid("app@sha256:" + kHex64.substr(0, 63) + "g", "64 lowercase hex");
  ExpectInvalid("app@sha512:" + kHex64, "128 lowercase hex");
  ExpectInvalid("app@" + kSha256 + "@" + kSha256, "64 lowercase hex");
  ExpectInvalid("@" + kSha256, "repository name is empty");
}

TEST(ParseReferenceErrorsTest, BadDomains) {
  ExpectInvalid("-bad.io/app", "registry host \"-bad.io\"");
  ExpectInvalid("bad-.io/app", "registry host");
  ExpectInvalid("a..io/app", "registry host");
  ExpectInvalid("host:/app", "registry host");
  ExpectInvalid("host:50a0/app", "registry host");
  ExpectInvalid("host_name.io/app", "registry host");
  ExpectInvalid("[::1/app", "registry host");
  ExpectInvalid("[]:5000/app", "registry host");
  ExpectInvalid("[::g]/app", "registry host");
  ExpectInvalid("[::1]x/app", "registry host");
  ExpectInvalid("[::1]:/app", "registry host");
}

TEST(ParseReferenceErrorsTest, ImageIdIsNotAName) {
  ExpectInvalid(kHex64, "image ID");
  // With a registry or a tag it is a (strange but valid) repository name.
  EXPECT_TRUE(ParseReference(kHex64 + ":tag").ok());
  EXPECT_TRUE(ParseReference("quay.io/" + kHex64).ok());
}

TEST(ParseReferenceErrorsTest, NameTooLong) {
  ExpectInvalid("docker.io/u/" + std::string(244, 'a'), "longer than 255");
  // The limit applies to the normalized name: 246 + "docker.io/library/" > 255.
  ExpectInvalid(std::string(240, 'a'), "longer than 255");
}

TEST(ParseReferenceErrorsTest, MessageEscapesControlCharacters) {
  auto r = ParseReference("a\nb");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("reference \"a\\nb\""));
}

TEST(ParseReferenceErrorsTest, HugeReferenceMakesAShortMessage) {
  // A 1 MB reference came back as a 2 MB message (the reference, then its
  // path component again).
  for (const std::string& ref : {std::string(1 << 20, 'a'), "Quay.io/" + std::string(1 << 20, 'a'),
                                 "a:" + std::string(1 << 20, 't'), "a/" + std::string(1 << 20, '!'),
                                 std::string(1 << 20, 'h') + ".io/a"}) {
    auto r = ParseReference(ref);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_LT(r.status().message().size(), 600u) << r.status().message().substr(0, 300);
    EXPECT_THAT(r.status().message(), HasSubstr("(1048"));
  }
}

TEST(IsLoopbackRegistryTest, Loopback) {
  for (const char* d : {"localhost", "localhost:5000", "LocalHost:80", "127.0.0.1",
                        "127.0.0.1:5000", "127.1.2.3:1", "127.255.255.255", "[::1]", "[::1]:5000",
                        "[0:0:0:0:0:0:0:1]:5000", "::1", "[::ffff:127.0.0.1]:5000"}) {
    EXPECT_TRUE(IsLoopbackRegistry(d)) << d;
  }
}

TEST(IsLoopbackRegistryTest, NotLoopback) {
  for (const char* d :
       {"docker.io", "quay.io:443", "128.0.0.1", "10.0.0.1:5000", "0.0.0.0", "[::2]:5000", "[::]",
        "::", "localhost.example.com", "mylocalhost", "127.0.0.1.nip.io", "localhost:abc",
        "127.0.0.1:", "[::1]5000", "[::1", "", "127.0.0", "[::ffff:10.0.0.1]"}) {
    EXPECT_FALSE(IsLoopbackRegistry(d)) << d;
  }
}

TEST(IsLoopbackRegistryTest, WorksOnParsedDomains) {
  EXPECT_TRUE(IsLoopbackRegistry(MustParse("localhost:5000/app").domain));
  EXPECT_TRUE(IsLoopbackRegistry(MustParse("[::1]:5000/app").domain));
  EXPECT_FALSE(IsLoopbackRegistry(MustParse("app").domain));
}

}  // namespace
}  // namespace podshim::image
