#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds memspace and runs the whole test suite in every configuration CI
# checks: gcc with -Werror, clang with ASan+UBSan, clang with TSan, and a
# short bounded libFuzzer run of every fuzz target.  Run from anywhere.
#
#   bash scripts/test.sh            everything
#   bash scripts/test.sh dev        only the given presets (dev asan tsan fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

presets=("$@")
if [ ${#presets[@]} -eq 0 ]; then
    presets=(dev asan tsan fuzz)
fi

for p in "${presets[@]}"; do
    echo "=== preset $p ==="
    cmake --preset "$p" >/dev/null
    cmake --build --preset "$p"
    case "$p" in
    tsan)
        # The threaded tests are what TSan is for; the rest run in dev/asan.
        ctest --preset "$p" -L thread
        ;;
    fuzz)
        ctest --preset "$p" -L fuzz-regress
        secs="${MEMSPACE_FUZZ_SECONDS:-30}"
        for bin in build/fuzz/fuzz/fuzz_*; do
            [ -x "$bin" ] || continue
            case "$bin" in *_replay) continue ;; esac
            name=$(basename "$bin")
            echo "--- fuzzing $name for ${secs}s"
            work=$(mktemp -d)
            cp -r "fuzz/corpus/$name/." "$work/" 2>/dev/null || true
            "$bin" -max_total_time="$secs" -print_final_stats=0 \
                -timeout=20 "$work" 2>&1 | tail -n 3
            rm -rf "$work"
        done
        ;;
    *)
        ctest --preset "$p"
        ;;
    esac
done
echo "=== all test presets passed: ${presets[*]} ==="
