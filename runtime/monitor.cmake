# The per-container monitor (runtime/container_init.h, runtime/cri_log.h) and
# its binary podshim-monitor: starts a container from a LaunchSpec, owns its
# stdio and CRI log, records its exit; `exec` runs ExecSync commands.
podshim_library(podshim_monitor
  SOURCES container_init.cc mount_plan.cc
  DEPS podshim_monitor_loop podshim_runtime podshim_security absl::status absl::statusor
       absl::strings absl::str_format)

# What stays resident per running container: the log pump, the reaper and the
# exit file (runtime/monitor_loop.h), in a small binary of its own that
# podshim-monitor execs once the workload runs. The standard library only, and
# linked fully statically (no ld.so, no shared libc mapped) except in
# sanitizer builds.
podshim_library(podshim_monitor_loop SOURCES monitor_loop.cc cri_log.cc)
add_executable(podshim-monitor-loop monitor_loop_main.cc)
podshim_warnings(podshim-monitor-loop)
target_link_libraries(podshim-monitor-loop PRIVATE podshim_monitor_loop)
target_compile_options(podshim_monitor_loop PRIVATE -ffunction-sections -fdata-sections)
if(PODSHIM_STATIC_HELPERS AND NOT PODSHIM_SANITIZE)
  target_link_options(podshim-monitor-loop PRIVATE -static -Wl,--gc-sections)
endif()

# One monitor per container, started at every StartContainer and living as
# long as the container: static Abseil and libstdc++ (cmake/static_runtime.cmake)
# make its start faster and its RSS smaller.
# It is linked fully statically (glibc, libseccomp and libcap included) where
# the helpers are static: no ld.so work at all on the StartContainer path.
if(PODSHIM_STATIC_HELPERS AND NOT PODSHIM_SANITIZE)
  set(monitor_libs -l:libseccomp.a -l:libcap.a)
else()
  set(monitor_libs PkgConfig::SECCOMP PkgConfig::LIBCAP)
endif()
podshim_helper_executable(podshim-monitor
  SOURCES monitor_main.cc
  ARCHIVES podshim_monitor podshim_monitor_loop podshim_security podshim_runtime
  ABSL absl::status absl::statusor absl::strings absl::str_format
  LIBS ${monitor_libs} nlohmann_json::nlohmann_json)
if(PODSHIM_STATIC_HELPERS AND NOT PODSHIM_SANITIZE)
  target_include_directories(podshim-monitor PRIVATE ${SECCOMP_INCLUDE_DIRS} ${LIBCAP_INCLUDE_DIRS})
  target_link_options(podshim-monitor PRIVATE -static)
endif()

# Unit tests of the mount plan and the log writer, and end-to-end tests that
# run the real binary as root against a busybox rootfs.
podshim_test(monitor_test SOURCES mount_plan_test.cc cri_log_test.cc monitor_test.cc rootfs_test.cc
             DEPS podshim_monitor podshim_pods)
target_compile_definitions(monitor_test PRIVATE
  PODSHIM_MONITOR_BINARY="$<TARGET_FILE:podshim-monitor>")
add_dependencies(monitor_test podshim-monitor podshim-monitor-loop)
# podshim-monitor execs podshim-monitor-loop from its own directory.
add_dependencies(podshim-monitor podshim-monitor-loop)
if("address" IN_LIST PODSHIM_SANITIZE)
  target_sources(podshim-monitor PRIVATE sanitizer_helper_options.cc)
  target_sources(podshim-monitor-loop PRIVATE sanitizer_helper_options.cc)
endif()
