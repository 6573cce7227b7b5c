/* SPDX-License-Identifier: MIT */
/*
 * ms_system: the per-VM context, the log hook and the transaction counter.
 *
 * Invariants:
 * - depth counts open transactions; only the commit that brings it back to
 *   0 renders and notifies (commit.c).
 * - in_callback > 0 while any listener callback runs; every entry point
 *   that edits the topology checks ms__busy() first and returns -EBUSY, so
 *   a callback can never start a re-entrant commit.
 * - There is no file-scope mutable state in the library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *ms__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

void ms__log(const ms_system *sys, enum ms_log_level level, const char *fmt,
             ...)
{
    if (!sys || !sys->log) {
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sys->log(sys->log_opaque, level, buf);
}

MS_EXPORT int ms_system_new(const struct ms_system_config *cfg, ms_system **out)
{
    if (!out) {
        return -EINVAL;
    }
    uint32_t page = cfg && cfg->target_page_size ? cfg->target_page_size : 4096;
    if (page < 512 || (page & (page - 1)) != 0) {
        return -EINVAL;
    }
    ms_system *sys = calloc(1, sizeof(*sys));
    if (!sys) {
        return -ENOMEM;
    }
    if (cfg) {
        sys->log = cfg->log;
        sys->log_opaque = cfg->log_opaque;
        sys->big_endian = cfg->big_endian;
    }
    sys->target_page_size = page;
    sys->vm_running = true;
    int err = ms__flatview_new(sys, NULL, NULL, 0, &sys->empty_view);
    if (err < 0) {
        free(sys);
        return err;
    }
    *out = sys;
    return 0;
}

MS_EXPORT void ms_system_free(ms_system *sys)
{
    if (!sys) {
        return;
    }
    if (ms__busy(sys)) {
        ms__log(sys, MS_LOG_ERROR,
                "ms_system_free called from inside a listener callback; "
                "ignored");
        return;
    }
    /* Objects built on the system let go of it first... */
    while (sys->dependents) {
        struct ms__dependent *d = sys->dependents;
        sys->dependents = d->next;
        d->system_gone(d);
    }
    /* ...then listeners, so each hears its unregistration. */
    ms__listeners_detach_all(sys);
    sys->depth = 0;
    while (sys->as_first) {
        ms_as *as = sys->as_first;
        int err = ms_as_destroy(as);
        (void)err; /* cannot fail: no listeners, not busy */
    }
    ms__view_table_free(sys);
    /* Readers must be gone by now (documented); wait out the stragglers. */
    ms__flatview_reclaim(sys);
    ms__flatview_reclaim_force(sys);
    ms__flatview_free_now(sys->empty_view);
    ms__region_free_all(sys);
    free(sys);
}

void ms__dependent_add(ms_system *sys, struct ms__dependent *d)
{
    d->next = sys->dependents;
    sys->dependents = d;
}

void ms__dependent_del(ms_system *sys, struct ms__dependent *d)
{
    struct ms__dependent **pp = &sys->dependents;
    while (*pp && *pp != d) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = d->next;
    }
}

MS_EXPORT void ms_system_set_log(ms_system *sys, ms_log_fn log, void *opaque)
{
    if (!sys) {
        return;
    }
    sys->log = log;
    sys->log_opaque = opaque;
}

void ms__txn_begin(ms_system *sys)
{
    sys->depth++;
}

int ms__txn_commit(ms_system *sys)
{
    if (--sys->depth > 0) {
        return 0;
    }
    return ms__commit_outermost(sys);
}

MS_EXPORT int ms_txn_begin(ms_system *sys)
{
    if (!sys) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        ms__log(sys, MS_LOG_ERROR,
                "transaction begun from inside a listener callback");
        return -EBUSY;
    }
    if (sys->depth == UINT32_MAX) {
        return -EOVERFLOW;
    }
    ms__txn_begin(sys);
    return 0;
}

MS_EXPORT int ms_txn_commit(ms_system *sys)
{
    if (!sys) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        ms__log(sys, MS_LOG_ERROR,
                "transaction committed from inside a listener callback");
        return -EBUSY;
    }
    if (sys->depth == 0) {
        ms__log(sys, MS_LOG_ERROR, "commit without a matching begin");
        return -EINVAL;
    }
    return ms__txn_commit(sys);
}

MS_EXPORT unsigned ms_txn_depth(const ms_system *sys)
{
    return sys ? sys->depth : 0;
}
