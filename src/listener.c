/* SPDX-License-Identifier: MIT */
/*
 * Listener registration, priorities, replay and error records.
 *
 * Each listener is linked twice: into the system's global list (begin,
 * commit, log_global_*, log_sync) and into its address space's list
 * (region and eventfd callbacks).  Both lists are sorted by ascending
 * priority, ties in registration order: a new listener goes after every
 * listener whose priority is <= its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void ms__error_clear(ms_system *sys)
{
    /* Inside a multi-step operation the first error of all steps counts. */
    if (sys->error_hold) {
        return;
    }
    memset(&sys->last_error, 0, sizeof(sys->last_error));
}

void ms__error_record(ms_system *sys, int err, const struct ms_listener *l,
                      const char *callback, ms_as *as,
                      const struct ms_section *s)
{
    if (sys->last_error.error) {
        return; /* keep the first */
    }
    struct ms_error_info *e = &sys->last_error;
    e->error = err;
    e->listener = l;
    snprintf(sys->last_error_callback, sizeof(sys->last_error_callback),
             "%s", callback);
    e->callback = sys->last_error_callback;
    e->as = as;
    e->region = NULL;
    if (s) {
        e->gpa = s->gpa;
        e->size = s->size;
        if (s->mr) {
            snprintf(sys->last_error_region, sizeof(sys->last_error_region),
                     "%s", s->mr->name);
            e->region = sys->last_error_region;
        }
    }
    ms__log(sys, MS_LOG_ERROR,
            "listener '%s' failed in %s (errno %d)%s%s%s",
            l && l->name ? l->name : "(unnamed)", callback, -err,
            e->region ? " for region '" : "", e->region ? e->region : "",
            e->region ? "'" : "");
}

MS_EXPORT void ms_system_last_error(const ms_system *sys,
                                    struct ms_error_info *out)
{
    if (!sys || !out) {
        return;
    }
    *out = sys->last_error;
}

static void link_global(ms_system *sys, struct ms__listener_priv *p)
{
    struct ms__listener_priv *pos = sys->l_first;
    while (pos && pos->l->priority <= p->l->priority) {
        pos = pos->g_next;
    }
    p->g_next = pos;
    p->g_prev = pos ? pos->g_prev : sys->l_last;
    if (p->g_prev) {
        p->g_prev->g_next = p;
    } else {
        sys->l_first = p;
    }
    if (pos) {
        pos->g_prev = p;
    } else {
        sys->l_last = p;
    }
}

static void link_as(ms_as *as, struct ms__listener_priv *p)
{
    struct ms__listener_priv *pos = as->l_first;
    while (pos && pos->l->priority <= p->l->priority) {
        pos = pos->as_next;
    }
    p->as_next = pos;
    p->as_prev = pos ? pos->as_prev : as->l_last;
    if (p->as_prev) {
        p->as_prev->as_next = p;
    } else {
        as->l_first = p;
    }
    if (pos) {
        pos->as_prev = p;
    } else {
        as->l_last = p;
    }
    as->nr_listeners++;
}

static void unlink_both(ms_system *sys, struct ms__listener_priv *p)
{
    ms_as *as = p->as;
    if (p->g_prev) {
        p->g_prev->g_next = p->g_next;
    } else {
        sys->l_first = p->g_next;
    }
    if (p->g_next) {
        p->g_next->g_prev = p->g_prev;
    } else {
        sys->l_last = p->g_prev;
    }
    if (p->as_prev) {
        p->as_prev->as_next = p->as_next;
    } else {
        as->l_first = p->as_next;
    }
    if (p->as_next) {
        p->as_next->as_prev = p->as_prev;
    } else {
        as->l_last = p->as_prev;
    }
    as->nr_listeners--;
}

MS_EXPORT int ms_listener_register(ms_as *as, struct ms_listener *l)
{
    if (!as || !l) {
        return -EINVAL;
    }
    ms_system *sys = as->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (l->priv_) {
        return -EEXIST;
    }
    if (l->log_sync && l->log_sync_global) {
        ms__log(sys, MS_LOG_ERROR,
                "listener '%s' has both log_sync and log_sync_global",
                l->name ? l->name : "(unnamed)");
        return -EINVAL;
    }
    struct ms__listener_priv *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    p->l = l;
    p->as = as;
    l->priv_ = p;
    link_global(sys, p);
    link_as(as, p);

    /* Replay the published view to this listener alone. */
    ms__error_clear(sys);
    const ms_flatview *fv = as->view;
    (void)ms__call_simple(sys, l, l->begin, "begin");
    if (sys->global_dirty) {
        (void)ms__call_simple(sys, l, l->log_global_start,
                              "log_global_start");
    }
    for (size_t i = 0; i < fv->nr; i++) {
        const ms__fr *fr = &fv->ranges[i];
        struct ms_section s;
        ms__section_from_fr(&s, fr, fv, as);
        if (ms__call_section(sys, l, l->region_add, "region_add", &s) < 0) {
            ms__failed_put(p, fr);
        }
        if (fr->dirty_log_mask) {
            (void)ms__call_log(sys, l, true, &s, 0, fr->dirty_log_mask);
        }
    }
    (void)ms__call_simple(sys, l, l->commit, "commit");
    return sys->last_error.error;
}

static void unregister(ms_system *sys, struct ms__listener_priv *p)
{
    struct ms_listener *l = p->l;
    ms_as *as = p->as;
    const ms_flatview *fv = as->view;
    (void)ms__call_simple(sys, l, l->begin, "begin");
    for (size_t i = 0; i < fv->nr; i++) {
        const ms__fr *fr = &fv->ranges[i];
        struct ms_section s;
        ms__section_from_fr(&s, fr, fv, as);
        if (fr->dirty_log_mask) {
            (void)ms__call_log(sys, l, false, &s, fr->dirty_log_mask, 0);
        }
        if (!ms__failed_take(p, fr)) {
            (void)ms__call_section(sys, l, l->region_del, "region_del", &s);
        }
    }
    (void)ms__call_simple(sys, l, l->commit, "commit");
    unlink_both(sys, p);
    free(p->failed);
    free(p);
    l->priv_ = NULL;
}

MS_EXPORT int ms_listener_unregister(struct ms_listener *l)
{
    if (!l) {
        return -EINVAL;
    }
    struct ms__listener_priv *p = l->priv_;
    if (!p) {
        return 0;
    }
    ms_system *sys = p->as->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    unregister(sys, p);
    return 0;
}

void ms__listeners_detach_all(ms_system *sys)
{
    while (sys->l_first) {
        unregister(sys, sys->l_first);
    }
}

MS_EXPORT int ms_listener_resync(struct ms_listener *l)
{
    if (!l) {
        return -EINVAL;
    }
    struct ms__listener_priv *p = l->priv_;
    if (!p) {
        return -EINVAL;
    }
    ms_as *as = p->as;
    ms_system *sys = as->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    ms__error_clear(sys);
    if (!p->nr_failed) {
        return 0;
    }
    (void)ms__call_simple(sys, l, l->begin, "begin");
    /* Failed ranges are always ranges of the published view. */
    const ms_flatview *fv = as->view;
    for (size_t i = 0; i < fv->nr && p->nr_failed; i++) {
        const ms__fr *fr = &fv->ranges[i];
        if (!ms__failed_take(p, fr)) {
            continue;
        }
        struct ms_section s;
        ms__section_from_fr(&s, fr, fv, as);
        if (ms__call_section(sys, l, l->region_add, "region_add", &s) < 0) {
            ms__failed_put(p, fr);
        }
    }
    (void)ms__call_simple(sys, l, l->commit, "commit");
    return sys->last_error.error;
}
