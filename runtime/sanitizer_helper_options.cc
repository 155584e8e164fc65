// Linked into the helper binaries (podshim-monitor, podshim-monitor-loop,
// podshim-pinns) of AddressSanitizer builds only (runtime/monitor.cmake,
// runtime/pinns.cmake). The helpers make themselves non-dumpable
// (PR_SET_DUMPABLE 0, issue 18 finding 6), and LeakSanitizer's check at exit
// stops the process's threads with ptrace, which a non-dumpable process
// refuses: "LeakSanitizer has encountered a fatal error", exit code 1, every
// container ending as failed. Leak checking is off in the helpers; every other
// AddressSanitizer and UBSan check stays on, and podshimd and the tests keep
// leak checking.
// NOLINTNEXTLINE(bugprone-reserved-identifier): the name the ASan runtime looks up
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
