/* SPDX-License-Identifier: MIT */
/*
 * Seeded randomized differential test of the renderer: thousands of random
 * topologies (containers, alias chains, aliases into containers, overlaps at
 * equal and different priorities, disabled/readonly/nonvolatile regions,
 * zero-size regions, regions at the top of the 64-bit space), random edits
 * inside random transactions, and after every commit every address space's
 * flat view is compared with a per-address brute force (tests/refmodel.c).
 *
 * Usage: test_render_random [ITERATIONS [SEED]]
 */
#include <stdlib.h>

#include "harness.h"
#include "refmodel.h"

int main(int argc, char **argv)
{
    unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 0) : 4000;
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0)
                                       : 0x5eed5eedULL;
    unsigned long failed = 0;
    for (unsigned long i = 0; i < iters; i++) {
        struct rm_src src = { .rng = seed + i * 0x9e3779b97f4a7c15ULL };
        if (src.rng == 0) {
            src.rng = 1;
        }
        int bad = rm_run(&src, failed == 0);
        if (bad) {
            if (failed == 0) {
                fprintf(stderr, "first failing tree: seed 0x%llx\n",
                        seed + i * 0x9e3779b97f4a7c15ULL);
            }
            failed++;
        }
    }
    printf("%lu random topologies, %lu mismatching\n", iters, failed);
    CHECK_EQ(failed, 0);
    return ms_test_summary("test_render_random");
}
