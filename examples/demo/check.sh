#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks the demo's output against the expected files, leaving out the
# "mode:" line (checked on its own) and the [stats] lines (counts and
# times that vary):
#   - where /dev/kvm cannot be opened: the demo must say so and replay;
#   - where it can: the replay (--replay) and the real guest.
#
#   sh check.sh PATH-TO-ms-demo DIR-WITH-EXPECTED-FILES
set -u
demo=$1
dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check LABEL EXPECTED-FILE MODE-PATTERN [ARGS...]
check() {
    label=$1
    expected=$2
    mode=$3
    shift 3
    "$demo" "$@" >"$tmp/out.txt" 2>&1
    rc=$?
    cat "$tmp/out.txt"
    if [ $rc -ne 0 ]; then
        echo "ms-demo ($label) failed (exit $rc)"
        return 1
    fi
    if ! grep -q "^mode: $mode" "$tmp/out.txt"; then
        echo "ms-demo ($label): no line starting 'mode: $mode'"
        return 1
    fi
    grep -v '^\[stats\]' "$tmp/out.txt" | grep -v '^mode: ' >"$tmp/got.txt"
    if ! diff -u "$expected" "$tmp/got.txt"; then
        echo "ms-demo ($label): output differs from $expected"
        return 1
    fi
    echo "ms-demo ($label): as expected"
    return 0
}

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    check replay "$dir/expected-replay.txt" \
        'replay without a guest (--replay)' --replay || exit 1
    check kvm "$dir/expected-kvm.txt" 'KVM guest' || exit 1
else
    check replay "$dir/expected-replay.txt" \
        'replay without a guest (/dev/kvm: ' || exit 1
fi
exit 0
