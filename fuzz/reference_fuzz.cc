// Image references (image/reference.h) as a pod spec or `crictl pull` gives
// them. A reference that parses must print as one that parses back to the
// same thing, in both its full and its familiar form, and an image reference
// podshimd lets through validation must be parsed without harm.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "image/reference.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& input, const std::string& printed) {
  std::fprintf(stderr, "reference_fuzz: %s\n  input:   %s\n  printed: %s\n", what,
               input.substr(0, 300).c_str(), printed.substr(0, 300).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using podshim::image::ParseReference;
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto ref = ParseReference(input);
  if (!ref.ok()) {
    if (ref.status().code() != absl::StatusCode::kInvalidArgument)
      Fail("refused with a code other than INVALID_ARGUMENT", input, ref.status().ToString());
    return 0;
  }
  if (ref->domain.empty() || ref->path.empty() || (ref->tag.empty() && ref->digest.empty()))
    Fail("parsed into an incomplete reference", input, ref->String());
  const std::string full = ref->String();
  auto again = ParseReference(full);
  if (!again.ok() || !(*again == *ref)) Fail("String() does not parse back to itself", input, full);
  const std::string familiar = ref->Familiar();
  auto from_familiar = ParseReference(familiar);
  if (!from_familiar.ok() || !(*from_familiar == *ref))
    Fail("Familiar() does not parse back to the same reference", input, familiar);
  (void)podshim::image::IsLoopbackRegistry(ref->domain);
  return 0;
}
