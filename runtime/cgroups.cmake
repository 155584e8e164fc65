# cgroups: the cgroupfs driver for pods and containers (v1 and v2 backends).
podshim_library(podshim_cgroups
  SOURCES cgroups_common.cc cgroups_v1.cc cgroups_v2.cc
  DEPS podshim_runtime absl::strings absl::status absl::statusor)

podshim_test(cgroups_test SOURCES cgroups_test.cc DEPS podshim_cgroups)
