/* SPDX-License-Identifier: MIT */
/*
 * Explaining one address: the render rules of docs/model.md section 2
 * applied to a single point.
 *
 * For one address the render's "first region to claim it wins" reduces to
 * a walk: at each region, the first subregion in list order that contains
 * the address and (recursively) claims it wins; a terminating region
 * answers what none of its children claims; an alias continues in its
 * target at alias_offset plus the offset (the target's own address does
 * not matter).  Offsets are carried relative to the region being looked at,
 * so 64 bits are exact: an offset that would pass 2^64 cannot be inside
 * any region.
 *
 * The result must agree with the published flat view; the walk is checked
 * against it, so a bug here cannot silently explain a wrong answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "memspace/explain.h"

static bool contains(const ms_region *r, uint64_t off)
{
    return r->size == MS_SIZE_FULL || off < r->size;
}

/* Offset of the point inside child @s, if it is inside @s. */
static bool child_off(const ms_region *s, uint64_t off, uint64_t *so)
{
    if (off < s->addr) {
        return false;
    }
    *so = off - s->addr;
    return contains(s, *so);
}

/* The terminating region claiming offset @off of @r, or NULL. */
static ms_region *resolve(ms_region *r, uint64_t off, bool force_enabled,
                          uint64_t *out_off)
{
    for (;;) {
        if ((!r->enabled && !force_enabled) || !contains(r, off)) {
            return NULL;
        }
        force_enabled = false;
        if (!r->alias) {
            break;
        }
        if (ms__add_overflows(off, r->alias_offset)) {
            return NULL;
        }
        off += r->alias_offset;
        r = r->alias;
    }
    for (ms_region *s = r->sub_first; s; s = s->sib_next) {
        uint64_t so;
        if (!child_off(s, off, &so)) {
            continue;
        }
        ms_region *w = resolve(s, so, false, out_off);
        if (w) {
            return w;
        }
    }
    if (r->terminates) {
        *out_off = off;
        return r;
    }
    return NULL;
}

struct builder {
    struct ms_explanation *e;
    size_t cap_steps, cap_losers;
    int err;
};

static void add_step(struct builder *b, ms_region *r, uint64_t off, bool via)
{
    struct ms_explanation *e = b->e;
    if (b->err) {
        return;
    }
    if (e->nr_steps == b->cap_steps) {
        size_t n = b->cap_steps ? b->cap_steps * 2 : 8;
        struct ms_explain_step *ns = realloc(e->steps, n * sizeof(*ns));
        if (!ns) {
            b->err = -ENOMEM;
            return;
        }
        e->steps = ns;
        b->cap_steps = n;
    }
    e->steps[e->nr_steps++] =
        (struct ms_explain_step){.region = r, .offset = off, .via_alias = via};
}

static void add_loser(struct builder *b, ms_region *r, uint64_t off,
                      enum ms_explain_reason why, ms_region *winner)
{
    struct ms_explanation *e = b->e;
    if (b->err) {
        return;
    }
    if (e->nr_losers == b->cap_losers) {
        size_t n = b->cap_losers ? b->cap_losers * 2 : 8;
        struct ms_explain_loser *nl = realloc(e->losers, n * sizeof(*nl));
        if (!nl) {
            b->err = -ENOMEM;
            return;
        }
        e->losers = nl;
        b->cap_losers = n;
    }
    struct ms_explain_loser *l = &e->losers[e->nr_losers++];
    *l = (struct ms_explain_loser){
        .region = r,
        .reason = why,
        .offset = off,
        .step = e->nr_steps ? e->nr_steps - 1 : 0,
        .winner = winner,
    };
    if (why == MS_EXPLAIN_CHILD) {
        l->would = r;
        l->would_offset = off;
    } else {
        l->would = resolve(r, off, true, &l->would_offset);
    }
}

/* Inside a hole: the disabled regions that would otherwise answer. */
static void hole_details(struct builder *b, ms_region *r, uint64_t off,
                         unsigned depth)
{
    if (depth > 64 || b->err) {
        return;
    }
    if (r->alias) {
        if (ms__add_overflows(off, r->alias_offset)) {
            return;
        }
        off += r->alias_offset;
        r = r->alias;
        if (!contains(r, off)) {
            return;
        }
        if (!r->enabled) {
            add_loser(b, r, off, MS_EXPLAIN_DISABLED, NULL);
            return;
        }
    }
    for (ms_region *s = r->sub_first; s; s = s->sib_next) {
        uint64_t so;
        if (!child_off(s, off, &so)) {
            continue;
        }
        if (!s->enabled) {
            add_loser(b, s, so, MS_EXPLAIN_DISABLED, NULL);
        } else {
            hole_details(b, s, so, depth + 1);
        }
    }
}

static void walk(struct builder *b, ms_region *cur, uint64_t off)
{
    struct ms_explanation *e = b->e;
    add_step(b, cur, off, false);
    while (!b->err) {
        if (!cur->enabled) {
            add_loser(b, cur, off, MS_EXPLAIN_DISABLED, NULL);
            return;
        }
        if (!contains(cur, off)) {
            return;
        }
        if (cur->alias) {
            if (ms__add_overflows(off, cur->alias_offset)) {
                return;
            }
            off += cur->alias_offset;
            cur = cur->alias;
            add_step(b, cur, off, true);
            continue;
        }
        ms_region *win = NULL;
        uint64_t win_off = 0;
        for (ms_region *s = cur->sub_first; s; s = s->sib_next) {
            uint64_t so, wo;
            if (!child_off(s, off, &so)) {
                continue;
            }
            if (!s->enabled) {
                add_loser(b, s, so, MS_EXPLAIN_DISABLED, win);
            } else if (win) {
                add_loser(b, s, so,
                          s->priority < win->priority ? MS_EXPLAIN_PRIORITY
                                                      : MS_EXPLAIN_ORDER,
                          win);
            } else if (resolve(s, so, false, &wo)) {
                win = s;
                win_off = so;
            } else {
                add_loser(b, s, so, MS_EXPLAIN_HOLE, NULL);
                hole_details(b, s, so, 0);
            }
        }
        if (!win) {
            if (cur->terminates) {
                e->region = cur;
                e->offset = off;
            }
            return;
        }
        if (cur->terminates) {
            add_loser(b, cur, off, MS_EXPLAIN_CHILD, win);
        }
        cur = win;
        off = win_off;
        add_step(b, cur, off, false);
    }
}

MS_EXPORT int ms_explain(const ms_as *as, uint64_t gpa,
                         struct ms_explanation **out)
{
    if (!as || !out) {
        return -EINVAL;
    }
    struct ms_explanation *e = calloc(1, sizeof(*e));
    if (!e) {
        return -ENOMEM;
    }
    struct builder b = {.e = e};
    const ms_flatview *fv = ms_as_flatview(as);
    e->gpa = gpa;
    e->as_root = as->root;
    e->view_root = fv ? fv->root : NULL;
    /* The view root sits at its own offset (top-level render call). */
    if (e->view_root && gpa >= e->view_root->addr &&
        (e->view_root->size == MS_SIZE_FULL ||
         gpa - e->view_root->addr < e->view_root->size)) {
        walk(&b, e->view_root, gpa - e->view_root->addr);
    }
    if (b.err) {
        ms_explanation_free(e);
        return b.err;
    }
    struct ms_flat_range fr;
    bool found = fv && ms_flatview_lookup(fv, gpa, &fr, NULL) == 0;
    if (found != (e->region != NULL) ||
        (found &&
         (fr.mr != e->region || fr.offset + (gpa - fr.gpa) != e->offset))) {
        ms_explanation_free(e);
        return -EPROTO;
    }
    if (found) {
        e->range_gpa = fr.gpa;
        e->range_last = fr.last;
        e->readonly = fr.readonly;
        e->nonvolatile = fr.nonvolatile;
    }
    *out = e;
    return 0;
}

MS_EXPORT void ms_explanation_free(struct ms_explanation *e)
{
    if (e) {
        free(e->steps);
        free(e->losers);
        free(e);
    }
}

MS_EXPORT const char *ms_explain_reason_name(enum ms_explain_reason r)
{
    switch (r) {
    case MS_EXPLAIN_PRIORITY:
        return "priority";
    case MS_EXPLAIN_ORDER:
        return "order";
    case MS_EXPLAIN_DISABLED:
        return "disabled";
    case MS_EXPLAIN_HOLE:
        return "hole";
    case MS_EXPLAIN_CHILD:
        return "child";
    }
    return "?";
}
