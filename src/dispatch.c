/* SPDX-License-Identifier: MIT */
/*
 * The access path's lookup structure: for every flat view, a dispatch
 * table built once when the view is created and read lock-free by any
 * number of threads while the view is published (access.c).
 *
 * Entries: one struct ms__dent per flat range, one cache line each, with
 * everything an access needs (host pointer, ops, flags snapshotted from the
 * region when the view was built; access.c, ms__access_dent_init()).
 *
 * Index: an adaptive radix of "buckets".  A node covers an address window
 * [base, base + span] and cuts it into nb <= 2^k equal power-of-two buckets,
 * with 2^k the smallest power of two >= the number of ranges meeting the window
 * (so on average about one range per bucket).  A bucket is a 32-bit word:
 *   - MS__DB_NODE | n:    a child node n covers the bucket (more than
 *                         SCAN_MAX ranges meet it);
 *   - i | (extra << 28):  the ranges meeting the bucket are entries i to
 *                         i + extra (extra < SCAN_MAX), scanned in order; if
 *                         none meets it, i is the next range after it (whose
 *                         start is past any address of the bucket).
 * A child covers its bucket clipped to the extent of its ranges.  Each
 * child window is at most 1/2^(k-1) of its parent's (k >= 4 for a child),
 * so the depth is at most 16 and a lookup is usually one or two bucket
 * reads plus the entry: the cost hardly grows with the number of ranges
 * (the benchmark compares 16 with 100 000).  Memory: at most about two
 * buckets per range and level.  Views with 2^28 ranges or more (never seen
 * in practice) fall back to a binary search over the entries.
 *
 * Invariants checked by the tests (tests/test_access_random.c compares
 * every lookup with a binary search over the ranges): the entries are in
 * address order, disjoint, and a bucket's candidate list always contains
 * the range holding any address of the bucket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define SCAN_MAX 8u  /* ranges a bucket may list before it gets a node */
#define MAX_BITS 20u /* at most 2^20 buckets per node */

struct builder {
    const struct ms__dent *dents;
    struct ms__dnode *nodes;
    size_t nr_nodes, cap_nodes;
    uint32_t *buckets;
    size_t nr_buckets, cap_buckets;
};

static unsigned bit_length(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        ncap *= 2;
    }
    void *np = realloc(*p, ncap * elem);
    if (!np) {
        return -ENOMEM;
    }
    *p = np;
    *cap = ncap;
    return 0;
}

/*
 * Build the node for entries [i0, i1] (all meeting [base, last]); returns
 * its index, or -ENOMEM.
 */
static long build_node(struct builder *b, size_t i0, size_t i1, uint64_t base,
                       uint64_t last)
{
    const struct ms__dent *d = b->dents;
    size_t cands = i1 - i0 + 1;
    unsigned k = bit_length((uint64_t)cands - 1); /* ceil(log2(cands)) */
    if (k < 1) {
        k = 1;
    }
    if (k > MAX_BITS) {
        k = MAX_BITS;
    }
    uint64_t span = last - base;
    unsigned bits = bit_length(span);
    unsigned shift = bits > k ? bits - k : 0;
    uint64_t nb = (span >> shift) + 1; /* <= 2^k */

    if (b->nr_nodes >= MS__DB_NODE ||
        grow((void **)&b->nodes, &b->cap_nodes, b->nr_nodes + 1,
             sizeof(*b->nodes)) < 0 ||
        grow((void **)&b->buckets, &b->cap_buckets, b->nr_buckets + nb,
             sizeof(*b->buckets)) < 0) {
        return -ENOMEM;
    }
    size_t self = b->nr_nodes++;
    size_t first = b->nr_buckets;
    if (first > UINT32_MAX - nb) {
        return -ENOMEM;
    }
    b->nr_buckets += nb;
    /* Bucket pointers are set once all buckets are allocated. */
    b->nodes[self] =
        (struct ms__dnode){.base = base,
                           .span = span,
                           .shift = shift,
                           .buckets = (const uint32_t *)(uintptr_t)first};

    uint64_t bsize_last = shift ? (UINT64_C(1) << shift) - 1 : 0;
    size_t j = i0;
    for (uint64_t bi = 0; bi < nb; bi++) {
        uint64_t bs = base + (bi << shift);
        uint64_t bl = bi == nb - 1 ? last : bs + bsize_last;
        /* First range ending at or after the bucket start. */
        while (d[j].last < bs) {
            j++;
        }
        uint32_t word;
        if (d[j].gpa > bl) {
            word = (uint32_t)j; /* a gap: the next range starts later */
        } else {
            size_t jl = j;
            while (jl < i1 && d[jl + 1].gpa <= bl) {
                jl++;
            }
            if (jl - j < SCAN_MAX) {
                word = (uint32_t)j | (uint32_t)(jl - j) << MS__DB_IDX_BITS;
            } else {
                uint64_t cb = d[j].gpa > bs ? d[j].gpa : bs;
                uint64_t cl = d[jl].last < bl ? d[jl].last : bl;
                long child = build_node(b, j, jl, cb, cl);
                if (child < 0) {
                    return child;
                }
                word = MS__DB_NODE | (uint32_t)child;
            }
        }
        b->buckets[first + bi] = word;
    }
    return (long)self;
}

/*
 * Big tables (hundreds of thousands of ranges) are looked up at random:
 * give them transparent huge pages when the system allows, so that the
 * lookups do not also miss the TLB.  Small ones come from malloc.
 */
#define HUGE_SIZE (UINT64_C(2) << 20)

static void *table_alloc(size_t size, size_t *map_len)
{
    *map_len = 0;
    if (size < HUGE_SIZE / 2) {
        return aligned_alloc(64, size);
    }
    size_t len = (size + HUGE_SIZE - 1) & ~(size_t)(HUGE_SIZE - 1);
    char *p = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    /* Keep the 2 MiB-aligned part. */
    size_t head = (size_t)(-(uintptr_t)p & (HUGE_SIZE - 1));
    if (head) {
        munmap(p, head);
    }
    munmap(p + head + len, HUGE_SIZE - head);
    p += head;
    (void)madvise(p, len, MADV_HUGEPAGE); /* a hint; fine if refused */
    *map_len = len;
    return p;
}

static void table_free(const void *p, size_t map_len)
{
    if (map_len) {
        munmap((void *)p, map_len);
    } else {
        free((void *)p);
    }
}

/*
 * The entries [*s, *t] meeting the page [page, page + pmask], found from
 * entry i, which meets it.
 */
static void page_span(const struct ms__dent *d, size_t nr, size_t i,
                      uint64_t page, uint64_t pmask, size_t *s, size_t *t)
{
    size_t a = i, b = i;
    while (a > 0 && d[a - 1].last >= page) {
        a--;
    }
    while (b + 1 < nr && d[b + 1].gpa <= page + pmask) {
        b++;
    }
    *s = a;
    *t = b;
}

/*
 * Whether entry @i continues the sheet-able stretch of entry i - 1: both
 * RAM read directly, back to back in guest and host memory, and @i starts
 * at an even address (an odd boundary makes every page holding it no
 * sheet, so stretches are cut there).
 */
static bool continues(const struct ms__dent *d, size_t i)
{
    const uint32_t rd = MS__D_RAM | MS__D_DIRECT_READ;
    return i > 0 && (d[i].flags & rd) == rd && (d[i - 1].flags & rd) == rd &&
           d[i].gpa == d[i - 1].last + 1 && d[i].gpa != 0 && !(d[i].gpa & 1) &&
           (uintptr_t)d[i].host - (uintptr_t)d[i].gpa ==
               (uintptr_t)d[i - 1].host - (uintptr_t)d[i - 1].gpa;
}

/*
 * Whether the page [page, page + pmask], met by entries s to t, is a
 * sheet: covered by two or more RAM ranges read directly, back to back in
 * guest and in host memory (one host address = gpa + addend for all),
 * whose boundaries inside the page are all multiples of some a >= 2 (the
 * page lies inside one stretch: continues()).
 * Returns a - 1 for the largest such a, with @*w whether every range is
 * written directly and unlogged; or 0.  An access inside one a-aligned
 * block of the page then crosses no range end (access.c caches such
 * pages in its TLB).
 */
static uint64_t sheet_low(const struct ms__dent *d, size_t s, size_t t,
                          uint64_t page, uint64_t pmask, bool *w)
{
    if (s == t || d[s].gpa > page || d[t].last < page + pmask) {
        return 0;
    }
    uint64_t bounds = 0;
    bool wr = true;
    for (size_t k = s; k <= t; k++) {
        if (k > s && !continues(d, k)) {
            return 0;
        }
        wr = wr && (d[k].flags & (MS__D_DIRECT_WRITE | MS__D_DIRTY)) ==
                       MS__D_DIRECT_WRITE;
        bounds |= k > s ? d[k].gpa : 0; /* inside: no multiple of the page */
    }
    *w = wr;
    return (bounds & (0 - bounds)) - 1; /* the lowest boundary bit, less 1 */
}

/*
 * Set the MS__D_PAGE_* bits (internal.h) of the entries lying inside one
 * 4 KiB page that is a sheet; returns how many such pages there are.
 * Linear: each page is looked at once, from its first such entry.
 */
static uint64_t mark_pages(struct ms__dent *d, size_t nr)
{
    const uint64_t pmask = (UINT64_C(1) << MS__PAGE_BITS) - 1;
    uint64_t pages = 0;
    size_t i = 0;
    while (i < nr) {
        uint64_t page = d[i].gpa & ~pmask;
        if ((d[i].last & ~pmask) != page) {
            i++;
            continue;
        }
        size_t s, t;
        page_span(d, nr, i, page, pmask, &s, &t);
        bool w = false;
        uint64_t low = sheet_low(d, s, t, page, pmask, &w);
        for (size_t k = s; low && k <= t; k++) {
            if ((d[k].gpa & ~pmask) == page && (d[k].last & ~pmask) == page) {
                d[k].flags |=
                    (uint32_t)low << MS__D_PAGE_SHIFT | (w ? MS__D_PAGE_W : 0);
            }
        }
        pages += low != 0; /* entry i, inside the page, was marked */
        i = t + 1;
    }
    return pages;
}

/*
 * Store the sheets among the pages of 2^shift bytes (shift >
 * MS__PAGE_BITS) in @out (in address order, at most @cap of them) and
 * flag their ranges MS__D_SHEET; returns how many were stored.  A page is
 * one only if a range starts inside it, so each is looked at once, from
 * the first such range.
 */
static size_t big_sheets(struct ms__dent *d, size_t nr, unsigned shift,
                         struct ms__sheet *out, size_t cap)
{
    const uint64_t pmask = (UINT64_C(1) << shift) - 1;
    size_t n = 0;
    for (size_t i = 0; i < nr; i++) {
        uint64_t page = d[i].gpa & ~pmask;
        if (d[i].gpa == page) {
            continue; /* no boundary inside the page (yet) */
        }
        size_t s, t;
        page_span(d, nr, i, page, pmask, &s, &t);
        bool w = false;
        uint64_t low = sheet_low(d, s, t, page, pmask, &w);
        if (low && n < cap) {
            out[n++] = (struct ms__sheet){.tag = page | low, .w = w};
            for (size_t k = s; k <= t; k++) {
                d[k].flags |= MS__D_SHEET;
            }
        }
        i = t; /* every later range starting in the page is in [s, t] */
    }
    return n;
}

/* How many whole aligned pages of 2^shift bytes [x, y] holds. */
static uint64_t pages_in(uint64_t x, uint64_t y, unsigned shift)
{
    uint64_t size = UINT64_C(1) << shift;
    uint64_t first = (x + size - 1) & ~(size - 1);
    if (first < x || first > y || y - first < size - 1) {
        return 0;
    }
    return ((y - first - (size - 1)) >> shift) + 1;
}

/* @pages pages of 2^shift bytes in bytes, saturated. */
static uint64_t page_bytes(uint64_t pages, unsigned shift)
{
    return pages > UINT64_MAX >> shift ? UINT64_MAX : pages << shift;
}

/*
 * The page size of the TLB's first level for these ranges (see
 * ms__dispatch.big_shift): of the sizes whose pages, each lying inside one
 * RAM range read directly or a sheet (after mark_pages() for 4 KiB pages),
 * cover some RAM, the one whose MS__TLB_SIZE entries reach the most of
 * it; on a tie, the one reaching more through whole pages (a hit on a
 * sheet tests a little more), then the largest (fewer pages to conflict).
 * Ranges are RAM of a VMM (a few large ones) or of a test bench (many
 * small ones, often slices of one buffer): one size per table fits both.
 *
 * Counting, linear: a page larger than 4 KiB is a sheet exactly when it
 * lies inside one stretch of entries (continues()) but not inside one
 * entry, so a size's sheets are the pages inside stretches less those
 * inside entries; @low_pages 4 KiB pages are sheets (mark_pages()).  With
 * the chosen size's number of sheets in @*nr_sheets.
 */
static unsigned big_shift(const struct ms__dent *d, size_t nr,
                          uint64_t low_pages, uint64_t *nr_sheets)
{
    const uint32_t rd = MS__D_RAM | MS__D_DIRECT_READ;
    /* Pages inside one range, and inside one stretch. */
    uint64_t whole[MS__TLB_BIG_MAX + 1] = {0};
    uint64_t in_stretch[MS__TLB_BIG_MAX + 1] = {0};
    size_t first = 0;  /* of the current stretch */
    bool cont = false; /* continues(d, i), from the iteration before */
    for (size_t i = 0; i < nr; i++) {
        bool ram = (d[i].flags & rd) == rd;
        if (ram) {
            for (unsigned s = MS__PAGE_BITS; s <= MS__TLB_BIG_MAX; s++) {
                uint64_t n = pages_in(d[i].gpa, d[i].last, s);
                if (!n) {
                    break; /* no page of this size, nor of larger ones */
                }
                whole[s] += n; /* at most 2^52 pages in all */
            }
        }
        if (!cont) {
            first = i;
        }
        cont = i + 1 < nr && continues(d, i + 1);
        if (ram && !cont) {
            for (unsigned s = MS__PAGE_BITS + 1; s <= MS__TLB_BIG_MAX; s++) {
                uint64_t n = pages_in(d[first].gpa, d[i].last, s);
                if (!n) {
                    break;
                }
                in_stretch[s] += n;
            }
        }
    }
    unsigned best = MS__PAGE_BITS;
    uint64_t best_reach = 0, best_whole = 0;
    *nr_sheets = 0;
    for (unsigned s = MS__PAGE_BITS; s <= MS__TLB_BIG_MAX; s++) {
        uint64_t most = (uint64_t)MS__TLB_SIZE << s;
        uint64_t sheets =
            s == MS__PAGE_BITS ? low_pages : in_stretch[s] - whole[s];
        uint64_t cover = page_bytes(whole[s], s);
        uint64_t all = cover + page_bytes(sheets, s);
        all = all < cover ? UINT64_MAX : all;
        uint64_t reach = all < most ? all : most;
        uint64_t whole_reach = cover < most ? cover : most;
        if (reach && (reach > best_reach ||
                      (reach == best_reach && whole_reach >= best_whole))) {
            best = s;
            best_reach = reach;
            best_whole = whole_reach;
            *nr_sheets = s == MS__PAGE_BITS ? 0 : sheets; /* big_sheets() */
        }
    }
    return best;
}

/* The first level's page size (see ms__dispatch.big_shift). */
static void set_big_shift(struct ms__dispatch *disp, unsigned shift)
{
    disp->big_shift = shift;
    disp->big_mask = (UINT64_C(1) << shift) - 1;
}

/* The last generation handed out (atomic: systems build on any thread). */
static uint64_t last_gen;

int ms__dispatch_build(ms_flatview *fv)
{
    struct ms__dispatch *disp = &fv->disp;
    memset(disp, 0, sizeof(*disp));
    /* 64 bits: at a billion tables a second, 584 years to wrap. */
    disp->gen = __atomic_add_fetch(&last_gen, 1, __ATOMIC_RELAXED);
    set_big_shift(disp, MS__PAGE_BITS); /* no ranges: any valid size */
    if (!fv->nr) {
        return 0;
    }
    struct ms__dent *dents =
        table_alloc(fv->nr * sizeof(*dents), &disp->dents_map_len);
    if (!dents) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < fv->nr; i++) {
        ms__access_dent_init(&dents[i], &fv->ranges[i]);
    }
    uint64_t nr_sheets;
    set_big_shift(
        disp, big_shift(dents, fv->nr, mark_pages(dents, fv->nr), &nr_sheets));
    if (nr_sheets) { /* at most one per range */
        struct ms__sheet *sh = malloc((size_t)nr_sheets * sizeof(*sh));
        if (!sh) {
            table_free(dents, disp->dents_map_len);
            memset(disp, 0, sizeof(*disp));
            return -ENOMEM;
        }
        disp->sheets = sh;
        disp->nr_sheets =
            big_sheets(dents, fv->nr, disp->big_shift, sh, (size_t)nr_sheets);
    }
    disp->dents = dents;
    disp->nr = fv->nr;
    if (fv->nr >= MS__DB_IDX_MASK) {
        return 0; /* binary search */
    }
    struct builder b = {.dents = dents};
    long root =
        build_node(&b, 0, fv->nr - 1, dents[0].gpa, dents[fv->nr - 1].last);
    if (root < 0) {
        free(b.nodes);
        free(b.buckets);
        free((void *)disp->sheets);
        table_free(dents, disp->dents_map_len);
        memset(disp, 0, sizeof(*disp));
        return (int)root;
    }
    for (size_t i = 0; i < b.nr_nodes; i++) {
        b.nodes[i].buckets = b.buckets + (uintptr_t)b.nodes[i].buckets;
    }
    disp->nodes = b.nodes;
    disp->buckets_ = b.buckets;
    return 0;
}

void ms__dispatch_free(ms_flatview *fv)
{
    table_free(fv->disp.dents, fv->disp.dents_map_len);
    free((void *)fv->disp.nodes);
    free(fv->disp.buckets_);
    free((void *)fv->disp.sheets);
    memset(&fv->disp, 0, sizeof(fv->disp));
}

const struct ms__dent *ms__dispatch_bsearch(const struct ms__dispatch *d,
                                            uint64_t gpa)
{
    size_t lo = 0, hi = d->nr;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ms__dent *e = &d->dents[mid];
        if (gpa < e->gpa) {
            hi = mid;
        } else if (gpa > e->last) {
            lo = mid + 1;
        } else {
            return e;
        }
    }
    return NULL;
}
