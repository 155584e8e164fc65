# Helper binaries that start once per pod, container or CNI call (podshim-monitor,
# podshim-bridge, podshim-ipam) link Abseil's static archives (Debian ships them beside the
# shared libraries) and a static libstdc++: mapping and relocating Debian's ~30 shared Abseil
# libraries costs several milliseconds at every start, more than a CNI ADD itself, and adds
# to every monitor's RSS. Sanitizer builds, and -DPODSHIM_STATIC_HELPERS=OFF, link shared.
option(PODSHIM_STATIC_HELPERS
       "Link podshim-monitor and the CNI plugins with static Abseil and libstdc++" ON)

# podshim_static_twin(<absl::target> <out-var>): an imported target for the static archive
# beside the shared library of <absl::target>, with the twins of its Abseil dependencies as
# its own link interface.
function(podshim_static_twin target out_var)
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
                            "configure with -DPODSHIM_STATIC_HELPERS=OFF")
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
          podshim_static_twin(${dep} dep_twin)
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

# podshim_helper_executable(NAME SOURCES ... ARCHIVES ... ABSL ... LIBS ...): an executable
# from SOURCES linking the project libraries ARCHIVES (in link order). Statically: the
# archives by file (so their shared-Abseil link interface stays behind), the static twins of
# the ABSL targets they need, then LIBS (non-Abseil libraries, linked as usual).
function(podshim_helper_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;ARCHIVES;ABSL;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  podshim_warnings(${name})
  if(NOT PODSHIM_STATIC_HELPERS OR PODSHIM_SANITIZE)
    target_link_libraries(${name} PRIVATE ${ARG_ARCHIVES} ${ARG_LIBS})
    return()
  endif()
  set(twins "")
  foreach(dep IN LISTS ARG_ABSL)
    podshim_static_twin(${dep} twin)
    list(APPEND twins ${twin})
  endforeach()
  set(files "")
  foreach(lib IN LISTS ARG_ARCHIVES)
    list(APPEND files $<TARGET_FILE:${lib}>)
    # Their headers and compile definitions, without their link interface.
    target_include_directories(${name} PRIVATE $<TARGET_PROPERTY:${lib},INTERFACE_INCLUDE_DIRECTORIES>)
  endforeach()
  add_dependencies(${name} ${ARG_ARCHIVES})
  target_link_libraries(${name} PRIVATE ${files} ${twins} ${ARG_LIBS} Threads::Threads
                                        ${CMAKE_DL_LIBS})
  target_link_options(${name} PRIVATE -static-libstdc++ -static-libgcc)
endfunction()
