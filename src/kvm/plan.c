/* SPDX-License-Identifier: MIT */
/*
 * The memslot planner (see plan.h for the rules and docs/kvm.md for why).
 *
 * Workload: called once per listener commit with every live slot and every
 * wanted piece, typically tens of each (a PC has about ten slots).  It is
 * O((S + P) log S) plus the output; no attempt is made to be incremental.
 *
 * Internally every interval is inclusive ([gpa, last]); input validation
 * guarantees gpa + size - 1 does not overflow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../range.h"
#include "plan.h"

/* Maximal run of pieces that continue each other. */
struct extent {
    uint64_t gpa, last, host, offset;
    uintptr_t key;
    uint32_t flags;
};

/* A growable array of slots. */
struct slotvec {
    struct ms__kvm_slot *v;
    size_t n, cap;
};

static int vec_push(struct slotvec *sv, const struct ms__kvm_slot *s)
{
    if (sv->n == sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 16;
        struct ms__kvm_slot *nv = realloc(sv->v, ncap * sizeof(*nv));
        if (!nv) {
            return -ENOMEM;
        }
        sv->v = nv;
        sv->cap = ncap;
    }
    sv->v[sv->n++] = *s;
    return 0;
}

static uint64_t slot_last(const struct ms__kvm_slot *s)
{
    return s->gpa + (s->size - 1);
}

static int cmp_slot_gpa(const void *a, const void *b)
{
    const struct ms__kvm_slot *x = a, *y = b;
    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static bool aligned(uint64_t v, uint64_t page)
{
    return (v & (page - 1)) == 0;
}

static int validate(const struct ms__kvm_slot *old, size_t nr_old,
                    const struct ms__kvm_piece *want, size_t nr_want,
                    const struct ms__kvm_plan_opts *o)
{
    uint64_t ps = o->page_size;
    if (ps == 0 || (ps & (ps - 1)) != 0 || !aligned(o->max_slot_size, ps) ||
        o->max_slots > 65536) {
        return -EINVAL;
    }
    for (size_t i = 0; i < nr_want; i++) {
        const struct ms__kvm_piece *p = &want[i];
        if (p->size == 0 || !aligned(p->gpa, ps) || !aligned(p->size, ps) ||
            !aligned(p->host, ps) || ms__add_overflows(p->gpa, p->size - 1) ||
            ms__add_overflows(p->host, p->size - 1) ||
            (p->flags & ~(MS__KVM_LOG | MS__KVM_RO)) != 0) {
            return -EINVAL;
        }
        if (i && p->gpa <= want[i - 1].gpa + (want[i - 1].size - 1)) {
            return -EINVAL; /* unsorted or overlapping */
        }
    }
    uint64_t seen[65536 / 64];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < nr_old; i++) {
        const struct ms__kvm_slot *s = &old[i];
        if (s->size == 0 || !aligned(s->gpa, ps) || !aligned(s->size, ps) ||
            ms__add_overflows(s->gpa, s->size - 1) || s->id >= 65536 ||
            (seen[s->id / 64] & (UINT64_C(1) << (s->id % 64))) != 0) {
            return -EINVAL;
        }
        seen[s->id / 64] |= UINT64_C(1) << (s->id % 64);
    }
    return 0;
}

/* Extents of @want; *@out is malloc()ed (NULL when empty). */
static int build_extents(const struct ms__kvm_piece *want, size_t n,
                         struct extent **out, size_t *nr)
{
    *out = NULL;
    *nr = 0;
    if (!n) {
        return 0;
    }
    struct extent *e = malloc(n * sizeof(*e));
    if (!e) {
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ms__kvm_piece *p = &want[i];
        uint64_t last = p->gpa + (p->size - 1);
        if (k) {
            struct extent *x = &e[k - 1];
            uint64_t run = x->last - x->gpa + 1;
            if (x->last != UINT64_MAX && x->last + 1 == p->gpa &&
                x->key == p->key && x->flags == p->flags &&
                !ms__add_overflows(x->offset, run) &&
                x->offset + run == p->offset &&
                !ms__add_overflows(x->host, run) && x->host + run == p->host) {
                x->last = last;
                continue;
            }
        }
        e[k++] = (struct extent){.gpa = p->gpa,
                                 .last = last,
                                 .host = p->host,
                                 .offset = p->offset,
                                 .key = p->key,
                                 .flags = p->flags};
    }
    *out = e;
    *nr = k;
    return 0;
}

/* The extent containing @gpa, or NULL. */
static const struct extent *find_extent(const struct extent *e, size_t n,
                                        uint64_t gpa)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].last < gpa) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < n && e[lo].gpa <= gpa) {
        return &e[lo];
    }
    return NULL;
}

/* May live slot @s stay as it is (apart from the logging flag)? */
static bool keepable(const struct ms__kvm_slot *s, const struct extent *e,
                     size_t ne)
{
    const struct extent *x = find_extent(e, ne, s->gpa);
    if (!x || slot_last(s) > x->last || x->key != s->key ||
        ((x->flags ^ s->flags) & MS__KVM_RO) != 0) {
        return false;
    }
    uint64_t delta = s->gpa - x->gpa;
    return !ms__add_overflows(x->offset, delta) &&
           x->offset + delta == s->offset &&
           !ms__add_overflows(x->host, delta) && x->host + delta == s->host;
}

/* Append creations covering [first, last] of piece @p, split at @max. */
static int emit_chunks(struct slotvec *cr, const struct ms__kvm_piece *p,
                       uint64_t first, uint64_t last, uint64_t max)
{
    uint64_t cur = first;
    for (;;) {
        uint64_t remain_last = last - cur; /* size - 1 */
        uint64_t clast =
            (max && remain_last > max - 1) ? cur + (max - 1) : last;
        struct ms__kvm_slot s = {
            .id = UINT32_MAX,
            .flags = p->flags,
            .gpa = cur,
            .size = clast - cur + 1,
            .host = p->host + (cur - p->gpa),
            .key = p->key,
            .offset = p->offset + (cur - p->gpa),
        };
        int err = vec_push(cr, &s);
        if (err < 0) {
            return err;
        }
        if (clast == last) {
            return 0;
        }
        cur = clast + 1;
    }
}

/*
 * Creations for every piece: the parts kept slots (@kept, ascending) do
 * not cover.
 */
static int plan_creates(const struct ms__kvm_piece *want, size_t nw,
                        const struct ms__kvm_slot *kept, size_t nk,
                        uint64_t max, struct slotvec *cr)
{
    size_t k = 0;
    for (size_t i = 0; i < nw; i++) {
        const struct ms__kvm_piece *p = &want[i];
        uint64_t a = p->gpa, b = p->gpa + (p->size - 1);
        while (k < nk && slot_last(&kept[k]) < a) {
            k++;
        }
        uint64_t cur = a;
        size_t j = k;
        for (;;) {
            int err = 0;
            if (j < nk && kept[j].gpa <= b) {
                if (kept[j].gpa > cur) {
                    err = emit_chunks(cr, p, cur, kept[j].gpa - 1, max);
                }
                if (err < 0) {
                    return err;
                }
                if (slot_last(&kept[j]) >= b) {
                    break;
                }
                cur = slot_last(&kept[j]) + 1;
                j++;
            } else {
                err = emit_chunks(cr, p, cur, b, max);
                if (err < 0) {
                    return err;
                }
                break;
            }
        }
    }
    return 0;
}

/* Does any slot of @a overlap any slot of @b (both ascending)? */
static bool any_overlap(const struct ms__kvm_slot *a, size_t na,
                        const struct ms__kvm_slot *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        struct ms__range x = {a[i].gpa, slot_last(&a[i])};
        struct ms__range y = {b[j].gpa, slot_last(&b[j])};
        if (ms__range_overlaps(x, y)) {
            return true;
        }
        if (x.last < y.last) {
            i++;
        } else {
            j++;
        }
    }
    return false;
}

/* Fewest slots a piece of @size bytes needs. */
static uint64_t needed_slots(uint64_t size, uint64_t max)
{
    if (!max) {
        return 1;
    }
    return size / max + (size % max != 0);
}

/*
 * Compaction: a piece covered by more slots than it needs, all lying
 * inside it, gets the minimal set instead -- if it meets a deletion of
 * this plan (@dels, ascending; the plan pauses for it anyway), or every
 * such piece when @all (the slots would not fit otherwise).  @keep flags
 * the kept slots (@kept, ascending); compacted ones are cleared.  @cr is
 * rebuilt.
 */
static int compact(const struct ms__kvm_piece *want, size_t nw,
                   const struct ms__kvm_slot *kept, bool *keep, size_t nk,
                   const struct slotvec *dels, bool all, uint64_t max,
                   struct slotvec *cr, size_t *nr_compacted)
{
    size_t d = 0;
    struct slotvec out = {0};
    size_t k = 0, c = 0;
    for (size_t i = 0; i < nw; i++) {
        const struct ms__kvm_piece *p = &want[i];
        uint64_t a = p->gpa, b = p->gpa + (p->size - 1);
        while (k < nk && slot_last(&kept[k]) < a) {
            k++;
        }
        size_t c0 = c;
        while (c < cr->n && cr->v[c].gpa <= b) {
            c++; /* creations are per piece, ascending */
        }
        size_t count = c - c0;
        bool inside = true;
        size_t k1 = k;
        for (; k1 < nk && kept[k1].gpa <= b; k1++) {
            if (!keep[k1]) {
                continue;
            }
            count++;
            if (kept[k1].gpa < a || slot_last(&kept[k1]) > b) {
                inside = false;
            }
        }
        bool touched = all;
        while (d < dels->n && slot_last(&dels->v[d]) < a) {
            d++;
        }
        if (!touched && d < dels->n) {
            struct ms__kvm_slot ps = {.gpa = a, .size = p->size};
            touched = any_overlap(&ps, 1, &dels->v[d], dels->n - d);
        }
        int err = 0;
        if (touched && inside && count > needed_slots(p->size, max)) {
            for (size_t j = k; j < k1; j++) {
                if (keep[j]) {
                    keep[j] = false;
                    (*nr_compacted)++;
                }
            }
            err = emit_chunks(&out, p, a, b, max);
        } else {
            for (size_t j = c0; j < c && !err; j++) {
                err = vec_push(&out, &cr->v[j]);
            }
        }
        if (err < 0) {
            free(out.v);
            return err;
        }
    }
    free(cr->v);
    *cr = out;
    return 0;
}

static int push_op(struct ms__kvm_plan *pl, size_t *cap,
                   enum ms__kvm_op_kind kind, const struct ms__kvm_slot *s,
                   uint32_t old_flags)
{
    if (pl->nr_ops == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct ms__kvm_op *n = realloc(pl->ops, ncap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        pl->ops = n;
        *cap = ncap;
    }
    pl->ops[pl->nr_ops++] =
        (struct ms__kvm_op){.kind = kind, .slot = *s, .old_flags = old_flags};
    return 0;
}

int ms__kvm_plan(const struct ms__kvm_slot *old, size_t nr_old,
                 const struct ms__kvm_piece *want, size_t nr_want,
                 const struct ms__kvm_plan_opts *opts, struct ms__kvm_plan *out)
{
    if ((!old && nr_old) || (!want && nr_want) || !opts || !out) {
        return -EINVAL;
    }
    int err = validate(old, nr_old, want, nr_want, opts);
    if (err < 0) {
        return err;
    }
    struct ms__kvm_plan pl = {0};
    struct ms__kvm_slot *sorted = NULL;
    bool *keep = NULL;
    struct extent *ext = NULL;
    size_t next = 0, cap = 0;
    struct slotvec kept = {0}, dels = {0}, cr = {0};
    unsigned char *used = NULL;
    uint64_t max = opts->max_slot_size;

    if (nr_old) {
        sorted = malloc(nr_old * sizeof(*sorted));
        keep = calloc(nr_old, sizeof(*keep));
        if (!sorted || !keep) {
            err = -ENOMEM;
            goto out;
        }
        memcpy(sorted, old, nr_old * sizeof(*sorted));
        qsort(sorted, nr_old, sizeof(*sorted), cmp_slot_gpa);
        for (size_t i = 1; i < nr_old; i++) {
            if (sorted[i].gpa <= slot_last(&sorted[i - 1])) {
                err = -EINVAL; /* live slots overlap */
                goto out;
            }
        }
    }
    err = build_extents(want, nr_want, &ext, &next);
    if (err < 0) {
        goto out;
    }

    /* 1. Keep what still shows the same memory. */
    for (size_t i = 0; i < nr_old; i++) {
        keep[i] = keepable(&sorted[i], ext, next);
    }

    /* 2. Cover the rest. */
    for (size_t i = 0; i < nr_old; i++) {
        if (keep[i] && (err = vec_push(&kept, &sorted[i])) < 0) {
            goto out;
        }
    }
    err = plan_creates(want, nr_want, kept.v, kept.n, max, &cr);
    if (err < 0) {
        goto out;
    }

    /* 3. Pause iff a deletion uncovers memory that is mapped again. */
    for (size_t i = 0; i < nr_old; i++) {
        if (!keep[i] && (err = vec_push(&dels, &sorted[i])) < 0) {
            goto out;
        }
    }
    bool pause = any_overlap(dels.v, dels.n, cr.v, cr.n);

    /*
     * 4. Compaction, where a deletion already forces a pause, or where
     * the slots would not fit otherwise.
     */
    uint32_t limit = opts->max_slots;
    if (pause || kept.n + cr.n > limit) {
        bool *kk = calloc(kept.n ? kept.n : 1, sizeof(*kk));
        if (!kk) {
            err = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < kept.n; i++) {
            kk[i] = true;
        }
        err = compact(want, nr_want, kept.v, kk, kept.n, &dels,
                      kept.n + cr.n > limit, max, &cr, &pl.nr_compacted);
        if (err < 0) {
            free(kk);
            goto out;
        }
        if (pl.nr_compacted) {
            /* Rebuild keep[] (sorted and kept.v are both ascending). */
            size_t j = 0;
            for (size_t i = 0; i < nr_old; i++) {
                if (keep[i]) {
                    keep[i] = kk[j++];
                }
            }
            kept.n = 0;
            dels.n = 0;
            for (size_t i = 0; i < nr_old && err == 0; i++) {
                err = vec_push(keep[i] ? &kept : &dels, &sorted[i]);
            }
            if (err < 0) {
                free(kk);
                goto out;
            }
            pause = any_overlap(dels.v, dels.n, cr.v, cr.n);
        }
        free(kk);
    }

    /* 5. Ids: deletions free theirs first; lowest free id wins. */
    if (limit) {
        used = calloc(limit, 1);
        if (!used) {
            err = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < kept.n; i++) {
        if (kept.v[i].id < limit) {
            used[kept.v[i].id] = 1;
        }
    }
    /*
     * Replacements of deleted memory first (a shrink must not lose its
     * surviving parts to a new mapping elsewhere), then the rest.
     */
    uint32_t next_id = 0;
    size_t placed = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t d = 0;
        for (size_t i = 0; i < cr.n; i++) {
            while (d < dels.n && slot_last(&dels.v[d]) < cr.v[i].gpa) {
                d++;
            }
            bool repl =
                d < dels.n && any_overlap(&cr.v[i], 1, &dels.v[d], dels.n - d);
            if (repl != (pass == 0)) {
                continue;
            }
            while (next_id < limit && used[next_id]) {
                next_id++;
            }
            if (next_id >= limit) {
                break;
            }
            used[next_id] = 1;
            cr.v[i].id = next_id;
            placed++;
        }
    }
    pl.nr_unplaced = cr.n - placed;

    /* 6. Emit: deletions, flag updates, creations, each ascending. */
    for (size_t i = 0; i < dels.n; i++) {
        if ((err = push_op(&pl, &cap, MS__KVM_OP_DELETE, &dels.v[i],
                           dels.v[i].flags)) < 0) {
            goto out;
        }
        pl.nr_delete++;
    }
    for (size_t i = 0; i < kept.n; i++) {
        const struct extent *x = find_extent(ext, next, kept.v[i].gpa);
        pl.nr_kept++;
        if (x->flags != kept.v[i].flags) {
            struct ms__kvm_slot s = kept.v[i];
            s.flags = x->flags;
            if ((err = push_op(&pl, &cap, MS__KVM_OP_FLAGS, &s,
                               kept.v[i].flags)) < 0) {
                goto out;
            }
            pl.nr_flags++;
        }
    }
    struct slotvec issued = {0};
    for (size_t i = 0; i < cr.n; i++) {
        if (cr.v[i].id == UINT32_MAX) {
            continue; /* no id left */
        }
        if ((err = push_op(&pl, &cap, MS__KVM_OP_CREATE, &cr.v[i], 0)) < 0 ||
            (err = vec_push(&issued, &cr.v[i])) < 0) {
            free(issued.v);
            goto out;
        }
        pl.nr_create++;
    }
    /* Pause only if a deletion overlaps a creation actually issued. */
    pl.pause = pause && any_overlap(dels.v, dels.n, issued.v, issued.n);
    free(issued.v);
    *out = pl;
    pl.ops = NULL;
out:
    free(pl.ops);
    free(sorted);
    free(keep);
    free(ext);
    free(kept.v);
    free(dels.v);
    free(cr.v);
    free(used);
    return err;
}

void ms__kvm_plan_free(struct ms__kvm_plan *plan)
{
    if (plan) {
        free(plan->ops);
        plan->ops = NULL;
        plan->nr_ops = 0;
    }
}
