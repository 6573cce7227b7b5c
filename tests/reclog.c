/* SPDX-License-Identifier: MIT */
#include "reclog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct reclog *of(struct ms_listener *l)
{
    return (struct reclog *)l;
}

static void out(struct reclog *r, const char *fmt, ...)
{
    struct reclog *t = r->shared ? r->shared : r;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (t->len + (size_t)n + 2 > t->cap) {
        t->cap = (t->len + (size_t)n + 2) * 2;
        t->buf = realloc(t->buf, t->cap);
        if (!t->buf) {
            abort();
        }
    }
    memcpy(t->buf + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->buf[t->len++] = '\n';
    t->buf[t->len] = 0;
}

static int result(struct reclog *r, const char *cb)
{
    if (r->fail_cb && strcmp(r->fail_cb, cb) == 0 && r->fail_count != 0) {
        if (r->fail_count > 0) {
            r->fail_count--;
        }
        return -(r->fail_errno ? r->fail_errno : EIO);
    }
    return 0;
}

static const char *as_name(const struct ms_section *s)
{
    return s->as ? ms_as_name(s->as) : "?";
}

static void sec(struct reclog *r, const char *cb, const struct ms_section *s,
                const char *extra)
{
    out(r, "%s %s %s %" PRIx64 "-%" PRIx64 " %s@%" PRIx64 "%s%s%s",
        r->l.name, cb, as_name(s), s->gpa, s->last,
        s->mr ? ms_region_name(s->mr) : "-", s->offset_within_region,
        s->readonly ? " ro" : "", s->nonvolatile ? " nv" : "",
        extra ? extra : "");
}

static int cb_begin(struct ms_listener *l)
{
    out(of(l), "%s begin", l->name);
    return result(of(l), "begin");
}

static int cb_commit(struct ms_listener *l)
{
    out(of(l), "%s commit", l->name);
    return result(of(l), "commit");
}

static int cb_region_add(struct ms_listener *l, const struct ms_section *s)
{
    struct reclog *r = of(l);
    sec(r, "region_add", s, NULL);
    if (r->edit_from_cb) {
        r->edit_result = ms_region_set_enabled(
            r->edit_from_cb, !ms_region_enabled(r->edit_from_cb));
        int e2 = ms_txn_begin(ms_region_system(r->edit_from_cb));
        if (r->edit_result == -EBUSY && e2 != -EBUSY) {
            r->edit_result = e2;
        }
    }
    return result(r, "region_add");
}

static int cb_region_del(struct ms_listener *l, const struct ms_section *s)
{
    sec(of(l), "region_del", s, NULL);
    return result(of(l), "region_del");
}

static int cb_region_nop(struct ms_listener *l, const struct ms_section *s)
{
    sec(of(l), "region_nop", s, NULL);
    return result(of(l), "region_nop");
}

static int cb_log_start(struct ms_listener *l, const struct ms_section *s,
                        unsigned o, unsigned n)
{
    char extra[64];
    snprintf(extra, sizeof(extra), " old=%u new=%u", o, n);
    sec(of(l), "log_start", s, extra);
    return result(of(l), "log_start");
}

static int cb_log_stop(struct ms_listener *l, const struct ms_section *s,
                       unsigned o, unsigned n)
{
    char extra[64];
    snprintf(extra, sizeof(extra), " old=%u new=%u", o, n);
    sec(of(l), "log_stop", s, extra);
    return result(of(l), "log_stop");
}

static int cb_log_sync(struct ms_listener *l, const struct ms_section *s)
{
    sec(of(l), "log_sync", s, NULL);
    return result(of(l), "log_sync");
}

static int cb_log_sync_global(struct ms_listener *l)
{
    out(of(l), "%s log_sync_global", l->name);
    return result(of(l), "log_sync_global");
}

static int cb_log_clear(struct ms_listener *l, const struct ms_section *s)
{
    sec(of(l), "log_clear", s, NULL);
    return result(of(l), "log_clear");
}

static int cb_log_global_start(struct ms_listener *l)
{
    out(of(l), "%s log_global_start", l->name);
    return result(of(l), "log_global_start");
}

static int cb_log_global_stop(struct ms_listener *l)
{
    out(of(l), "%s log_global_stop", l->name);
    return result(of(l), "log_global_stop");
}

static int cb_log_global_after_sync(struct ms_listener *l)
{
    out(of(l), "%s log_global_after_sync", l->name);
    return result(of(l), "log_global_after_sync");
}

static void ev(struct reclog *r, const char *cb, const struct ms_section *s,
               bool match, uint64_t data, int fd)
{
    char d[40] = "";
    if (match) {
        snprintf(d, sizeof(d), " data=%" PRIx64, data);
    }
    out(r, "%s %s %s %" PRIx64 "+%" PRIx64 "%s fd=%d%s", r->l.name, cb,
        as_name(s), s->gpa, s->size, d, fd, s->mr ? " MR!" : "");
}

static int cb_eventfd_add(struct ms_listener *l, const struct ms_section *s,
                          bool match, uint64_t data, int fd)
{
    struct reclog *r = of(l);
    ev(r, "eventfd_add", s, match, data, fd);
    int rc = result(r, "eventfd_add");
    return rc ? rc : r->eventfd_ret;
}

static int cb_eventfd_del(struct ms_listener *l, const struct ms_section *s,
                          bool match, uint64_t data, int fd)
{
    ev(of(l), "eventfd_del", s, match, data, fd);
    return result(of(l), "eventfd_del");
}

static int cb_coalesced_add(struct ms_listener *l, const struct ms_section *s,
                            uint64_t gpa, uint64_t size)
{
    char extra[64];
    snprintf(extra, sizeof(extra), " %" PRIx64 "+%" PRIx64, gpa, size);
    sec(of(l), "coalesced_io_add", s, extra);
    return result(of(l), "coalesced_io_add");
}

static int cb_coalesced_del(struct ms_listener *l, const struct ms_section *s,
                            uint64_t gpa, uint64_t size)
{
    char extra[64];
    snprintf(extra, sizeof(extra), " %" PRIx64 "+%" PRIx64, gpa, size);
    sec(of(l), "coalesced_io_del", s, extra);
    return result(of(l), "coalesced_io_del");
}

void reclog_init(struct reclog *r, const char *name, unsigned prio)
{
    memset(r, 0, sizeof(*r));
    r->l.name = name;
    r->l.priority = prio;
    r->l.begin = cb_begin;
    r->l.commit = cb_commit;
    r->l.region_add = cb_region_add;
    r->l.region_del = cb_region_del;
    r->l.region_nop = cb_region_nop;
    r->l.log_start = cb_log_start;
    r->l.log_stop = cb_log_stop;
    r->l.log_sync = cb_log_sync;
    r->l.log_clear = cb_log_clear;
    r->l.log_global_start = cb_log_global_start;
    r->l.log_global_stop = cb_log_global_stop;
    r->l.log_global_after_sync = cb_log_global_after_sync;
    r->l.eventfd_add = cb_eventfd_add;
    r->l.eventfd_del = cb_eventfd_del;
    r->l.coalesced_io_add = cb_coalesced_add;
    r->l.coalesced_io_del = cb_coalesced_del;
}

void reclog_use_sync_global(struct reclog *r)
{
    r->l.log_sync = NULL;
    r->l.log_sync_global = cb_log_sync_global;
}

void reclog_share(struct reclog *r, struct reclog *target)
{
    r->shared = target;
}

const char *reclog_text(struct reclog *r)
{
    struct reclog *t = r->shared ? r->shared : r;
    return t->buf ? t->buf : "";
}

void reclog_clear(struct reclog *r)
{
    struct reclog *t = r->shared ? r->shared : r;
    t->len = 0;
    if (t->buf) {
        t->buf[0] = 0;
    }
}

void reclog_free(struct reclog *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}
