#!/usr/bin/env bash
# Install every Debian 12 package keysvc needs to build, run and test.
# Idempotent: when all packages are already installed, apt is not touched at all.
# Run as root (CI) or as a user with sudo; works with no stdin.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libssl-dev openssl libcurl4-openssl-dev libjson-c-dev libpq-dev libp11-kit-dev libcmocka-dev
  postgresql softhsm2 libsofthsm2-dev opensc pebble
  python3 curl ca-certificates valgrind procps
  nginx-light libengine-pkcs11-openssl
  clang
  bind9 bind9-utils bind9-dnsutils libldns-dev iproute2
)

die() { echo "install-deps: ERROR: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian 12 (bookworm) only"

missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  case "$st" in
    ii*) ;;
    *) missing+=("$p") ;;
  esac
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available; run as root: $0"
  if [ -t 0 ]; then
    exec sudo -- "$0" "$@"
  else
    # no terminal to ask for a password: fail instead of hanging
    exec sudo -n -- "$0" "$@"
  fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)

if ! apt-get "${APT_OPTS[@]}" update </dev/null; then
  die "apt-get update failed"
fi
if ! apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null; then
  die "apt-get install failed for: ${missing[*]}"
fi

# verify
still=()
for p in "${missing[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  case "$st" in ii*) ;; *) still+=("$p") ;; esac
done
[ ${#still[@]} -eq 0 ] || die "packages still not installed after apt-get: ${still[*]}"
echo "install-deps: installed: ${missing[*]}"
