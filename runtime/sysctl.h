// What sysctls a pod may set: the one check, used by the agent's request
// validation (agent/validate.cc), by ValidateSysctls and PinNamespaces
// (runtime/namespaces.h), and by podshim-pinns itself before it writes
// /proc/sys. The standard library only, since podshim-pinns links nothing
// else.
#pragma once

#include <string>

namespace podshim::runtime {

// Checks one pod sysctl `name` = `value`:
//  - the name uses '.' or '/' as separator (sysctl(8) rules: when the first
//    separator is '/', dots are part of the components, as in
//    "net/ipv4/conf/eth0.100/rp_filter"); no empty, "." or ".." component,
//    no control character or space;
//  - it is in the namespaced allow-list: net.*, kernel.shm*, kernel.msg*,
//    kernel.sem and fs.mqueue.*;
//  - the pod has the namespace it belongs to (`own_net` for net.*,
//    `own_ipc` for the IPC ones), so it never changes the host's;
//  - the value has no newline or NUL (one write to /proc/sys sets one value).
// Returns "" when it may be set, else why not, without the name (callers
// quote it their own way). When allowed and `proc_path` is set, it gets the
// file under /proc/sys ("net/ipv4/ip_forward").
std::string CheckSysctl(const std::string& name, const std::string& value, bool own_net,
                        bool own_ipc, std::string* proc_path = nullptr);

}  // namespace podshim::runtime
