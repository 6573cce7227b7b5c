/* SPDX-License-Identifier: MIT */
/*
 * Differential checking of the memslot planner (src/kvm/plan.c) against the
 * kernel-rules model (kvm_model.h), on a small world: a few RAM blocks, a
 * guest space of PC_PAGES pages, random mappings and random "cuts" (the
 * unmerged-render boundaries).  Used by the seeded randomized test and by
 * the fuzz target.
 *
 * What is checked, per step (old slots -> plan -> model):
 *  1. the kernel accepts every operation, in the plan's order;
 *  2. operations come as deletions, then flag updates, then creations;
 *  3. afterwards the model maps exactly the wanted pieces (host address
 *     and flags), except pieces left out for lack of ids (nr_unplaced);
 *  4. a live slot that still shows the same memory with the same
 *     read-only flag is never deleted, unless the plan pauses and compacts;
 *     a flag update changes only the logging flag;
 *  5. the plan pauses iff a deletion overlaps a creation; without a pause
 *     no page mapped before and after to the same memory is ever unmapped
 *     between two operations;
 *  6. creations stay inside one piece, within max_slot_size, and take the
 *     lowest free ids below the limit;
 *  7. planning the result again yields no operation at all.
 */
#ifndef MS_KVM_PLANCHECK_H
#define MS_KVM_PLANCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "kvm/plan.h"

#define PC_PAGES 64
#define PC_PAGE 4096u
#define PC_BLOCKS 3

/* A byte source (fuzzer input or a PRNG). */
struct pc_src {
    const uint8_t *data;
    size_t len, pos;
    uint64_t rng; /* used when data is NULL */
};

/*
 * Run a sequence of random steps drawn from @src; returns the number of
 * violations (each described on stderr when @verbose).
 */
unsigned pc_run(struct pc_src *src, unsigned max_steps, int verbose);

/*
 * Check one plan (exposed for unit tests): @old, @want, @o as given to
 * ms__kvm_plan(), @pl its result.  Pages are checked over [0, @pages)
 * guest pages of @o->page_size.  Returns the number of violations.
 */
unsigned pc_check(const struct ms__kvm_slot *old, size_t nr_old,
                  const struct ms__kvm_piece *want, size_t nr_want,
                  const struct ms__kvm_plan_opts *o,
                  const struct ms__kvm_plan *pl, uint64_t pages, int verbose);

#endif
