/* SPDX-License-Identifier: MIT */
/*
 * `info mtree` / `info mtree -f` text, as QEMU 7.2 prints it.
 *
 * Formats (docs/mtree.md, from the oracle's FORMAT.md): 16-digit lowercase
 * hex addresses, inclusive ends with size 0 printed as start-start, 64-bit
 * wrap-around, "[DETECTED OVERFLOW!] " for wrapped tree lines, children
 * sorted by (address, priority descending, list order), alias targets
 * queued for "memory-region:" blocks (even from disabled aliases).
 *
 * Order of blocks: QEMU uses hash order; we use the creation order of each
 * group's first address space, which is deterministic.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "memspace/mtree.h"

struct out {
    char *buf;
    size_t len, cap;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err) {
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t ncap = o->cap ? o->cap : 4096;
        while (ncap < o->len + n + 1) {
            ncap *= 2;
        }
        char *nb = realloc(o->buf, ncap);
        if (!nb) {
            o->err = -ENOMEM;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void MS__PRINTF(2, 3) putf(struct out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->err = -EIO;
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        put(o, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        o->err = -ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(o, big, (size_t)n);
    free(big);
}

/* QEMU's MR_SIZE(): size - 1, or 0 for an empty region, 64-bit. */
static uint64_t mr_size_m1(uint64_t size)
{
    return size == 0 ? 0 : ms__size_last(size);
}

static void put_owner(struct out *o, const ms_region *r)
{
    putf(o, " %s", r->owner ? r->owner : "orphan");
}

/* Alias-target queue, membership by walk generation. */
struct queue {
    ms_region **items;
    size_t nr, cap;
    uint64_t gen;
};

static void queue_add(struct out *o, struct queue *q, ms_region *r)
{
    if (r->walk_gen == q->gen) {
        return;
    }
    if (q->nr == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        ms_region **ni = realloc(q->items, ncap * sizeof(*ni));
        if (!ni) {
            o->err = -ENOMEM;
            return;
        }
        q->items = ni;
        q->cap = ncap;
    }
    r->walk_gen = q->gen;
    q->items[q->nr++] = r;
}

struct child {
    ms_region *r;
    size_t idx;
};

static int child_cmp(const void *a, const void *b)
{
    const struct child *x = a, *y = b;
    if (x->r->addr != y->r->addr) {
        return x->r->addr < y->r->addr ? -1 : 1;
    }
    if (x->r->priority != y->r->priority) {
        return x->r->priority > y->r->priority ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static void print_tree(struct out *o, struct queue *q, unsigned flags,
                       ms_region *r, unsigned level, uint64_t base)
{
    if (o->err) {
        return;
    }
    uint64_t start = base + r->addr;
    uint64_t last = start + mr_size_m1(r->size);
    bool show = r->enabled || (flags & MS_MTREE_DISABLED);

    if (start < base || last < start) {
        puts_(o, "[DETECTED OVERFLOW!] ");
    }
    if (r->alias) {
        queue_add(o, q, r->alias);
    }
    if (show) {
        for (unsigned i = 0; i < level; i++) {
            puts_(o, "  ");
        }
        putf(o, "%016" PRIx64 "-%016" PRIx64 " (prio %" PRId32 ", %s%s): ",
             start, last, r->priority, r->nonvolatile ? "nv-" : "",
             ms__region_type(r));
        if (r->alias) {
            putf(o, "alias %s @%s %016" PRIx64 "-%016" PRIx64, r->name,
                 r->alias->name, r->alias_offset,
                 r->alias_offset + mr_size_m1(r->size));
        } else {
            puts_(o, r->name);
        }
        if (!r->enabled) {
            puts_(o, " [disabled]");
        }
        if (flags & MS_MTREE_OWNER) {
            put_owner(o, r);
        }
        puts_(o, "\n");
    }
    if (!r->nr_subregions) {
        return;
    }
    struct child *kids = malloc(r->nr_subregions * sizeof(*kids));
    if (!kids) {
        o->err = -ENOMEM;
        return;
    }
    size_t n = 0;
    for (ms_region *s = r->sub_first; s; s = s->sib_next, n++) {
        kids[n].r = s;
        kids[n].idx = n;
    }
    qsort(kids, n, sizeof(*kids), child_cmp);
    for (size_t i = 0; i < n; i++) {
        print_tree(o, q, flags, kids[i].r, level + 1, start);
    }
    free(kids);
}

struct as_ref {
    ms_as *as;
    size_t idx;
};

static int as_name_cmp(const void *a, const void *b)
{
    const struct as_ref *x = a, *y = b;
    int c = strcmp(x->as->name, y->as->name);
    if (c) {
        return c;
    }
    /* Equal names: the later created first (QEMU's sorted insertion). */
    return x->idx > y->idx ? -1 : (x->idx < y->idx);
}

static void print_trees(struct out *o, ms_system *sys, unsigned flags)
{
    struct as_ref *group = malloc((sys->nr_as ? sys->nr_as : 1) *
                                  sizeof(*group));
    bool *done = calloc(sys->nr_as ? sys->nr_as : 1, sizeof(*done));
    struct queue q = { 0 };
    if (!group || !done) {
        o->err = -ENOMEM;
        goto out;
    }
    q.gen = ++sys->walk_gen;
    size_t i = 0;
    for (ms_as *as = sys->as_first; as; as = as->next, i++) {
        if (done[i]) {
            continue;
        }
        size_t n = 0, j = i;
        for (ms_as *b = as; b; b = b->next, j++) {
            if (!done[j] && b->root == as->root) {
                done[j] = true;
                group[n].as = b;
                group[n].idx = j;
                n++;
            }
        }
        qsort(group, n, sizeof(*group), as_name_cmp);
        for (size_t k = 0; k < n; k++) {
            putf(o, "address-space: %s\n", group[k].as->name);
        }
        print_tree(o, &q, flags, as->root, 1, 0);
        puts_(o, "\n");
    }
    for (size_t k = 0; k < q.nr && !o->err; k++) {
        putf(o, "memory-region: %s\n", q.items[k]->name);
        print_tree(o, &q, flags, q.items[k], 1, 0);
        puts_(o, "\n");
    }
out:
    free(q.items);
    free(group);
    free(done);
}

static void print_dispatch(struct out *o, const ms_flatview *fv)
{
    static const char *const tags[] = { " [unassigned]", " [not dirty]",
                                        " [ROM]", " [watch]" };
    puts_(o, "  Dispatch\n    Physical sections\n");
    putf(o, "      #0 @%016" PRIx64 "..%016" PRIx64 " (noname)%s\n",
         (uint64_t)0, UINT64_MAX, tags[0]);
    for (size_t i = 0; i < fv->nr; i++) {
        const ms__fr *fr = &fv->ranges[i];
        putf(o, "      #%zu @%016" PRIx64 "..%016" PRIx64 " %s%s%s\n", i + 1,
             fr->gpa, fr->last, fr->mr->name, i + 1 < 4 ? tags[i + 1] : "",
             fr->mr == fv->root ? " [ROOT]" : "");
    }
}

static void print_flat(struct out *o, ms_system *sys, unsigned flags)
{
    bool *done = calloc(sys->nr_as ? sys->nr_as : 1, sizeof(*done));
    if (!done) {
        o->err = -ENOMEM;
        return;
    }
    unsigned counter = 0;
    size_t i = 0;
    for (ms_as *as = sys->as_first; as && !o->err; as = as->next, i++) {
        if (done[i]) {
            continue;
        }
        const ms_flatview *fv = as->view;
        putf(o, "FlatView #%u\n", counter++);
        size_t j = i;
        for (ms_as *b = as; b; b = b->next, j++) {
            if (done[j] || b->view != fv) {
                continue;
            }
            done[j] = true;
            putf(o, " AS \"%s\", root: %s", b->name, b->root->name);
            if (b->root->alias) {
                putf(o, ", alias %s", b->root->alias->name);
            }
            puts_(o, "\n");
        }
        putf(o, " Root memory region: %s\n",
             fv->root ? fv->root->name : "(none)");
        if (fv->nr == 0) {
            puts_(o, "  No rendered FlatView\n\n");
            continue;
        }
        for (size_t k = 0; k < fv->nr; k++) {
            const ms__fr *fr = &fv->ranges[k];
            putf(o,
                 "  %016" PRIx64 "-%016" PRIx64 " (prio %" PRId32
                 ", %s%s): %s",
                 fr->gpa, fr->last, fr->mr->priority,
                 fr->nonvolatile ? "nv-" : "",
                 fr->readonly ? "rom" : ms__region_type(fr->mr),
                 fr->mr->name);
            if (fr->offset) {
                putf(o, " @%016" PRIx64, fr->offset);
            }
            if (flags & MS_MTREE_OWNER) {
                put_owner(o, fr->mr);
            }
            /* Accelerator suffix, per address space of the group. */
            for (ms_as *b = as; b; b = b->next) {
                if (b->view != fv) {
                    continue;
                }
                for (struct ms__listener_priv *p = b->l_first; p;
                     p = p->as_next) {
                    struct ms_listener *l = p->l;
                    if (!l->accel_name || !l->has_memory) {
                        continue;
                    }
                    sys->in_callback++;
                    bool has = l->has_memory(
                        l, b, fr->gpa,
                        ms__range_size((struct ms__range){ fr->gpa,
                                                           fr->last }));
                    sys->in_callback--;
                    if (has) {
                        putf(o, " %s", l->accel_name);
                    }
                }
            }
            puts_(o, "\n");
        }
        if ((flags & MS_MTREE_DISPATCH) && fv->root) {
            print_dispatch(o, fv);
        }
        puts_(o, "\n");
    }
    free(done);
}

static int render_text(ms_system *sys, unsigned flags, struct out *o)
{
    if (!sys) {
        return -EINVAL;
    }
    if (flags & ~(unsigned)(MS_MTREE_FLAT | MS_MTREE_OWNER |
                            MS_MTREE_DISABLED | MS_MTREE_DISPATCH)) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    put(o, "", 0); /* always a valid string, even if empty */
    if (flags & MS_MTREE_FLAT) {
        print_flat(o, sys, flags);
    } else {
        print_trees(o, sys, flags);
    }
    return o->err;
}

MS_EXPORT int ms_mtree_print(ms_system *sys, unsigned flags,
                             ms_write_fn write, void *opaque)
{
    if (!write) {
        return -EINVAL;
    }
    struct out o = { 0 };
    int err = render_text(sys, flags, &o);
    if (err == 0 && o.len) {
        err = write(opaque, o.buf, o.len);
        if (err > 0) {
            err = 0;
        }
    }
    free(o.buf);
    return err;
}

MS_EXPORT int ms_mtree_to_string(ms_system *sys, unsigned flags, char **out)
{
    if (!out) {
        return -EINVAL;
    }
    struct out o = { 0 };
    int err = render_text(sys, flags, &o);
    if (err < 0) {
        free(o.buf);
        return err;
    }
    *out = o.buf;
    return 0;
}

static int file_write(void *opaque, const char *text, size_t len)
{
    return fwrite(text, 1, len, (FILE *)opaque) == len ? 0 : -EIO;
}

MS_EXPORT int ms_mtree_fprint(ms_system *sys, unsigned flags, FILE *f)
{
    if (!f) {
        return -EINVAL;
    }
    return ms_mtree_print(sys, flags, file_write, f);
}
