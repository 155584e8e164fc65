#!/usr/bin/env bash
# Installs everything podshim needs to build, run and test on a fresh Debian
# (bookworm) machine, as root. Idempotent: a second run only checks.
#
#   deploy/setup.sh              everything: Debian packages, crictl, critest, the real kubelet,
#                                dynamic busybox, Python venv
#   deploy/setup.sh --run-only   what building and running needs: build packages and crictl
#
# Project-local tools go into $PODSHIM_TOOLS (default: <repo>/.tools, git-ignored):
#   .tools/bin/crictl, .tools/bin/critest   built from the Go module proxy
#   .tools/bin/kubelet                       the real kubelet, from the Go module proxy
#                                            (deploy/build-kubelet.sh; about 4 minutes, once)
#   .tools/venv                              Python with grpcio, grpcio-tools, pytest
#   .tools/busybox-dyn/busybox               Debian's dynamic busybox, extracted from its .deb
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${PODSHIM_TOOLS:-$REPO/.tools}"
# Pinned versions. cri-tools v1.37.0 is the newest served release line; it
# builds here (see docs/development.md).
CRI_TOOLS_VERSION="v1.37.0"
CRI_API_VERSION="v0.37.2"
KUBELET_VERSION="v1.37.2"
PY_PACKAGES=(grpcio==1.85.1 grpcio-tools==1.85.1 pytest==9.2.0 websocket-client==1.9.2)

WANT_TEST_TOOLS=1
for arg in "$@"; do
  case "$arg" in
    --run-only) WANT_TEST_TOOLS=0 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*" >&2; }

if [[ $EUID -ne 0 ]]; then
  # preflight: optional (only for a non-root user, who then has sudo)
  if command -v sudo >/dev/null 2>&1; then exec sudo --preserve-env=PODSHIM_TOOLS "$0" "$@"; fi
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev libspdlog-dev libfmt-dev libtoml11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libcurl4-openssl-dev libssl-dev libarchive-dev libzstd-dev zlib1g-dev
  libboost-dev # Boost.Beast (HTTP, WebSocket) and Asio: the streaming server
  libseccomp-dev libcap-dev libmnl-dev libnftables-dev libyaml-cpp-dev
)
# What the run command's demo needs besides the build: the demo image is
# built from busybox-static with umoci, the status is fetched with curl.
RUN_PKGS=(umoci busybox-static curl python3)
TEST_PKGS=(
  clang-format clang-tidy clang shfmt git
  libclang-rt-dev # clang's libFuzzer and sanitizer runtimes: the fuzz preset
  zstd            # fuzz/make_corpus.py's zstd layer seed
  docker-registry skopeo
  iproute2 jq procps psmisc apache2-utils
  containerd runc containernetworking-plugins iptables nftables
)
PKGS=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}")
if [[ $WANT_TEST_TOOLS == 1 ]]; then PKGS+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

# docker-registry's package starts a service on :5000 where an init system
# runs; tests start their own registry, so a packaged one must not squat.
if command -v service >/dev/null 2>&1 && pgrep -x docker-registry >/dev/null 2>&1; then
  if [[ -z "${PODSHIM_KEEP_SYSTEM_REGISTRY:-}" ]]; then
    service docker-registry stop >/dev/null 2>&1 || true
  fi
fi

# --- Go tools: crictl and critest ------------------------------------------
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  log "installing golang-go from Debian (no Go on PATH)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go
fi
mkdir -p "$TOOLS/bin"
stamp="$TOOLS/bin/.cri-tools-$CRI_TOOLS_VERSION"
if [[ ! -x "$TOOLS/bin/crictl" || ! -e "$stamp" ]]; then
  log "building crictl $CRI_TOOLS_VERSION"
  GOBIN="$TOOLS/bin" go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
  rm -f "$TOOLS"/bin/.cri-tools-* "$TOOLS/bin/critest"
  touch "$stamp"
else
  log "crictl $CRI_TOOLS_VERSION present"
fi
[[ $WANT_TEST_TOOLS == 1 ]] || { log "done (run-only)"; exit 0; }

if [[ ! -x "$TOOLS/bin/critest" ]]; then
  log "building critest $CRI_TOOLS_VERSION"
  moddir="$(go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r "$moddir/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && go test -c -o "$TOOLS/bin/critest.tmp" ./cmd/critest)
  mv "$TOOLS/bin/critest.tmp" "$TOOLS/bin/critest"
  rm -rf "$work"
  trap - EXIT
else
  log "critest $CRI_TOOLS_VERSION present"
fi
# The real kubelet, for tests/kubelet-real/ (rebuilt only when the pin changes).
stamp="$TOOLS/bin/.kubelet-$KUBELET_VERSION"
if [[ ! -x "$TOOLS/bin/kubelet" || ! -e "$stamp" ]]; then
  log "building kubelet $KUBELET_VERSION (about 4 minutes, once)"
  "$REPO/deploy/build-kubelet.sh" "$TOOLS/bin" "$KUBELET_VERSION"
  rm -f "$TOOLS"/bin/.kubelet-*
  touch "$stamp"
else
  log "kubelet $KUBELET_VERSION present"
fi
# The upstream CRI definition, for the wire-compatibility test.
go mod download "k8s.io/cri-api@$CRI_API_VERSION" >/dev/null

# --- Dynamic busybox for critest's busybox stand-in -------------------------
# busybox-static runs `sh -c ls` in-process (SH_STANDALONE, PREFER_APPLETS), so
# a masked /bin/ls is never exec'd; Debian's dynamic `busybox` execs applets.
# The two packages conflict: `busybox` is only downloaded and its /bin/busybox
# extracted (tests/helpers/images.py adds the libraries it needs to the image).
bbdir="$TOOLS/busybox-dyn"
bb_candidate() { apt-cache policy busybox 2>/dev/null | awk '$1 == "Candidate:" {print $2}'; }
bbver="$(bb_candidate)"
if [[ -z $bbver || $bbver == "(none)" ]]; then
  apt-get update -q
  bbver="$(bb_candidate)"
fi
if [[ -z $bbver || $bbver == "(none)" ]]; then
  echo "setup.sh: apt knows no version of Debian's busybox package" >&2
  exit 1
fi
if [[ ! -x "$bbdir/busybox" || "$(cat "$bbdir/.version" 2>/dev/null)" != "$bbver" ]]; then
  log "fetching Debian's dynamic busybox $bbver (download only; it conflicts with busybox-static)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  chown _apt "$work" 2>/dev/null || true # apt downloads as _apt where it can write
  (cd "$work" && apt-get download -q "busybox=$bbver")
  dpkg-deb -x "$work"/busybox_*.deb "$work/root"
  if ! applets="$("$work/root/bin/busybox" --list)" || ! grep -qx sh <<<"$applets"; then
    echo "setup.sh: /bin/busybox of Debian's busybox $bbver does not run or has no sh applet" >&2
    exit 1
  fi
  mkdir -p "$bbdir"
  install -m 0755 "$work/root/bin/busybox" "$bbdir/busybox.tmp"
  mv "$bbdir/busybox.tmp" "$bbdir/busybox"
  echo "$bbver" >"$bbdir/.version"
  rm -rf "$work"
  trap - EXIT
else
  log "dynamic busybox $bbver present"
fi

# --- Python virtual environment ---------------------------------------------
venv="$TOOLS/venv"
pystamp="$venv/.packages"
if [[ ! -x "$venv/bin/python" || "$(cat "$pystamp" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]]; then
  log "making Python venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  echo "${PY_PACKAGES[*]}" >"$pystamp"
else
  log "Python venv present"
fi
log "done"
