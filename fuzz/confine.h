// A fuzzer that writes files as root (the layer unpacker) must not be able to
// write anything else on the machine, whatever a bug lets an input do.
#pragma once

#include <string>

namespace podshim::fuzz {

// Moves the process into a mount namespace of its own in which every mount is
// read-only except a fresh tmpfs, whose path it returns, and the directories
// named in PODSHIM_FUZZ_WRITABLE (colon-separated: libFuzzer's corpus and
// artifact folders). Aborts with a message when that cannot be done (it needs
// root); nothing is unpacked unconfined.
std::string ConfineWrites();

}  // namespace podshim::fuzz
