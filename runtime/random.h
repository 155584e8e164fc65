// Random identifiers from the kernel's CSPRNG (getrandom(2)).
#pragma once

#include <cstddef>
#include <string>

namespace podshim::runtime {

// `bytes` random bytes as 2*bytes lowercase hex digits (IDs of pods and
// containers: 32 bytes, 64 digits, as containerd's). Waits for the kernel's
// pool at early boot; never fails.
std::string RandomHex(size_t bytes);

}  // namespace podshim::runtime
