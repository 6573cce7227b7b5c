/* SPDX-License-Identifier: MIT */
/*
 * The commit driver: render, diff, notify, publish.
 *
 * Outermost commit with the topology pending (docs/listeners.md):
 *   1. render one fresh view per distinct flat-view root (address spaces
 *      in creation order); on -ENOMEM nothing is published and the change
 *      stays pending;
 *   2. begin on every listener (ascending priority);
 *   3. per address space in creation order: the deletion pass, the
 *      addition/no-op pass, publish the new view, update ioeventfds;
 *   4. clear the pending flags; commit on every listener (ascending).
 * With only ioeventfds pending, step 3's ioeventfd update runs alone.
 *
 * Failing callbacks: every callback is still delivered and the first error
 * is returned (and kept for ms_system_last_error()).  A range whose
 * region_add failed is remembered per listener: the listener gets
 * region_add again (instead of region_nop) at the next commit or on
 * ms_listener_resync(), and no region_del if the range goes away first.
 * Listeners cannot edit the topology from a callback (ms__busy()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void ms__section_from_fr(struct ms_section *s, const ms__fr *fr,
                         const ms_flatview *fv, ms_as *as)
{
    struct ms__range r = { fr->gpa, fr->last };
    s->mr = fr->mr;
    s->fv = fv;
    s->as = as;
    s->offset_within_region = fr->offset;
    s->gpa = fr->gpa;
    s->last = fr->last;
    s->size = ms__range_size(r);
    s->readonly = fr->readonly;
    s->nonvolatile = fr->nonvolatile;
}

static bool fr_equal(const ms__fr *a, const ms__fr *b)
{
    return a->mr == b->mr && a->gpa == b->gpa && a->last == b->last &&
           a->offset == b->offset && a->romd == b->romd &&
           a->readonly == b->readonly && a->nonvolatile == b->nonvolatile;
}

/* Failed-add bookkeeping: a sorted (by gpa) array per listener. */

static ssize_t failed_find(const struct ms__listener_priv *p,
                           const ms__fr *fr)
{
    size_t lo = 0, hi = p->nr_failed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->failed[mid].gpa < fr->gpa) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < p->nr_failed && fr_equal(&p->failed[lo], fr)) {
        return (ssize_t)lo;
    }
    return -1;
}

static bool failed_take(struct ms__listener_priv *p, const ms__fr *fr)
{
    if (!p->nr_failed) {
        return false;
    }
    ssize_t i = failed_find(p, fr);
    if (i < 0) {
        return false;
    }
    memmove(&p->failed[i], &p->failed[i + 1],
            (p->nr_failed - (size_t)i - 1) * sizeof(*p->failed));
    p->nr_failed--;
    return true;
}

static void failed_put(struct ms__listener_priv *p, const ms__fr *fr)
{
    if (p->nr_failed == p->cap_failed) {
        size_t ncap = p->cap_failed ? p->cap_failed * 2 : 8;
        ms__fr *nf = realloc(p->failed, ncap * sizeof(*nf));
        if (!nf) {
            /* Cannot remember it: the listener will get region_nop. */
            return;
        }
        p->failed = nf;
        p->cap_failed = ncap;
    }
    size_t i = 0;
    while (i < p->nr_failed && p->failed[i].gpa < fr->gpa) {
        i++;
    }
    memmove(&p->failed[i + 1], &p->failed[i],
            (p->nr_failed - i) * sizeof(*p->failed));
    p->failed[i] = *fr;
    p->nr_failed++;
}

bool ms__failed_take(struct ms__listener_priv *p, const ms__fr *fr)
{
    return failed_take(p, fr);
}

void ms__failed_put(struct ms__listener_priv *p, const ms__fr *fr)
{
    failed_put(p, fr);
}

/* Callback invocation with the re-entrancy guard and error capture. */

static void note(ms_system *sys, int rc, const struct ms_listener *l,
                 const char *cb, ms_as *as, const struct ms_section *s)
{
    if (rc < 0) {
        ms__error_record(sys, rc, l, cb, as, s);
    }
}

int ms__call_simple(ms_system *sys, struct ms_listener *l,
                    int (*fn)(struct ms_listener *), const char *cb)
{
    if (!fn) {
        return 0;
    }
    sys->in_callback++;
    int rc = fn(l);
    sys->in_callback--;
    note(sys, rc, l, cb, NULL, NULL);
    return rc;
}

int ms__call_section(ms_system *sys, struct ms_listener *l,
                     int (*fn)(struct ms_listener *,
                               const struct ms_section *),
                     const char *cb, const struct ms_section *s)
{
    if (!fn) {
        return 0;
    }
    sys->in_callback++;
    int rc = fn(l, s);
    sys->in_callback--;
    note(sys, rc, l, cb, s->as, s);
    return rc;
}

int ms__call_log(ms_system *sys, struct ms_listener *l, bool start,
                 const struct ms_section *s, unsigned old_mask,
                 unsigned new_mask)
{
    int (*fn)(struct ms_listener *, const struct ms_section *, unsigned,
              unsigned) = start ? l->log_start : l->log_stop;
    if (!fn) {
        return 0;
    }
    sys->in_callback++;
    int rc = fn(l, s, old_mask, new_mask);
    sys->in_callback--;
    note(sys, rc, l, start ? "log_start" : "log_stop", s->as, s);
    return rc;
}

void ms__call_coalesced(ms_system *sys, struct ms_listener *l, bool add,
                        const struct ms_section *s, uint64_t gpa,
                        uint64_t size)
{
    int (*fn)(struct ms_listener *, const struct ms_section *, uint64_t,
              uint64_t) = add ? l->coalesced_io_add : l->coalesced_io_del;
    if (!fn) {
        return;
    }
    sys->in_callback++;
    int rc = fn(l, s, gpa, size);
    sys->in_callback--;
    note(sys, rc, l, add ? "coalesced_io_add" : "coalesced_io_del", s->as, s);
}

/*
 * Coalesced ranges of fr->mr that meet @fr, in AS coordinates, each sent
 * to every listener of @as (forward for add, reverse for del).
 */
static void coalesced_notify(ms_as *as, const ms__fr *fr,
                             const struct ms_section *s, bool add)
{
    const ms_region *mr = fr->mr;
    struct ms__range ext = { fr->offset, fr->offset + (fr->last - fr->gpa) };
    for (size_t k = 0; k < mr->nr_coalesced; k++) {
        struct ms__range c, x;
        if (!ms__range_make(mr->coalesced[k].addr, mr->coalesced[k].size,
                            &c) ||
            !ms__range_intersect(c, ext, &x)) {
            continue;
        }
        uint64_t gpa = fr->gpa + (x.first - fr->offset);
        uint64_t size = ms__range_size(x);
        if (add) {
            for (struct ms__listener_priv *p = as->l_first; p;
                 p = p->as_next) {
                ms__call_coalesced(as->sys, p->l, true, s, gpa, size);
            }
        } else {
            for (struct ms__listener_priv *p = as->l_last; p;
                 p = p->as_prev) {
                ms__call_coalesced(as->sys, p->l, false, s, gpa, size);
            }
        }
    }
}

static void range_del(ms_as *as, const ms_flatview *fv, const ms__fr *o)
{
    struct ms_section s;
    ms__section_from_fr(&s, o, fv, as);
    if (o->mr->nr_coalesced) {
        coalesced_notify(as, o, &s, false);
    }
    for (struct ms__listener_priv *p = as->l_last; p; p = p->as_prev) {
        if (failed_take(p, o)) {
            continue; /* it never had the range */
        }
        (void)ms__call_section(as->sys, p->l, p->l->region_del,
                               "region_del", &s);
    }
}

static void range_add(ms_as *as, const ms_flatview *fv, const ms__fr *n)
{
    struct ms_section s;
    ms__section_from_fr(&s, n, fv, as);
    for (struct ms__listener_priv *p = as->l_first; p; p = p->as_next) {
        if (ms__call_section(as->sys, p->l, p->l->region_add, "region_add",
                             &s) < 0) {
            failed_put(p, n);
        }
    }
    if (n->mr->nr_coalesced) {
        coalesced_notify(as, n, &s, true);
    }
}

static void range_nop(ms_as *as, const ms__fr *o, const ms_flatview *fv,
                      const ms__fr *n)
{
    struct ms_section s;
    ms__section_from_fr(&s, n, fv, as);
    for (struct ms__listener_priv *p = as->l_first; p; p = p->as_next) {
        if (p->nr_failed && failed_find(p, n) >= 0) {
            /* Retry the add that failed earlier. */
            if (ms__call_section(as->sys, p->l, p->l->region_add,
                                 "region_add", &s) == 0) {
                failed_take(p, n);
            }
            continue;
        }
        (void)ms__call_section(as->sys, p->l, p->l->region_nop,
                               "region_nop", &s);
    }
    if (n->dirty_log_mask & ~o->dirty_log_mask) {
        for (struct ms__listener_priv *p = as->l_first; p; p = p->as_next) {
            (void)ms__call_log(as->sys, p->l, true, &s, o->dirty_log_mask,
                               n->dirty_log_mask);
        }
    }
    if (o->dirty_log_mask & ~n->dirty_log_mask) {
        for (struct ms__listener_priv *p = as->l_last; p; p = p->as_prev) {
            (void)ms__call_log(as->sys, p->l, false, &s, o->dirty_log_mask,
                               n->dirty_log_mask);
        }
    }
}

static void diff_pass(ms_as *as, const ms_flatview *old,
                      const ms_flatview *new, bool adding)
{
    size_t i = 0, j = 0;
    while (i < old->nr || j < new->nr) {
        const ms__fr *o = i < old->nr ? &old->ranges[i] : NULL;
        const ms__fr *n = j < new->nr ? &new->ranges[j] : NULL;
        if (o && (!n || o->gpa < n->gpa ||
                  (o->gpa == n->gpa && !fr_equal(o, n)))) {
            if (!adding) {
                range_del(as, old, o);
            }
            i++;
        } else if (o && n && fr_equal(o, n)) {
            if (adding) {
                range_nop(as, o, new, n);
            }
            i++;
            j++;
        } else {
            if (adding) {
                range_add(as, new, n);
            }
            j++;
        }
    }
}

/* The view table: one view per flat-view root for the current generation. */

static void table_reset(ms_system *sys)
{
    for (size_t i = 0; i < sys->fv_nr; i++) {
        ms__flatview_put(sys->fv_table[i]);
    }
    sys->fv_nr = 0;
    sys->render_gen++;
}

/* The current-generation view of @as's root, rendering it if missing. */
static int view_for(ms_as *as, ms_flatview **out)
{
    ms_system *sys = as->sys;
    ms_region *root = ms__flatview_root_of(as->root);
    if (!root) {
        *out = sys->empty_view;
        return 0;
    }
    if (root->fv_gen == sys->render_gen && root->fv_cache) {
        *out = root->fv_cache;
        return 0;
    }
    if (sys->fv_nr == sys->fv_cap) {
        size_t ncap = sys->fv_cap ? sys->fv_cap * 2 : 8;
        ms_flatview **nt = realloc(sys->fv_table, ncap * sizeof(*nt));
        if (!nt) {
            return -ENOMEM;
        }
        sys->fv_table = nt;
        sys->fv_cap = ncap;
    }
    ms_flatview *fv;
    int err = ms__render(sys, root, &fv);
    if (err < 0) {
        return err;
    }
    sys->fv_table[sys->fv_nr++] = fv;
    root->fv_gen = sys->render_gen;
    root->fv_cache = fv;
    *out = fv;
    return 0;
}

/* Publish @new on @as, notifying its listeners of the difference. */
static void set_view(ms_as *as, ms_flatview *new)
{
    ms_flatview *old = as->view;
    if (old == new) {
        return;
    }
    if (as->l_first) {
        const ms_flatview *o = old ? old : as->sys->empty_view;
        diff_pass(as, o, new, false);
        diff_pass(as, o, new, true);
    }
    ms__rcu_publish(&as->view, ms__flatview_get(new));
    ms__flatview_put(old);
}

int ms__as_install_view(ms_as *as)
{
    ms_flatview *fv;
    int err = view_for(as, &fv);
    if (err < 0) {
        return err;
    }
    ms__rcu_publish(&as->view, ms__flatview_get(fv));
    return 0;
}

int ms__commit_outermost(ms_system *sys)
{
    ms__error_clear(sys);
    if (sys->topology_pending) {
        table_reset(sys);
        for (ms_as *as = sys->as_first; as; as = as->next) {
            ms_flatview *fv;
            int err = view_for(as, &fv);
            if (err < 0) {
                /* Nothing published; the change stays pending. */
                table_reset(sys);
                ms__log(sys, MS_LOG_ERROR,
                        "commit failed: out of memory rendering '%s'",
                        as->name);
                return err;
            }
        }
        for (struct ms__listener_priv *p = sys->l_first; p; p = p->g_next) {
            (void)ms__call_simple(sys, p->l, p->l->begin, "begin");
        }
        for (ms_as *as = sys->as_first; as; as = as->next) {
            ms_flatview *fv;
            if (view_for(as, &fv) == 0) { /* cached by the first pass */
                set_view(as, fv);
            }
            (void)ms__as_update_ioeventfds(as);
        }
        sys->topology_pending = false;
        sys->ioeventfd_pending = false;
        for (struct ms__listener_priv *p = sys->l_first; p; p = p->g_next) {
            (void)ms__call_simple(sys, p->l, p->l->commit, "commit");
        }
        ms__flatview_reclaim(sys);
        /* Regions whose last DMA mapping went since they were released. */
        if (sys->zombies) {
            ms__region_reap(sys);
        }
    } else if (sys->ioeventfd_pending) {
        for (ms_as *as = sys->as_first; as; as = as->next) {
            (void)ms__as_update_ioeventfds(as);
        }
        sys->ioeventfd_pending = false;
    }
    return sys->last_error.error;
}

void ms__view_table_free(ms_system *sys)
{
    table_reset(sys);
    free(sys->fv_table);
    sys->fv_table = NULL;
    sys->fv_cap = 0;
}
