/* SPDX-License-Identifier: MIT */
/*
 * Topology JSON loader: any input either fails with an error that says
 * where, or loads into a description that saves and loads back to the same
 * text (round trip), passes the checks without crashing, and either builds
 * into a system (then prints and explains) or fails to build cleanly.
 */
#include <errno.h>
#include <memspace/memspace.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int no_ramdev(void *opaque, const struct ms_topology_region *d,
                     struct ms_region_config *cfg)
{
    (void)opaque;
    (void)cfg;
    /* Never map caller memory here; large RAM-backed regions are fine
     * (lazily mapped), RAM devices are refused. */
    return d->kind == MS_REGION_RAM_DEVICE ? -1 : 0;
}

static void issue(void *opaque, const struct ms_topology_issue *is)
{
    (void)opaque;
    if (!is->message || !is->kind) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_topology_error err;
    ms_topology *t = NULL;
    if (ms_topology_load_json((const char *)data, size, "fuzz", &err, &t)) {
        if (err.error == 0 || (!err.rule[0])) {
            abort(); /* every failure must say why */
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
    if (ms_topology_check(t, issue, NULL) < 0) {
        abort();
    }
    ms_system *sys;
    if (ms_topology_nr_regions(t) <= 4096 && ms_system_new(NULL, &sys) == 0) {
        struct ms_topology_build_options opts = {.prepare = no_ramdev};
        ms_topology_map *map = NULL;
        if (ms_topology_build(t, sys, &opts, &err, &map) == 0) {
            char *text = NULL;
            if (ms_mtree_to_string(sys, MS_MTREE_FLAT, &text) == 0) {
                free(text);
            }
            struct ms_topology_as ta;
            if (ms_topology_as(t, 0, &ta) == 0) {
                ms_as *as = ms_topology_map_as(map, ta.id);
                uint64_t probes[] = {0, 0x1000, 0xfee00000, UINT64_MAX};
                for (size_t i = 0; as && i < 4; i++) {
                    struct ms_explanation *e;
                    int rc = ms_explain(as, probes[i], &e);
                    if (rc == -EPROTO) {
                        abort(); /* walk and view disagree */
                    }
                    ms_explanation_free(rc ? NULL : e);
                }
            }
            ms_topology_map_free(map);
        }
        ms_system_free(sys);
    }
    free(a);
    free(b);
    ms_topology_free(t2);
    ms_topology_free(t);
    return 0;
}
