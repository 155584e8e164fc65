#include "kubelet/quantity.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace podshim::kubelet {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

struct Case {
  const char* input;
  int64_t want;
};

class CpuMillisTest : public ::testing::TestWithParam<Case> {};

TEST_P(CpuMillisTest, Parses) {
  auto got = ParseCpuMillis(GetParam().input);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Quantities, CpuMillisTest,
    ::testing::Values(Case{"500m", 500}, Case{"1", 1000}, Case{"2.5", 2500}, Case{"0.1", 100},
                      Case{"0", 0}, Case{"0m", 0}, Case{"-0", 0}, Case{"0.0", 0}, Case{"000", 0},
                      Case{"+2", 2000}, Case{"1.", 1000}, Case{".5", 500}, Case{"0.5", 500},
                      Case{"100m", 100}, Case{"1000m", 1000}, Case{"007", 7000},
                      // Rounded up to whole millicores, like Kubernetes' MilliValue().
                      Case{"0.1m", 1}, Case{"1.0001", 1001}, Case{"1.00000000001", 1001},
                      Case{"1n", 1}, Case{"1000000n", 1}, Case{"1000001n", 2}, Case{"1u", 1},
                      Case{"1500u", 2}, Case{"1e-300", 1}, Case{"1.000", 1000}, Case{"1k", 1000000},
                      Case{"1e3", 1000000}, Case{"1E3", 1000000}, Case{"1e+3", 1000000},
                      Case{"1e-3", 1}, Case{"25e-3", 25}, Case{"2500e-3", 2500},
                      Case{"1Ki", 1024000}, Case{"0.5Ki", 512000}, Case{"0e999999999999", 0},
                      // The largest value that fits.
                      Case{"9223372036854775807m", kMax}, Case{"9223372036854775.807", kMax}));

class BytesTest : public ::testing::TestWithParam<Case> {};

TEST_P(BytesTest, Parses) {
  auto got = ParseBytes(GetParam().input);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Quantities, BytesTest,
    ::testing::Values(Case{"0", 0}, Case{"1", 1}, Case{"1k", 1000}, Case{"1Ki", 1024},
                      Case{"100Mi", 104857600}, Case{"1Gi", 1073741824}, Case{"0.5Gi", 536870912},
                      Case{"1.5Gi", 1610612736}, Case{"128M", 128000000}, Case{"1G", 1000000000},
                      Case{"1T", 1000000000000}, Case{"1Ti", 1099511627776},
                      Case{"1P", 1000000000000000}, Case{"1Pi", 1125899906842624},
                      Case{"1E", 1000000000000000000}, Case{"1Ei", 1152921504606846976},
                      Case{"7Ei", 8070450532247928832}, Case{"1e3", 1000}, Case{"1e0", 1},
                      Case{"12e2", 1200}, Case{"1.5e3", 1500},
                      // Fractions of a byte round up.
                      Case{"500m", 1}, Case{"1500m", 2}, Case{"0.1", 1}, Case{"1.1", 2},
                      Case{"0.0000000000000000000000001Ei", 1}, Case{"0.3Ki", 308},  // 307.2
                      Case{"1000000000000000000000000000e-20", 10000000},
                      Case{"9223372036854775807", kMax}, Case{"9.223372036854775807E", kMax}));

void ExpectInvalid(absl::StatusOr<int64_t> got, absl::string_view input, absl::string_view what) {
  ASSERT_FALSE(got.ok()) << input << " parsed as " << *got;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr(std::string(what)));
}

TEST(QuantityErrorsTest, RejectsJunkNamingTheInput) {
  for (const char* input :
       {"",     "abc", "-",   "+",   ".",     "m",     "Gi",   "e3",    " 1",   "1 ",
        "1 Gi", "--1", "+-1", "1,5", "0x10",  "1gi",   "1KI",  "1K",    "1mi",  "1ki",
        "1Kib", "1e",  "1E+", "1e-", "1e3.5", "1e3Ki", "1Ki3", "1.5.5", "1..5", "1/2",
        "inf",  "NaN", "1b",  "1B",  "1Mb",   "1m m",  "١"}) {
    SCOPED_TRACE(input);
    auto got = ParseBytes(input);
    ExpectInvalid(got, input, "quantity \"");
    EXPECT_FALSE(ParseCpuMillis(input).ok());
  }
  auto got = ParseCpuMillis("1gi");
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("quantity \"1gi\": unknown suffix \"gi\""));
  ExpectInvalid(ParseCpuMillis(""), "", "quantity \"\": is empty");
  ExpectInvalid(ParseCpuMillis("abc"), "abc", "must be a number");
  ExpectInvalid(ParseBytes("1\n"), "1\\n", "quantity \"1\\n\"");
}

TEST(QuantityErrorsTest, RejectsNegative) {
  ExpectInvalid(ParseCpuMillis("-1"), "-1", "quantity \"-1\": must not be negative");
  ExpectInvalid(ParseCpuMillis("-0.0001m"), "-0.0001m", "must not be negative");
  ExpectInvalid(ParseBytes("-1Gi"), "-1Gi", "must not be negative");
}

TEST(QuantityErrorsTest, RejectsOverflow) {
  ExpectInvalid(ParseCpuMillis("9223372036854775808m"), "", "is too large");
  ExpectInvalid(ParseCpuMillis("9223372036854775.8071"), "", "is too large");  // rounds up past
  ExpectInvalid(ParseCpuMillis("9223372036854776"), "", "millicores");
  ExpectInvalid(ParseCpuMillis("1E"), "", "is too large");  // 10^21 millicores
  ExpectInvalid(ParseBytes("9223372036854775808"), "", "bytes");
  ExpectInvalid(ParseBytes("8Ei"), "", "is too large");
  ExpectInvalid(ParseBytes("10E"), "", "is too large");
  ExpectInvalid(ParseBytes("99999999999999999999"), "", "is too large");
  ExpectInvalid(ParseBytes("1e19"), "", "is too large");
  ExpectInvalid(ParseBytes("1e99999999999999999999"), "", "is too large");
  ExpectInvalid(ParseBytes("9223372036854775807.1"), "", "is too large");
}

TEST(QuantityTest, HugeNegativeExponentRoundsUpToOne) {
  EXPECT_EQ(*ParseBytes("5e-99999999999999999999"), 1);
  EXPECT_EQ(*ParseCpuMillis("1e-4"), 1);
}

TEST(QuantityTest, LongMantissaIsExact) {
  std::string ones = "1." + std::string(1000, '0');
  EXPECT_EQ(*ParseBytes(ones), 1);
  EXPECT_EQ(*ParseBytes(ones + "1"), 2);
  EXPECT_EQ(*ParseBytes(std::string(1000, '0') + "42"), 42);
}

}  // namespace
}  // namespace podshim::kubelet
