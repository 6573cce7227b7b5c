/* SPDX-License-Identifier: MIT */
/*
 * Reference model for rendering: random topologies and a per-address brute
 * force that answers "which region, at which offset, with which flags, does
 * this address reach?" straight from the tree rules (docs/model.md 2.2),
 * without any interval arithmetic.  Used by test_render_random (seeded PRNG)
 * and fuzz_render (fuzzer bytes).
 */
#ifndef MS_REFMODEL_H
#define MS_REFMODEL_H

#include <memspace/memspace.h>
#include <stdbool.h>
#include <stdint.h>

/* A source of choices: fuzzer bytes, or a PRNG when data is NULL. */
struct rm_src {
    const uint8_t *data;
    size_t len, pos;
    uint64_t rng;
};

uint64_t rm_next(struct rm_src *s, uint64_t bound); /* [0, bound) */
bool rm_exhausted(const struct rm_src *s);

/*
 * Build a random topology in @sys (several address spaces), apply random
 * edits in random transactions, and check every published view against the
 * brute force after each outermost commit.  Returns the number of
 * mismatches (details on stderr if @verbose).
 */
int rm_run(struct rm_src *src, bool verbose);

/* Also attach a shadow listener to every address space, add random
 * ioeventfds, and check after every commit that each shadow (built only
 * from region_add/del and eventfd_add/del) equals the view and the
 * address space's ioeventfd set. */
#define RM_SHADOW 1u
int rm_run_flags(struct rm_src *src, bool verbose, unsigned flags);

#endif
