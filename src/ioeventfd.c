/* SPDX-License-Identifier: MIT */
/*
 * ioeventfds: per-region entries, their translation into address-space
 * coordinates at commit time, the diff that drives eventfd_add/eventfd_del,
 * and the userspace fallback used by the access path.
 *
 * Rules (docs/model.md section 5, QEMU 7.2):
 * - A region keeps its entries sorted by entry_before() (start, size,
 *   match flag, data, fd); identical entries may repeat.
 * - Only entries of the terminating region of each flat range count.  An
 *   entry is kept whole (not clipped) if it meets the range; an entry
 *   spanning two ranges of its region is reported twice.
 * - The address-space set is rebuilt from the view in address order and
 *   merged against the old set: eventfd_del in ascending listener order,
 *   eventfd_add in descending order (QEMU's directions).
 *
 * Readers: the access path matches writes against a region's entries from
 * any thread, so a region's entry array is immutable once published and
 * replaced as a whole (RCU); only the per-entry "taken" counters change in
 * place, atomically.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "memspace/ioeventfd.h"

static bool entry_before(const struct ms__ioeventfd *a,
                         const struct ms__ioeventfd *b)
{
    if (a->addr != b->addr) {
        return a->addr < b->addr;
    }
    if (a->size != b->size) {
        return a->size < b->size;
    }
    if (a->match_data != b->match_data) {
        return !a->match_data;
    }
    if (a->match_data && a->data != b->data) {
        return a->data < b->data;
    }
    return a->fd < b->fd;
}

static bool entry_equal(const struct ms__ioeventfd *a,
                        const struct ms__ioeventfd *b)
{
    return !entry_before(a, b) && !entry_before(b, a);
}

static bool as_entry_before(const struct ms__as_ioeventfd *a,
                            const struct ms__as_ioeventfd *b)
{
    struct ms__ioeventfd x = { a->gpa, a->size, a->match_data, a->data,
                               a->fd, 0 };
    struct ms__ioeventfd y = { b->gpa, b->size, b->match_data, b->data,
                               b->fd, 0 };
    return entry_before(&x, &y);
}

static uint64_t bswap_n(uint64_t v, unsigned size)
{
    switch (size) {
    case 2:
        return __builtin_bswap16((uint16_t)v);
    case 4:
        return __builtin_bswap32((uint32_t)v);
    case 8:
        return __builtin_bswap64(v);
    default:
        return v;
    }
}

/* Target order -> the region's register order, for an access of @size. */
static uint64_t to_region_order(const ms_region *r, uint64_t data,
                                unsigned size)
{
    const ms_system *sys = r->sys;
    bool big = sys->big_endian;
    if (r->ops && r->ops->endianness == MS_ENDIAN_BIG) {
        big = true;
    } else if (r->ops && r->ops->endianness == MS_ENDIAN_LITTLE) {
        big = false;
    }
    return big != sys->big_endian ? bswap_n(data, size) : data;
}

static void free_evarray(struct ms__retired *obj)
{
    free(obj);
}

/* Replace @r's published array; the old one is freed after a grace
 * period. */
static void publish(ms_region *r, struct ms__evarray *nv)
{
    struct ms__evarray *old = r->evs;
    ms__rcu_publish(&r->evs, nv);
    if (old) {
        ms__retire(r->sys, &old->retired, free_evarray);
    }
}

static struct ms__evarray *evarray_new(size_t nr)
{
    struct ms__evarray *a = calloc(1, sizeof(*a) + nr * sizeof(a->e[0]));
    if (a) {
        a->nr = nr;
    }
    return a;
}

static int check_args(ms_region *r, uint64_t offset, unsigned size,
                      bool match_data, int fd)
{
    if (!r || fd < 0) {
        return -EINVAL;
    }
    if (size != 0 && size != 1 && size != 2 && size != 4 && size != 8) {
        ms__log(r->sys, MS_LOG_ERROR,
                "ioeventfd on '%s': size %u is not 0, 1, 2, 4 or 8", r->name,
                size);
        return -EINVAL;
    }
    if (match_data && size == 0) {
        ms__log(r->sys, MS_LOG_ERROR,
                "ioeventfd on '%s': data match needs a size", r->name);
        return -EINVAL;
    }
    if (!ms__window_fits(offset, size ? size : 1, r->size)) {
        ms__log(r->sys, MS_LOG_ERROR,
                "ioeventfd on '%s' at 0x%llx: outside the region", r->name,
                (unsigned long long)offset);
        return -ERANGE;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    return 0;
}

/* Validate a request and build the entry it names. */
static int make_entry(ms_region *r, uint64_t offset, unsigned size,
                      bool match_data, uint64_t data, int fd,
                      struct ms__ioeventfd *e)
{
    int err = check_args(r, offset, size, match_data, fd);
    if (err < 0) {
        return err;
    }
    *e = (struct ms__ioeventfd){
        .addr = offset,
        .size = size,
        .match_data = match_data,
        .data = size ? to_region_order(r, data, size) : data,
        .fd = fd,
    };
    return 0;
}

/* Publish @r's new entry array as a one-edit transaction. */
static int commit_entries(ms_region *r, struct ms__evarray *nv)
{
    ms__txn_begin(r->sys);
    publish(r, nv);
    if (r->enabled) {
        r->sys->ioeventfd_pending = true;
    }
    return ms__txn_commit(r->sys);
}

MS_EXPORT int ms_region_add_eventfd(ms_region *r, uint64_t offset,
                                    unsigned size, bool match_data,
                                    uint64_t data, int fd)
{
    struct ms__ioeventfd e;
    int err = make_entry(r, offset, size, match_data, data, fd, &e);
    if (err < 0) {
        return err;
    }
    size_t nr = r->evs ? r->evs->nr : 0;
    struct ms__evarray *nv = evarray_new(nr + 1);
    if (!nv) {
        return -ENOMEM;
    }
    /* Insert before the first entry it sorts before (after equals). */
    size_t pos = 0;
    while (pos < nr && !entry_before(&e, &r->evs->e[pos])) {
        pos++;
    }
    if (pos) {
        memcpy(nv->e, r->evs->e, pos * sizeof(e));
    }
    nv->e[pos] = e;
    if (nr > pos) {
        memcpy(nv->e + pos + 1, r->evs->e + pos, (nr - pos) * sizeof(e));
    }
    return commit_entries(r, nv);
}

MS_EXPORT int ms_region_del_eventfd(ms_region *r, uint64_t offset,
                                    unsigned size, bool match_data,
                                    uint64_t data, int fd)
{
    struct ms__ioeventfd e;
    int err = make_entry(r, offset, size, match_data, data, fd, &e);
    if (err < 0) {
        return err;
    }
    size_t nr = r->evs ? r->evs->nr : 0, pos;
    for (pos = 0; pos < nr; pos++) {
        if (entry_equal(&e, &r->evs->e[pos])) {
            break;
        }
    }
    if (pos == nr) {
        ms__log(r->sys, MS_LOG_ERROR,
                "ioeventfd on '%s' at 0x%llx (fd %d): no such entry",
                r->name, (unsigned long long)offset, fd);
        return -ENOENT;
    }
    struct ms__evarray *nv = NULL;
    if (nr > 1) {
        nv = evarray_new(nr - 1);
        if (!nv) {
            return -ENOMEM;
        }
        memcpy(nv->e, r->evs->e, pos * sizeof(e));
        memcpy(nv->e + pos, r->evs->e + pos + 1,
               (nr - pos - 1) * sizeof(e));
    }
    return commit_entries(r, nv);
}

void ms__region_ioeventfds_free(ms_region *r)
{
    /* The region is being freed: no view shows it, no reader sees it. */
    free(r->evs);
    r->evs = NULL;
}

/* The first entry of @r equal to @ae, where "taken" is counted. */
static struct ms__ioeventfd *region_entry_of(const ms_region *r,
                                             const struct ms__as_ioeventfd *ae)
{
    struct ms__ioeventfd key = { ae->raddr, ae->size, ae->match_data,
                                 ae->data, ae->fd, 0 };
    struct ms__evarray *a = r->evs;
    for (size_t i = 0; a && i < a->nr; i++) {
        if (entry_equal(&key, &a->e[i])) {
            return &a->e[i];
        }
    }
    return NULL;
}

/* Build the address-space set from the published view (section 5.3). */
static int collect(ms_as *as, struct ms__as_ioeventfd **out, size_t *nr_out)
{
    const ms_flatview *fv = as->view;
    size_t nr = 0, cap = 0;
    struct ms__as_ioeventfd *v = NULL;
    for (size_t k = 0; k < fv->nr; k++) {
        const ms__fr *fr = &fv->ranges[k];
        struct ms__evarray *a = fr->mr->evs;
        if (!a) {
            continue;
        }
        struct ms__range ext = { fr->offset,
                                 fr->offset + (fr->last - fr->gpa) };
        for (size_t i = 0; i < a->nr; i++) {
            const struct ms__ioeventfd *e = &a->e[i];
            struct ms__range er;
            bool meets;
            if (ms__range_make(e->addr, e->size, &er)) {
                meets = ms__range_overlaps(er, ext);
            } else {
                meets = ms__range_contains(ext, e->addr);
            }
            if (!meets) {
                continue;
            }
            if (nr == cap) {
                cap = cap ? cap * 2 : 8;
                struct ms__as_ioeventfd *nv = realloc(v, cap * sizeof(*v));
                if (!nv) {
                    free(v);
                    return -ENOMEM;
                }
                v = nv;
            }
            /* Whole entry, shifted; wraps if it starts before 0. */
            v[nr] = (struct ms__as_ioeventfd){
                .gpa = fr->gpa + (e->addr - fr->offset),
                .size = e->size,
                .match_data = e->match_data,
                .data = e->data,
                .fd = e->fd,
                .mr = fr->mr,
                .raddr = e->addr,
            };
            nr++;
        }
    }
    *out = v;
    *nr_out = nr;
    return 0;
}

static void call_eventfd(ms_as *as, struct ms__listener_priv *p, bool add,
                         const struct ms__as_ioeventfd *e, bool *taken)
{
    struct ms_listener *l = p->l;
    int (*fn)(struct ms_listener *, const struct ms_section *, bool,
              uint64_t, int) = add ? l->eventfd_add : l->eventfd_del;
    if (!fn) {
        return;
    }
    struct ms_section s = {
        .fv = as->view,
        .as = as,
        .gpa = e->gpa,
        .size = e->size,
        .last = e->gpa + (e->size ? e->size - 1 : 0),
    };
    as->sys->in_callback++;
    int rc = fn(l, &s, e->match_data, e->data, e->fd);
    as->sys->in_callback--;
    if (rc < 0) {
        ms__error_record(as->sys, rc, l,
                         add ? "eventfd_add" : "eventfd_del", as, &s);
    } else if (rc > 0 && add && taken) {
        *taken = true;
    }
}

static void adjust_taken(const struct ms__as_ioeventfd *e, int delta)
{
    struct ms__ioeventfd *re = region_entry_of(e->mr, e);
    if (re) {
        __atomic_add_fetch(&re->taken, (unsigned)delta, __ATOMIC_RELAXED);
    }
}

int ms__as_update_ioeventfds(ms_as *as)
{
    struct ms__as_ioeventfd *nv;
    size_t nn;
    int err = collect(as, &nv, &nn);
    if (err < 0) {
        ms__log(as->sys, MS_LOG_ERROR,
                "out of memory updating the ioeventfds of '%s'", as->name);
        return err;
    }
    struct ms__as_ioeventfd *ov = as->ioeventfds;
    size_t on = as->nr_ioeventfds, i = 0, j = 0;
    while (i < on || j < nn) {
        if (i < on && (j == nn || as_entry_before(&ov[i], &nv[j]))) {
            for (struct ms__listener_priv *p = as->l_first; p;
                 p = p->as_next) {
                call_eventfd(as, p, false, &ov[i], NULL);
            }
            if (ov[i].taken) {
                /* Its region entry may be gone already: then no count. */
                adjust_taken(&ov[i], -1);
            }
            i++;
        } else if (j < nn && (i == on || as_entry_before(&nv[j], &ov[i]))) {
            bool taken = false;
            for (struct ms__listener_priv *p = as->l_last; p;
                 p = p->as_prev) {
                call_eventfd(as, p, true, &nv[j], &taken);
            }
            nv[j].taken = taken;
            if (taken) {
                adjust_taken(&nv[j], +1);
            }
            j++;
        } else {
            nv[j].taken = ov[i].taken;
            if (ov[i].taken &&
                (ov[i].mr != nv[j].mr || ov[i].raddr != nv[j].raddr)) {
                /* The same address-space entry now comes from elsewhere. */
                adjust_taken(&ov[i], -1);
                adjust_taken(&nv[j], +1);
            }
            i++;
            j++;
        }
    }
    free(ov);
    as->ioeventfds = nv;
    as->nr_ioeventfds = nn;
    return 0;
}

bool ms__ioeventfd_consume(ms_region *r, uint64_t offset, unsigned size,
                           uint64_t data)
{
    struct ms__evarray *a = ms__rcu_deref(&r->evs);
    if (!a) {
        return false;
    }
    for (size_t i = 0; i < a->nr; i++) {
        const struct ms__ioeventfd *e = &a->e[i];
        if (e->addr != offset) {
            continue;
        }
        if (e->size != 0 &&
            (e->size != size || (e->match_data && e->data != data))) {
            continue;
        }
        if (__atomic_load_n(&e->taken, __ATOMIC_RELAXED)) {
            return false; /* a backend handles it; let the device see it */
        }
        uint64_t one = 1;
        ssize_t n = write(e->fd, &one, sizeof(one));
        (void)n; /* a full counter or a closed fd loses a kick, not data */
        return true;
    }
    return false;
}

MS_EXPORT size_t ms_as_nr_eventfds(const ms_as *as)
{
    return as ? as->nr_ioeventfds : 0;
}

MS_EXPORT int ms_as_eventfd(const ms_as *as, size_t i,
                            struct ms_eventfd_info *out)
{
    if (!as || !out) {
        return -EINVAL;
    }
    if (i >= as->nr_ioeventfds) {
        return -ERANGE;
    }
    const struct ms__as_ioeventfd *e = &as->ioeventfds[i];
    *out = (struct ms_eventfd_info){
        .gpa = e->gpa,
        .size = (unsigned)e->size,
        .match_data = e->match_data,
        .data = e->data,
        .fd = e->fd,
        .taken = e->taken,
    };
    return 0;
}
