/* SPDX-License-Identifier: MIT */
/*
 * Coalesced MMIO ranges (memory-model.md 4.7): region-relative ranges,
 * announced to listeners immediately when added or cleared; the commit
 * driver (commit.c) repeats them around region_add / region_del.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "memspace/coalesced.h"

/* Tell every listener of every AS about @c for each range showing @r. */
static void announce(ms_region *r, const struct ms__coalesced *c, bool add)
{
    ms_system *sys = r->sys;
    struct ms__range want;
    if (!ms__range_make(c->addr, c->size, &want)) {
        return;
    }
    for (ms_as *as = sys->as_first; as; as = as->next) {
        const ms_flatview *fv = as->view;
        for (size_t i = 0; i < fv->nr; i++) {
            const ms__fr *fr = &fv->ranges[i];
            struct ms__range ext = { fr->offset,
                                     fr->offset + (fr->last - fr->gpa) };
            struct ms__range x;
            if (fr->mr != r || !ms__range_intersect(want, ext, &x)) {
                continue;
            }
            struct ms_section s;
            ms__section_from_fr(&s, fr, fv, as);
            uint64_t gpa = fr->gpa + (x.first - fr->offset);
            uint64_t size = ms__range_size(x);
            struct ms__listener_priv *p = add ? as->l_first : as->l_last;
            for (; p; p = add ? p->as_next : p->as_prev) {
                ms__call_coalesced(sys, p->l, add, &s, gpa, size);
            }
        }
    }
}

MS_EXPORT int ms_region_add_coalescing(ms_region *r, uint64_t offset,
                                       uint64_t size)
{
    if (!r || size == 0) {
        return -EINVAL;
    }
    if (!ms__window_fits(offset, size, r->size)) {
        return -ERANGE;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    struct ms__coalesced *n =
        realloc(r->coalesced, (r->nr_coalesced + 1) * sizeof(*n));
    if (!n) {
        return -ENOMEM;
    }
    r->coalesced = n;
    n[r->nr_coalesced] = (struct ms__coalesced){ offset, size };
    r->nr_coalesced++;
    ms__error_clear(r->sys);
    announce(r, &n[r->nr_coalesced - 1], true);
    return r->sys->last_error.error;
}

MS_EXPORT int ms_region_clear_coalescing(ms_region *r)
{
    if (!r) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    ms__error_clear(r->sys);
    for (size_t i = 0; i < r->nr_coalesced; i++) {
        announce(r, &r->coalesced[i], false);
    }
    free(r->coalesced);
    r->coalesced = NULL;
    r->nr_coalesced = 0;
    return r->sys->last_error.error;
}

MS_EXPORT int ms_region_set_coalescing(ms_region *r)
{
    int err = ms_region_clear_coalescing(r);
    if (err == -EINVAL || err == -EBUSY || !r || r->size == 0) {
        return err < 0 ? err : -EINVAL;
    }
    int err2 = ms_region_add_coalescing(r, 0, r->size);
    return err < 0 ? err : err2;
}
