#!/bin/sh
# Installs the Debian packages weft builds and tests with, only those that are missing.
# `deps.sh bench` adds the peers that `make bench` compares weft with in the same run (Go,
# Tokio through Debian's packaged crates, libuv, Node), where no other install provides them.
set -e
PKGS="build-essential cmake pkg-config valgrind libssl-dev openssl libc-ares-dev libunwind-dev python3"
if [ "$1" = bench ]; then
    PKGS="$PKGS librust-tokio-dev librust-hyper-dev libuv1-dev"
    command -v go >/dev/null 2>&1 || PKGS="$PKGS golang-go"
    command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ] || PKGS="$PKGS cargo"
    command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
