#include "image/digest.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace podshim::image {

struct Hasher::State {
  std::string algorithm;
  EVP_MD_CTX* ctx = nullptr;
  ~State() { EVP_MD_CTX_free(ctx); }
};

absl::StatusOr<Digest> ParseDigest(absl::string_view text) {
  auto colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", text, "\": expected <algorithm>:<hex>"));
  }
  absl::string_view algorithm = text.substr(0, colon);
  absl::string_view hex = text.substr(colon + 1);
  size_t want = 0;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "digest \"", text, "\": unsupported algorithm \"", algorithm, "\" (sha256, sha512)"));
  }
  if (hex.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("digest \"", text, "\": ", algorithm, " needs ",
                                                   want, " hex digits, got ", hex.size()));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(
          absl::StrCat("digest \"", text, "\": hex digits must be 0-9 or a-f"));
    }
  }
  return Digest{std::string(algorithm), std::string(hex)};
}

Hasher::Hasher(std::unique_ptr<State> state) : state_(std::move(state)) {}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

absl::StatusOr<Hasher> Hasher::Create(absl::string_view algorithm) {
  const EVP_MD* md = nullptr;
  if (algorithm == "sha256") {
    md = EVP_sha256();
  } else if (algorithm == "sha512") {
    md = EVP_sha512();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("digest algorithm \"", algorithm, "\" is not supported (sha256, sha512)"));
  }
  auto state = std::make_unique<State>();
  state->algorithm = std::string(algorithm);
  state->ctx = EVP_MD_CTX_new();
  if (state->ctx == nullptr || EVP_DigestInit_ex(state->ctx, md, nullptr) != 1) {
    return absl::InternalError("EVP_DigestInit_ex failed");
  }
  return Hasher(std::move(state));
}

Hasher Hasher::Sha256() { return *Create("sha256"); }

void Hasher::Update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(state_->ctx, data, size);
}

Digest Hasher::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(len) * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xf]);
  }
  return Digest{state_->algorithm, std::move(hex)};
}

Digest Sha256Of(absl::string_view data) {
  Hasher h = Hasher::Sha256();
  h.Update(data);
  return h.Finish();
}

}  // namespace podshim::image
