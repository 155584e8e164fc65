#include "runtime/sysctl.h"

#include <utility>

namespace podshim::runtime {
namespace {

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, std::char_traits<char>::length(prefix), prefix) == 0;
}

}  // namespace

std::string CheckSysctl(const std::string& name, const std::string& value, bool own_net,
                        bool own_ipc, std::string* proc_path) {
  for (unsigned char c : name) {
    if (c <= ' ' || c == 0x7f) return "the name contains a control character or a space";
  }
  const size_t sep = name.find_first_of("./");
  if (sep == std::string::npos) return "not a namespaced sysctl";
  // The path form: '/' is the only separator.
  std::string path = name;
  if (name[sep] == '.') {
    for (char& c : path) c = c == '.' ? '/' : c == '/' ? '.' : c;
  }
  for (size_t start = 0;;) {
    const size_t end = path.find('/', start);
    const std::string part = path.substr(start, end == std::string::npos ? end : end - start);
    if (part.empty() || part == "." || part == "..") return "malformed name";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  const bool is_net = StartsWith(path, "net/");
  const bool is_ipc = StartsWith(path, "kernel/shm") || StartsWith(path, "kernel/msg") ||
                      path == "kernel/sem" || StartsWith(path, "fs/mqueue/");
  if (!is_net && !is_ipc) return "not a namespaced sysctl";
  if (is_net && !own_net) return "not allowed with the host network (no network namespace)";
  if (is_ipc && !own_ipc) return "not allowed with the host IPC namespace (no IPC namespace)";
  if (value.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
    return "value contains a newline or NUL";
  }
  if (proc_path != nullptr) *proc_path = std::move(path);
  return "";
}

}  // namespace podshim::runtime
