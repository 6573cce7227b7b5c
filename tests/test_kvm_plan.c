/* SPDX-License-Identifier: MIT */
/*
 * The memslot planner, rule by rule (docs/kvm.md), each plan also checked
 * against the kernel-rules model (kvm_plancheck.c); then a seeded
 * randomized run of the same differential check the fuzz target does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kvm/plan.h"
#include "kvm_plancheck.h"

#define PG UINT64_C(4096)
#define B1 UINT64_C(0x100000) /* host base of block 1 */
#define B2 UINT64_C(0x200000) /* host base of block 2 */
#define RO MS__KVM_RO
#define LOG MS__KVM_LOG

static struct ms__kvm_plan_opts opts(uint32_t max_slots, uint64_t max_size)
{
    return (struct ms__kvm_plan_opts){
        .page_size = PG, .max_slot_size = max_size, .max_slots = max_slots};
}

/* Block @key's pages [off, off + n) at guest page @g. */
static struct ms__kvm_piece piece(uint64_t g, uint64_t n, uintptr_t key,
                                  uint64_t off, uint32_t flags)
{
    return (struct ms__kvm_piece){.gpa = g * PG,
                                  .size = n * PG,
                                  .host = key * B1 + off * PG,
                                  .key = key,
                                  .offset = off * PG,
                                  .flags = flags};
}

static struct ms__kvm_slot slot(uint32_t id, uint64_t g, uint64_t n,
                                uintptr_t key, uint64_t off, uint32_t flags)
{
    return (struct ms__kvm_slot){.id = id,
                                 .flags = flags,
                                 .gpa = g * PG,
                                 .size = n * PG,
                                 .host = key * B1 + off * PG,
                                 .key = key,
                                 .offset = off * PG};
}

static char text[4096];

/* Plan, check against the model, and render the ops as text. */
static const char *plan_text(const struct ms__kvm_slot *old, size_t no,
                             const struct ms__kvm_piece *want, size_t nw,
                             struct ms__kvm_plan_opts o,
                             struct ms__kvm_plan *keep)
{
    struct ms__kvm_plan pl;
    int err = ms__kvm_plan(old, no, want, nw, &o, &pl);
    if (err) {
        snprintf(text, sizeof(text), "error %d", err);
        return text;
    }
    CHECK_EQ(pc_check(old, no, want, nw, &o, &pl, 64, 1), 0);
    size_t len = 0;
    text[0] = 0;
    if (pl.pause) {
        len += (size_t)snprintf(text + len, sizeof(text) - len, "pause\n");
    }
    for (size_t i = 0; i < pl.nr_ops && len < sizeof(text); i++) {
        const struct ms__kvm_op *op = &pl.ops[i];
        static const char *names[] = {"delete", "flags", "create"};
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "%s %u page %" PRIu64 "+%" PRIu64
                                " block %u@%" PRIu64 " flags %u\n",
                                names[op->kind], op->slot.id, op->slot.gpa / PG,
                                op->slot.size / PG, (unsigned)op->slot.key,
                                op->slot.offset / PG, op->slot.flags);
    }
    if (pl.nr_unplaced) {
        snprintf(text + len, sizeof(text) - len, "unplaced %zu\n",
                 pl.nr_unplaced);
    }
    if (keep) {
        *keep = pl;
    } else {
        ms__kvm_plan_free(&pl);
    }
    return text;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_add_remove(void)
{
    struct ms__kvm_piece w[] = {piece(0, 16, 1, 0, 0)};
    CHECK_STR(plan_text(NULL, 0, w, 1, opts(32, 0), NULL),
              "create 0 page 0+16 block 1@0 flags 0\n");
    struct ms__kvm_slot s[] = {slot(0, 0, 16, 1, 0, 0)};
    /* Unchanged: nothing at all. */
    CHECK_STR(plan_text(s, 1, w, 1, opts(32, 0), NULL), "");
    /* Removed: deleted, no pause (that memory does not stay). */
    CHECK_STR(plan_text(s, 1, NULL, 0, opts(32, 0), NULL),
              "delete 0 page 0+16 block 1@0 flags 0\n");
}

static void test_split_and_regrow(void)
{
    /* An MMIO window punched at page 4: the slot must shrink, so the
     * surviving parts go through a hole -> pause. */
    struct ms__kvm_slot s[] = {slot(0, 0, 16, 1, 0, 0)};
    struct ms__kvm_piece w[] = {piece(0, 4, 1, 0, 0), piece(5, 11, 1, 5, 0)};
    CHECK_STR(plan_text(s, 1, w, 2, opts(32, 0), NULL),
              "pause\n"
              "delete 0 page 0+16 block 1@0 flags 0\n"
              "create 0 page 0+4 block 1@0 flags 0\n"
              "create 1 page 5+11 block 1@5 flags 0\n");
    /* The window goes away: only the hole is filled, nothing deleted. */
    struct ms__kvm_slot s2[] = {slot(0, 0, 4, 1, 0, 0),
                                slot(1, 5, 11, 1, 5, 0)};
    struct ms__kvm_piece w2[] = {piece(0, 16, 1, 0, 0)};
    CHECK_STR(plan_text(s2, 2, w2, 1, opts(32, 0), NULL),
              "create 2 page 4+1 block 1@4 flags 0\n");
    /* Punched again at the same place: a pure deletion, no pause. */
    struct ms__kvm_slot s3[] = {slot(0, 0, 4, 1, 0, 0), slot(1, 5, 11, 1, 5, 0),
                                slot(2, 4, 1, 1, 4, 0)};
    CHECK_STR(plan_text(s3, 3, w, 2, opts(32, 0), NULL),
              "delete 2 page 4+1 block 1@4 flags 0\n");
}

static void test_neighbours_never_touch_a_slot(void)
{
    /* Two pieces of one block that continue each other (PAM segment
     * becoming RAM next to low RAM): the flat view merges them; the slots
     * stay as they are. */
    struct ms__kvm_slot s[] = {slot(0, 0, 4, 1, 0, 0), slot(1, 4, 12, 1, 4, 0)};
    struct ms__kvm_piece merged[] = {piece(0, 16, 1, 0, 0)};
    CHECK_STR(plan_text(s, 2, merged, 1, opts(32, 0), NULL), "");
    /* A slot spanning a new cut between pieces of the same memory. */
    struct ms__kvm_slot big[] = {slot(0, 0, 16, 1, 0, 0)};
    struct ms__kvm_piece cut[] = {piece(0, 4, 1, 0, 0), piece(4, 12, 1, 4, 0)};
    CHECK_STR(plan_text(big, 1, cut, 2, opts(32, 0), NULL), "");
    /* A neighbouring segment toggling between ROM and RAM of another
     * block: only that segment's slot changes. */
    struct ms__kvm_slot pam[] = {slot(0, 0, 4, 1, 0, 0),
                                 slot(1, 4, 1, 2, 0, RO),
                                 slot(2, 5, 11, 1, 5, 0)};
    struct ms__kvm_piece ram[] = {piece(0, 4, 1, 0, 0), piece(4, 1, 1, 4, 0),
                                  piece(5, 11, 1, 5, 0)};
    CHECK_STR(plan_text(pam, 3, ram, 3, opts(32, 0), NULL),
              "pause\n"
              "delete 1 page 4+1 block 2@0 flags 2\n"
              "create 1 page 4+1 block 1@4 flags 0\n");
}

static void test_move(void)
{
    /* Same memory at another address: the old place is not RAM anymore,
     * so no pause is needed. */
    struct ms__kvm_slot s[] = {slot(0, 0, 4, 1, 0, 0)};
    struct ms__kvm_piece w[] = {piece(8, 4, 1, 0, 0)};
    CHECK_STR(plan_text(s, 1, w, 1, opts(32, 0), NULL),
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "create 0 page 8+4 block 1@0 flags 0\n");
    /* Overlapping move: pause. */
    struct ms__kvm_piece w2[] = {piece(2, 4, 1, 0, 0)};
    CHECK_STR(plan_text(s, 1, w2, 1, opts(32, 0), NULL),
              "pause\n"
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "create 0 page 2+4 block 1@0 flags 0\n");
    /* Other memory at the same address: delete + create, pause. */
    struct ms__kvm_piece w3[] = {piece(0, 4, 2, 0, 0)};
    CHECK_STR(plan_text(s, 1, w3, 1, opts(32, 0), NULL),
              "pause\n"
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "create 0 page 0+4 block 2@0 flags 0\n");
}

static void test_flags(void)
{
    struct ms__kvm_slot s[] = {slot(0, 0, 4, 1, 0, 0)};
    /* Read-only cannot change in place (kernel rule): rebuild, pause. */
    struct ms__kvm_piece ro[] = {piece(0, 4, 1, 0, RO)};
    CHECK_STR(plan_text(s, 1, ro, 1, opts(32, 0), NULL),
              "pause\n"
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "create 0 page 0+4 block 1@0 flags 2\n");
    /* Dirty logging changes in place, no pause. */
    struct ms__kvm_piece lg[] = {piece(0, 4, 1, 0, LOG)};
    CHECK_STR(plan_text(s, 1, lg, 1, opts(32, 0), NULL),
              "flags 0 page 0+4 block 1@0 flags 1\n");
    struct ms__kvm_slot l[] = {slot(0, 0, 4, 1, 0, LOG | RO)};
    struct ms__kvm_piece nolog[] = {piece(0, 4, 1, 0, RO)};
    CHECK_STR(plan_text(l, 1, nolog, 1, opts(32, 0), NULL),
              "flags 0 page 0+4 block 1@0 flags 2\n");
}

static void test_ids_and_limits(void)
{
    /* Lowest free ids, freed ids reused at once. */
    struct ms__kvm_slot s[] = {slot(0, 0, 1, 1, 0, 0), slot(2, 2, 1, 1, 2, 0),
                               slot(5, 4, 1, 1, 4, 0)};
    struct ms__kvm_piece w[] = {piece(0, 1, 1, 0, 0), piece(2, 1, 1, 2, 0),
                                piece(6, 1, 2, 0, 0), piece(8, 1, 2, 1, 0),
                                piece(10, 1, 2, 2, 0)};
    CHECK_STR(plan_text(s, 3, w, 5, opts(32, 0), NULL),
              "delete 5 page 4+1 block 1@4 flags 0\n"
              "create 1 page 6+1 block 2@0 flags 0\n"
              "create 3 page 8+1 block 2@1 flags 0\n"
              "create 4 page 10+1 block 2@2 flags 0\n");
    /* The limit: what does not fit is left out and counted. */
    CHECK_STR(plan_text(s, 3, w, 5, opts(3, 0), NULL),
              "delete 5 page 4+1 block 1@4 flags 0\n"
              "create 1 page 6+1 block 2@0 flags 0\n"
              "unplaced 2\n");
    /* max_slot_size splits. */
    struct ms__kvm_piece big[] = {piece(0, 10, 1, 0, 0)};
    CHECK_STR(plan_text(NULL, 0, big, 1, opts(32, 4 * PG), NULL),
              "create 0 page 0+4 block 1@0 flags 0\n"
              "create 1 page 4+4 block 1@4 flags 0\n"
              "create 2 page 8+2 block 1@8 flags 0\n");
}

static void test_compaction(void)
{
    /* Fragments (holes filled after windows closed) are merged where a
     * deletion forces a pause anyway; unrelated fragments stay. */
    struct ms__kvm_slot s[] = {slot(0, 0, 4, 1, 0, 0), slot(1, 4, 1, 1, 4, 0),
                               slot(2, 5, 11, 1, 5, 0), slot(3, 20, 2, 2, 0, 0),
                               slot(4, 22, 6, 2, 2, 0)};
    struct ms__kvm_piece w[] = {piece(0, 10, 1, 0, 0), piece(11, 5, 1, 11, 0),
                                piece(20, 8, 2, 0, 0)};
    CHECK_STR(plan_text(s, 5, w, 3, opts(32, 0), NULL),
              "pause\n"
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "delete 1 page 4+1 block 1@4 flags 0\n"
              "delete 2 page 5+11 block 1@5 flags 0\n"
              "create 0 page 0+10 block 1@0 flags 0\n"
              "create 1 page 11+5 block 1@11 flags 0\n");
    /* ... or when the slots would not fit otherwise. */
    struct ms__kvm_slot f[] = {slot(0, 0, 4, 1, 0, 0), slot(1, 4, 4, 1, 4, 0)};
    struct ms__kvm_piece w2[] = {piece(0, 8, 1, 0, 0), piece(16, 4, 2, 0, 0)};
    CHECK_STR(plan_text(f, 2, w2, 2, opts(2, 0), NULL),
              "pause\n"
              "delete 0 page 0+4 block 1@0 flags 0\n"
              "delete 1 page 4+4 block 1@4 flags 0\n"
              "create 0 page 0+8 block 1@0 flags 0\n"
              "create 1 page 16+4 block 2@0 flags 0\n");
    /* Without a reason to pause, fragments stay. */
    CHECK_STR(plan_text(f, 2, w2, 2, opts(32, 0), NULL),
              "create 2 page 16+4 block 2@0 flags 0\n");
}

static void test_invalid(void)
{
    struct ms__kvm_plan pl;
    struct ms__kvm_plan_opts o = opts(32, 0);
    struct ms__kvm_piece odd = piece(0, 1, 1, 0, 0);
    odd.gpa = 100;
    CHECK_ERR(ms__kvm_plan(NULL, 0, &odd, 1, &o, &pl), EINVAL);
    odd = piece(0, 1, 1, 0, 0);
    odd.host += 8;
    CHECK_ERR(ms__kvm_plan(NULL, 0, &odd, 1, &o, &pl), EINVAL);
    struct ms__kvm_piece ov[] = {piece(0, 4, 1, 0, 0), piece(2, 4, 2, 0, 0)};
    CHECK_ERR(ms__kvm_plan(NULL, 0, ov, 2, &o, &pl), EINVAL);
    struct ms__kvm_piece unsorted[] = {piece(4, 1, 1, 0, 0),
                                       piece(0, 1, 2, 0, 0)};
    CHECK_ERR(ms__kvm_plan(NULL, 0, unsorted, 2, &o, &pl), EINVAL);
    struct ms__kvm_slot dup[] = {slot(1, 0, 1, 1, 0, 0),
                                 slot(1, 4, 1, 1, 4, 0)};
    CHECK_ERR(ms__kvm_plan(dup, 2, NULL, 0, &o, &pl), EINVAL);
    struct ms__kvm_slot sov[] = {slot(0, 0, 4, 1, 0, 0),
                                 slot(1, 2, 4, 1, 4, 0)};
    CHECK_ERR(ms__kvm_plan(sov, 2, NULL, 0, &o, &pl), EINVAL);
    struct ms__kvm_piece flags = piece(0, 1, 1, 0, 4);
    CHECK_ERR(ms__kvm_plan(NULL, 0, &flags, 1, &o, &pl), EINVAL);
    o.max_slot_size = 100;
    CHECK_ERR(ms__kvm_plan(NULL, 0, NULL, 0, &o, &pl), EINVAL);
}

static void test_top_of_space(void)
{
    /* A piece ending exactly at 2^64 - 1. */
    struct ms__kvm_piece top = {
        .gpa = UINT64_MAX - 2 * PG + 1,
        .size = 2 * PG,
        .host = B1,
        .key = 1,
        .offset = 0,
        .flags = 0,
    };
    struct ms__kvm_plan pl;
    struct ms__kvm_plan_opts o = opts(32, 0);
    CHECK_OK(ms__kvm_plan(NULL, 0, &top, 1, &o, &pl));
    CHECK_EQ(pl.nr_create, 1);
    CHECK_EQ(pl.ops[0].slot.gpa, top.gpa);
    ms__kvm_plan_free(&pl);
    struct ms__kvm_slot s = {
        .id = 0, .gpa = top.gpa, .size = 2 * PG, .host = B1, .key = 1};
    CHECK_OK(ms__kvm_plan(&s, 1, &top, 1, &o, &pl));
    CHECK_EQ(pl.nr_ops, 0);
    ms__kvm_plan_free(&pl);
    top.size = 3 * PG; /* wraps */
    CHECK_ERR(ms__kvm_plan(NULL, 0, &top, 1, &o, &pl), EINVAL);
}

static void test_random(void)
{
    unsigned bad = 0;
    for (uint64_t seed = 1; seed <= 400 && !bad; seed++) {
        struct pc_src src = {.rng = seed * UINT64_C(0x9e3779b97f4a7c15)};
        bad += pc_run(&src, 200, 1);
        if (bad) {
            fprintf(stderr, "seed %" PRIu64 "\n", seed);
        }
    }
    CHECK_EQ(bad, 0);
}

int main(void)
{
    test_add_remove();
    test_split_and_regrow();
    test_neighbours_never_touch_a_slot();
    test_move();
    test_flags();
    test_ids_and_limits();
    test_compaction();
    test_invalid();
    test_top_of_space();
    test_random();
    return ms_test_summary("test_kvm_plan");
}
