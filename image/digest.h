// Content digests ("sha256:<hex>"), as OCI images name blobs and layers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::image {

// A validated digest: algorithm "sha256" (64 lowercase hex digits) or
// "sha512" (128).
struct Digest {
  std::string algorithm;
  std::string hex;

  std::string String() const { return algorithm + ":" + hex; }
  friend bool operator==(const Digest&, const Digest&) = default;
};

// Parses "sha256:<64 hex>" or "sha512:<128 hex>". INVALID_ARGUMENT naming the
// input otherwise (unknown algorithm, wrong length, upper-case hex, ...).
absl::StatusOr<Digest> ParseDigest(absl::string_view text);

// Incremental hashing for one algorithm; Finish() returns the digest of
// everything given to Update().
class Hasher {
 public:
  // INVALID_ARGUMENT for an algorithm other than sha256 and sha512.
  static absl::StatusOr<Hasher> Create(absl::string_view algorithm);
  static Hasher Sha256();

  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  ~Hasher();

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Ends the hash; the hasher must not be used afterwards.
  Digest Finish();

 private:
  struct State;
  explicit Hasher(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The sha256 digest of `data`.
Digest Sha256Of(absl::string_view data);

}  // namespace podshim::image
