/* SPDX-License-Identifier: MIT */
/*
 * Topology descriptions: storage, id index, structural checks, accessors
 * and the "likely mistakes" checks behind `memspace validate`.
 *
 * A description is plain data; nothing here touches an ms_system.  The
 * structural checks (ms__topo_finish) run once after a loader filled a
 * description, so that the builder and the tool can rely on the invariants
 * listed in topology_internal.h.
 *
 * Expected workload: up to a few hundred thousand regions; every pass is
 * linear or n log n.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology_internal.h"

char *ms__topo_strdup(const char *s)
{
    return s ? ms__topo_strndup(s, strlen(s)) : NULL;
}

char *ms__topo_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void ms__topo_err(struct ms_topology_error *err, int error, const char *file,
                  unsigned line, unsigned column, const char *path,
                  const char *fmt, ...)
{
    if (!err || err->error) {
        return; /* keep the first error */
    }
    err->error = error;
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
    err->column = column;
    snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->rule, sizeof(err->rule), fmt, ap);
    va_end(ap);
}

MS_EXPORT const char *
ms_topology_error_format(const struct ms_topology_error *err, char *buf,
                         size_t size)
{
    if (!buf || size == 0) {
        return buf;
    }
    buf[0] = 0;
    if (!err) {
        return buf;
    }
    size_t len = 0;
#define APPEND(...)                                                            \
    do {                                                                       \
        if (len < size) {                                                      \
            int n_ = snprintf(buf + len, size - len, __VA_ARGS__);             \
            if (n_ > 0) {                                                      \
                len += (size_t)n_;                                             \
            }                                                                  \
        }                                                                      \
    } while (0)
    if (err->file[0]) {
        APPEND("%s:", err->file);
    }
    if (err->line) {
        APPEND("%u:", err->line);
        if (err->column) {
            APPEND("%u:", err->column);
        }
    }
    if (len) {
        APPEND(" ");
    }
    if (err->path[0]) {
        APPEND("%s: ", err->path);
    }
    APPEND("%s", err->rule[0] ? err->rule : "error");
#undef APPEND
    return buf;
}

static const char *const kind_names[] = {
    [MS_REGION_CONTAINER] = "container",
    [MS_REGION_RAM] = "ram",
    [MS_REGION_ROM] = "rom",
    [MS_REGION_ROM_DEVICE] = "rom_device",
    [MS_REGION_RAM_DEVICE] = "ram_device",
    [MS_REGION_IO] = "io",
    [MS_REGION_ALIAS] = "alias",
    [MS_REGION_RESERVATION] = "reservation",
};

const char *ms__topo_kind_name(enum ms_region_kind k)
{
    return (unsigned)k <= MS_REGION_RESERVATION ? kind_names[k] : "?";
}

int ms__topo_kind_parse(const char *s, enum ms_region_kind *out)
{
    for (unsigned k = 0; k <= MS_REGION_RESERVATION; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (enum ms_region_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

uint64_t ms__topo_last(uint64_t start, uint64_t size)
{
    struct ms__range r;
    return ms__range_make(start, size, &r) ? r.last : start;
}

int ms__topo_new(ms_topology **out)
{
    ms_topology *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

int ms__topo_add(ms_topology *t, size_t *idx)
{
    if (t->nr >= MS__TOPO_MAX_REGIONS) {
        return -E2BIG;
    }
    if (t->nr == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct ms__treg *nr = realloc(t->r, ncap * sizeof(*nr));
        if (!nr) {
            return -ENOMEM;
        }
        t->r = nr;
        t->cap = ncap;
    }
    struct ms__treg *r = &t->r[t->nr];
    memset(r, 0, sizeof(*r));
    r->enabled = true;
    r->romd = true;
    r->container = MS__TOPO_NONE;
    r->target = MS__TOPO_NONE;
    *idx = t->nr++;
    return 0;
}

int ms__topo_add_sub(ms_topology *t, size_t parent, size_t child)
{
    struct ms__treg *p = &t->r[parent];
    if (p->nr_subs == p->cap_subs) {
        size_t ncap = p->cap_subs ? p->cap_subs * 2 : 4;
        size_t *ns = realloc(p->subs, ncap * sizeof(*ns));
        if (!ns) {
            return -ENOMEM;
        }
        p->subs = ns;
        p->cap_subs = ncap;
    }
    p->subs[p->nr_subs++] = child;
    t->r[child].container = parent;
    return 0;
}

int ms__topo_add_as(ms_topology *t, const char *id, const char *name,
                    size_t root)
{
    if (t->nr_as == t->cap_as) {
        size_t ncap = t->cap_as ? t->cap_as * 2 : 8;
        struct ms__tas *na = realloc(t->as, ncap * sizeof(*na));
        if (!na) {
            return -ENOMEM;
        }
        t->as = na;
        t->cap_as = ncap;
    }
    struct ms__tas *a = &t->as[t->nr_as];
    a->id = ms__topo_strdup(id);
    a->name = ms__topo_strdup(name);
    a->root = root;
    if (!a->id || !a->name) {
        free(a->id);
        free(a->name);
        return -ENOMEM;
    }
    t->nr_as++;
    return 0;
}

uint64_t ms__topo_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int ms__topo_index(ms_topology *t, size_t *dup)
{
    size_t cap = 16;
    while (cap < t->nr * 2 + 1) {
        cap *= 2;
    }
    size_t *h = calloc(cap, sizeof(*h));
    if (!h) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->nr; i++) {
        size_t s = (size_t)ms__topo_hash(t->r[i].id) & (cap - 1);
        while (h[s]) {
            if (strcmp(t->r[h[s] - 1].id, t->r[i].id) == 0) {
                free(h);
                *dup = i;
                return -EEXIST;
            }
            s = (s + 1) & (cap - 1);
        }
        h[s] = i + 1;
    }
    free(t->hash);
    t->hash = h;
    t->hash_cap = cap;
    return 0;
}

size_t ms__topo_find(const ms_topology *t, const char *id)
{
    if (!t || !id || !t->hash) {
        return MS__TOPO_NONE;
    }
    size_t s = (size_t)ms__topo_hash(id) & (t->hash_cap - 1);
    while (t->hash[s]) {
        if (strcmp(t->r[t->hash[s] - 1].id, id) == 0) {
            return t->hash[s] - 1;
        }
        s = (s + 1) & (t->hash_cap - 1);
    }
    return MS__TOPO_NONE;
}

/*
 * Iterative DFS over subregion and alias edges: a grey node met again is a
 * cycle; the longest path (in regions) is bounded so that the library's
 * recursive render and print never go deep.
 */
int ms__topo_finish(ms_topology *t, struct ms_topology_error *err,
                    const char *file)
{
    size_t n = t->nr;
    unsigned char *color = calloc(n ? n : 1, 1);
    size_t *len = calloc(n ? n : 1, sizeof(*len));
    size_t *stack = malloc((n ? n : 1) * sizeof(*stack));
    size_t *pos = calloc(n ? n : 1, sizeof(*pos));
    int rc = 0;
    if (!color || !len || !stack || !pos) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t depth = 0;
        for (size_t c = t->r[i].container; c != MS__TOPO_NONE;
             c = t->r[c].container) {
            if (++depth > MS__TOPO_MAX_DEPTH) {
                ms__topo_err(err, -EINVAL, file, 0, 0, t->r[i].where,
                             "regions are nested more than %d levels deep",
                             MS__TOPO_MAX_DEPTH);
                rc = -EINVAL;
                break;
            }
        }
    }
    for (size_t root = 0; root < n && !rc; root++) {
        if (color[root]) {
            continue;
        }
        size_t sp = 0;
        stack[sp++] = root;
        color[root] = 1;
        pos[root] = 0;
        while (sp && !rc) {
            size_t v = stack[sp - 1];
            struct ms__treg *r = &t->r[v];
            /* Edge k: subregions 0..nr_subs-1, then the alias target. */
            size_t k = pos[v]++;
            size_t w = MS__TOPO_NONE;
            if (k < r->nr_subs) {
                w = r->subs[k];
            } else if (k == r->nr_subs) {
                w = r->target;
            } else {
                size_t best = 0;
                for (size_t j = 0; j < r->nr_subs; j++) {
                    best = len[r->subs[j]] > best ? len[r->subs[j]] : best;
                }
                if (r->target != MS__TOPO_NONE && len[r->target] > best) {
                    best = len[r->target];
                }
                len[v] = best + 1;
                color[v] = 2;
                sp--;
                if (len[v] > MS__TOPO_MAX_PATH) {
                    ms__topo_err(err, -EINVAL, file, 0, 0, r->where,
                                 "a chain of more than %d regions "
                                 "(subregions and alias targets) starts "
                                 "at region '%s'",
                                 MS__TOPO_MAX_PATH, r->id);
                    rc = -EINVAL;
                }
                continue;
            }
            if (w == MS__TOPO_NONE) {
                continue;
            }
            if (color[w] == 1) {
                ms__topo_err(err, -EINVAL, file, 0, 0, r->where,
                             "region '%s' reaches itself through "
                             "subregions and alias targets (via '%s')",
                             t->r[w].id, r->id);
                rc = -EINVAL;
            } else if (color[w] == 0) {
                color[w] = 1;
                pos[w] = 0;
                stack[sp++] = w;
            }
        }
    }
out:
    free(color);
    free(len);
    free(stack);
    free(pos);
    return rc;
}

MS_EXPORT void ms_topology_free(ms_topology *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->nr; i++) {
        struct ms__treg *r = &t->r[i];
        free(r->id);
        free(r->name);
        free(r->owner);
        free(r->where);
        free(r->subs);
        free(r->efd);
    }
    for (size_t i = 0; i < t->nr_as; i++) {
        free(t->as[i].id);
        free(t->as[i].name);
    }
    free(t->r);
    free(t->as);
    free(t->hash);
    free(t);
}

MS_EXPORT size_t ms_topology_nr_regions(const ms_topology *t)
{
    return t ? t->nr : 0;
}

MS_EXPORT int ms_topology_region(const ms_topology *t, size_t i,
                                 struct ms_topology_region *out)
{
    if (!t || !out) {
        return -EINVAL;
    }
    if (i >= t->nr) {
        return -ERANGE;
    }
    const struct ms__treg *r = &t->r[i];
    *out = (struct ms_topology_region){
        .id = r->id,
        .name = r->name,
        .owner = r->owner,
        .kind = r->kind,
        .size = r->size,
        .addr = r->addr,
        .priority = r->priority,
        .enabled = r->enabled,
        .readonly = r->readonly,
        .nonvolatile = r->nonvolatile,
        .romd = r->romd,
        .log_vga = r->log_vga,
        .container = r->container,
        .alias_target = r->target,
        .alias_offset = r->alias_offset,
        .nr_subregions = r->nr_subs,
        .nr_eventfds = r->nr_efd,
        .guessed = r->guessed,
        .where = r->where ? r->where : "",
    };
    return 0;
}

MS_EXPORT size_t ms_topology_subregion(const ms_topology *t, size_t i, size_t k)
{
    if (!t || i >= t->nr || k >= t->r[i].nr_subs) {
        return SIZE_MAX;
    }
    return t->r[i].subs[k];
}

MS_EXPORT int ms_topology_eventfd(const ms_topology *t, size_t i, size_t k,
                                  struct ms_topology_eventfd *out)
{
    if (!t || !out) {
        return -EINVAL;
    }
    if (i >= t->nr || k >= t->r[i].nr_efd) {
        return -ERANGE;
    }
    *out = t->r[i].efd[k];
    return 0;
}

MS_EXPORT size_t ms_topology_find(const ms_topology *t, const char *id)
{
    return ms__topo_find(t, id);
}

MS_EXPORT size_t ms_topology_nr_as(const ms_topology *t)
{
    return t ? t->nr_as : 0;
}

MS_EXPORT int ms_topology_as(const ms_topology *t, size_t i,
                             struct ms_topology_as *out)
{
    if (!t || !out) {
        return -EINVAL;
    }
    if (i >= t->nr_as) {
        return -ERANGE;
    }
    out->id = t->as[i].id;
    out->name = t->as[i].name;
    out->root = t->as[i].root;
    return 0;
}

/* ---- ms_topology_check ------------------------------------------------ */

struct issue_ctx {
    const ms_topology *t;
    ms_topology_issue_fn fn;
    void *opaque;
    int count;
};

static const char *label(const struct ms__treg *r)
{
    return r->name ? r->name : r->id;
}

static void MS__PRINTF(4, 5) report(struct issue_ctx *c, const char *kind,
                                    size_t region, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->count++;
    if (c->fn) {
        struct ms_topology_issue is = {
            .kind = kind,
            .message = msg,
            .region = region,
            .where = c->t->r[region].where ? c->t->r[region].where : "",
        };
        c->fn(c->opaque, &is);
    }
}

struct span {
    size_t idx;
    uint64_t first, last;
    int32_t prio;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->prio != y->prio) {
        return x->prio < y->prio ? -1 : 1;
    }
    if (x->first != y->first) {
        return x->first < y->first ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static int check_overlaps(struct issue_ctx *c, size_t parent)
{
    const ms_topology *t = c->t;
    const struct ms__treg *p = &t->r[parent];
    struct span *s = malloc((p->nr_subs ? p->nr_subs : 1) * sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < p->nr_subs; k++) {
        const struct ms__treg *r = &t->r[p->subs[k]];
        if (!r->enabled || r->size == 0) {
            continue;
        }
        s[n].idx = p->subs[k];
        s[n].first = r->addr;
        s[n].last = ms__topo_last(r->addr, r->size);
        s[n].prio = r->priority;
        n++;
    }
    qsort(s, n, sizeof(*s), span_cmp);
    /* Sweep each priority group, remembering the span reaching furthest. */
    size_t far = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        if (far != SIZE_MAX && s[far].prio == s[k].prio &&
            s[k].first <= s[far].last) {
            const struct ms__treg *a = &t->r[s[far].idx];
            const struct ms__treg *b = &t->r[s[k].idx];
            report(c, "equal-priority-overlap", s[k].idx,
                   "'%s' [0x%" PRIx64 "-0x%" PRIx64 "] and '%s' [0x%" PRIx64
                   "-0x%" PRIx64 "] overlap in '%s' with the same "
                   "priority %" PRId32 "; only the order they were added "
                   "decides which one wins",
                   label(a), s[far].first, s[far].last, label(b), s[k].first,
                   s[k].last, label(p), s[k].prio);
        }
        if (far == SIZE_MAX || s[far].prio != s[k].prio ||
            s[k].last > s[far].last) {
            far = k;
        }
    }
    free(s);
    return 0;
}

MS_EXPORT int ms_topology_check(const ms_topology *t, ms_topology_issue_fn fn,
                                void *opaque)
{
    if (!t) {
        return -EINVAL;
    }
    struct issue_ctx c = {.t = t, .fn = fn, .opaque = opaque};
    for (size_t i = 0; i < t->nr; i++) {
        const struct ms__treg *r = &t->r[i];
        if (!r->name) {
            report(&c, "unnamed", i, "region '%s' has no name", r->id);
        }
        if (r->size == 0 &&
            (r->kind == MS_REGION_RAM || r->kind == MS_REGION_ROM ||
             r->kind == MS_REGION_ROM_DEVICE ||
             r->kind == MS_REGION_RAM_DEVICE)) {
            report(&c, "empty-ram", i,
                   "%s region '%s' has size 0 (a RAM block needs at least "
                   "one byte)",
                   ms__topo_kind_name(r->kind), label(r));
        }
        if (r->kind == MS_REGION_ALIAS && r->target != MS__TOPO_NONE) {
            const struct ms__treg *tg = &t->r[r->target];
            if (!ms__window_fits(r->alias_offset, r->size, tg->size)) {
                report(&c, "alias-past-target", i,
                       "alias '%s' shows [0x%" PRIx64 "-0x%" PRIx64
                       "] of '%s', which is only 0x%" PRIx64 " bytes",
                       label(r), r->alias_offset,
                       ms__topo_last(r->alias_offset, r->size), label(tg),
                       tg->size);
            }
        }
        if (r->container != MS__TOPO_NONE && r->size != 0) {
            const struct ms__treg *p = &t->r[r->container];
            if (!ms__window_fits(r->addr, r->size, p->size)) {
                report(&c, "outside-container", i,
                       "'%s' [0x%" PRIx64 "-0x%" PRIx64 "] sticks out of "
                       "its container '%s' (size 0x%" PRIx64 ")",
                       label(r), r->addr, ms__topo_last(r->addr, r->size),
                       label(p), p->size);
            }
        }
        if (r->nr_subs > 1) {
            int err = check_overlaps(&c, i);
            if (err) {
                return err;
            }
        }
    }
    return c.count;
}
