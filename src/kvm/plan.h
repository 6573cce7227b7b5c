/* SPDX-License-Identifier: MIT */
/*
 * The memslot planner: (live slots, wanted mapping) -> slot operations.
 *
 * A pure function with no KVM, no memspace objects and no allocation other
 * than its result, so that it can be unit-tested and fuzzed against a model
 * of the kernel's memslot rules (tests/kvm_model.c).  docs/kvm.md explains
 * the rules it follows; in short:
 *
 * - The wanted mapping is a sorted list of disjoint, host-page-aligned
 *   pieces, each naming the RAM block (@key), the offset in it, the host
 *   address and the slot flags.  Pieces are the finest units that can
 *   change independently (the unmerged render), so a new slot never spans
 *   two of them.
 * - Adjacent pieces that continue each other (same block, contiguous
 *   offsets and host addresses, same flags) form an extent.  A live slot
 *   lying wholly inside one extent with the same block, offset, host
 *   address and read-only flag is KEPT (with an in-place flag update if
 *   only the logging flag differs).  Every other live slot is DELETED.
 * - What kept slots do not cover is CREATED, one slot per uncovered run of
 *   each piece, split at max_slot_size.
 * - The plan must pause vCPUs iff a deleted slot overlaps a created one:
 *   only then would memory that stays mapped go through a transient hole.
 * - A piece covered by more slots than it needs (holes filled after a
 *   window closed) is compacted -- its slots replaced by the minimal set --
 *   when a deletion of the plan meets it anyway (so the plan already
 *   pauses), or when the slots would not fit otherwise.  This bounds
 *   fragmentation without touching unrelated slots.
 * - Ids: deletions free theirs first; creations take the lowest free ids
 *   below the limit.  Creations that find none are dropped and counted in
 *   nr_unplaced (the caller reports -ENOSPC).
 *
 * Operation order: every DELETE (ascending address), every FLAGS update,
 * every CREATE (ascending address).  The kernel forbids overlapping slots,
 * so deletions must come first.
 */
#ifndef MS_KVM_PLAN_H
#define MS_KVM_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS__KVM_LOG 1u /* KVM_MEM_LOG_DIRTY_PAGES */
#define MS__KVM_RO 2u  /* KVM_MEM_READONLY */

/* A live slot. */
struct ms__kvm_slot {
    uint32_t id;
    uint32_t flags;
    uint64_t gpa;
    uint64_t size; /* > 0 */
    uint64_t host;
    uintptr_t key;   /* RAM block identity */
    uint64_t offset; /* offset of @gpa in the block */
};

/* A piece of the wanted mapping. */
struct ms__kvm_piece {
    uint64_t gpa;
    uint64_t size; /* > 0 */
    uint64_t host;
    uintptr_t key;
    uint64_t offset;
    uint32_t flags;
};

enum ms__kvm_op_kind {
    MS__KVM_OP_DELETE = 0,
    MS__KVM_OP_FLAGS,
    MS__KVM_OP_CREATE,
};

struct ms__kvm_op {
    enum ms__kvm_op_kind kind;
    /* The slot after the operation (for DELETE: the slot deleted). */
    struct ms__kvm_slot slot;
    uint32_t old_flags; /* FLAGS: flags before */
};

struct ms__kvm_plan_opts {
    uint64_t page_size;     /* power of two */
    uint64_t max_slot_size; /* 0: unlimited; else a page multiple */
    uint32_t max_slots;     /* ids are < max_slots */
};

struct ms__kvm_plan {
    struct ms__kvm_op *ops; /* malloc()ed; free with ms__kvm_plan_free() */
    size_t nr_ops;
    size_t nr_delete, nr_flags, nr_create;
    size_t nr_kept;      /* live slots kept (including FLAGS updates) */
    size_t nr_unplaced;  /* creations dropped for lack of ids */
    size_t nr_compacted; /* kept slots deleted by compaction */
    bool pause;
};

/*
 * Plan the operations taking @old (any order; ids unique and < max_slots;
 * disjoint) to @want (ascending, disjoint, page-aligned).
 * Return: 0; -EINVAL for malformed input; -ENOMEM.
 */
int ms__kvm_plan(const struct ms__kvm_slot *old, size_t nr_old,
                 const struct ms__kvm_piece *want, size_t nr_want,
                 const struct ms__kvm_plan_opts *opts,
                 struct ms__kvm_plan *out);

void ms__kvm_plan_free(struct ms__kvm_plan *plan);

#endif
