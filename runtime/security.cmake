# Process security: users, capabilities, seccomp, rlimits (runtime/security.h).
find_package(PkgConfig REQUIRED)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(LIBCAP REQUIRED IMPORTED_TARGET libcap)

podshim_library(podshim_security
  SOURCES capabilities.cc users.cc seccomp.cc host_checks.cc
  DEPS podshim_runtime PkgConfig::SECCOMP PkgConfig::LIBCAP nlohmann_json::nlohmann_json
       absl::strings absl::status absl::statusor)

podshim_test(security_test SOURCES security_test.cc DEPS podshim_security)
