// Move-only owner of a file descriptor, and errno -> absl::Status helpers.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace podshim::runtime {

// Owns one file descriptor and closes it when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Builds a status from `err` (an errno value) naming what was done to what:
// ErrnoError(ENOENT, "open", "/run/x") -> NOT_FOUND "open `/run/x`: ENOENT (...)".
absl::Status ErrnoError(int err, absl::string_view action, absl::string_view object);

// The symbolic name of an errno value ("ENOENT"), or its number as text.
absl::string_view ErrnoName(int err);

}  // namespace podshim::runtime
