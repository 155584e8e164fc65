// Kubernetes resource quantities ("500m", "2", "1.5", "100Mi", "1e3") as
// they appear in a pod's resources.requests and resources.limits.
//
// The grammar is Kubernetes' own:
//   quantity := sign? number suffix
//   number   := digits | digits "." digits? | "." digits
//   suffix   := "" | binary | decimal | ("e" | "E") sign? digits
//   binary   := Ki Mi Gi Ti Pi Ei              (powers of 1024)
//   decimal  := n u m k M G T P E              (powers of 1000; "" is 1)
// So "1E" is one exa, "1E3" is one thousand. No spaces, suffixes are case
// sensitive ("1gi" and "1KI" are errors).
//
// A quantity is exact until it is converted to an integer in some unit;
// Kubernetes then rounds up (toward +infinity), so "0.1m" of CPU is 1
// millicore and "0.5" bytes is 1 byte. The functions here do the same.
// Negative quantities parse in Kubernetes but are meaningless for CPU and
// memory; these functions reject them.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::kubelet {

// A CPU quantity in millicores (thousandths of a CPU), rounded up:
// "500m" -> 500, "2" -> 2000, "0.25" -> 250, "1.0001" -> 1001.
// INVALID_ARGUMENT naming the input when it is not a quantity, is negative,
// or does not fit in int64.
absl::StatusOr<int64_t> ParseCpuMillis(absl::string_view quantity);

// A memory or storage quantity in bytes, rounded up:
// "128Mi" -> 134217728, "1G" -> 1000000000, "0.5Gi" -> 536870912.
// INVALID_ARGUMENT naming the input when it is not a quantity, is negative,
// or does not fit in int64.
absl::StatusOr<int64_t> ParseBytes(absl::string_view quantity);

}  // namespace podshim::kubelet
