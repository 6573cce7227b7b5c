/* SPDX-License-Identifier: MIT */
/*
 * Flat view objects: an immutable sorted array of disjoint ranges plus the
 * root it was rendered from, reference counted, and address lookup.
 *
 * A view holds one reference on its root and one on the region of each of
 * its ranges, so everything a listener is shown stays valid for as long as
 * the view it came from.  View reference counts are only touched on the
 * owner thread; other threads read published views under RCU, so the last
 * put retires the view and the owner frees retired views after a grace
 * period, at the end of its next commit (rcu.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

int ms__flatview_new(ms_system *sys, ms_region *root, ms__fr *ranges,
                     size_t nr, ms_flatview **out)
{
    ms_flatview *fv = calloc(1, sizeof(*fv));
    if (!fv) {
        return -ENOMEM;
    }
    fv->sys = sys;
    fv->refcnt = 1;
    fv->ranges = ranges;
    fv->nr = nr;
    int err = ms__dispatch_build(fv); /* access path; before any ref */
    if (err < 0) {
        free(fv);
        return err;
    }
    fv->root = ms_region_ref(root);
    if (root) {
        root->fv_root_views++;
    }
    for (size_t i = 0; i < nr; i++) {
        ms_region_ref(ranges[i].mr);
    }
    *out = fv;
    return 0;
}

ms_flatview *ms__flatview_get(ms_flatview *fv)
{
    if (fv) {
        fv->refcnt++;
    }
    return fv;
}

void ms__flatview_free_now(ms_flatview *fv)
{
    for (size_t i = 0; i < fv->nr; i++) {
        ms_region_unref(fv->ranges[i].mr);
    }
    ms_region_unref(fv->root);
    ms__dispatch_free(fv);
    free(fv->ranges);
    free(fv);
}

void ms__retire(ms_system *sys, struct ms__retired *obj,
                void (*free_fn)(struct ms__retired *obj))
{
    obj->free_fn = free_fn;
    obj->next = sys->retired;
    sys->retired = obj;
}

static void free_list(struct ms__retired *obj)
{
    while (obj) {
        struct ms__retired *next = obj->next;
        obj->free_fn(obj);
        obj = next;
    }
}

void ms__flatview_reclaim(ms_system *sys)
{
    if (!sys->retired) {
        return;
    }
    /*
     * A commit made from inside a read-side section (an MMIO callback
     * hot-plugging memory) cannot wait for a grace period: the retired
     * objects wait for the next commit made outside one.
     */
    if (urcu_bp_read_ongoing()) {
        return;
    }
    urcu_bp_synchronize_rcu();
    MS__TSAN_ACQUIRE(&sys->rcu_token);
    struct ms__retired *list = sys->retired;
    sys->retired = NULL;
    free_list(list);
}

void ms__flatview_reclaim_force(ms_system *sys)
{
    /* Only when no reader can be left (ms_system_free()). */
    struct ms__retired *list = sys->retired;
    sys->retired = NULL;
    free_list(list);
}

static void free_retired_view(struct ms__retired *obj)
{
    ms__flatview_free_now((ms_flatview *)((char *)obj -
                                          offsetof(ms_flatview, retired)));
}

void ms__flatview_put(ms_flatview *fv)
{
    if (!fv || --fv->refcnt != 0) {
        return;
    }
    /* Unpublished; readers may still be inside: free after a grace period. */
    if (fv->root) {
        fv->root->fv_root_views--;
    }
    ms__retire(fv->sys, &fv->retired, free_retired_view);
}

const ms__fr *ms__flatview_find(const ms_flatview *fv, uint64_t gpa)
{
    size_t lo = 0, hi = fv->nr;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ms__fr *fr = &fv->ranges[mid];
        if (gpa < fr->gpa) {
            hi = mid;
        } else if (gpa > fr->last) {
            lo = mid + 1;
        } else {
            return fr;
        }
    }
    return NULL;
}

MS_EXPORT const ms_flatview *ms_flatview_ref(const ms_flatview *fv)
{
    return ms__flatview_get((ms_flatview *)fv);
}

MS_EXPORT void ms_flatview_unref(const ms_flatview *fv)
{
    ms__flatview_put((ms_flatview *)fv);
}

MS_EXPORT size_t ms_flatview_nr_ranges(const ms_flatview *fv)
{
    return fv ? fv->nr : 0;
}

MS_EXPORT int ms_flatview_range(const ms_flatview *fv, size_t i,
                                struct ms_flat_range *out)
{
    if (!fv || !out) {
        return -EINVAL;
    }
    if (i >= fv->nr) {
        return -ERANGE;
    }
    *out = fv->ranges[i];
    return 0;
}

MS_EXPORT int ms_flatview_lookup(const ms_flatview *fv, uint64_t gpa,
                                 struct ms_flat_range *out, size_t *index)
{
    if (!fv || !out) {
        return -EINVAL;
    }
    const ms__fr *fr = ms__flatview_find(fv, gpa);
    if (!fr) {
        return -ENOENT;
    }
    *out = *fr;
    if (index) {
        *index = (size_t)(fr - fv->ranges);
    }
    return 0;
}

MS_EXPORT ms_region *ms_flatview_root(const ms_flatview *fv)
{
    return fv ? fv->root : NULL;
}
