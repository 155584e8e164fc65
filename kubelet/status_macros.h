// Early return on a failed absl::Status, for the toy kubelet's sources.
#pragma once

#include "absl/status/status.h"

#define KUBELET_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status kubelet_status_ = (expr);           \
    if (!kubelet_status_.ok()) return kubelet_status_; \
  } while (0)
