/* SPDX-License-Identifier: MIT */
/*
 * Building a topology description into a system, and applying a new
 * description onto a system built earlier.
 *
 * Building is applying onto an empty map.  Applying runs in ONE
 * transaction, so listeners see only the difference between the rendered
 * views before and after, whatever order the edits are made in; that is
 * what lets `memspace diff` report the events of a change.
 *
 * Order of work (why it is safe):
 *  1. regions are matched by id, alias targets before their aliases, so an
 *     alias is only reused if its target region is;
 *  2. every sibling list that differs from the wanted one is emptied, then
 *     refilled in the wanted order (a reused region is held by the new map
 *     meanwhile, so it survives being taken out of its container);
 *  3. address spaces are created inside the transaction, destroyed after it
 *     (they may still have listeners the caller must unregister first);
 *  4. regions the new description lacks lose the map's reference last.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memspace/dirty.h"
#include "memspace/ioeventfd.h"
#include "topology_internal.h"

struct ment {
    char *id;
    ms_region *r;
    uint64_t block; /* RAM block size at creation (RAM-backed kinds) */
    bool log;       /* we turned VGA logging on */
    struct ms_topology_eventfd *efd; /* as described (labels) */
    int *fds;                        /* real descriptors, same order */
    size_t nr_efd;
};

struct mas {
    char *id;
    ms_as *as;
};

struct ms_topology_map {
    ms_system *sys;
    struct ment *e;
    size_t nr;
    struct mas *as;
    size_t nr_as;
    /* Open-addressing index of e[].id: slot holds entry index + 1. */
    size_t *hash;
    size_t hash_cap;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void map_index(ms_topology_map *m)
{
    size_t cap = 16;
    while (cap < m->nr * 2 + 1) {
        cap *= 2;
    }
    free(m->hash);
    m->hash = calloc(cap, sizeof(*m->hash));
    m->hash_cap = m->hash ? cap : 0;
    for (size_t i = 0; m->hash && i < m->nr; i++) {
        if (!m->e[i].id) {
            continue;
        }
        size_t s = (size_t)hash_id(m->e[i].id) & (cap - 1);
        while (m->hash[s]) {
            s = (s + 1) & (cap - 1);
        }
        m->hash[s] = i + 1;
    }
}

ms_region *ms__topo_map_at(const ms_topology_map *m, size_t i)
{
    return m && i < m->nr ? m->e[i].r : NULL;
}

static uint64_t inert_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)size;
    return 0;
}

static void inert_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)value;
    (void)size;
}

static const struct ms_region_ops inert_ops = {
    .read = inert_read,
    .write = inert_write,
};

/* Captures the library's last log message, for error details. */
struct capture {
    ms_log_fn log;
    void *opaque;
    char last[512];
};

static void capture_log(void *opaque, enum ms_log_level level, const char *msg)
{
    struct capture *c = opaque;
    if (level == MS_LOG_ERROR) {
        snprintf(c->last, sizeof(c->last), "%s", msg);
    }
    if (c->log) {
        c->log(c->opaque, level, msg);
    }
}

struct applier {
    ms_topology_map *map;
    const ms_topology *t;
    const struct ms_topology_build_options *opts;
    struct ms_topology_error *err;
    struct capture cap;
    ms_region **nr;       /* new region per description index (referenced) */
    bool *created;        /* nr[i] was created by this apply */
    bool *old_used;       /* old map entry i is reused */
    size_t *old_of;       /* old entry of description i, or NONE */
    unsigned char *state; /* 0 todo, 1 in progress, 2 done */
    int rc;
};

static size_t map_find(const ms_topology_map *m, const char *id)
{
    if (m->hash) {
        size_t s = (size_t)hash_id(id) & (m->hash_cap - 1);
        while (m->hash[s]) {
            size_t i = m->hash[s] - 1;
            if (strcmp(m->e[i].id, id) == 0) {
                return i;
            }
            s = (s + 1) & (m->hash_cap - 1);
        }
        return MS__TOPO_NONE;
    }
    for (size_t i = 0; i < m->nr; i++) {
        if (m->e[i].id && strcmp(m->e[i].id, id) == 0) {
            return i;
        }
    }
    return MS__TOPO_NONE;
}

static void MS__PRINTF(4, 5)
    fail(struct applier *A, int rc, size_t idx, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *where =
        idx != MS__TOPO_NONE && A->t->r[idx].where ? A->t->r[idx].where : "";
    if (A->cap.last[0]) {
        ms__topo_err(A->err, rc, NULL, 0, 0, where, "%s: %s", msg, A->cap.last);
    } else {
        ms__topo_err(A->err, rc, NULL, 0, 0, where, "%s (%s)", msg,
                     strerror(-rc));
    }
    if (!A->rc) {
        A->rc = rc;
    }
}

static const char *rname(const struct ms__treg *r)
{
    return r->name ? r->name : "(null)";
}

static void desc_of(const ms_topology *t, size_t i,
                    struct ms_topology_region *d)
{
    int err = ms_topology_region(t, i, d);
    (void)err;
}

static int efd_fd(struct applier *A, size_t i,
                  const struct ms_topology_eventfd *f)
{
    if (A->opts && A->opts->eventfd) {
        struct ms_topology_region d;
        desc_of(A->t, i, &d);
        return A->opts->eventfd(A->opts->opaque, &d, f);
    }
    return f->fd;
}

static bool efd_equal(const struct ms_topology_eventfd *a,
                      const struct ms_topology_eventfd *b)
{
    return a->offset == b->offset && a->size == b->size &&
           a->match_data == b->match_data &&
           (!a->match_data || a->data == b->data) && a->fd == b->fd;
}

/* Bring ioeventfds and logging of region @i in line (old entry @o). */
static void update_extras(struct applier *A, size_t i, struct ment *o,
                          struct ment *n)
{
    const struct ms__treg *d = &A->t->r[i];
    ms_region *r = A->nr[i];
    bool was_log = o ? o->log : false;
    if (d->log_vga != was_log) {
        int rc = ms_region_set_log(r, d->log_vga, MS_DIRTY_VGA);
        if (rc) {
            fail(A, rc, i, "cannot %s dirty logging of '%s'",
                 d->log_vga ? "start" : "stop", rname(d));
            n->log = was_log;
        } else {
            n->log = d->log_vga;
        }
    } else {
        n->log = was_log;
    }
    /* Entries only in the old list go, entries only in the new come. */
    n->efd = d->nr_efd ? calloc(d->nr_efd, sizeof(*n->efd)) : NULL;
    n->fds = d->nr_efd ? calloc(d->nr_efd, sizeof(*n->fds)) : NULL;
    if (d->nr_efd && (!n->efd || !n->fds)) {
        fail(A, -ENOMEM, i, "out of memory");
        return;
    }
    bool *kept = o && o->nr_efd ? calloc(o->nr_efd, sizeof(*kept)) : NULL;
    if (o && o->nr_efd && !kept) {
        fail(A, -ENOMEM, i, "out of memory");
        return;
    }
    bool *have = d->nr_efd ? calloc(d->nr_efd, sizeof(*have)) : NULL;
    if (d->nr_efd && !have) {
        free(kept);
        fail(A, -ENOMEM, i, "out of memory");
        return;
    }
    for (size_t k = 0; o && k < o->nr_efd; k++) {
        for (size_t j = 0; j < d->nr_efd; j++) {
            if (!have[j] && efd_equal(&o->efd[k], &d->efd[j])) {
                have[j] = kept[k] = true;
                n->efd[j] = d->efd[j];
                n->fds[j] = o->fds[k];
                break;
            }
        }
    }
    for (size_t k = 0; o && k < o->nr_efd; k++) {
        const struct ms_topology_eventfd *f = &o->efd[k];
        if (kept[k]) {
            continue;
        }
        int rc = ms_region_del_eventfd(r, f->offset, f->size, f->match_data,
                                       f->data, o->fds[k]);
        if (rc) {
            fail(A, rc, i, "cannot remove an ioeventfd of '%s'", rname(d));
        }
    }
    for (size_t j = 0; j < d->nr_efd; j++) {
        const struct ms_topology_eventfd *f = &d->efd[j];
        n->efd[j] = *f;
        if (have[j]) {
            continue;
        }
        int fd = efd_fd(A, i, f);
        int rc = fd < 0 ? fd
                        : ms_region_add_eventfd(r, f->offset, f->size,
                                                f->match_data, f->data, fd);
        if (rc) {
            fail(A, rc, i, "cannot add ioeventfd #%zu of '%s'", j, rname(d));
            fd = -1;
        }
        n->fds[j] = fd;
    }
    n->nr_efd = d->nr_efd;
    free(kept);
    free(have);
}

static int create(struct applier *A, size_t i)
{
    const struct ms__treg *d = &A->t->r[i];
    struct ms_region_config cfg = {
        .kind = d->kind,
        .name = rname(d),
        .size = d->size,
        .owner = d->owner,
        .readonly = d->readonly,
        .nonvolatile = d->nonvolatile,
        .disabled = !d->enabled,
        .romd_off = d->kind == MS_REGION_ROM_DEVICE && !d->romd,
    };
    if (d->kind == MS_REGION_IO || d->kind == MS_REGION_ROM_DEVICE) {
        cfg.ops = &inert_ops;
    }
    if (d->kind == MS_REGION_ALIAS) {
        cfg.alias_target = A->nr[d->target];
        cfg.alias_offset = d->alias_offset;
    }
    if (A->opts && A->opts->prepare) {
        struct ms_topology_region desc;
        desc_of(A->t, i, &desc);
        int rc = A->opts->prepare(A->opts->opaque, &desc, &cfg);
        if (rc) {
            fail(A, rc < 0 ? rc : -EINVAL, i, "preparing region '%s' failed",
                 rname(d));
            return A->rc;
        }
    }
    if (d->kind == MS_REGION_RAM_DEVICE && !cfg.host) {
        A->cap.last[0] = 0;
        fail(A, -EINVAL, i,
             "RAM device '%s' needs caller memory (a prepare callback "
             "that sets host)",
             rname(d));
        return A->rc;
    }
    A->cap.last[0] = 0;
    ms_region *r;
    int rc = ms_region_new(A->map->sys, &cfg, &r);
    if (rc) {
        fail(A, rc, i, "cannot create %s region '%s'",
             ms__topo_kind_name(d->kind), rname(d));
        return rc;
    }
    A->nr[i] = r;
    A->created[i] = true;
    if (d->kind == MS_REGION_ROM && !d->readonly) {
        rc = ms_region_set_readonly(r, false);
    }
    if (!rc && d->addr) {
        rc = ms_region_set_address(r, d->addr);
    }
    return rc;
}

/* Edit a reused region's own properties (not its place in the tree). */
static void update(struct applier *A, size_t i)
{
    const struct ms__treg *d = &A->t->r[i];
    ms_region *r = A->nr[i];
    int rc = 0;
    A->cap.last[0] = 0;
    if (d->kind == MS_REGION_ALIAS &&
        (r->alias_offset != d->alias_offset || r->size != d->size)) {
        /*
         * Move the window through size 0 so that no intermediate window
         * leaves the target; inside the transaction nobody sees it.
         */
        int e1 = ms_region_set_size(r, 0);
        (void)e1;
        rc = ms_region_set_alias_offset(r, d->alias_offset);
        if (!rc) {
            rc = ms_region_set_size(r, d->size);
        }
    } else if (r->size != d->size) {
        rc = ms_region_set_size(r, d->size);
    }
    if (!rc) {
        rc = ms_region_set_enabled(r, d->enabled);
    }
    if (!rc) {
        rc = ms_region_set_readonly(r, d->readonly);
    }
    if (!rc) {
        rc = ms_region_set_nonvolatile(r, d->nonvolatile);
    }
    if (!rc && d->kind == MS_REGION_ROM_DEVICE) {
        rc = ms_region_set_romd(r, d->romd);
    }
    if (rc) {
        fail(A, rc, i, "cannot update region '%s'", rname(d));
    }
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Decide reuse or creation of region @i, targets first. */
static void visit(struct applier *A, size_t i)
{
    if (A->state[i] == 2 || A->rc) {
        return;
    }
    const struct ms__treg *d = &A->t->r[i];
    A->state[i] = 1;
    if (d->target != MS__TOPO_NONE) {
        visit(A, d->target); /* depth bounded by MS__TOPO_MAX_PATH */
    }
    if (A->rc) {
        return;
    }
    size_t o = A->old_of[i];
    bool reuse = false;
    if (o != MS__TOPO_NONE) {
        ms_region *r = A->map->e[o].r;
        reuse = r->kind == d->kind && same_str(r->name, rname(d)) &&
                same_str(r->owner, d->owner);
        if (reuse && d->kind == MS_REGION_ALIAS) {
            reuse = r->alias == A->nr[d->target];
        }
        if (reuse && r->has_block) {
            reuse = d->size != 0 && d->size <= A->map->e[o].block;
        }
    }
    if (reuse) {
        A->old_used[o] = true;
        A->nr[i] = ms_region_ref(A->map->e[o].r);
        update(A, i);
    } else if (create(A, i)) {
        A->state[i] = 2;
        return;
    }
    A->state[i] = 2;
}

/* The sibling list @want (addition order) would produce, in list order. */
static void simulate_list(const ms_topology *t, const size_t *want, size_t n,
                          size_t *out)
{
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        int32_t p = t->r[want[k]].priority;
        size_t pos = 0;
        while (pos < len && t->r[out[pos]].priority > p) {
            pos++;
        }
        memmove(out + pos + 1, out + pos, (len - pos) * sizeof(*out));
        out[pos] = want[k];
        len++;
    }
}

static bool list_matches(struct applier *A, size_t c, size_t *scratch)
{
    const struct ms__treg *d = &A->t->r[c];
    ms_region *r = A->nr[c];
    if (r->nr_subregions != d->nr_subs) {
        return false;
    }
    simulate_list(A->t, d->subs, d->nr_subs, scratch);
    size_t k = 0;
    for (ms_region *s = r->sub_first; s; s = s->sib_next, k++) {
        const struct ms__treg *w = &A->t->r[scratch[k]];
        if (s != A->nr[scratch[k]] || s->addr != w->addr ||
            s->priority != w->priority) {
            return false;
        }
    }
    return true;
}

static void empty_container(ms_region *c)
{
    while (c->sub_first) {
        int rc = ms_region_del(c, c->sub_first);
        if (rc) {
            break;
        }
    }
}

static void relink(struct applier *A)
{
    const ms_topology *t = A->t;
    size_t maxsubs = 1;
    for (size_t i = 0; i < t->nr; i++) {
        maxsubs = t->r[i].nr_subs > maxsubs ? t->r[i].nr_subs : maxsubs;
    }
    size_t *scratch = malloc(maxsubs * sizeof(*scratch));
    bool *rebuild = calloc(t->nr ? t->nr : 1, sizeof(*rebuild));
    if (!scratch || !rebuild) {
        free(scratch);
        free(rebuild);
        fail(A, -ENOMEM, MS__TOPO_NONE, "out of memory");
        return;
    }
    /* Old regions that go away give up their children. */
    for (size_t o = 0; o < A->map->nr; o++) {
        if (!A->old_used[o]) {
            empty_container(A->map->e[o].r);
        }
    }
    for (size_t i = 0; i < t->nr; i++) {
        if (!list_matches(A, i, scratch)) {
            rebuild[i] = true;
            empty_container(A->nr[i]);
        }
    }
    /* A region wanted at top level must leave any container it is in. */
    for (size_t i = 0; i < t->nr; i++) {
        ms_region *r = A->nr[i];
        if (t->r[i].container == MS__TOPO_NONE && r->container) {
            int rc = ms_region_del(r->container, r);
            if (rc) {
                fail(A, rc, i, "cannot detach '%s'", rname(&t->r[i]));
            }
        }
    }
    for (size_t i = 0; i < t->nr && !A->rc; i++) {
        const struct ms__treg *d = &t->r[i];
        if (!rebuild[i]) {
            continue;
        }
        for (size_t k = 0; k < d->nr_subs; k++) {
            size_t c = d->subs[k];
            A->cap.last[0] = 0;
            int rc = ms_region_add_prio(A->nr[i], t->r[c].addr, A->nr[c],
                                        t->r[c].priority);
            if (rc) {
                fail(A, rc, c, "cannot add '%s' to '%s'", rname(&t->r[c]),
                     rname(d));
                break;
            }
        }
    }
    for (size_t i = 0; i < t->nr && !A->rc; i++) {
        if (t->r[i].container == MS__TOPO_NONE &&
            A->nr[i]->addr != t->r[i].addr) {
            int rc = ms_region_set_address(A->nr[i], t->r[i].addr);
            if (rc) {
                fail(A, rc, i, "cannot place '%s'", rname(&t->r[i]));
            }
        }
    }
    free(scratch);
    free(rebuild);
}

static void ment_free(struct ment *e)
{
    free(e->id);
    free(e->efd);
    free(e->fds);
}

static int apply(ms_topology_map *map, const ms_topology *t,
                 const struct ms_topology_build_options *opts,
                 struct ms_topology_error *err, bool building)
{
    ms_system *sys = map->sys;
    size_t n = t->nr;
    struct applier A = {.map = map, .t = t, .opts = opts, .err = err};
    struct ment *ne = calloc(n ? n : 1, sizeof(*ne));
    struct mas *nas = calloc(t->nr_as ? t->nr_as : 1, sizeof(*nas));
    A.nr = calloc(n ? n : 1, sizeof(*A.nr));
    A.created = calloc(n ? n : 1, sizeof(*A.created));
    A.old_used = calloc(map->nr ? map->nr : 1, sizeof(*A.old_used));
    A.old_of = malloc((n ? n : 1) * sizeof(*A.old_of));
    A.state = calloc(n ? n : 1, 1);
    bool *as_kept = calloc(map->nr_as ? map->nr_as : 1, sizeof(*as_kept));
    if (!ne || !nas || !A.nr || !A.created || !A.old_used || !A.old_of ||
        !A.state || !as_kept) {
        free(ne);
        free(nas);
        free(A.nr);
        free(A.created);
        free(A.old_used);
        free(A.old_of);
        free(A.state);
        free(as_kept);
        ms__topo_err(err, -ENOMEM, NULL, 0, 0, "", "out of memory");
        return -ENOMEM;
    }
    /* Match old entries to descriptions through the description's index. */
    for (size_t i = 0; i < n; i++) {
        A.old_of[i] = MS__TOPO_NONE;
    }
    for (size_t o = 0; o < map->nr; o++) {
        size_t i = ms__topo_find(t, map->e[o].id);
        if (i != MS__TOPO_NONE) {
            A.old_of[i] = o;
        }
    }
    A.cap.log = sys->log;
    A.cap.opaque = sys->log_opaque;
    ms_system_set_log(sys, capture_log, &A.cap);

    int rc = ms_txn_begin(sys);
    if (rc) {
        ms_system_set_log(sys, A.cap.log, A.cap.opaque);
        fail(&A, rc, MS__TOPO_NONE, "cannot open a transaction");
        goto free_all;
    }
    for (size_t i = 0; i < n && !A.rc; i++) {
        visit(&A, i);
    }
    for (size_t i = 0; i < n; i++) {
        ne[i].r = A.nr[i]; /* the new map owns these references */
    }
    for (size_t i = 0; i < n && !A.rc; i++) {
        ne[i].id = ms__topo_strdup(t->r[i].id);
        size_t o = A.old_of[i];
        struct ment *old =
            o != MS__TOPO_NONE && A.old_used[o] ? &map->e[o] : NULL;
        ne[i].block = old ? old->block : A.nr[i]->block_size;
        if (!ne[i].id) {
            fail(&A, -ENOMEM, i, "out of memory");
            break;
        }
        update_extras(&A, i, old, &ne[i]);
    }
    if (!A.rc) {
        relink(&A);
    }
    /* Address spaces: keep those whose id and root are unchanged. */
    for (size_t k = 0; k < t->nr_as && !A.rc; k++) {
        const struct ms__tas *d = &t->as[k];
        ms_region *root = A.nr[d->root];
        nas[k].id = ms__topo_strdup(d->id);
        if (!nas[k].id) {
            fail(&A, -ENOMEM, MS__TOPO_NONE, "out of memory");
            break;
        }
        for (size_t o = 0; o < map->nr_as; o++) {
            if (!as_kept[o] && strcmp(map->as[o].id, d->id) == 0 &&
                ms_as_root(map->as[o].as) == root &&
                strcmp(ms_as_name(map->as[o].as), d->name) == 0) {
                as_kept[o] = true;
                nas[k].as = map->as[o].as;
                break;
            }
        }
        if (!nas[k].as) {
            A.cap.last[0] = 0;
            rc = ms_as_new(sys, root, d->name, &nas[k].as);
            if (rc) {
                ms__topo_err(err, rc, NULL, 0, 0, "",
                             "cannot create address space '%s': %s", d->name,
                             A.cap.last[0] ? A.cap.last : strerror(-rc));
                A.rc = rc;
            }
        }
    }
    rc = ms_txn_commit(sys);
    if (rc && !A.rc) {
        ms__topo_err(err, rc, NULL, 0, 0, "",
                     "the commit reported a listener error (%s)",
                     strerror(-rc));
        A.rc = rc;
    }
    for (size_t o = 0; o < map->nr_as; o++) {
        if (as_kept[o] || A.rc) {
            continue;
        }
        if (opts && opts->as_removed) {
            opts->as_removed(opts->opaque, map->as[o].as);
        }
        rc = ms_as_destroy(map->as[o].as);
        if (rc) {
            ms__topo_err(err, rc, NULL, 0, 0, "",
                         "cannot destroy address space '%s' (%s)",
                         ms_as_name(map->as[o].as), strerror(-rc));
            A.rc = rc;
            as_kept[o] = true; /* still alive: keep it in the map */
        }
    }
    ms_system_set_log(sys, A.cap.log, A.cap.opaque);
    if (A.rc && building) {
        /* Leave nothing behind: address spaces, then tree links. */
        for (size_t k = 0; k < t->nr_as; k++) {
            if (nas[k].as) {
                int e = ms_as_destroy(nas[k].as);
                (void)e;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (A.nr[i]) {
                empty_container(A.nr[i]);
            }
        }
        for (size_t i = 0; i < n; i++) {
            ms_region_unref(ne[i].r);
            ment_free(&ne[i]);
        }
        for (size_t k = 0; k < t->nr_as; k++) {
            free(nas[k].id);
        }
        goto free_all;
    }
    /* Swap in the new map; drop the old entries' references. */
    for (size_t o = 0; o < map->nr; o++) {
        ms_region_unref(map->e[o].r);
        ment_free(&map->e[o]);
    }
    for (size_t o = 0; o < map->nr_as; o++) {
        free(map->as[o].id);
    }
    free(map->e);
    free(map->as);
    map->e = ne;
    map->nr = n;
    map->as = nas;
    map->nr_as = t->nr_as;
    map_index(map);
    ne = NULL;
    nas = NULL;
free_all:
    free(ne);
    free(nas);
    free(A.nr);
    free(A.created);
    free(A.old_used);
    free(A.old_of);
    free(A.state);
    free(as_kept);
    return A.rc;
}

MS_EXPORT int ms_topology_build(const ms_topology *t, ms_system *sys,
                                const struct ms_topology_build_options *opts,
                                struct ms_topology_error *err,
                                ms_topology_map **out)
{
    if (err) {
        memset(err, 0, sizeof(*err));
    }
    if (!t || !sys || !out) {
        return -EINVAL;
    }
    ms_topology_map *map = calloc(1, sizeof(*map));
    if (!map) {
        return -ENOMEM;
    }
    map->sys = sys;
    int rc = apply(map, t, opts, err, true);
    if (rc) {
        free(map);
        return rc;
    }
    *out = map;
    return 0;
}

MS_EXPORT int ms_topology_apply(ms_topology_map *map, const ms_topology *t,
                                const struct ms_topology_build_options *opts,
                                struct ms_topology_error *err)
{
    if (err) {
        memset(err, 0, sizeof(*err));
    }
    if (!map || !t) {
        return -EINVAL;
    }
    return apply(map, t, opts, err, false);
}

MS_EXPORT ms_system *ms_topology_map_system(const ms_topology_map *map)
{
    return map ? map->sys : NULL;
}

MS_EXPORT ms_region *ms_topology_map_region(const ms_topology_map *map,
                                            const char *id)
{
    if (!map || !id) {
        return NULL;
    }
    size_t i = map_find(map, id);
    return i == MS__TOPO_NONE ? NULL : map->e[i].r;
}

MS_EXPORT ms_as *ms_topology_map_as(const ms_topology_map *map, const char *id)
{
    if (!map || !id) {
        return NULL;
    }
    for (size_t i = 0; i < map->nr_as; i++) {
        if (strcmp(map->as[i].id, id) == 0) {
            return map->as[i].as;
        }
    }
    return NULL;
}

MS_EXPORT void ms_topology_map_free(ms_topology_map *map)
{
    if (!map) {
        return;
    }
    for (size_t i = 0; i < map->nr; i++) {
        ms_region_unref(map->e[i].r);
        ment_free(&map->e[i]);
    }
    for (size_t i = 0; i < map->nr_as; i++) {
        free(map->as[i].id);
    }
    free(map->e);
    free(map->as);
    free(map->hash);
    free(map);
}
