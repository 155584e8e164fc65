#include "kubelet/quantity.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace podshim::kubelet {
namespace {

// Exponents beyond this make any non-zero value overflow int64 (or round up
// to 1), so larger ones are clamped to keep the arithmetic in range.
constexpr int64_t kExponentClamp = 1'000'000;

// The value of a quantity: (-1)^negative * digits * 10^exp10 * 1024^pow1024.
struct Decimal {
  bool negative = false;
  std::string digits;  // decimal digits, possibly with leading zeros
  int64_t exp10 = 0;
  int pow1024 = 0;
};

absl::Status Invalid(absl::string_view input, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("quantity \"", absl::CHexEscape(input), "\": ", what));
}

size_t DigitRun(absl::string_view s, size_t pos) {
  size_t end = pos;
  while (end < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[end]))) ++end;
  return end;
}

// Sets exp10 / pow1024 from a suffix; false when the suffix is unknown.
bool ApplySuffix(absl::string_view suffix, Decimal& d) {
  struct Entry {
    absl::string_view suffix;
    int exp10;
    int pow1024;
  };
  static constexpr Entry kSuffixes[] = {
      {"", 0, 0},   {"n", -9, 0}, {"u", -6, 0}, {"m", -3, 0}, {"k", 3, 0},  {"M", 6, 0},
      {"G", 9, 0},  {"T", 12, 0}, {"P", 15, 0}, {"E", 18, 0}, {"Ki", 0, 1}, {"Mi", 0, 2},
      {"Gi", 0, 3}, {"Ti", 0, 4}, {"Pi", 0, 5}, {"Ei", 0, 6},
  };
  for (const Entry& e : kSuffixes) {
    if (suffix == e.suffix) {
      d.exp10 += e.exp10;
      d.pow1024 = e.pow1024;
      return true;
    }
  }
  // ("e" | "E") sign? digits
  if (suffix.size() < 2 || (suffix[0] != 'e' && suffix[0] != 'E')) return false;
  size_t pos = 1;
  bool negative = false;
  if (suffix[pos] == '+' || suffix[pos] == '-') negative = suffix[pos++] == '-';
  if (pos == suffix.size() || DigitRun(suffix, pos) != suffix.size()) return false;
  int64_t exponent = 0;
  for (; pos < suffix.size(); ++pos) {
    exponent = std::min(kExponentClamp, exponent * 10 + (suffix[pos] - '0'));
  }
  d.exp10 += negative ? -exponent : exponent;
  return true;
}

absl::StatusOr<Decimal> ParseDecimal(absl::string_view input) {
  if (input.empty()) return Invalid(input, "is empty");
  Decimal d;
  size_t pos = 0;
  if (input[0] == '+' || input[0] == '-') d.negative = input[pos++] == '-';
  size_t int_end = DigitRun(input, pos);
  d.digits = std::string(input.substr(pos, int_end - pos));
  pos = int_end;
  if (pos < input.size() && input[pos] == '.') {
    size_t frac_end = DigitRun(input, pos + 1);
    absl::string_view frac = input.substr(pos + 1, frac_end - pos - 1);
    d.digits.append(frac.data(), frac.size());
    d.exp10 = -static_cast<int64_t>(frac.size());
    pos = frac_end;
  }
  if (d.digits.empty()) {
    return Invalid(input, "must be a number with an optional suffix, like 500m, 1.5 or 128Mi");
  }
  absl::string_view suffix = input.substr(pos);
  if (!ApplySuffix(suffix, d)) {
    return Invalid(input, absl::StrCat("unknown suffix \"", absl::CHexEscape(suffix),
                                       "\" (want one of Ki Mi Gi Ti Pi Ei, n u m k M G T P E, "
                                       "or an exponent like e3)"));
  }
  return d;
}

// digits *= factor, on a string of decimal digits.
void MultiplyDigits(std::string& digits, uint32_t factor) {
  uint64_t carry = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    uint64_t v = static_cast<uint64_t>(*it - '0') * factor + carry;
    *it = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  std::string head;
  for (; carry > 0; carry /= 10) head.insert(head.begin(), static_cast<char>('0' + carry % 10));
  digits.insert(0, head);
}

// The quantity in units of 10^-unit_exp10 (3 for millis, 0 for ones),
// rounded up to a whole number.
absl::StatusOr<int64_t> ParseScaled(absl::string_view input, int unit_exp10,
                                    absl::string_view unit_name) {
  absl::StatusOr<Decimal> parsed = ParseDecimal(input);
  if (!parsed.ok()) return parsed.status();
  Decimal& d = *parsed;
  d.digits.erase(0, d.digits.find_first_not_of('0'));
  if (d.digits.empty()) return 0;  // zero, whatever its sign, suffix or exponent
  if (d.negative) return Invalid(input, "must not be negative");
  for (int i = 0; i < d.pow1024; ++i) MultiplyDigits(d.digits, 1024);

  // value = digits * 10^scale, digits without leading zeros.
  int64_t scale = d.exp10 + unit_exp10;
  int64_t int_len = static_cast<int64_t>(d.digits.size()) + scale;
  auto too_large = [&] {
    return Invalid(input, absl::StrCat("is too large: more than ",
                                       std::numeric_limits<int64_t>::max(), " ", unit_name));
  };
  // int64 max has 19 digits; a 20-digit integer part cannot fit.
  if (int_len > 19) return too_large();
  if (int_len <= 0) return 1;  // a positive fraction of one unit rounds up to 1
  std::string int_part;
  bool has_fraction = false;
  if (scale >= 0) {
    int_part = d.digits + std::string(static_cast<size_t>(scale), '0');
  } else {
    int_part = d.digits.substr(0, static_cast<size_t>(int_len));
    has_fraction =
        d.digits.find_first_not_of('0', static_cast<size_t>(int_len)) != std::string::npos;
  }
  uint64_t value = 0;
  for (char c : int_part) value = value * 10 + static_cast<uint64_t>(c - '0');  // < 10^19
  if (has_fraction) ++value;
  if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return too_large();
  return static_cast<int64_t>(value);
}

}  // namespace

absl::StatusOr<int64_t> ParseCpuMillis(absl::string_view quantity) {
  return ParseScaled(quantity, 3, "millicores");
}

absl::StatusOr<int64_t> ParseBytes(absl::string_view quantity) {
  return ParseScaled(quantity, 0, "bytes");
}

}  // namespace podshim::kubelet
