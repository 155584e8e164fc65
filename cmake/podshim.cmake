# Shared settings for podshim's own targets (not for generated code).

# Warnings every podshim target compiles with.
function(podshim_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wnon-virtual-dtor -Wformat=2)
  if(PODSHIM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(PODSHIM_SANITIZE)
  string(REPLACE ";" "," _san "${PODSHIM_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
endif()

# The fuzz preset (clang): every podshim object gets libFuzzer's coverage
# instrumentation; only the fuzz/ targets link libFuzzer's main.
option(PODSHIM_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)
if(PODSHIM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PODSHIM_FUZZ needs clang (the fuzz preset sets it)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# podshim_library(NAME SOURCES ... DEPS ...): one library per module.
function(podshim_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  podshim_warnings(${name})
endfunction()

# podshim_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with ctest.
function(podshim_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  podshim_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)
endfunction()

include(${CMAKE_CURRENT_LIST_DIR}/static_runtime.cmake)
