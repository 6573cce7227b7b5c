/* SPDX-License-Identifier: MIT */
/*
 * Rendering: region tree -> flat view.  A pure function of the tree.
 *
 * This is the simple renderer of docs/model.md section 2, kept forever as
 * the reference the tests and fuzzers trust.  It walks the tree depth first
 * and inserts material only into the gaps left by earlier material, so the
 * first region to claim an address wins: children before their terminating
 * parent, earlier siblings (higher priority, then newest) before later ones.
 *
 * Coordinates: instead of QEMU's signed 128-bit "base" we carry, for the
 * region being rendered, its clip window in *its own offsets* (an inclusive
 * [first, last] inside [0, size - 1]) and the address-space address of the
 * window's first byte.  Both are exact 64-bit values: offsets beyond 2^64
 * or addresses below 0 can never be visible, and every step that would
 * produce them shrinks or empties the window instead.  This is equivalent
 * to QEMU's arithmetic and needs no wide integers.
 *
 * The view under construction is a treap keyed by start address (ranges are
 * disjoint), so a render of N regions costs O(N log N) plus the cost of
 * walking already-covered ranges when a terminating region fills its gaps.
 * After the walk, adjacent mergeable ranges are merged (section 2.5).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NIL UINT32_MAX

struct node {
    ms__fr fr;
    uint32_t left, right;
    uint32_t prio;
};

struct render {
    struct node *nodes;
    uint32_t nr, cap;
    uint32_t root;
    uint64_t rng;
    int err;
};

static uint32_t rnd(struct render *st)
{
    /* xorshift64*: deterministic per render, no global state. */
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    return (uint32_t)((st->rng * UINT64_C(2685821657736338717)) >> 32);
}

static uint32_t rotate_right(struct render *st, uint32_t n)
{
    uint32_t l = st->nodes[n].left;
    st->nodes[n].left = st->nodes[l].right;
    st->nodes[l].right = n;
    return l;
}

static uint32_t rotate_left(struct render *st, uint32_t n)
{
    uint32_t r = st->nodes[n].right;
    st->nodes[n].right = st->nodes[r].left;
    st->nodes[r].left = n;
    return r;
}

static uint32_t insert_at(struct render *st, uint32_t t, uint32_t n)
{
    if (t == NIL) {
        return n;
    }
    if (st->nodes[n].fr.gpa < st->nodes[t].fr.gpa) {
        st->nodes[t].left = insert_at(st, st->nodes[t].left, n);
        if (st->nodes[st->nodes[t].left].prio > st->nodes[t].prio) {
            t = rotate_right(st, t);
        }
    } else {
        st->nodes[t].right = insert_at(st, st->nodes[t].right, n);
        if (st->nodes[st->nodes[t].right].prio > st->nodes[t].prio) {
            t = rotate_left(st, t);
        }
    }
    return t;
}

static void insert(struct render *st, const ms__fr *fr)
{
    if (st->err) {
        return;
    }
    if (st->nr == st->cap) {
        uint32_t ncap = st->cap ? st->cap * 2 : 64;
        if (ncap <= st->cap) {
            st->err = -ENOMEM;
            return;
        }
        struct node *nn = realloc(st->nodes, (size_t)ncap * sizeof(*nn));
        if (!nn) {
            st->err = -ENOMEM;
            return;
        }
        st->nodes = nn;
        st->cap = ncap;
    }
    uint32_t n = st->nr++;
    st->nodes[n].fr = *fr;
    st->nodes[n].left = st->nodes[n].right = NIL;
    st->nodes[n].prio = rnd(st);
    st->root = insert_at(st, st->root, n);
}

/* The range with the largest start <= @x, or NIL. */
static uint32_t floor_node(const struct render *st, uint64_t x)
{
    uint32_t t = st->root, best = NIL;
    while (t != NIL) {
        if (st->nodes[t].fr.gpa <= x) {
            best = t;
            t = st->nodes[t].right;
        } else {
            t = st->nodes[t].left;
        }
    }
    return best;
}

/* The range with the smallest start >= @x, or NIL. */
static uint32_t ceil_node(const struct render *st, uint64_t x)
{
    uint32_t t = st->root, best = NIL;
    while (t != NIL) {
        if (st->nodes[t].fr.gpa >= x) {
            best = t;
            t = st->nodes[t].left;
        } else {
            t = st->nodes[t].right;
        }
    }
    return best;
}

uint8_t ms__region_log_mask(const ms_region *r)
{
    /* Atomic: ms_region_set_dirty() asks from any thread. */
    uint8_t mask = __atomic_load_n(&r->dirty_log_mask, __ATOMIC_RELAXED);
    /* QEMU logs IOMMUs for migration too (spec 6.1). */
    if (__atomic_load_n(&r->sys->global_dirty, __ATOMIC_RELAXED) &&
        (r->has_block || r->kind == MS_REGION_IOMMU)) {
        mask |= 1u << MS_DIRTY_MIGRATION;
    }
    return mask;
}

/*
 * Step 7: @r claims every gap of the AS window [as_first, as_first +
 * (clip.last - clip.first)]; clip is in @r's offsets.
 */
static void fill(struct render *st, ms_region *r, struct ms__range clip,
                 uint64_t as_first, bool ro, bool nv)
{
    uint64_t as_last = as_first + (clip.last - clip.first);
    uint64_t cur = as_first;
    ms__fr fr = {
        .mr = r,
        .readonly = ro,
        .nonvolatile = nv,
        .romd = r->romd_mode,
        .dirty_log_mask = ms__region_log_mask(r),
    };

    uint32_t p = floor_node(st, cur);
    if (p != NIL && st->nodes[p].fr.last >= cur) {
        if (st->nodes[p].fr.last >= as_last) {
            return;
        }
        cur = st->nodes[p].fr.last + 1;
    }
    for (;;) {
        uint32_t n = ceil_node(st, cur);
        bool blocked = n != NIL && st->nodes[n].fr.gpa <= as_last;
        uint64_t gap_last = blocked ? st->nodes[n].fr.gpa - 1 : as_last;
        if (!blocked || st->nodes[n].fr.gpa > cur) {
            fr.gpa = cur;
            fr.last = gap_last;
            fr.offset = clip.first + (cur - as_first);
            insert(st, &fr);
        }
        if (!blocked || st->nodes[n].fr.last >= as_last) {
            return;
        }
        cur = st->nodes[n].fr.last + 1;
    }
}

static void render_region(struct render *st, ms_region *r,
                          struct ms__range clip, uint64_t as_first, bool ro,
                          bool nv);

/*
 * Steps 1-3 for @r placed at r->addr inside a parent whose window is
 * @pclip (parent offsets) starting at address @pas_first.
 */
static void render_child(struct render *st, ms_region *r,
                         struct ms__range pclip, uint64_t pas_first, bool ro,
                         bool nv)
{
    struct ms__range mine, inter, clip;
    if (!r->enabled || !ms__range_make(r->addr, r->size, &mine) ||
        !ms__range_intersect(mine, pclip, &inter)) {
        return;
    }
    clip.first = inter.first - r->addr;
    clip.last = inter.last - r->addr;
    render_region(st, r, clip, pas_first + (inter.first - pclip.first),
                  ro || r->readonly, nv || r->nonvolatile);
}

static void render_region(struct render *st, ms_region *r,
                          struct ms__range clip, uint64_t as_first, bool ro,
                          bool nv)
{
    if (st->err) {
        return;
    }
    if (r->alias) {
        /* Step 4: the window continues in the target's offsets. */
        ms_region *t = r->alias;
        struct ms__range tw, text, tclip;
        if (!t->enabled || !ms__range_add(clip, r->alias_offset, &tw) ||
            !ms__range_make(0, t->size, &text) ||
            !ms__range_intersect(tw, text, &tclip)) {
            return;
        }
        uint64_t shift = tclip.first - tw.first;
        render_region(st, t, tclip, as_first + shift, ro || t->readonly,
                      nv || t->nonvolatile);
        return;
    }
    /* Step 5: subregions in list order. */
    for (ms_region *s = r->sub_first; s; s = s->sib_next) {
        render_child(st, s, clip, as_first, ro, nv);
    }
    /* Steps 6-7. */
    if (r->terminates) {
        fill(st, r, clip, as_first, ro, nv);
    }
}

static void flatten(const struct render *st, uint32_t t, ms__fr *out,
                    size_t *n)
{
    /* In-order walk with an explicit stack (the treap is shallow, but
     * a stack keeps the worst case off the C stack). */
    uint32_t stack[128];
    size_t sp = 0;
    while (t != NIL || sp) {
        while (t != NIL) {
            if (sp == sizeof(stack) / sizeof(stack[0])) {
                /* Degenerate treap: fall back to recursion for this part. */
                flatten(st, t, out, n);
                t = NIL;
                break;
            }
            stack[sp++] = t;
            t = st->nodes[t].left;
        }
        if (!sp) {
            break;
        }
        t = stack[--sp];
        out[(*n)++] = st->nodes[t].fr;
        t = st->nodes[t].right;
    }
}

/* Section 2.5: merge B into A when they continue each other exactly. */
static bool can_merge(const ms__fr *a, const ms__fr *b)
{
    return a->last != UINT64_MAX && a->last + 1 == b->gpa && a->mr == b->mr &&
           a->offset + (a->last - a->gpa) + 1 == b->offset &&
           a->dirty_log_mask == b->dirty_log_mask && a->romd == b->romd &&
           a->readonly == b->readonly && a->nonvolatile == b->nonvolatile;
}

static size_t simplify(ms__fr *fr, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out && can_merge(&fr[out - 1], &fr[i])) {
            fr[out - 1].last = fr[i].last;
        } else {
            fr[out++] = fr[i];
        }
    }
    return out;
}

/* The sorted ranges of @root, merged (section 2.5) if @merge. */
static int render_ranges(ms_region *root, bool merge, ms__fr **out,
                         size_t *nr)
{
    struct render st = { .root = NIL, .rng = UINT64_C(0x9e3779b97f4a7c15) };
    struct ms__range all = { 0, UINT64_MAX };
    render_child(&st, root, all, 0, false, false);
    if (st.err) {
        free(st.nodes);
        return st.err;
    }
    ms__fr *ranges = NULL;
    size_t n = 0;
    if (st.nr) {
        ranges = malloc((size_t)st.nr * sizeof(*ranges));
        if (!ranges) {
            free(st.nodes);
            return -ENOMEM;
        }
        flatten(&st, st.root, ranges, &n);
        if (merge) {
            n = simplify(ranges, n);
        }
    }
    free(st.nodes);
    *out = ranges;
    *nr = n;
    return 0;
}

/*
 * The ranges of @root before the merge of section 2.5 (malloc()ed, sorted;
 * NULL/0 for a NULL root): each is one stretch of one rendering path, the
 * unit that can change independently (the KVM backend's slot boundaries,
 * src/kvm/listener.c).
 */
int ms__render_unmerged(ms_region *root, ms__fr **out, size_t *nr)
{
    if (!root) {
        *out = NULL;
        *nr = 0;
        return 0;
    }
    return render_ranges(root, false, out, nr);
}

int ms__render(ms_system *sys, ms_region *root, ms_flatview **out)
{
    ms__fr *ranges = NULL;
    size_t n = 0;
    int err = render_ranges(root, true, &ranges, &n);
    if (err < 0) {
        return err;
    }
    err = ms__flatview_new(sys, root, ranges, n, out);
    if (err < 0) {
        free(ranges);
    }
    return err;
}

/* a >= b for sizes in API convention (UINT64_MAX = 2^64). */
static bool size_ge(uint64_t a, uint64_t b)
{
    if (a == UINT64_MAX) {
        return true;
    }
    return b != UINT64_MAX && a >= b;
}

ms_region *ms__flatview_root_of(ms_region *r)
{
    while (r) {
        if (!r->enabled) {
            return NULL;
        }
        if (r->alias) {
            if (r->alias_offset == 0 && size_ge(r->size, r->alias->size)) {
                r = r->alias;
                continue;
            }
            return r;
        }
        if (r->terminates) {
            return r;
        }
        ms_region *only = NULL;
        unsigned found = 0;
        for (ms_region *s = r->sub_first; s && found < 2; s = s->sib_next) {
            if (s->enabled) {
                only = s;
                found++;
            }
        }
        if (found == 0) {
            return NULL;
        }
        if (found == 1 && only->addr == 0 && size_ge(r->size, only->size)) {
            r = only;
            continue;
        }
        return r;
    }
    return NULL;
}
