# podshim's own CNI plugins: podshim-bridge (bridge, veth pair, host ports)
# and podshim-ipam (host-local style IPAM), standard CNI 1.0 plugins on
# libmnl and libnftables. The library holds everything but main(), so the
# bridge runs the IPAM in-process and the tests reach every piece directly.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBMNL REQUIRED IMPORTED_TARGET libmnl)
# The header only: hostport.cc loads libnftables.so.1 when a port is mapped.
pkg_check_modules(LIBNFTABLES REQUIRED libnftables)

podshim_library(podshim_cni_plugin
  SOURCES netlink.cc plugin_common.cc ipam.cc hostport.cc
  DEPS podshim_runtime podshim_spawn_ns PkgConfig::LIBMNL absl::status absl::statusor
       absl::strings absl::cord absl::time
       nlohmann_json::nlohmann_json ${CMAKE_DL_LIBS})
target_include_directories(podshim_cni_plugin PRIVATE ${LIBNFTABLES_INCLUDE_DIRS})

# A plugin process lives for one ADD or DEL: linked with static Abseil and
# libstdc++ (cmake/static_runtime.cmake), one ADD costs ~4 ms instead of ~13.
foreach(plugin bridge ipam)
  podshim_helper_executable(podshim-${plugin}
    SOURCES ${plugin}_main.cc
    ARCHIVES podshim_cni_plugin podshim_spawn_ns podshim_runtime
    ABSL absl::status absl::statusor absl::strings absl::cord absl::time
    LIBS PkgConfig::LIBMNL nlohmann_json::nlohmann_json)
endforeach()

# Unit tests of the library, and integration tests that run both binaries
# against network namespaces, bridges and nftables of this machine (root).
podshim_test(cni_plugin_test SOURCES ipam_test.cc plugin_common_test.cc plugin_test.cc
             DEPS podshim_cni_plugin podshim_cni)
add_dependencies(cni_plugin_test podshim-bridge podshim-ipam)
target_compile_definitions(cni_plugin_test PRIVATE
  PODSHIM_BRIDGE_BINARY="$<TARGET_FILE:podshim-bridge>"
  PODSHIM_IPAM_BINARY="$<TARGET_FILE:podshim-ipam>")
