#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds memspace and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec build/release/examples/ms-demo "$@"
