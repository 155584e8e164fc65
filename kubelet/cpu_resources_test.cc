#include "kubelet/cpu_resources.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace podshim::kubelet {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(MilliCpuToSharesTest, ScalesAtTenTwentyFourPerCpu) {
  EXPECT_EQ(MilliCpuToShares(1000), 1024);
  EXPECT_EQ(MilliCpuToShares(500), 512);
  EXPECT_EQ(MilliCpuToShares(250), 256);
  EXPECT_EQ(MilliCpuToShares(100), 102);  // 102.4 rounds down
  EXPECT_EQ(MilliCpuToShares(1500), 1536);
  EXPECT_EQ(MilliCpuToShares(3), 3);  // 3.072
}

TEST(MilliCpuToSharesTest, ClampsToKernelRange) {
  EXPECT_EQ(MilliCpuToShares(0), kMinCpuShares);
  EXPECT_EQ(MilliCpuToShares(1), kMinCpuShares);  // 1.024
  EXPECT_EQ(MilliCpuToShares(2), kMinCpuShares);  // 2.048
  EXPECT_EQ(MilliCpuToShares(-5), kMinCpuShares);
  EXPECT_EQ(MilliCpuToShares(kMin), kMinCpuShares);
  EXPECT_EQ(MilliCpuToShares(255999), 262142);
  EXPECT_EQ(MilliCpuToShares(256000), kMaxCpuShares);
  EXPECT_EQ(MilliCpuToShares(1000000), kMaxCpuShares);
  EXPECT_EQ(MilliCpuToShares(kMax), kMaxCpuShares);  // no overflow
}

TEST(MilliCpuToQuotaTest, ScalesWithPeriod) {
  EXPECT_EQ(MilliCpuToQuota(1000), 100000);
  EXPECT_EQ(MilliCpuToQuota(500), 50000);
  EXPECT_EQ(MilliCpuToQuota(2500, kDefaultCpuPeriodUs), 250000);
  EXPECT_EQ(MilliCpuToQuota(250, 50000), 12500);
  EXPECT_EQ(MilliCpuToQuota(1000, 10000), 10000);
  EXPECT_EQ(MilliCpuToQuota(15), 1500);
  EXPECT_EQ(MilliCpuToQuota(333, 100001), 33300);  // 33300.333 rounds down
}

TEST(MilliCpuToQuotaTest, ZeroLimitMeansNoQuota) {
  EXPECT_EQ(MilliCpuToQuota(0), 0);
  EXPECT_EQ(MilliCpuToQuota(0, 50000), 0);
}

TEST(MilliCpuToQuotaTest, AtLeastOneMillisecond) {
  EXPECT_EQ(MilliCpuToQuota(1), kMinCpuQuotaUs);
  EXPECT_EQ(MilliCpuToQuota(9), kMinCpuQuotaUs);
  EXPECT_EQ(MilliCpuToQuota(10), 1000);
  EXPECT_EQ(MilliCpuToQuota(11), 1100);
  EXPECT_EQ(MilliCpuToQuota(50, 10000), kMinCpuQuotaUs);  // 500 us
  EXPECT_EQ(MilliCpuToQuota(-1), kMinCpuQuotaUs);
}

TEST(MilliCpuToQuotaTest, NonPositivePeriodUsesDefault) {
  EXPECT_EQ(MilliCpuToQuota(1000, 0), 100000);
  EXPECT_EQ(MilliCpuToQuota(1000, -7), 100000);
}

TEST(MilliCpuToQuotaTest, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(MilliCpuToQuota(kMax), kMax);
  EXPECT_EQ(MilliCpuToQuota(kMax / 1000, 1000000), kMax);
  EXPECT_EQ(MilliCpuToQuota(kMin), kMinCpuQuotaUs);
  // Just below the overflow point the exact value comes back.
  EXPECT_EQ(MilliCpuToQuota(kMax / kDefaultCpuPeriodUs), kMax / kDefaultCpuPeriodUs * 100);
}

TEST(ContainerCpuMemoryTest, RequestAndLimit) {
  LinuxCpuMemory want{.cpu_shares = 256,
                      .cpu_quota = 50000,
                      .cpu_period = 100000,
                      .memory_limit_in_bytes = 128 << 20};
  EXPECT_EQ(ContainerCpuMemory(250, 500, 128 << 20), want);
}

TEST(ContainerCpuMemoryTest, BestEffort) {
  // No request and no limit: smallest weight, no quota, period still sent.
  LinuxCpuMemory want{.cpu_shares = 2, .cpu_quota = 0, .cpu_period = 100000};
  EXPECT_EQ(ContainerCpuMemory(0, 0, 0), want);
}

TEST(ContainerCpuMemoryTest, LimitWithoutRequestWeighsByLimit) {
  LinuxCpuMemory got = ContainerCpuMemory(0, 2000, 0);
  EXPECT_EQ(got.cpu_shares, 2048);
  EXPECT_EQ(got.cpu_quota, 200000);
}

TEST(ContainerCpuMemoryTest, RequestWithoutLimitHasNoQuota) {
  LinuxCpuMemory got = ContainerCpuMemory(100, 0, 0);
  EXPECT_EQ(got.cpu_shares, 102);
  EXPECT_EQ(got.cpu_quota, 0);
  EXPECT_EQ(got.cpu_period, 100000);
  EXPECT_EQ(got.memory_limit_in_bytes, 0);
}

TEST(ContainerCpuMemoryTest, CfsQuotaDisabledSendsOnlyShares) {
  LinuxCpuMemory want{.cpu_shares = 1024, .memory_limit_in_bytes = 1 << 30};
  EXPECT_EQ(ContainerCpuMemory(1000, 1000, 1 << 30, /*cfs_quota=*/false), want);
}

TEST(ContainerCpuMemoryTest, CustomPeriod) {
  LinuxCpuMemory got = ContainerCpuMemory(500, 500, 0, true, 10000);
  EXPECT_EQ(got.cpu_period, 10000);
  EXPECT_EQ(got.cpu_quota, 5000);
  got = ContainerCpuMemory(500, 500, 0, true, 0);
  EXPECT_EQ(got.cpu_period, kDefaultCpuPeriodUs);
  EXPECT_EQ(got.cpu_quota, 50000);
}

}  // namespace
}  // namespace podshim::kubelet
