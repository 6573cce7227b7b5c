/* SPDX-License-Identifier: MIT */
#include "refmodel.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_REGIONS 48
#define MAX_AS 4
#define WINDOW 160

uint64_t rm_next(struct rm_src *s, uint64_t bound)
{
    uint64_t v;
    if (bound <= 1) {
        return 0;
    }
    if (s->data) {
        v = 0;
        for (int i = 0; i < 8 && s->pos < s->len; i++) {
            v = (v << 8) | s->data[s->pos++];
            if (i == 7 || (bound >> (8 * (i + 1))) == 0) {
                break;
            }
        }
    } else {
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 7;
        s->rng ^= s->rng << 17;
        v = s->rng;
    }
    return v % bound;
}

bool rm_exhausted(const struct rm_src *s)
{
    return s->data && s->pos >= s->len;
}

/* ---- brute force ------------------------------------------------------ */

struct hit {
    bool found;
    const ms_region *mr;
    uint64_t offset;
    bool ro, nv;
};

/* "offset < size" with size in API convention. */
static bool in_size(uint64_t offset, uint64_t size)
{
    return size == MS_SIZE_FULL || offset < size;
}

static struct hit resolve(const ms_region *r, uint64_t off, bool ro, bool nv)
{
    struct hit none = { 0 };
    const ms_region *t = ms_region_alias_target(r);
    if (t) {
        uint64_t ao = ms_region_alias_offset(r);
        if (!ms_region_enabled(t) || off > UINT64_MAX - ao ||
            !in_size(off + ao, ms_region_size(t))) {
            return none;
        }
        return resolve(t, off + ao, ro || ms_region_readonly(t),
                       nv || ms_region_nonvolatile(t));
    }
    size_t n = ms_region_nr_subregions(r);
    for (size_t i = 0; i < n; i++) {
        const ms_region *s = ms_region_subregion(r, i);
        uint64_t a = ms_region_addr(s);
        if (!ms_region_enabled(s) || off < a ||
            !in_size(off - a, ms_region_size(s))) {
            continue;
        }
        struct hit h = resolve(s, off - a, ro || ms_region_readonly(s),
                               nv || ms_region_nonvolatile(s));
        if (h.found) {
            return h;
        }
    }
    if (ms_region_terminates(r)) {
        return (struct hit){ true, r, off, ro, nv };
    }
    return none;
}

static struct hit expect_at(const ms_region *root, uint64_t gpa)
{
    struct hit none = { 0 };
    if (!root || !ms_region_enabled(root)) {
        return none;
    }
    uint64_t a = ms_region_addr(root);
    if (gpa < a || !in_size(gpa - a, ms_region_size(root))) {
        return none;
    }
    return resolve(root, gpa - a, ms_region_readonly(root),
                   ms_region_nonvolatile(root));
}

static bool size_ge(uint64_t a, uint64_t b)
{
    return a == MS_SIZE_FULL || (b != MS_SIZE_FULL && a >= b);
}

/* docs/model.md 2.6, written independently of src/render.c. */
static ms_region *expected_fv_root(ms_region *r)
{
    for (;;) {
        if (!ms_region_enabled(r)) {
            return NULL;
        }
        ms_region *t = ms_region_alias_target(r);
        if (t) {
            if (ms_region_alias_offset(r) == 0 &&
                size_ge(ms_region_size(r), ms_region_size(t))) {
                r = t;
                continue;
            }
            return r;
        }
        if (ms_region_terminates(r)) {
            return r;
        }
        ms_region *only = NULL;
        int count = 0;
        for (size_t i = 0; i < ms_region_nr_subregions(r) && count < 2; i++) {
            ms_region *s = ms_region_subregion(r, i);
            if (ms_region_enabled(s)) {
                only = s;
                count++;
            }
        }
        if (count == 0) {
            return NULL;
        }
        if (count == 1 && ms_region_addr(only) == 0 &&
            size_ge(ms_region_size(r), ms_region_size(only))) {
            r = only;
            continue;
        }
        return r;
    }
}

/* ---- checking a view -------------------------------------------------- */

/*
 * Shadow listener: keeps its own copy of an address space purely from
 * region_add/region_del and eventfd_add/eventfd_del.
 */
struct shadow {
    struct ms_listener l;
    struct ms_section *secs;
    size_t nr, cap;
    struct ms_eventfd_info *evs;
    size_t nr_ev, cap_ev;
    int errors; /* add over an existing range, del of an unknown one */
};

struct ctx {
    struct rm_src *src;
    bool verbose;
    int bad;
    ms_system *sys;
    ms_region *regions[MAX_REGIONS];
    int nr;
    ms_as *as[MAX_AS];
    int nr_as;
    int txn_depth;
    unsigned flags;
    struct shadow shadow[MAX_AS];
    int fds[4];
};

static int sh_add(struct ms_listener *l, const struct ms_section *s)
{
    struct shadow *sh = (struct shadow *)l;
    for (size_t i = 0; i < sh->nr; i++) {
        if (sh->secs[i].gpa <= s->last && s->gpa <= sh->secs[i].last) {
            sh->errors++;
        }
    }
    if (sh->nr == sh->cap) {
        sh->cap = sh->cap ? sh->cap * 2 : 16;
        sh->secs = realloc(sh->secs, sh->cap * sizeof(*sh->secs));
        if (!sh->secs) {
            abort();
        }
    }
    sh->secs[sh->nr++] = *s;
    return 0;
}

static bool same_sec(const struct ms_section *a, const struct ms_section *b)
{
    return a->gpa == b->gpa && a->last == b->last && a->mr == b->mr &&
           a->offset_within_region == b->offset_within_region &&
           a->readonly == b->readonly && a->nonvolatile == b->nonvolatile;
}

static int sh_del(struct ms_listener *l, const struct ms_section *s)
{
    struct shadow *sh = (struct shadow *)l;
    for (size_t i = 0; i < sh->nr; i++) {
        if (same_sec(&sh->secs[i], s)) {
            sh->secs[i] = sh->secs[--sh->nr];
            return 0;
        }
    }
    sh->errors++;
    return 0;
}

static int sh_ev_add(struct ms_listener *l, const struct ms_section *s,
                     bool match, uint64_t data, int fd)
{
    struct shadow *sh = (struct shadow *)l;
    if (sh->nr_ev == sh->cap_ev) {
        sh->cap_ev = sh->cap_ev ? sh->cap_ev * 2 : 16;
        sh->evs = realloc(sh->evs, sh->cap_ev * sizeof(*sh->evs));
        if (!sh->evs) {
            abort();
        }
    }
    sh->evs[sh->nr_ev++] = (struct ms_eventfd_info){
        .gpa = s->gpa, .size = (unsigned)s->size, .match_data = match,
        .data = match ? data : 0, .fd = fd };
    return 0;
}

static bool same_ev(const struct ms_eventfd_info *a,
                    const struct ms_eventfd_info *b)
{
    return a->gpa == b->gpa && a->size == b->size &&
           a->match_data == b->match_data &&
           (!a->match_data || a->data == b->data) && a->fd == b->fd;
}

static int sh_ev_del(struct ms_listener *l, const struct ms_section *s,
                     bool match, uint64_t data, int fd)
{
    struct shadow *sh = (struct shadow *)l;
    struct ms_eventfd_info e = { .gpa = s->gpa, .size = (unsigned)s->size,
                                 .match_data = match, .data = data,
                                 .fd = fd };
    for (size_t i = 0; i < sh->nr_ev; i++) {
        if (same_ev(&sh->evs[i], &e)) {
            sh->evs[i] = sh->evs[--sh->nr_ev];
            return 0;
        }
    }
    sh->errors++;
    return 0;
}

static void shadow_attach(struct shadow *sh, ms_as *as)
{
    memset(sh, 0, sizeof(*sh));
    sh->l.name = "shadow";
    sh->l.region_add = sh_add;
    sh->l.region_del = sh_del;
    sh->l.eventfd_add = sh_ev_add;
    sh->l.eventfd_del = sh_ev_del;
    if (ms_listener_register(as, &sh->l) != 0) {
        sh->errors++;
    }
    /*
     * QEMU 7.2 rule: registration does not replay existing ioeventfds, so
     * the shadow starts from the address space's set as a baseline; every
     * later change must then reach it through eventfd_add/eventfd_del.
     */
    for (size_t i = 0; i < ms_as_nr_eventfds(as); i++) {
        struct ms_eventfd_info e;
        struct ms_section s = { .as = as };
        if (ms_as_eventfd(as, i, &e) == 0) {
            s.gpa = e.gpa;
            s.size = e.size;
            sh_ev_add(&sh->l, &s, e.match_data, e.data, e.fd);
        }
    }
}

static void shadow_detach(struct shadow *sh)
{
    (void)ms_listener_unregister(&sh->l);
    free(sh->secs);
    free(sh->evs);
}

static int sec_cmp(const void *a, const void *b)
{
    const struct ms_section *x = a, *y = b;
    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static void mismatch(struct ctx *c, const char *what, const ms_as *as,
                     uint64_t gpa)
{
    c->bad++;
    if (c->verbose && c->bad <= 5) {
        fprintf(stderr, "refmodel: %s in AS %s at 0x%" PRIx64 "\n", what,
                ms_as_name(as), gpa);
        char *t = NULL;
        if (ms_mtree_to_string(c->sys, MS_MTREE_DISABLED, &t) == 0) {
            fprintf(stderr, "%s", t);
            free(t);
        }
        if (ms_mtree_to_string(c->sys, MS_MTREE_FLAT, &t) == 0) {
            fprintf(stderr, "%s", t);
            free(t);
        }
    }
}

static void check_addr(struct ctx *c, const ms_as *as, const ms_flatview *fv,
                       const ms_region *root, uint64_t gpa)
{
    struct hit e = expect_at(root, gpa);
    struct ms_flat_range fr;
    int err = ms_flatview_lookup(fv, gpa, &fr, NULL);
    if (!e.found) {
        if (err == 0) {
            mismatch(c, "range where the model has a hole", as, gpa);
        }
        return;
    }
    if (err) {
        mismatch(c, "hole where the model has a region", as, gpa);
        return;
    }
    if (fr.mr != e.mr || fr.offset + (gpa - fr.gpa) != e.offset ||
        fr.readonly != e.ro || fr.nonvolatile != e.nv ||
        fr.romd != ms_region_romd(e.mr)) {
        if (c->verbose && c->bad < 5) {
            fprintf(stderr,
                    "got %s@0x%" PRIx64 " ro=%d nv=%d, model %s@0x%" PRIx64
                    " ro=%d nv=%d\n",
                    ms_region_name(fr.mr), fr.offset + (gpa - fr.gpa),
                    fr.readonly, fr.nonvolatile, ms_region_name(e.mr),
                    e.offset, e.ro, e.nv);
        }
        mismatch(c, "different region/offset/flags", as, gpa);
    }
}

static void check_as(struct ctx *c, ms_as *as)
{
    const ms_flatview *fv = ms_as_flatview(as);
    ms_region *root = ms_flatview_root(fv);
    if (root != expected_fv_root(ms_as_root(as))) {
        mismatch(c, "wrong flat-view root", as, 0);
        return;
    }
    /* Shared views: same root => same object. */
    for (int i = 0; i < c->nr_as; i++) {
        if (c->as[i] != as && root &&
            ms_flatview_root(ms_as_flatview(c->as[i])) == root &&
            ms_as_flatview(c->as[i]) != fv) {
            mismatch(c, "view not shared", as, 0);
        }
    }
    size_t n = ms_flatview_nr_ranges(fv);
    if (!root && n) {
        mismatch(c, "empty view with ranges", as, 0);
    }
    struct ms_flat_range prev = { 0 };
    for (size_t i = 0; i < n; i++) {
        struct ms_flat_range fr;
        if (ms_flatview_range(fv, i, &fr)) {
            mismatch(c, "range read failed", as, 0);
            return;
        }
        if (fr.last < fr.gpa) {
            mismatch(c, "inverted range", as, fr.gpa);
        }
        if (i) {
            if (prev.last >= fr.gpa) {
                mismatch(c, "overlapping or unsorted ranges", as, fr.gpa);
            }
            if (prev.last + 1 == fr.gpa && prev.mr == fr.mr &&
                prev.offset + (prev.last - prev.gpa) + 1 == fr.offset &&
                prev.readonly == fr.readonly &&
                prev.nonvolatile == fr.nonvolatile && prev.romd == fr.romd &&
                prev.dirty_log_mask == fr.dirty_log_mask) {
                mismatch(c, "mergeable neighbours not merged", as, fr.gpa);
            }
        }
        check_addr(c, as, fv, root, fr.gpa);
        check_addr(c, as, fv, root, fr.last);
        if (fr.gpa) {
            check_addr(c, as, fv, root, fr.gpa - 1);
        }
        if (fr.last != UINT64_MAX) {
            check_addr(c, as, fv, root, fr.last + 1);
        }
        prev = fr;
    }
    for (uint64_t a = 0; a < WINDOW; a++) {
        check_addr(c, as, fv, root, a);
        check_addr(c, as, fv, root, UINT64_MAX - a);
    }
}

/* The shadow must equal the published view and the eventfd set. */
static void check_shadow(struct ctx *c, int k)
{
    struct shadow *sh = &c->shadow[k];
    ms_as *as = c->as[k];
    const ms_flatview *fv = ms_as_flatview(as);
    if (sh->errors) {
        mismatch(c, "shadow saw an inconsistent add/del", as, 0);
        sh->errors = 0;
    }
    size_t n = ms_flatview_nr_ranges(fv);
    if (n != sh->nr) {
        mismatch(c, "shadow has a different number of ranges", as, 0);
        return;
    }
    if (sh->nr) {
        qsort(sh->secs, sh->nr, sizeof(*sh->secs), sec_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        struct ms_flat_range fr;
        if (ms_flatview_range(fv, i, &fr) != 0 || fr.gpa != sh->secs[i].gpa ||
            fr.last != sh->secs[i].last || fr.mr != sh->secs[i].mr ||
            fr.offset != sh->secs[i].offset_within_region ||
            fr.readonly != sh->secs[i].readonly ||
            fr.nonvolatile != sh->secs[i].nonvolatile) {
            mismatch(c, "shadow range differs", as, sh->secs[i].gpa);
            return;
        }
    }
    size_t ne = ms_as_nr_eventfds(as);
    if (ne != sh->nr_ev) {
        mismatch(c, "shadow has a different number of ioeventfds", as, 0);
        return;
    }
    /* Multiset equality: every expected entry removes one shadow entry. */
    bool *used = calloc(ne ? ne : 1, sizeof(*used));
    if (!used) {
        abort();
    }
    for (size_t i = 0; i < ne; i++) {
        struct ms_eventfd_info e;
        bool found = false;
        if (ms_as_eventfd(as, i, &e) == 0) {
            for (size_t j = 0; j < ne && !found; j++) {
                if (!used[j] && same_ev(&sh->evs[j], &e)) {
                    used[j] = found = true;
                }
            }
        }
        if (!found) {
            mismatch(c, "ioeventfd missing from the shadow", as, e.gpa);
            break;
        }
    }
    free(used);
}

static void check_all(struct ctx *c)
{
    for (int i = 0; i < c->nr_as; i++) {
        check_as(c, c->as[i]);
        if (c->flags & RM_SHADOW) {
            check_shadow(c, i);
        }
    }
}

static void add_as(struct ctx *c, ms_region *root)
{
    char name[8];
    ms_as *as;
    snprintf(name, sizeof(name), "as%d", c->nr_as);
    if (c->nr_as >= MAX_AS || !root || ms_as_new(c->sys, root, name, &as)) {
        return;
    }
    c->as[c->nr_as] = as;
    if (c->flags & RM_SHADOW) {
        shadow_attach(&c->shadow[c->nr_as], as);
    }
    c->nr_as++;
}

/* Random ioeventfd edits (shadow mode). */
static void edit_eventfd(struct ctx *c, ms_region *r)
{
    static const unsigned sizes[] = { 0, 1, 2, 4, 8 };
    unsigned size = sizes[rm_next(c->src, 5)];
    bool match = size && rm_next(c->src, 2);
    uint64_t off = rm_next(c->src, 64);
    uint64_t data = rm_next(c->src, 4);
    int fd = c->fds[rm_next(c->src, 4)];
    int err;
    if (rm_next(c->src, 3)) {
        err = ms_region_add_eventfd(r, off, size, match, data, fd);
    } else {
        err = ms_region_del_eventfd(r, off, size, match, data, fd);
    }
    (void)err; /* invalid requests may fail; the shadow must still hold */
}

/* ---- random topologies ------------------------------------------------ */

static uint64_t pick_addr(struct ctx *c)
{
    switch (rm_next(c->src, 8)) {
    case 0:
        return UINT64_MAX - rm_next(c->src, WINDOW); /* top of the space */
    case 1:
        return rm_next(c->src, UINT64_MAX);
    default:
        return rm_next(c->src, WINDOW);
    }
}

static uint64_t pick_size(struct ctx *c)
{
    switch (rm_next(c->src, 10)) {
    case 0:
        return 0;
    case 1:
        return MS_SIZE_FULL;
    case 2:
        return UINT64_C(1) << 63;
    default:
        return 1 + rm_next(c->src, 96);
    }
}

static const struct ms_region_ops ops = { .read = NULL };

static void new_region(struct ctx *c)
{
    if (c->nr >= MAX_REGIONS) {
        return;
    }
    char name[16];
    snprintf(name, sizeof(name), "r%d", c->nr);
    struct ms_region_config cfg = { .name = name };
    unsigned kind = (unsigned)rm_next(c->src, 8);
    cfg.size = pick_size(c);
    switch (kind) {
    case 0:
    case 1:
        cfg.kind = MS_REGION_CONTAINER;
        break;
    case 2:
        cfg.kind = MS_REGION_IO;
        cfg.ops = &ops;
        break;
    case 3:
        cfg.kind = rm_next(c->src, 2) ? MS_REGION_RAM : MS_REGION_ROM;
        cfg.size = 1 + rm_next(c->src, 96);
        break;
    case 4:
        cfg.kind = MS_REGION_ROM_DEVICE;
        cfg.ops = &ops;
        cfg.size = 1 + rm_next(c->src, 96);
        cfg.romd_off = rm_next(c->src, 2);
        break;
    case 5:
        cfg.kind = MS_REGION_RESERVATION;
        break;
    default: {
        if (c->nr == 0) {
            return;
        }
        ms_region *t = c->regions[rm_next(c->src, (uint64_t)c->nr)];
        uint64_t ts = ms_region_size(t);
        cfg.kind = MS_REGION_ALIAS;
        cfg.alias_target = t;
        if (ts == MS_SIZE_FULL) {
            cfg.alias_offset = pick_addr(c);
            cfg.size = rm_next(c->src, 4) ? 1 + rm_next(c->src, 96)
                                          : MS_SIZE_FULL;
        } else {
            cfg.alias_offset = rm_next(c->src, ts + 1);
            cfg.size = rm_next(c->src, ts - cfg.alias_offset + 1);
        }
        break;
    }
    }
    cfg.readonly = rm_next(c->src, 8) == 0;
    cfg.nonvolatile = rm_next(c->src, 8) == 0;
    cfg.disabled = rm_next(c->src, 8) == 0;
    ms_region *r;
    int err = ms_region_new(c->sys, &cfg, &r);
    if (err == 0) {
        c->regions[c->nr++] = r;
    } else if (cfg.kind != MS_REGION_ALIAS) {
        c->bad++;
        if (c->verbose) {
            fprintf(stderr, "refmodel: region_new failed: %d\n", err);
        }
    }
}

static ms_region *pick(struct ctx *c)
{
    return c->nr ? c->regions[rm_next(c->src, (uint64_t)c->nr)] : NULL;
}

static void edit(struct ctx *c)
{
    ms_region *r = pick(c), *s = pick(c);
    int err = 0;
    if (!r) {
        new_region(c);
        return;
    }
    unsigned op = (unsigned)rm_next(c->src, c->flags & RM_SHADOW ? 16 : 14);
    if (getenv("MS_RM_TRACE")) {
        fprintf(stderr, "edit %u on %s (%s) depth %d\n", op,
                ms_region_name(r), ms_region_name(s), c->txn_depth);
    }
    switch (op) {
    case 0:
    case 1:
    case 2:
        err = ms_region_add_prio(r, pick_addr(c), s,
                                 (int32_t)rm_next(c->src, 4) - 1);
        break;
    case 3:
        if (ms_region_container(r)) {
            err = ms_region_del(ms_region_container(r), r);
        }
        break;
    case 4:
        err = ms_region_set_enabled(r, !ms_region_enabled(r));
        break;
    case 5:
        err = ms_region_set_readonly(r, !ms_region_readonly(r));
        break;
    case 6:
        err = ms_region_set_nonvolatile(r, !ms_region_nonvolatile(r));
        break;
    case 7:
        err = ms_region_set_address(r, rm_next(c->src, 3)
                                           ? ms_region_addr(r)
                                           : pick_addr(c));
        if (ms_region_container(r) && !err) {
            /* Same address: no-op; otherwise re-insertion. */
            err = ms_region_set_address(r, pick_addr(c));
        }
        break;
    case 8:
        err = ms_region_set_size(r, pick_size(c));
        break;
    case 9:
        err = ms_region_set_alias_offset(r, rm_next(c->src, 64));
        break;
    case 10:
        err = ms_region_set_romd(r, !ms_region_romd(r));
        break;
    case 11:
        new_region(c);
        break;
    case 12:
        if (c->txn_depth < 3 && ms_txn_begin(c->sys) == 0) {
            c->txn_depth++;
        }
        break;
    case 14:
    case 15:
        edit_eventfd(c, r);
        break;
    case 13:
        if (c->txn_depth > 0) {
            if (ms_txn_commit(c->sys)) {
                c->bad++;
            }
            c->txn_depth--;
            if (c->txn_depth == 0) {
                check_all(c);
            }
        } else {
            add_as(c, r);
        }
        break;
    }
    (void)err; /* invalid edits are allowed to fail; the view must hold */
    if (c->txn_depth == 0) {
        check_all(c);
    }
}

int rm_run(struct rm_src *src, bool verbose)
{
    return rm_run_flags(src, verbose, 0);
}

int rm_run_flags(struct rm_src *src, bool verbose, unsigned flags)
{
    struct ctx ctx = { .src = src, .verbose = verbose, .flags = flags,
                       .fds = { 3, 4, 5, 6 } },
               *c = &ctx;
    if (ms_system_new(NULL, &c->sys)) {
        return 1;
    }
    c->txn_depth = 0;
    int nregions = 2 + (int)rm_next(src, 14);
    for (int i = 0; i < nregions; i++) {
        new_region(c);
    }
    if (c->nr == 0) {
        ms_system_free(c->sys);
        return c->bad;
    }
    int nas = 1 + (int)rm_next(src, 2);
    for (int i = 0; i < nas; i++) {
        add_as(c, pick(c));
    }
    int nedits = 5 + (int)rm_next(src, 40);
    for (int i = 0; i < nedits && !rm_exhausted(src); i++) {
        edit(c);
    }
    while (c->txn_depth > 0) {
        if (ms_txn_commit(c->sys)) {
            c->bad++;
        }
        c->txn_depth--;
    }
    check_all(c);
    for (int i = 0; i < c->nr_as; i++) {
        if (c->flags & RM_SHADOW) {
            shadow_detach(&c->shadow[i]);
        }
        if (ms_as_destroy(c->as[i])) {
            c->bad++;
        }
    }
    for (int i = 0; i < c->nr; i++) {
        ms_region_unref(c->regions[i]);
    }
    ms_system_free(c->sys);
    return c->bad;
}
