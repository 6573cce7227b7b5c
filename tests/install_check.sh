#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the build into a temporary prefix, build and run a program
# against it through pkg-config (shared and static), and check that the
# shared library exports only ms_* API symbols (no ms__ internals).
# Usage: install_check.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n 1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists memspace
cat > "$tmp/hello.c" <<'C'
#include <memspace/memspace.h>
#include <stdio.h>
int main(void)
{
    ms_system *sys;
    ms_region *root;
    ms_as *as;
    if (ms_system_new(NULL, &sys) ||
        ms_region_new(sys, &(struct ms_region_config){
            .kind = MS_REGION_CONTAINER, .name = "root",
            .size = MS_SIZE_FULL }, &root) ||
        ms_as_new(sys, root, "memory", &as))
        return 1;
    int err = ms_mtree_fprint(sys, MS_MTREE_FLAT, stdout);
    ms_region_unref(root);
    ms_system_free(sys);
    return err ? 1 : 0;
}
C
cc -Wall -Werror "$tmp/hello.c" -o "$tmp/hello" $(pkg-config --cflags --libs memspace)
LD_LIBRARY_PATH="$libdir" "$tmp/hello" | grep -q 'AS "memory", root: root'
cc -Wall -Werror "$tmp/hello.c" -o "$tmp/hello-static" \
    $(pkg-config --cflags memspace) "$libdir/libmemspace.a" \
    $(pkg-config --libs --static memspace | sed 's/-lmemspace//')
"$tmp/hello-static" | grep -q 'AS "memory", root: root'
so=$(ls "$libdir"/libmemspace.so.* | head -n 1)
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^ms_[a-z]' || true)
internal=$(nm -D --defined-only "$so" | awk '{print $3}' | grep '^ms__' || true)
if [ -n "$bad$internal" ]; then
    echo "unexpected exported symbols:" $bad $internal >&2
    exit 1
fi
echo "install check passed: $(nm -D --defined-only "$so" | grep -c ' T ms_') exported functions"
