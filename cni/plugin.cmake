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
  DEPS podshim_runtime PkgConfig::LIBMNL absl::status absl::statusor absl::strings absl::cord
       nlohmann_json::nlohmann_json ${CMAKE_DL_LIBS})
target_include_directories(podshim_cni_plugin PRIVATE ${LIBNFTABLES_INCLUDE_DIRS})

# A plugin process lives for one ADD or DEL. Mapping Debian's ~30 shared
# Abseil libraries and libstdc++ at its start costs more than the ADD
# itself (about 6 of 9 ms on the project's VMs), so the plugin binaries link
# Abseil's static archives (which Debian ships beside the shared ones) and
# libstdc++ statically. Sanitizer builds keep the shared libraries.
option(PODSHIM_CNI_STATIC_RUNTIME
       "Link podshim-bridge and podshim-ipam with static Abseil and libstdc++" ON)

# _podshim_static_twin(<absl::target> <out-var>): an imported target for the
# static archive beside the shared library of <absl::target>, with the twins
# of its Abseil dependencies as its own.
function(_podshim_static_twin target out_var)
  string(REPLACE "absl::" "podshim_static_absl_" twin "${target}")
  if(NOT TARGET ${twin})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "SHARED_LIBRARY")
      get_target_property(location ${target} IMPORTED_LOCATION_NONE)
      if(NOT location)
        get_target_property(location ${target} IMPORTED_LOCATION)
      endif()
      string(REGEX REPLACE "\\.so[.0-9]*$" ".a" archive "${location}")
      if(NOT EXISTS "${archive}")
        message(FATAL_ERROR "no static archive for ${target} (looked for ${archive}); "
                            "configure with -DPODSHIM_CNI_STATIC_RUNTIME=OFF")
      endif()
      add_library(${twin} STATIC IMPORTED)
      set_target_properties(${twin} PROPERTIES IMPORTED_LOCATION "${archive}")
    else()
      add_library(${twin} INTERFACE IMPORTED)
    endif()
    get_target_property(deps ${target} INTERFACE_LINK_LIBRARIES)
    set(twin_deps "")
    if(deps)
      foreach(dep IN LISTS deps)
        if(dep MATCHES "^absl::")
          _podshim_static_twin(${dep} dep_twin)
          list(APPEND twin_deps ${dep_twin})
        else()
          list(APPEND twin_deps ${dep})
        endif()
      endforeach()
    endif()
    set_target_properties(${twin} PROPERTIES INTERFACE_LINK_LIBRARIES "${twin_deps}")
  endif()
  set(${out_var} ${twin} PARENT_SCOPE)
endfunction()

function(_podshim_cni_plugin_executable name source)
  add_executable(${name} ${source})
  podshim_warnings(${name})
  if(NOT PODSHIM_CNI_STATIC_RUNTIME OR PODSHIM_SANITIZE)
    target_link_libraries(${name} PRIVATE podshim_cni_plugin)
    return()
  endif()
  # The two project archives by file, so their shared-Abseil link
  # interface stays behind; the static twins stand in for it.
  set(twins "")
  foreach(dep absl::status absl::statusor absl::strings absl::cord)
    _podshim_static_twin(${dep} twin)
    list(APPEND twins ${twin})
  endforeach()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  add_dependencies(${name} podshim_cni_plugin podshim_runtime)
  target_link_libraries(${name} PRIVATE
    $<TARGET_FILE:podshim_cni_plugin> $<TARGET_FILE:podshim_runtime> ${twins}
    PkgConfig::LIBMNL nlohmann_json::nlohmann_json Threads::Threads ${CMAKE_DL_LIBS})
  target_link_options(${name} PRIVATE -static-libstdc++ -static-libgcc)
endfunction()

_podshim_cni_plugin_executable(podshim-bridge bridge_main.cc)
_podshim_cni_plugin_executable(podshim-ipam ipam_main.cc)

# Unit tests of the library, and integration tests that run both binaries
# against network namespaces, bridges and nftables of this machine (root).
podshim_test(cni_plugin_test SOURCES ipam_test.cc plugin_common_test.cc plugin_test.cc
             DEPS podshim_cni_plugin podshim_cni)
add_dependencies(cni_plugin_test podshim-bridge podshim-ipam)
target_compile_definitions(cni_plugin_test PRIVATE
  PODSHIM_BRIDGE_BINARY="$<TARGET_FILE:podshim-bridge>"
  PODSHIM_IPAM_BINARY="$<TARGET_FILE:podshim-ipam>")
