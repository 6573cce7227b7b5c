/* SPDX-License-Identifier: MIT */
/* Planner-versus-kernel-model checking (see kvm_plancheck.h). */
#include "kvm_plancheck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_model.h"

#define BLOCK_SPAN UINT64_C(0x100000) /* host spacing of the blocks */

static unsigned violation(int verbose, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static unsigned violation(int verbose, const char *fmt, ...)
{
    if (verbose) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "plancheck: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    return 1;
}

/* What @want maps at guest address @gpa (NULL if nothing). */
static const struct ms__kvm_piece *want_at(const struct ms__kvm_piece *w,
                                           size_t n, uint64_t gpa)
{
    for (size_t i = 0; i < n; i++) {
        if (gpa >= w[i].gpa && gpa - w[i].gpa < w[i].size) {
            return &w[i];
        }
    }
    return NULL;
}

/* Reference "keepable": page by page, without the planner's extents. */
static bool ref_keepable(const struct ms__kvm_slot *s,
                         const struct ms__kvm_piece *w, size_t n, uint64_t page)
{
    uint32_t flags = 0;
    for (uint64_t off = 0; off < s->size; off += page) {
        const struct ms__kvm_piece *p = want_at(w, n, s->gpa + off);
        if (!p) {
            return false;
        }
        uint64_t d = s->gpa + off - p->gpa;
        if (p->key != s->key || p->offset + d != s->offset + off ||
            p->host + d != s->host + off ||
            ((p->flags ^ s->flags) & MS__KVM_RO) ||
            (off && p->flags != flags)) {
            return false;
        }
        flags = p->flags;
    }
    return true;
}

static bool slots_overlap(const struct ms__kvm_slot *a,
                          const struct ms__kvm_slot *b)
{
    return a->gpa <= b->gpa + (b->size - 1) && b->gpa <= a->gpa + (a->size - 1);
}

static void dump(const struct ms__kvm_slot *old, size_t nr_old,
                 const struct ms__kvm_piece *want, size_t nr_want,
                 const struct ms__kvm_plan_opts *o,
                 const struct ms__kvm_plan *pl)
{
    fprintf(stderr, "  limit %u, max size 0x%" PRIx64 "\n", o->max_slots,
            o->max_slot_size);
    for (size_t i = 0; i < nr_old; i++) {
        fprintf(stderr,
                "  old %u: 0x%" PRIx64 "+0x%" PRIx64 " key %lu @0x%" PRIx64
                " flags %u\n",
                old[i].id, old[i].gpa, old[i].size, (unsigned long)old[i].key,
                old[i].offset, old[i].flags);
    }
    for (size_t i = 0; i < nr_want; i++) {
        fprintf(stderr,
                "  want 0x%" PRIx64 "+0x%" PRIx64 " key %lu @0x%" PRIx64
                " flags %u\n",
                want[i].gpa, want[i].size, (unsigned long)want[i].key,
                want[i].offset, want[i].flags);
    }
    fprintf(stderr, "  plan: pause %d compacted %zu unplaced %zu\n", pl->pause,
            pl->nr_compacted, pl->nr_unplaced);
    for (size_t i = 0; i < pl->nr_ops; i++) {
        const struct ms__kvm_op *op = &pl->ops[i];
        fprintf(stderr,
                "  op %d id %u: 0x%" PRIx64 "+0x%" PRIx64 " key %lu flags %u\n",
                op->kind, op->slot.id, op->slot.gpa, op->slot.size,
                (unsigned long)op->slot.key, op->slot.flags);
    }
}

unsigned pc_check(const struct ms__kvm_slot *old, size_t nr_old,
                  const struct ms__kvm_piece *want, size_t nr_want,
                  const struct ms__kvm_plan_opts *o,
                  const struct ms__kvm_plan *pl, uint64_t pages, int verbose)
{
    unsigned bad = 0;
    uint64_t ps = o->page_size;
    uint32_t nids = o->max_slots;
    for (size_t i = 0; i < nr_old; i++) {
        if (old[i].id + 1 > nids) {
            nids = old[i].id + 1;
        }
    }
    struct kvm_model m;
    kvm_model_init(&m, nids, ps);
    m.log_dirty_calls = false;
    for (size_t i = 0; i < nr_old; i++) {
        struct ms_kvm_memslot r = {old[i].id, old[i].flags, old[i].gpa,
                                   old[i].size, old[i].host};
        if (kvm_model_set_memslot(&m, &r) != 0) {
            bad += violation(verbose, "bad test input: old slot %u", old[i].id);
        }
    }

    /* Pages that stay mapped to the same memory (for the hole check). */
    bool *stay = calloc(pages ? pages : 1, sizeof(*stay));
    if (!stay) {
        abort();
    }
    for (uint64_t pg = 0; pg < pages; pg++) {
        uint64_t gpa = pg * ps;
        const struct kvm_model_slot *s = kvm_model_lookup(&m, gpa);
        const struct ms__kvm_piece *p = want_at(want, nr_want, gpa);
        stay[pg] = s && p &&
                   s->host + (gpa - s->gpa) == p->host + (gpa - p->gpa) &&
                   !((s->flags ^ p->flags) & MS__KVM_RO);
    }

    /* 2. Order; 4. keep rules; 6. shapes. */
    int phase = 0;
    bool del_seen_keepable = false;
    for (size_t i = 0; i < pl->nr_ops; i++) {
        const struct ms__kvm_op *op = &pl->ops[i];
        if ((int)op->kind < phase) {
            bad += violation(verbose, "op %zu out of order", i);
        }
        phase = (int)op->kind;
        if (op->kind == MS__KVM_OP_DELETE &&
            ref_keepable(&op->slot, want, nr_want, ps)) {
            del_seen_keepable = true;
        }
        if (op->kind == MS__KVM_OP_FLAGS &&
            ((op->slot.flags ^ op->old_flags) & ~MS__KVM_LOG)) {
            bad += violation(verbose, "flag update changes more than LOG");
        }
        if (op->kind == MS__KVM_OP_CREATE) {
            const struct ms__kvm_piece *p =
                want_at(want, nr_want, op->slot.gpa);
            if (!p ||
                op->slot.gpa + (op->slot.size - 1) > p->gpa + (p->size - 1)) {
                bad += violation(verbose,
                                 "creation at 0x%" PRIx64 " leaves its piece",
                                 op->slot.gpa);
            }
            if (o->max_slot_size && op->slot.size > o->max_slot_size) {
                bad += violation(verbose, "creation above max_slot_size");
            }
            if (op->slot.id >= o->max_slots) {
                bad += violation(verbose, "creation id %u above limit",
                                 op->slot.id);
            }
        }
    }
    if (del_seen_keepable && !(pl->pause && pl->nr_compacted)) {
        bad += violation(verbose, "a slot still showing the same memory "
                                  "was deleted without compaction");
    }

    /* 5. Pause iff a deletion overlaps a creation. */
    bool overlap = false;
    for (size_t i = 0; i < pl->nr_ops; i++) {
        for (size_t j = 0; j < pl->nr_ops && !overlap; j++) {
            overlap = pl->ops[i].kind == MS__KVM_OP_DELETE &&
                      pl->ops[j].kind == MS__KVM_OP_CREATE &&
                      slots_overlap(&pl->ops[i].slot, &pl->ops[j].slot);
        }
    }
    if (overlap != pl->pause) {
        bad += violation(verbose, "pause=%d but deletion/creation overlap=%d",
                         pl->pause, overlap);
    }

    /* 6. Lowest free ids. */
    {
        bool *used = calloc(nids ? nids : 1, sizeof(*used));
        if (!used) {
            abort();
        }
        for (size_t i = 0; i < nr_old; i++) {
            used[old[i].id] = true;
        }
        for (size_t i = 0; i < pl->nr_ops; i++) {
            if (pl->ops[i].kind == MS__KVM_OP_DELETE) {
                used[pl->ops[i].slot.id] = false;
            }
        }
        /* The ids taken are exactly the lowest free ones (replacements
         * of deleted memory get theirs first, so not in address order). */
        size_t ncreate = 0;
        bool *taken = calloc(nids ? nids : 1, sizeof(*taken));
        if (!taken) {
            abort();
        }
        for (size_t i = 0; i < pl->nr_ops; i++) {
            if (pl->ops[i].kind == MS__KVM_OP_CREATE &&
                pl->ops[i].slot.id < nids) {
                if (used[pl->ops[i].slot.id] || taken[pl->ops[i].slot.id]) {
                    bad += violation(verbose, "creation reuses live id %u",
                                     pl->ops[i].slot.id);
                }
                taken[pl->ops[i].slot.id] = true;
                ncreate++;
            }
        }
        size_t seen = 0;
        for (uint32_t id = 0; id < o->max_slots && seen < ncreate; id++) {
            if (used[id]) {
                continue;
            }
            if (!taken[id]) {
                bad += violation(verbose, "free id %u skipped", id);
                break;
            }
            seen++;
        }
        free(taken);
        free(used);
    }

    /* 1. The kernel accepts everything; 5. no hole without a pause. */
    bool *mapped_end = calloc(pages ? pages : 1, sizeof(*mapped_end));
    if (!mapped_end) {
        abort();
    }
    for (uint64_t pg = 0; pg < pages; pg++) {
        const struct ms__kvm_piece *p = want_at(want, nr_want, pg * ps);
        mapped_end[pg] = p != NULL;
    }
    unsigned holes = 0;
    for (size_t i = 0; i < pl->nr_ops; i++) {
        const struct ms__kvm_op *op = &pl->ops[i];
        struct ms_kvm_memslot r = {
            .slot = op->slot.id,
            .flags = op->kind == MS__KVM_OP_DELETE ? 0 : op->slot.flags,
            .gpa = op->slot.gpa,
            .size = op->kind == MS__KVM_OP_DELETE ? 0 : op->slot.size,
            .host = op->slot.host,
        };
        int rc = kvm_model_set_memslot(&m, &r);
        if (rc != 0) {
            bad += violation(verbose,
                             "kernel refused op %zu (kind %d, slot "
                             "%u, gpa 0x%" PRIx64 "): %d",
                             i, op->kind, op->slot.id, op->slot.gpa, rc);
        }
        for (uint64_t pg = 0; pg < pages && !pl->pause; pg++) {
            if (stay[pg] && !kvm_model_lookup(&m, pg * ps)) {
                holes++;
            }
        }
    }
    if (holes && !pl->nr_unplaced) {
        bad += violation(verbose, "%u transient holes without a pause", holes);
    }

    /* 3. Final mapping. */
    for (uint64_t pg = 0; pg < pages; pg++) {
        uint64_t gpa = pg * ps;
        const struct kvm_model_slot *s = kvm_model_lookup(&m, gpa);
        const struct ms__kvm_piece *p = want_at(want, nr_want, gpa);
        if (!p) {
            if (s) {
                bad +=
                    violation(verbose, "page 0x%" PRIx64 " stays mapped", gpa);
            }
            continue;
        }
        if (!s) {
            if (!pl->nr_unplaced) {
                bad += violation(verbose, "page 0x%" PRIx64 " not mapped", gpa);
            }
            continue;
        }
        if (s->host + (gpa - s->gpa) != p->host + (gpa - p->gpa) ||
            s->flags != p->flags) {
            bad += violation(verbose,
                             "page 0x%" PRIx64 " maps the wrong "
                             "memory or flags",
                             gpa);
        }
    }

    /* 7. Idempotence. */
    if (!pl->nr_unplaced) {
        struct ms__kvm_slot now[256];
        size_t n = 0;
        for (uint32_t i = 0; i < m.caps.nr_memslots && n < 256; i++) {
            const struct kvm_model_slot *s = &m.slots[i];
            if (!s->used) {
                continue;
            }
            const struct ms__kvm_piece *p = want_at(want, nr_want, s->gpa);
            now[n++] = (struct ms__kvm_slot){
                .id = i,
                .flags = s->flags,
                .gpa = s->gpa,
                .size = s->size,
                .host = s->host,
                .key = p ? p->key : 0,
                .offset = p ? p->offset + (s->gpa - p->gpa) : 0,
            };
        }
        struct ms__kvm_plan again;
        if (ms__kvm_plan(now, n, want, nr_want, o, &again) != 0) {
            bad += violation(verbose, "re-planning failed");
        } else {
            if (again.nr_ops) {
                bad += violation(verbose,
                                 "re-planning is not a no-op (%zu "
                                 "ops)",
                                 again.nr_ops);
            }
            ms__kvm_plan_free(&again);
        }
    }
    if (bad && verbose) {
        dump(old, nr_old, want, nr_want, o, pl);
    }
    free(stay);
    free(mapped_end);
    kvm_model_free(&m);
    return bad;
}

/* ---- random worlds ------------------------------------------------------- */

static uint8_t next_byte(struct pc_src *src)
{
    if (src->data) {
        return src->pos < src->len ? src->data[src->pos++] : 0;
    }
    src->rng ^= src->rng << 13;
    src->rng ^= src->rng >> 7;
    src->rng ^= src->rng << 17;
    return (uint8_t)(src->rng >> 24);
}

static bool exhausted(const struct pc_src *src)
{
    return src->data && src->pos >= src->len;
}

struct world {
    uint8_t blk[PC_PAGES];  /* 0: unmapped, else block 1..PC_BLOCKS */
    uint8_t boff[PC_PAGES]; /* page index in the block */
    bool cut[PC_PAGES];     /* unmerged boundary before this page */
    bool ro[PC_BLOCKS + 1], log[PC_BLOCKS + 1];
};

static void mutate(struct world *w, struct pc_src *src)
{
    uint8_t kind = next_byte(src) % 6;
    unsigned a = next_byte(src) % PC_PAGES;
    unsigned n = 1 + next_byte(src) % 16;
    unsigned k = 1 + next_byte(src) % PC_BLOCKS;
    if (a + n > PC_PAGES) {
        n = PC_PAGES - a;
    }
    switch (kind) {
    case 0: {
        unsigned off = next_byte(src) % PC_PAGES;
        if (off + n > PC_PAGES) {
            off = PC_PAGES - n;
        }
        for (unsigned i = 0; i < n; i++) {
            w->blk[a + i] = (uint8_t)k;
            w->boff[a + i] = (uint8_t)(off + i);
        }
        break;
    }
    case 1:
        for (unsigned i = 0; i < n; i++) {
            w->blk[a + i] = 0;
        }
        break;
    case 2:
        w->ro[k] = !w->ro[k];
        break;
    case 3:
        w->log[k] = !w->log[k];
        break;
    case 4:
        w->cut[a] = !w->cut[a];
        break;
    default:
        mutate(w, src);
        mutate(w, src);
        break;
    }
}

static size_t pieces_of(const struct world *w, struct ms__kvm_piece *out)
{
    size_t n = 0;
    for (unsigned g = 0; g < PC_PAGES;) {
        if (!w->blk[g]) {
            g++;
            continue;
        }
        unsigned k = w->blk[g], e = g + 1;
        while (e < PC_PAGES && w->blk[e] == k && !w->cut[e] &&
               w->boff[e] == w->boff[e - 1] + 1) {
            e++;
        }
        out[n++] = (struct ms__kvm_piece){
            .gpa = (uint64_t)g * PC_PAGE,
            .size = (uint64_t)(e - g) * PC_PAGE,
            .host = k * BLOCK_SPAN + (uint64_t)w->boff[g] * PC_PAGE,
            .key = k,
            .offset = (uint64_t)w->boff[g] * PC_PAGE,
            .flags =
                (w->ro[k] ? MS__KVM_RO : 0u) | (w->log[k] ? MS__KVM_LOG : 0u),
        };
        g = e;
    }
    return n;
}

/* The live slots after @pl (the kernel accepted it). */
static size_t apply(struct ms__kvm_slot *slots, size_t n,
                    const struct ms__kvm_plan *pl)
{
    for (size_t i = 0; i < pl->nr_ops; i++) {
        const struct ms__kvm_op *op = &pl->ops[i];
        for (size_t j = 0; j < n; j++) {
            if (slots[j].id != op->slot.id) {
                continue;
            }
            if (op->kind == MS__KVM_OP_DELETE) {
                slots[j] = slots[--n];
            } else if (op->kind == MS__KVM_OP_FLAGS) {
                slots[j].flags = op->slot.flags;
            }
            break;
        }
        if (op->kind == MS__KVM_OP_CREATE) {
            slots[n++] = op->slot;
        }
    }
    return n;
}

unsigned pc_run(struct pc_src *src, unsigned max_steps, int verbose)
{
    static const uint32_t limits[] = {3, 4, 6, 64};
    static const uint64_t maxes[] = {0, 0, 4, 16};
    uint8_t cfg = next_byte(src);
    struct ms__kvm_plan_opts o = {
        .page_size = PC_PAGE,
        .max_slot_size = maxes[(cfg >> 2) & 3] * PC_PAGE,
        .max_slots = limits[cfg & 3],
    };
    struct world w;
    memset(&w, 0, sizeof(w));
    struct ms__kvm_slot slots[PC_PAGES * 2];
    size_t nslots = 0;
    struct ms__kvm_piece want[PC_PAGES];
    unsigned bad = 0;
    for (unsigned step = 0; step < max_steps && !exhausted(src); step++) {
        mutate(&w, src);
        size_t nw = pieces_of(&w, want);
        struct ms__kvm_plan pl;
        int err = ms__kvm_plan(slots, nslots, want, nw, &o, &pl);
        if (err != 0) {
            bad += violation(verbose, "step %u: plan failed (%d)", step, err);
            break;
        }
        unsigned b =
            pc_check(slots, nslots, want, nw, &o, &pl, PC_PAGES, verbose);
        if (b && verbose) {
            fprintf(stderr, "plancheck: ... at step %u\n", step);
        }
        bad += b;
        nslots = apply(slots, nslots, &pl);
        ms__kvm_plan_free(&pl);
        if (b) {
            break;
        }
    }
    return bad;
}
