# The namespace pinner: podshim-pinns (a tiny single-threaded helper binary
# that links only the C/C++ runtime), the agent-side API that runs it
# (namespaces.h), and the posix_spawn-based process runner (spawn.h).
podshim_library(podshim_spawn_ns
  SOURCES spawn.cc namespaces.cc
  DEPS podshim_runtime absl::time absl::strings absl::status absl::statusor absl::synchronization)

# sysctl.cc (the one sysctl check, standard C++ alone) is compiled in.
add_executable(podshim-pinns pinns_main.cc sysctl.cc)
if("address" IN_LIST PODSHIM_SANITIZE)
  target_sources(podshim-pinns PRIVATE sanitizer_helper_options.cc)
endif()
podshim_warnings(podshim-pinns)
target_include_directories(podshim-pinns PRIVATE ${PROJECT_SOURCE_DIR})
# One runs per RunPodSandbox: fully static, so it starts without ld.so.
if(PODSHIM_STATIC_HELPERS AND NOT PODSHIM_SANITIZE)
  target_link_options(podshim-pinns PRIVATE -static)
endif()

podshim_test(pinns_test SOURCES spawn_test.cc namespaces_test.cc DEPS podshim_spawn_ns)
add_dependencies(pinns_test podshim-pinns)
target_compile_definitions(pinns_test PRIVATE
  PODSHIM_PINNS_BINARY="$<TARGET_FILE:podshim-pinns>")
