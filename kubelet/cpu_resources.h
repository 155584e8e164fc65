// How a kubelet turns a container's CPU request and limit (in millicores)
// and memory limit (in bytes) into the Linux resources of a CRI
// CreateContainer request, for the cgroup v1 / cgroupfs case.
//
// Kubernetes semantics, in short:
//  - The CPU *request* is a relative weight. It becomes cpu.shares, where one
//    whole CPU is 1024 shares. The kernel does not accept fewer than 2 or
//    more than 262144 shares, so the value is clamped to that range. A
//    container with no request gets 2 shares (the smallest weight), not the
//    kernel's default of 1024: best-effort pods must lose to everyone else.
//  - The CPU *limit* is a hard cap enforced by CFS bandwidth control: in
//    every period (100 ms by default) the container may run for at most
//    `quota` microseconds summed over all CPUs, quota = limit * period / 1000.
//    A limit of 0 means "no limit" (quota 0, which a runtime leaves unset).
//    The kernel refuses quotas under 1 ms, so smaller ones are raised to 1 ms.
//  - A container with a limit but no request is weighted by its limit (the
//    API server defaults request to limit; the kubelet repeats that here for
//    objects created before it did).
#pragma once

#include <cstdint>

namespace podshim::kubelet {

inline constexpr int64_t kMinCpuShares = 2;
inline constexpr int64_t kMaxCpuShares = 262144;
inline constexpr int64_t kCpuSharesPerCpu = 1024;
inline constexpr int64_t kMilliCpuPerCpu = 1000;
// The CFS period the kubelet uses unless configured otherwise: 100 ms.
inline constexpr int64_t kDefaultCpuPeriodUs = 100000;
// The smallest CFS quota the kubelet hands out: 1 ms.
inline constexpr int64_t kMinCpuQuotaUs = 1000;

// cpu.shares for a CPU request: milli * 1024 / 1000 (rounded down), clamped
// to [2, 262144]. A request of 0 (or less) gives 2.
int64_t MilliCpuToShares(int64_t milli);

// CFS quota in microseconds per `period_us` for a CPU limit:
// milli * period / 1000 (rounded down), at least 1000. A limit of 0 gives 0
// (no quota). A period of 0 or less means kDefaultCpuPeriodUs. Saturates at
// INT64_MAX instead of overflowing.
int64_t MilliCpuToQuota(int64_t milli, int64_t period_us = kDefaultCpuPeriodUs);

// The CPU and memory fields of CRI LinuxContainerResources. 0 means "not set".
struct LinuxCpuMemory {
  int64_t cpu_shares = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_period = 0;
  int64_t memory_limit_in_bytes = 0;

  friend bool operator==(const LinuxCpuMemory&, const LinuxCpuMemory&) = default;
};

// What the kubelet asks for, given a container's request and limits (0 for
// any that is unset). With `cfs_quota` false (kubelet --cpu-cfs-quota=false)
// quota and period are left unset and only shares are sent.
LinuxCpuMemory ContainerCpuMemory(int64_t cpu_request_milli, int64_t cpu_limit_milli,
                                  int64_t memory_limit_bytes, bool cfs_quota = true,
                                  int64_t period_us = kDefaultCpuPeriodUs);

}  // namespace podshim::kubelet
