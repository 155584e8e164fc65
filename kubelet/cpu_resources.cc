#include "kubelet/cpu_resources.h"

#include <limits>

namespace podshim::kubelet {

int64_t MilliCpuToShares(int64_t milli) {
  // From this request on the result is at the cap (256000 * 1024 / 1000 is
  // exactly 262144); checking first also keeps the product from overflowing.
  constexpr int64_t kMilliAtMaxShares = kMaxCpuShares * kMilliCpuPerCpu / kCpuSharesPerCpu;
  if (milli >= kMilliAtMaxShares) return kMaxCpuShares;
  if (milli <= 0) return kMinCpuShares;
  int64_t shares = milli * kCpuSharesPerCpu / kMilliCpuPerCpu;
  return shares < kMinCpuShares ? kMinCpuShares : shares;
}

int64_t MilliCpuToQuota(int64_t milli, int64_t period_us) {
  if (milli == 0) return 0;
  if (period_us <= 0) period_us = kDefaultCpuPeriodUs;
  int64_t product = 0;
  if (__builtin_mul_overflow(milli, period_us, &product)) {
    return milli > 0 ? std::numeric_limits<int64_t>::max() : kMinCpuQuotaUs;
  }
  int64_t quota = product / kMilliCpuPerCpu;
  return quota < kMinCpuQuotaUs ? kMinCpuQuotaUs : quota;
}

LinuxCpuMemory ContainerCpuMemory(int64_t cpu_request_milli, int64_t cpu_limit_milli,
                                  int64_t memory_limit_bytes, bool cfs_quota, int64_t period_us) {
  LinuxCpuMemory out;
  out.cpu_shares = MilliCpuToShares(
      cpu_request_milli == 0 && cpu_limit_milli != 0 ? cpu_limit_milli : cpu_request_milli);
  if (memory_limit_bytes > 0) out.memory_limit_in_bytes = memory_limit_bytes;
  if (cfs_quota) {
    if (period_us <= 0) period_us = kDefaultCpuPeriodUs;
    out.cpu_period = period_us;
    out.cpu_quota = MilliCpuToQuota(cpu_limit_milli, period_us);
  }
  return out;
}

}  // namespace podshim::kubelet
