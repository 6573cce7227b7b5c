/* SPDX-License-Identifier: MIT */
/*
 * The KVM listeners: what each commit wants mapped, and ioeventfds.
 *
 * Memory listener ("kvm-memory", priority 10, on the memory address
 * space).  Between begin and commit it only collects the sections of the
 * new view (region_add and region_nop; region_del and log changes only
 * mark the commit as relevant).  At commit it turns them into wanted
 * pieces and lets the planner and the slot table do the rest
 * (slots.c).  Applying at commit instead of in region_add/region_del is
 * what lets a slot survive its neighbours: a range that QEMU would delete
 * and re-add because the flat view merged it with a neighbour is, here,
 * the same memory before and after, so its slot stays.
 *
 * Pieces.  A flat range is cut where the unmerged render has a boundary
 * (two aliases meeting, RAM split around an occluding window), so a new
 * slot never spans two things that can change independently; each piece is
 * trimmed inwards to host pages (docs/model.md 8.2).
 *
 * Which regions get slots (8.2): RAM, ROM and RAM devices always (ROM and
 * read-only RAM with KVM_MEM_READONLY when the kernel has it, else
 * writable as QEMU does); ROM devices only in ROMD mode and only with
 * read-only slots; nothing else.  Only the terminating region's flags
 * count (a read-only alias of RAM still gets a writable slot: QEMU's rule,
 * which the access path follows too).
 *
 * I/O listener ("kvm-io", priority 10, on the I/O address space): PIO
 * ioeventfds.  MMIO ioeventfds come through the memory listener.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "kvm_int.h"
#include "memspace/dirty.h"

#define KVM_LISTENER_PRIORITY 10

static struct ms__kvm_mem_listener *mem_of(struct ms_listener *l)
{
    return (struct ms__kvm_mem_listener *)l;
}

static int mem_begin(struct ms_listener *l)
{
    struct ms__kvm_mem_listener *m = mem_of(l);
    m->nr_secs = 0;
    m->touched = false;
    m->incomplete = false;
    return 0;
}

static int collect(struct ms_listener *l, const struct ms_section *s)
{
    struct ms__kvm_mem_listener *m = mem_of(l);
    m->touched = true;
    if (m->nr_secs == m->cap_secs) {
        size_t ncap = m->cap_secs ? m->cap_secs * 2 : 64;
        struct ms__kvm_sec *n = realloc(m->secs, ncap * sizeof(*n));
        if (!n) {
            m->incomplete = true; /* this commit must not plan */
            return -ENOMEM;
        }
        m->secs = n;
        m->cap_secs = ncap;
    }
    m->secs[m->nr_secs++] = (struct ms__kvm_sec){
        .gpa = s->gpa,
        .last = s->last,
        .offset = s->offset_within_region,
        .mr = s->mr,
    };
    return 0;
}

static int mem_touch(struct ms_listener *l, const struct ms_section *s)
{
    (void)s;
    mem_of(l)->touched = true;
    return 0;
}

static int mem_log(struct ms_listener *l, const struct ms_section *s,
                   unsigned old_mask, unsigned new_mask)
{
    (void)s, (void)old_mask, (void)new_mask;
    mem_of(l)->touched = true;
    return 0;
}

/* Slot flags for @mr; false if it gets no slot at all. */
static bool slot_flags(const ms_kvm *kvm, ms_region *mr, uint32_t *flags)
{
    bool ro;
    switch (ms_region_kind(mr)) {
    case MS_REGION_RAM:
    case MS_REGION_ROM:
    case MS_REGION_RAM_DEVICE:
        ro = ms_region_readonly(mr);
        break;
    case MS_REGION_ROM_DEVICE:
        /* Writes must always trap; out of ROMD mode reads too. */
        if (!kvm->caps.readonly_mem || !ms_region_romd(mr)) {
            return false;
        }
        ro = true;
        break;
    default:
        return false;
    }
    if (!ms_region_host(mr)) {
        return false;
    }
    *flags = 0;
    if (ro && kvm->caps.readonly_mem) {
        *flags |= MS__KVM_RO;
    }
    if (ms_region_log_mask(mr)) {
        *flags |= MS__KVM_LOG;
    }
    return true;
}

struct pvec {
    struct ms__kvm_piece *v;
    size_t n, cap;
};

static int pvec_push(struct pvec *pv, const struct ms__kvm_piece *p)
{
    if (pv->n == pv->cap) {
        size_t ncap = pv->cap ? pv->cap * 2 : 32;
        struct ms__kvm_piece *n = realloc(pv->v, ncap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        pv->v = n;
        pv->cap = ncap;
    }
    pv->v[pv->n++] = *p;
    return 0;
}

/*
 * Host-page interior of [gpa, last]: false if it holds no whole page.
 * @mask is page_size - 1.
 */
static bool page_interior(uint64_t gpa, uint64_t last, uint64_t mask,
                          uint64_t *a, uint64_t *z)
{
    if (gpa & mask) {
        if (ms__add_overflows(gpa | mask, 1)) {
            return false;
        }
        gpa = (gpa | mask) + 1;
    }
    if ((last & mask) != mask) {
        if ((last & ~mask) == 0) {
            return false;
        }
        last = (last & ~mask) - 1;
    }
    if (gpa > last) {
        return false;
    }
    *a = gpa;
    *z = last;
    return true;
}

static int emit(struct pvec *pv, const struct ms__kvm_sec *sec, uint64_t host,
                uint32_t flags, uint64_t a, uint64_t z)
{
    uint64_t delta = a - sec->gpa;
    struct ms__kvm_piece p = {
        .gpa = a,
        .size = z - a + 1,
        .host = host + sec->offset + delta,
        .key = (uintptr_t)sec->mr,
        .offset = sec->offset + delta,
        .flags = flags,
    };
    return pvec_push(pv, &p);
}

/* The wanted pieces of the collected sections (ascending). */
static int build_pieces(ms_kvm *kvm, struct pvec *pv)
{
    struct ms__kvm_mem_listener *m = &kvm->mem;
    uint64_t mask = kvm->page_size - 1;
    ms__fr *cuts = NULL;
    size_t nr_cuts = 0, c = 0;
    if (m->nr_secs) {
        const ms_flatview *fv = ms_as_flatview(m->as);
        int err = ms__render_unmerged(ms_flatview_root(fv), &cuts, &nr_cuts);
        if (err < 0) {
            /* Still correct, only less careful about future changes. */
            ms__log(kvm->sys, MS_LOG_WARN,
                    "KVM: no unmerged render (errno %d); slots follow the "
                    "flat ranges",
                    -err);
            cuts = NULL;
            nr_cuts = 0;
        }
    }
    int err = 0;
    for (size_t i = 0; i < m->nr_secs && err == 0; i++) {
        const struct ms__kvm_sec *sec = &m->secs[i];
        uint32_t flags;
        uint64_t a, z;
        if (!slot_flags(kvm, sec->mr, &flags) ||
            !page_interior(sec->gpa, sec->last, mask, &a, &z)) {
            continue;
        }
        uint64_t host = (uint64_t)(uintptr_t)ms_region_host(sec->mr);
        if (((host + sec->offset + (a - sec->gpa)) & mask) != 0) {
            ms__log(kvm->sys, MS_LOG_DEBUG,
                    "KVM: region '%s' at 0x%" PRIx64
                    " is not host-page aligned in host memory; no slot",
                    ms_region_name(sec->mr), sec->gpa);
            continue;
        }
        while (c < nr_cuts && cuts[c].gpa <= a) {
            c++;
        }
        uint64_t cur = a;
        for (; c < nr_cuts && cuts[c].gpa <= z && err == 0; c++) {
            uint64_t q = cuts[c].gpa & ~mask;
            if (q > cur) {
                err = emit(pv, sec, host, flags, cur, q - 1);
                cur = q;
            }
        }
        if (err == 0) {
            err = emit(pv, sec, host, flags, cur, z);
        }
    }
    free(cuts);
    return err;
}

static int mem_commit(struct ms_listener *l)
{
    struct ms__kvm_mem_listener *m = mem_of(l);
    ms_kvm *kvm = m->kvm;
    if (!m->touched) {
        return 0;
    }
    m->touched = false;
    if (m->incomplete) {
        /* A missing section would read as "unmapped": keep every slot;
         * the next commit sees the whole view again. */
        m->nr_secs = 0;
        return -ENOMEM;
    }
    uint64_t t0 = ms__kvm_now_ns();
    uint64_t io0 = kvm->stats.ioctl_ns, p0 = kvm->stats.pause_ns;
    struct pvec pv = {0};
    int err = build_pieces(kvm, &pv);
    if (err == 0) {
        err = ms__kvm_apply(kvm, pv.v, pv.n);
    }
    free(pv.v);
    m->nr_secs = 0;
    uint64_t spent = ms__kvm_now_ns() - t0;
    uint64_t other = (kvm->stats.ioctl_ns - io0) + (kvm->stats.pause_ns - p0);
    kvm->stats.plan_ns += spent > other ? spent - other : 0;
    return err;
}

static int mem_log_sync(struct ms_listener *l, const struct ms_section *s)
{
    return ms__kvm_sync_range(mem_of(l)->kvm, s->gpa, s->last);
}

static int mem_log_clear(struct ms_listener *l, const struct ms_section *s)
{
    return ms__kvm_clear_range(mem_of(l)->kvm, s->gpa, s->last);
}

static bool mem_has_memory(struct ms_listener *l, const ms_as *as, uint64_t gpa,
                           uint64_t size)
{
    struct ms__kvm_mem_listener *m = mem_of(l);
    struct ms__range r;
    if (as != m->as || !ms__range_make(gpa, size, &r)) {
        return false;
    }
    return ms__kvm_covered(m->kvm, r.first, r.last);
}

/* ---- ioeventfds ---------------------------------------------------------- */

static bool ioev_same(const struct ms_kvm_ioeventfd *a,
                      const struct ms_kvm_ioeventfd *b)
{
    return a->addr == b->addr && a->len == b->len && a->fd == b->fd &&
           a->pio == b->pio && a->datamatch == b->datamatch &&
           (!a->datamatch || a->data == b->data);
}

static int ioev_add(ms_kvm *kvm, const struct ms_section *s, bool pio,
                    bool match, uint64_t data, int fd)
{
    uint64_t len = s->size;
    if (!kvm->caps.ioeventfd || (len == 0 && !kvm->caps.ioeventfd_any_length) ||
        (len != 0 && len != 1 && len != 2 && len != 4 && len != 8) ||
        (match && len == 0) || (pio && s->gpa > 0xffff)) {
        return 0; /* not taken: the access path signals it */
    }
    struct ms_kvm_ioeventfd e = {
        .addr = s->gpa,
        .len = (uint32_t)len,
        .fd = fd,
        .pio = pio,
        .datamatch = match,
        .data = match ? data : 0,
    };
    for (size_t i = 0; i < kvm->nr_ioevs; i++) {
        if (ioev_same(&kvm->ioevs[i].e, &e)) {
            kvm->ioevs[i].refs++;
            return 1;
        }
    }
    if (kvm->nr_ioevs == kvm->cap_ioevs) {
        size_t ncap = kvm->cap_ioevs ? kvm->cap_ioevs * 2 : 8;
        struct ms__kvm_ioev *n = realloc(kvm->ioevs, ncap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        kvm->ioevs = n;
        kvm->cap_ioevs = ncap;
    }
    int rc = ms__kvm_ioeventfd(kvm, &e);
    if (rc < 0) {
        ms__log(kvm->sys, MS_LOG_ERROR,
                "KVM_IOEVENTFD at %s 0x%" PRIx64 " (len %u, fd %d) failed "
                "(errno %d)%s",
                pio ? "port" : "address", e.addr, e.len, fd, -rc,
                rc == -EEXIST ? ": it collides with another ioeventfd" : "");
        return rc;
    }
    kvm->ioevs[kvm->nr_ioevs++] = (struct ms__kvm_ioev){.e = e, .refs = 1};
    return 1;
}

static int ioev_del(ms_kvm *kvm, const struct ms_section *s, bool pio,
                    bool match, uint64_t data, int fd)
{
    struct ms_kvm_ioeventfd e = {
        .addr = s->gpa,
        .len = (uint32_t)s->size,
        .fd = fd,
        .pio = pio,
        .datamatch = match,
        .data = match ? data : 0,
    };
    for (size_t i = 0; i < kvm->nr_ioevs; i++) {
        struct ms__kvm_ioev *x = &kvm->ioevs[i];
        if (!ioev_same(&x->e, &e)) {
            continue;
        }
        if (--x->refs) {
            return 0;
        }
        e.deassign = true;
        int rc = ms__kvm_ioeventfd(kvm, &e);
        if (rc < 0) {
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM_IOEVENTFD deassign at 0x%" PRIx64 " failed "
                    "(errno %d)",
                    e.addr, -rc);
        }
        memmove(x, x + 1, (kvm->nr_ioevs - i - 1) * sizeof(*x));
        kvm->nr_ioevs--;
        return rc < 0 ? rc : 0;
    }
    return 0; /* never taken */
}

static int mem_eventfd_add(struct ms_listener *l, const struct ms_section *s,
                           bool match, uint64_t data, int fd)
{
    return ioev_add(mem_of(l)->kvm, s, false, match, data, fd);
}

static int mem_eventfd_del(struct ms_listener *l, const struct ms_section *s,
                           bool match, uint64_t data, int fd)
{
    return ioev_del(mem_of(l)->kvm, s, false, match, data, fd);
}

static int io_eventfd_add(struct ms_listener *l, const struct ms_section *s,
                          bool match, uint64_t data, int fd)
{
    return ioev_add(((struct ms__kvm_io_listener *)l)->kvm, s, true, match,
                    data, fd);
}

static int io_eventfd_del(struct ms_listener *l, const struct ms_section *s,
                          bool match, uint64_t data, int fd)
{
    return ioev_del(((struct ms__kvm_io_listener *)l)->kvm, s, true, match,
                    data, fd);
}

/* ---- registration -------------------------------------------------------- */

void ms__kvm_listeners_init(ms_kvm *kvm)
{
    struct ms_listener *l = &kvm->mem.l;
    kvm->mem.kvm = kvm;
    l->name = "kvm-memory";
    l->priority = KVM_LISTENER_PRIORITY;
    l->begin = mem_begin;
    l->commit = mem_commit;
    l->region_add = collect;
    l->region_nop = collect;
    l->region_del = mem_touch;
    l->log_start = mem_log;
    l->log_stop = mem_log;
    l->log_sync = mem_log_sync;
    l->log_clear = mem_log_clear;
    l->eventfd_add = mem_eventfd_add;
    l->eventfd_del = mem_eventfd_del;
    l->accel_name = "KVM";
    l->has_memory = mem_has_memory;

    l = &kvm->io.l;
    kvm->io.kvm = kvm;
    l->name = "kvm-io";
    l->priority = KVM_LISTENER_PRIORITY;
    l->eventfd_add = io_eventfd_add;
    l->eventfd_del = io_eventfd_del;
}

int ms__kvm_listeners_register(ms_kvm *kvm, ms_as *memory, ms_as *io)
{
    kvm->mem.as = memory;
    int first = ms_listener_register(memory, &kvm->mem.l);
    /* A replay error leaves the listener registered; others do not. */
    kvm->mem.registered = kvm->mem.l.priv_ != NULL;
    if (!kvm->mem.registered) {
        return first;
    }
    if (io) {
        kvm->io.as = io;
        int err = ms_listener_register(io, &kvm->io.l);
        kvm->io.registered = kvm->io.l.priv_ != NULL;
        if (first == 0) {
            first = err;
        }
    }
    return first;
}

void ms__kvm_listeners_unregister(ms_kvm *kvm)
{
    if (kvm->io.registered) {
        (void)ms_listener_unregister(&kvm->io.l);
        kvm->io.registered = false;
    }
    if (kvm->mem.registered) {
        /* Unreplay: region_del for everything, then commit deletes the
         * slots. */
        (void)ms_listener_unregister(&kvm->mem.l);
        kvm->mem.registered = false;
    }
    /* ioeventfds are not unreplayed (QEMU 7.2): deassign what is left. */
    for (size_t i = 0; i < kvm->nr_ioevs; i++) {
        struct ms_kvm_ioeventfd e = kvm->ioevs[i].e;
        e.deassign = true;
        (void)ms__kvm_ioeventfd(kvm, &e);
    }
    kvm->nr_ioevs = 0;
    free(kvm->ioevs);
    kvm->ioevs = NULL;
    kvm->cap_ioevs = 0;
    free(kvm->mem.secs);
    kvm->mem.secs = NULL;
    kvm->mem.nr_secs = kvm->mem.cap_secs = 0;
}
