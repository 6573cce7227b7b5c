/* SPDX-License-Identifier: MIT */
/*
 * Import of real QEMU 7.2 text, checked against what QEMU printed.
 *
 * For every configuration under argv[1]: import mtree-oD.txt together with
 * flat.txt, save the result as JSON and load it back (what `memspace
 * import` then `memspace mtree` do), build it, and compare
 *   `info mtree -f` with flat.txt   (" KVM" suffixes stripped)
 *   `info mtree -D` with mtree-D.txt
 * as sets of blocks (QEMU prints blocks in a random order).  Every
 * configuration must match.  The same is done without flat.txt and
 * reported (not required: the tree text alone cannot tell containers from
 * I/O regions, nor the order address spaces were created in).  With the
 * flat text, ms_explain() is also checked at every range boundary of every
 * address space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

static ms_topology *roundtrip(ms_topology *t)
{
    char *json;
    REQUIRE(ms_topology_save_json(t, &json) == 0);
    ms_topology *t2 = NULL;
    struct ms_topology_error err;
    int rc = ms_topology_load_json(json, strlen(json), "saved", &err, &t2);
    if (rc) {
        char buf[1400];
        fprintf(stderr, "reload failed: %s\n",
                ms_topology_error_format(&err, buf, sizeof(buf)));
    }
    CHECK_OK(rc);
    char *json2 = NULL;
    if (t2) {
        REQUIRE(ms_topology_save_json(t2, &json2) == 0);
        CHECK_STR(json2, json);
    }
    free(json);
    free(json2);
    ms_topology_free(t);
    return t2;
}

static int compare(ms_system *sys, unsigned flags, const char *dir,
                   const char *file, int strip, int verbose)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *expected = tu_read_file(path);
    if (!expected) {
        fprintf(stderr, "%s: missing\n", path);
        return 0;
    }
    if (strip) {
        char *s = tu_strip_accel(expected);
        free(expected);
        expected = s;
    }
    char *got = NULL;
    int ok = 0;
    if (ms_mtree_to_string(sys, flags, &got) == 0) {
        ok = tu_blocks_equal(got, expected, 1, NULL);
        if (!ok && verbose) {
            fprintf(stderr, "%s: differs:\n", path);
            tu_blocks_equal(got, expected, 1, stderr);
        }
    }
    free(got);
    free(expected);
    return ok;
}

struct result {
    int flat, tree;
};

static struct result run(const char *dir, int with_flat, int verbose)
{
    struct result res = {0, 0};
    char tp[8192], fp[8192];
    snprintf(tp, sizeof(tp), "%s/mtree-oD.txt", dir);
    snprintf(fp, sizeof(fp), "%s/flat.txt", dir);
    char *tree = tu_read_file(tp);
    char *flat = with_flat ? tu_read_file(fp) : NULL;
    if (!tree || (with_flat && !flat)) {
        fprintf(stderr, "%s: cannot read the captures\n", dir);
        free(tree);
        free(flat);
        return res;
    }
    ms_topology *t = NULL;
    struct ms_topology_error err;
    int rc = ms_topology_import_mtree(tree, strlen(tree), tp, flat,
                                      flat ? strlen(flat) : 0, fp, &err, &t);
    free(tree);
    free(flat);
    if (rc) {
        char buf[1400];
        fprintf(stderr, "import failed: %s\n",
                ms_topology_error_format(&err, buf, sizeof(buf)));
        return res;
    }
    t = roundtrip(t);
    if (!t) {
        return res;
    }
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_topology_map *map = NULL;
    rc = ms_topology_build(t, sys, NULL, &err, &map);
    if (rc) {
        char buf[1400];
        fprintf(stderr, "%s: build failed: %s\n", dir,
                ms_topology_error_format(&err, buf, sizeof(buf)));
    } else {
        /* explain agrees with the view at every range boundary. */
        for (size_t a = 0; with_flat && a < ms_topology_nr_as(t); a++) {
            struct ms_topology_as ta;
            CHECK_OK(ms_topology_as(t, a, &ta));
            ms_as *as = ms_topology_map_as(map, ta.id);
            const ms_flatview *fv = ms_as_flatview(as);
            for (size_t i = 0; i < ms_flatview_nr_ranges(fv); i++) {
                struct ms_flat_range fr;
                CHECK_OK(ms_flatview_range(fv, i, &fr));
                uint64_t probes[] = {fr.gpa, fr.last, fr.last + 1};
                for (size_t k = 0; k < 3; k++) {
                    struct ms_explanation *e;
                    int erc = ms_explain(as, probes[k], &e);
                    CHECK_OK(erc);
                    if (!erc) {
                        CHECK(k == 2 || e->region == fr.mr);
                        ms_explanation_free(e);
                    }
                }
            }
        }
        res.flat = compare(sys, MS_MTREE_FLAT, dir, "flat.txt", 1, verbose);
        res.tree =
            compare(sys, MS_MTREE_DISABLED, dir, "mtree-D.txt", 0, verbose);
    }
    ms_topology_map_free(map);
    ms_system_free(sys);
    ms_topology_free(t);
    return res;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ORACLE-DIR\n", argv[0]);
        return 2;
    }
    static char *names[4096];
    int got = tu_list_configs(argv[1], "mtree-oD.txt", names, 4096);
    if (got < 0) {
        fprintf(stderr, "%s: %s (skipped)\n", argv[1], strerror(errno));
        return MS_SKIP;
    }
    size_t n = (size_t)got;
    size_t both = 0, nf_flat = 0, nf_tree = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[8192];
        snprintf(dir, sizeof(dir), "%s/%s", argv[1], names[i]);
        struct result with = run(dir, 1, 1);
        struct result without = run(dir, 0, 0);
        printf("%-24s with --flat: flat %s, tree %s; without: flat %s, "
               "tree %s\n",
               names[i], with.flat ? "match" : "MISMATCH",
               with.tree ? "match" : "MISMATCH",
               without.flat ? "match" : "differs",
               without.tree ? "match" : "differs");
        CHECK(with.flat);
        CHECK(with.tree);
        both += (size_t)(with.flat && with.tree);
        nf_flat += (size_t)without.flat;
        nf_tree += (size_t)without.tree;
    }
    printf("%zu/%zu configurations match with --flat (flat.txt and "
           "mtree-D.txt)\n",
           both, n);
    printf("without --flat: %zu/%zu match flat.txt, %zu/%zu match "
           "mtree-D.txt\n",
           nf_flat, n, nf_tree, n);
    tu_names_free(names, n);
    CHECK(n > 0);
    return ms_test_summary("tool_oracle");
}
