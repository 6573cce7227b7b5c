/* SPDX-License-Identifier: MIT */
/*
 * Randomized differential tests of the access path:
 * 1. the reference access splitter (access_ref.c) against the library on
 *    random topologies and random accesses (seeded; the same harness is
 *    the fuzz_access target);
 * 2. the dispatch index against the flat view's binary search, for views of
 *    up to 20 000 ranges laid out uniformly, in clusters far apart, and with
 *    tiny ranges packed between big ones.
 *
 * Usage: test_access_random [seeds [first-seed]]
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access_ref.h"
#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED

static uint64_t rng = 0x1234567;

static uint64_t rnd(uint64_t bound)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return bound ? rng % bound : rng;
}

/*
 * Every range is RAM whose bytes all equal its index (mod 251) + 1, so one
 * ldub tells which range answered; compare with ms_flatview_lookup().
 */
static void index_case(const char *what, unsigned n, int layout)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_region *root = tu_container(sys, "root", MS_SIZE_FULL);
    ms_as *as;
    REQUIRE(ms_as_new(sys, root, "as", &as) == 0);
    uint64_t total = 0;
    uint64_t *at = calloc(n, sizeof(*at));
    uint64_t *sz = calloc(n, sizeof(*sz));
    uint64_t cur = 0;
    for (unsigned i = 0; i < n; i++) {
        switch (layout) {
        case 0: /* uniform, contiguous */
            sz[i] = 64;
            at[i] = cur;
            break;
        case 1: /* clusters far apart, random gaps */
            sz[i] = 1 + rnd(300);
            if (i % 1000 == 0) {
                cur = (uint64_t)(i / 1000) << (20 + i / 1000 % 40);
            }
            at[i] = cur + rnd(3);
            break;
        default: /* tiny ranges between big ones, up to the top */
            sz[i] = i % 50 == 0 ? 1 + rnd(1 << 20) : 1 + rnd(3);
            at[i] = cur + rnd(2);
            break;
        }
        if (layout == 2 && i == n - 1) {
            at[i] = UINT64_MAX - 9;
            sz[i] = 10;
        }
        cur = at[i] + sz[i];
        total += sz[i];
    }
    uint8_t *mem = malloc(total);
    REQUIRE(mem != NULL);
    uint64_t used = 0;
    REQUIRE(ms_txn_begin(sys) == 0);
    for (unsigned i = 0; i < n; i++) {
        memset(mem + used, (int)(i % 251 + 1), sz[i]);
        ms_region *r;
        REQUIRE(ms_region_new(sys,
                              &(struct ms_region_config){.kind = MS_REGION_RAM,
                                                         .name = "r",
                                                         .size = sz[i],
                                                         .backing = MS_RAM_HOST,
                                                         .host = mem + used},
                              &r) == 0);
        REQUIRE(ms_region_add(root, at[i], r) == 0);
        ms_region_unref(r);
        used += sz[i];
    }
    REQUIRE(ms_txn_commit(sys) == 0);
    const ms_flatview *fv = ms_as_flatview(as);
    size_t nr = ms_flatview_nr_ranges(fv);
    int bad = 0;
    for (unsigned k = 0; k < 200000 && bad < 5; k++) {
        uint64_t gpa;
        if (k % 3 == 0) {
            gpa = rnd(0); /* anywhere */
        } else {
            struct ms_flat_range fr;
            REQUIRE(ms_flatview_range(fv, rnd(nr), &fr) == 0);
            /* Near a range edge: first, last, or just outside. */
            switch (rnd(4)) {
            case 0:
                gpa = fr.gpa;
                break;
            case 1:
                gpa = fr.last;
                break;
            case 2:
                gpa = fr.gpa - 1;
                break;
            default:
                gpa = fr.last + 1;
                break;
            }
        }
        struct ms_flat_range fr;
        size_t idx;
        bool mapped = ms_flatview_lookup(fv, gpa, &fr, &idx) == 0;
        ms_tx_result res;
        uint8_t got = ms_as_ldub(as, gpa, U, &res);
        uint8_t want = 0;
        if (mapped) {
            uint8_t *h = ms_region_host(fr.mr);
            want = h[0];
        }
        if (got != want || (res == MS_TX_OK) != mapped) {
            fprintf(stderr,
                    "%s: gpa 0x%" PRIx64 ": got %u/%u, expected %u/%d\n", what,
                    gpa, got, res, want, mapped);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    ms_region_unref(root);
    ms_system_free(sys);
    free(mem);
    free(at);
    free(sz);
}

int main(int argc, char **argv)
{
    unsigned seeds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 3000;
    unsigned first = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 1;
    int failed_seeds = 0;
    for (unsigned s = first; s < first + seeds; s++) {
        struct ar_src src = {.rng = 0x9e3779b97f4a7c15ull * s + s};
        int e = ar_run(&src, 300, false);
        if (e) {
            if (failed_seeds < 3) {
                fprintf(stderr, "seed %u: %d mismatches; replay:\n", s, e);
                struct ar_src again = {.rng = 0x9e3779b97f4a7c15ull * s + s};
                (void)ar_run(&again, 300, true);
            }
            failed_seeds++;
        }
    }
    CHECK_EQ(failed_seeds, 0);

    index_case("uniform 16", 16, 0);
    index_case("uniform 20000", 20000, 0);
    index_case("clusters", 12000, 1);
    index_case("tiny between big", 20000, 2);
    index_case("single", 1, 2);
    return ms_test_summary("test_access_random");
}
