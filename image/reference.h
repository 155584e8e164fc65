// Image references as Kubernetes users write them ("busybox",
// "quay.io/org/app:v1", "repo@sha256:...") and their normalized form as
// containerd stores them ("docker.io/library/busybox:latest").
//
// The grammar is the Docker distribution reference grammar:
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [ domain "/" ] path-component ( "/" path-component )*
//   domain    := host [ ":" port ]       host: DNS name, IPv4, or "[" IPv6 "]"
//   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
// The first path component is a domain when it contains '.' or ':' or is
// "localhost"; otherwise the domain is docker.io, and a single-component
// docker.io path gets the "library/" prefix. A reference with neither tag
// nor digest gets the tag "latest".
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::image {

// The registry every reference without a domain refers to.
inline constexpr char kDefaultDomain[] = "docker.io";
// The tag a reference without tag and digest gets.
inline constexpr char kDefaultTag[] = "latest";

// A normalized image reference. `domain` and `path` are always set; at least
// one of `tag` and `digest` is set (both when the user wrote both).
struct Reference {
  std::string domain;  // "docker.io", "localhost:5000", "[::1]:5000"
  std::string path;    // "library/busybox", "org/app"
  std::string tag;     // "latest"; empty when only a digest was given
  std::string digest;  // "sha256:<hex>" or empty

  // domain "/" path: "docker.io/library/busybox".
  std::string Name() const;
  // The full normalized form: "docker.io/library/busybox:latest",
  // "quay.io/org/app:v1@sha256:...".
  std::string String() const;
  // The short form Docker prints: "busybox:latest", "user/repo:v1",
  // "quay.io/org/app:v1". The docker.io domain and "library/" are dropped.
  std::string Familiar() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

// Parses and normalizes `ref`. INVALID_ARGUMENT naming the reference and
// what is wrong with it, e.g.
//   reference "Foo:bar": repository name must be lowercase
absl::StatusOr<Reference> ParseReference(absl::string_view ref);

// True when `domain` (a Reference::domain, with or without ":port") names
// the local machine: "localhost", an address in 127.0.0.0/8, or "[::1]".
// Such registries are spoken to over plain HTTP.
bool IsLoopbackRegistry(absl::string_view domain);

}  // namespace podshim::image
