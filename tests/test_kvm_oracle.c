/* SPDX-License-Identifier: MIT */
/*
 * The " KVM" suffix of `info mtree -f` against QEMU 7.2 running under KVM:
 * each KVM capture of the oracle (pc, pc after a SeaBIOS boot, q35 with
 * 4 GiB) is imported, built, given the KVM backend (through the fake seam:
 * the answer depends only on which ranges have slots), and its flat text
 * must equal QEMU's byte for byte, suffixes included.
 *
 * Usage: test_kvm_oracle ORACLE-DIR (exit 77 when the captures are
 * missing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kvm_model.h"
#include "testutil.h"

static const char *const configs[] = {"pc-kvm", "pc-boot-kvm", "q35-kvm-4G"};

static ms_as *find_as(const ms_topology *t, const ms_topology_map *map,
                      const char *name)
{
    for (size_t i = 0; i < ms_topology_nr_as(t); i++) {
        struct ms_topology_as a;
        if (ms_topology_as(t, i, &a) == 0 && strcmp(a.name, name) == 0) {
            return ms_topology_map_as(map, a.id);
        }
    }
    return NULL;
}

static int run(const char *dir)
{
    char tp[4096], fp[4096];
    snprintf(tp, sizeof(tp), "%s/mtree-oD.txt", dir);
    snprintf(fp, sizeof(fp), "%s/flat.txt", dir);
    char *tree = tu_read_file(tp), *flat = tu_read_file(fp);
    if (!tree || !flat) {
        free(tree);
        free(flat);
        return -1;
    }
    ms_topology *t = NULL;
    struct ms_topology_error err;
    int ok = 0;
    if (ms_topology_import_mtree(tree, strlen(tree), tp, flat, strlen(flat), fp,
                                 &err, &t) != 0) {
        fprintf(stderr, "%s: import failed\n", dir);
        goto out;
    }
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_topology_map *map = NULL;
    if (ms_topology_build(t, sys, NULL, &err, &map) != 0) {
        fprintf(stderr, "%s: build failed\n", dir);
    } else {
        ms_as *mem = find_as(t, map, "memory");
        ms_as *io = find_as(t, map, "I/O");
        struct kvm_model m;
        kvm_model_init(&m, 32764, 4096);
        struct ms_kvm_config cfg = {
            .ops = &kvm_model_ops, .ops_opaque = &m, .host_page_size = 4096};
        ms_kvm *kvm = NULL;
        REQUIRE(mem && ms_kvm_new(sys, &cfg, &kvm) == 0);
        CHECK_OK(ms_kvm_attach(kvm, mem, io));
        char *got = NULL;
        CHECK_OK(ms_mtree_to_string(sys, MS_MTREE_FLAT, &got));
        ok = got && tu_blocks_equal(got, flat, 1, NULL);
        if (!ok) {
            fprintf(stderr, "%s: flat views differ:\n", dir);
            tu_blocks_equal(got, flat, 1, stderr);
        }
        free(got);
        ms_kvm_free(kvm);
        kvm_model_free(&m);
    }
    ms_topology_map_free(map);
    ms_system_free(sys);
out:
    ms_topology_free(t);
    free(tree);
    free(flat);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ORACLE-DIR\n", argv[0]);
        return 2;
    }
    int found = 0;
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", argv[1], configs[i]);
        int r = run(dir);
        if (r < 0) {
            continue;
        }
        found++;
        CHECK(r == 1);
        printf("%s: %s\n", configs[i], r == 1 ? "same" : "DIFFERENT");
    }
    if (!found) {
        printf("no KVM captures under %s: skipped\n", argv[1]);
        return MS_SKIP;
    }
    return ms_test_summary("test_kvm_oracle");
}
