#!/usr/bin/env bash
# Install every Debian 12 package cluster-ai needs to build, test and benchmark.
# Idempotent; run as root (or through sudo).
set -euo pipefail

pkgs=(
  # build
  meson ninja-build pkg-config gcc clang llvm clang-format
  # libraries
  liburing-dev libgnutls28-dev gnutls-bin libyaml-dev libprotobuf-c-dev protobuf-c-compiler
  libsystemd-dev libavahi-client-dev libmicrohttpd-dev libjansson-dev
  libsqlite3-dev libxxhash-dev liblz4-dev libbpf-dev bpftool libelf-dev zlib1g-dev
  check libclang-rt-14-dev
  # running and testing the daemons
  systemd avahi-daemon avahi-utils dbus iproute2 procps psmisc util-linux
  python3 python3-yaml unicode-data
  systemd-container debootstrap
  # the engine cross-built for arm64 and run under qemu-user (suite engine-arm64)
  gcc-aarch64-linux-gnu qemu-user-static
  # benchmarks
  hyperfine time fio cmake g++ git
)

# Node.js runs llama.cpp (the node-llama-cpp npm package) for the engine's reference
# tests. A machine that already has node and npm (e.g. from NodeSource, whose nodejs
# conflicts with Debian's npm) keeps them.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  pkgs+=(nodejs npm)
fi

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
