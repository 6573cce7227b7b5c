/* SPDX-License-Identifier: MIT */
/*
 * QEMU `info mtree` text importer.  The input is tree text, optionally
 * followed by flat-view text (from the first "FlatView #").  Any input
 * either fails with an error that says where, or imports into a
 * description that saves and loads back to the same JSON and prints.
 */
#include <memspace/memspace.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(s + i, needle, k) == 0) {
            return s + i;
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (64u << 10)) {
        return 0;
    }
    const char *text = (const char *)data;
    const char *flat = find(text, size, "FlatView #");
    size_t tree_len = flat ? (size_t)(flat - text) : size;
    struct ms_topology_error err;
    ms_topology *t = NULL;
    if (ms_topology_import_mtree(text, tree_len, "tree", flat,
                                 flat ? size - tree_len : 0, "flat", &err,
                                 &t)) {
        if (err.error == 0 || !err.rule[0]) {
            abort();
        }
        return 0;
    }
    char *a = NULL, *b = NULL;
    ms_topology *t2 = NULL;
    if (ms_topology_save_json(t, &a) ||
        ms_topology_load_json(a, strlen(a), "saved", &err, &t2) ||
        ms_topology_save_json(t2, &b) || strcmp(a, b) != 0) {
        abort();
    }
    free(a);
    free(b);
    ms_topology_free(t2);
    ms_topology_free(t);
    return 0;
}
