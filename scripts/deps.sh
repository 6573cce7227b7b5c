#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages memspace needs to build, test and run its
# demo.  As root it installs what is missing; otherwise it names them.
set -euo pipefail

PKGS=(
    build-essential cmake ninja-build pkg-config binutils
    clang llvm libclang-rt-14-dev
    libjansson-dev liburcu-dev
    librsvg2-bin libxml2-utils
    libunicorn-dev
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "memspace needs these Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
