# The per-container monitor (runtime/container_init.h, runtime/cri_log.h) and
# its binary podshim-monitor: starts a container from a LaunchSpec, owns its
# stdio and CRI log, records its exit; `exec` runs ExecSync commands.
podshim_library(podshim_monitor
  SOURCES container_init.cc cri_log.cc
  DEPS podshim_runtime podshim_security absl::status absl::statusor absl::strings
       absl::str_format)

# One monitor per container, started at every StartContainer and living as
# long as the container: static Abseil and libstdc++ (cmake/static_runtime.cmake)
# make its start faster and its RSS smaller.
podshim_helper_executable(podshim-monitor
  SOURCES monitor_main.cc
  ARCHIVES podshim_monitor podshim_security podshim_runtime
  ABSL absl::status absl::statusor absl::strings absl::str_format
  LIBS PkgConfig::SECCOMP PkgConfig::LIBCAP nlohmann_json::nlohmann_json)

# Unit tests of the mount plan and the log writer, and end-to-end tests that
# run the real binary as root against a busybox rootfs.
podshim_test(monitor_test SOURCES mount_plan_test.cc cri_log_test.cc monitor_test.cc
             DEPS podshim_monitor)
target_compile_definitions(monitor_test PRIVATE
  PODSHIM_MONITOR_BINARY="$<TARGET_FILE:podshim-monitor>")
add_dependencies(monitor_test podshim-monitor)
