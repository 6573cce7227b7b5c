/* SPDX-License-Identifier: MIT */
/*
 * Shadow-map property, randomized: a listener that builds its own map of
 * each address space purely from region_add/region_del (and its ioeventfd
 * set from eventfd_add/eventfd_del) must equal the published flat view
 * (and the address space's ioeventfd set) after every commit, over
 * thousands of random edit sequences with nested transactions.
 *
 * Usage: test_shadow_random [ITERATIONS [SEED]]
 */
#include <stdlib.h>

#include "harness.h"
#include "refmodel.h"

int main(int argc, char **argv)
{
    unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 0) : 3000;
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0)
                                       : 0x5ad0ULL;
    unsigned long failed = 0;
    for (unsigned long i = 0; i < iters; i++) {
        unsigned long long s = seed + i * 0x9e3779b97f4a7c15ULL;
        struct rm_src src = { .rng = s ? s : 1 };
        if (rm_run_flags(&src, failed == 0, RM_SHADOW)) {
            if (failed == 0) {
                fprintf(stderr, "first failing sequence: seed 0x%llx\n", s);
            }
            failed++;
        }
    }
    printf("%lu random edit sequences, %lu mismatching\n", iters, failed);
    CHECK_EQ(failed, 0);
    return ms_test_summary("test_shadow_random");
}
