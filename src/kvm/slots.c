/* SPDX-License-Identifier: MIT */
/*
 * The slot table: what the kernel has, and how plans are applied to it.
 *
 * Invariant: kvm->slots mirrors the kernel's slots exactly (ascending gpa,
 * disjoint).  An entry is added only after its create ioctl succeeded and
 * removed only after its delete succeeded; a failed ioctl leaves the table
 * as the kernel has it, and the next commit plans from there again.  Each
 * live slot holds a reference on the region it maps, so its host memory
 * outlives the slot.
 *
 * Every call into the seam goes through one of the wrappers below, which
 * time it, count it and report it to the trace hook.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../internal.h"
#include "kvm_int.h"
#include "memspace/dirty.h"

uint64_t ms__kvm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static ms_region *slot_region(const struct ms__kvm_live *l)
{
    return (ms_region *)l->s.key;
}

static uint64_t slot_pages(const ms_kvm *kvm, const struct ms__kvm_slot *s)
{
    return s->size / kvm->page_size;
}

static size_t bitmap_words(uint64_t pages)
{
    return (size_t)(pages / 64 + (pages % 64 != 0));
}

static void trace(ms_kvm *kvm, struct ms_kvm_event *ev)
{
    if (kvm->trace) {
        kvm->trace(kvm->trace_opaque, ev);
    }
}

/* ---- seam wrappers ------------------------------------------------------- */

static int do_set(ms_kvm *kvm, const struct ms__kvm_slot *s, bool del)
{
    struct ms_kvm_memslot m = {
        .slot = s->id,
        .flags = del ? 0 : s->flags,
        .gpa = s->gpa,
        .size = del ? 0 : s->size,
        .host = s->host,
    };
    uint64_t t0 = ms__kvm_now_ns();
    int rc = kvm->ops.set_memslot(kvm->ops_opaque, &m);
    uint64_t ns = ms__kvm_now_ns() - t0;
    kvm->stats.ioctl_ns += ns;
    if (rc < 0) {
        kvm->stats.ioctl_errors++;
    }
    struct ms_kvm_event ev = {
        .kind = MS_KVM_EV_MEMSLOT,
        .result = rc,
        .ns = ns,
        .slot = &m,
        .region = (const ms_region *)s->key,
        .offset = s->offset,
    };
    trace(kvm, &ev);
    return rc;
}

static uint64_t popcount(const uint64_t *map, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++) {
        n += (uint64_t)__builtin_popcountll(map[i]);
    }
    return n;
}

/*
 * Count a dirty-log ioctl of @l that took @ns and returned @rc, and trace
 * it: pages [first, first + num) with @dirty pages set.
 */
static void dirty_ioctl_done(ms_kvm *kvm, const struct ms__kvm_live *l,
                             enum ms_kvm_event_kind kind, int rc, uint64_t ns,
                             uint64_t first, uint64_t num, uint64_t dirty)
{
    kvm->stats.ioctl_ns += ns;
    kvm->stats.dirty_ioctls++;
    if (rc < 0) {
        kvm->stats.ioctl_errors++;
    }
    struct ms_kvm_memslot m = {.slot = l->s.id,
                               .flags = l->s.flags,
                               .gpa = l->s.gpa,
                               .size = l->s.size,
                               .host = l->s.host};
    struct ms_kvm_event ev = {
        .kind = kind,
        .result = rc,
        .ns = ns,
        .slot = &m,
        .region = slot_region(l),
        .offset = l->s.offset,
        .first_page = first,
        .num_pages = num,
        .dirty_pages = dirty,
    };
    trace(kvm, &ev);
}

/*
 * KVM_GET_DIRTY_LOG of @l merged into its region.  In manual mode the
 * result is also cached for log_clear.
 */
static int sync_slot(ms_kvm *kvm, struct ms__kvm_live *l)
{
    uint64_t pages = slot_pages(kvm, &l->s);
    size_t words = bitmap_words(pages);
    uint64_t *map = calloc(words ? words : 1, sizeof(*map));
    if (!map) {
        return -ENOMEM;
    }
    uint64_t t0 = ms__kvm_now_ns();
    int rc = kvm->ops.get_dirty_log(kvm->ops_opaque, l->s.id, map);
    uint64_t ns = ms__kvm_now_ns() - t0;
    if (rc == -ENOENT) {
        rc = 0; /* no bitmap in the kernel: nothing dirty (QEMU) */
    }
    uint64_t dirty = rc == 0 ? popcount(map, words) : 0;
    dirty_ioctl_done(kvm, l, MS_KVM_EV_GET_DIRTY_LOG, rc, ns, 0, pages, dirty);
    if (rc == 0 && dirty) {
        int err = ms_region_merge_dirty(slot_region(l), l->s.offset, map, pages,
                                        (uint32_t)kvm->page_size);
        if (err < 0) {
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM: cannot merge the dirty log of slot %u into "
                    "region '%s' (errno %d)",
                    l->s.id, ms_region_name(slot_region(l)), -err);
            rc = err;
        }
    }
    if (rc == 0 && kvm->caps.manual_dirty_log) {
        if (l->dirty) {
            free(l->dirty);
        }
        l->dirty = map;
        map = NULL;
    }
    free(map);
    if (rc < 0) {
        ms__log(kvm->sys, MS_LOG_ERROR,
                "KVM_GET_DIRTY_LOG of slot %u failed (errno %d)", l->s.id, -rc);
    }
    return rc;
}

static int clear_slot(ms_kvm *kvm, struct ms__kvm_live *l, uint64_t p0,
                      uint64_t p1)
{
    uint64_t pages = slot_pages(kvm, &l->s);
    if (!l->dirty) {
        return 0; /* nothing fetched, nothing to re-protect */
    }
    /* The kernel wants 64-page alignment, or a run to the slot's end. */
    uint64_t w0 = p0 / 64 * 64;
    uint64_t w1 = (p1 / 64 + 1) * 64; /* exclusive */
    if (w1 > pages) {
        w1 = pages;
    }
    uint64_t num = w1 - w0;
    size_t words = bitmap_words(num);
    uint64_t *map = calloc(words ? words : 1, sizeof(*map));
    if (!map) {
        return -ENOMEM;
    }
    bool any = false;
    for (uint64_t pg = p0; pg <= p1; pg++) {
        if (l->dirty[pg / 64] & (UINT64_C(1) << (pg % 64))) {
            uint64_t b = pg - w0;
            map[b / 64] |= UINT64_C(1) << (b % 64);
            any = true;
        }
    }
    int rc = 0;
    if (any) {
        uint64_t t0 = ms__kvm_now_ns();
        rc = kvm->ops.clear_dirty_log(kvm->ops_opaque, l->s.id, w0,
                                      (uint32_t)num, map);
        uint64_t ns = ms__kvm_now_ns() - t0;
        if (rc < 0) {
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM_CLEAR_DIRTY_LOG of slot %u failed (errno %d)", l->s.id,
                    -rc);
        }
        dirty_ioctl_done(kvm, l, MS_KVM_EV_CLEAR_DIRTY_LOG, rc, ns, w0, num,
                         popcount(map, words));
    }
    if (rc == 0) {
        for (uint64_t pg = p0; pg <= p1; pg++) {
            l->dirty[pg / 64] &= ~(UINT64_C(1) << (pg % 64));
        }
    }
    free(map);
    return rc;
}

/* ---- the table ----------------------------------------------------------- */

static size_t find_id(const ms_kvm *kvm, uint32_t id)
{
    for (size_t i = 0; i < kvm->nr_slots; i++) {
        if (kvm->slots[i].s.id == id) {
            return i;
        }
    }
    return SIZE_MAX;
}

static int table_insert(ms_kvm *kvm, const struct ms__kvm_slot *s)
{
    if (kvm->nr_slots == kvm->cap_slots) {
        size_t ncap = kvm->cap_slots ? kvm->cap_slots * 2 : 16;
        struct ms__kvm_live *n = realloc(kvm->slots, ncap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        kvm->slots = n;
        kvm->cap_slots = ncap;
    }
    size_t i = kvm->nr_slots;
    while (i > 0 && kvm->slots[i - 1].s.gpa > s->gpa) {
        i--;
    }
    memmove(&kvm->slots[i + 1], &kvm->slots[i],
            (kvm->nr_slots - i) * sizeof(*kvm->slots));
    kvm->slots[i] = (struct ms__kvm_live){.s = *s};
    kvm->nr_slots++;
    ms_region_ref((ms_region *)s->key);
    return 0;
}

static void table_remove(ms_kvm *kvm, size_t i)
{
    ms_region *mr = slot_region(&kvm->slots[i]);
    free(kvm->slots[i].dirty);
    memmove(&kvm->slots[i], &kvm->slots[i + 1],
            (kvm->nr_slots - i - 1) * sizeof(*kvm->slots));
    kvm->nr_slots--;
    ms_region_unref(mr);
}

static bool overlaps(const struct ms__kvm_slot *a, const struct ms__kvm_slot *b)
{
    struct ms__range x = {a->gpa, a->gpa + (a->size - 1)};
    struct ms__range y = {b->gpa, b->gpa + (b->size - 1)};
    return ms__range_overlaps(x, y);
}

static int pause_vcpus(ms_kvm *kvm)
{
    uint64_t t0 = ms__kvm_now_ns();
    int rc = ms_kvm_pause(kvm);
    uint64_t ns = ms__kvm_now_ns() - t0;
    kvm->stats.pause_ns += ns;
    kvm->stats.pauses++;
    struct ms_kvm_event ev = {.kind = MS_KVM_EV_PAUSE, .result = rc, .ns = ns};
    trace(kvm, &ev);
    return rc;
}

static void resume_vcpus(ms_kvm *kvm)
{
    ms_kvm_resume(kvm);
    struct ms_kvm_event ev = {.kind = MS_KVM_EV_RESUME};
    trace(kvm, &ev);
}

static void record(int *first, int err)
{
    if (err < 0 && *first == 0) {
        *first = err;
    }
}

/* Execute @pl; returns the first error (the table stays exact). */
static int execute(ms_kvm *kvm, const struct ms__kvm_plan *pl)
{
    int first = 0;
    struct ms__kvm_slot *failed = NULL; /* deletions the kernel refused */
    size_t nr_failed = 0;
    bool paused = false;
    if (pl->pause) {
        int err = pause_vcpus(kvm);
        if (err < 0) {
            /* Go on: a transient hole is better than a stale mapping. */
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM: could not pause the vCPUs (errno %d); slots "
                    "change while they run",
                    -err);
            record(&first, err);
        } else {
            paused = true;
        }
    }
    for (size_t i = 0; i < pl->nr_ops; i++) {
        const struct ms__kvm_op *op = &pl->ops[i];
        size_t t = op->kind == MS__KVM_OP_CREATE ? SIZE_MAX
                                                 : find_id(kvm, op->slot.id);
        int err = 0;
        if (op->kind != MS__KVM_OP_CREATE && t == SIZE_MAX) {
            continue; /* cannot happen: plans come from the table */
        }
        switch (op->kind) {
        case MS__KVM_OP_DELETE:
            if (kvm->slots[t].s.flags & MS__KVM_LOG) {
                /* Do not lose what the guest wrote before it goes. */
                record(&first, sync_slot(kvm, &kvm->slots[t]));
            }
            err = do_set(kvm, &kvm->slots[t].s, true);
            if (err == 0) {
                kvm->stats.slot_deletes++;
                table_remove(kvm, t);
            } else {
                struct ms__kvm_slot *nf =
                    realloc(failed, (nr_failed + 1) * sizeof(*nf));
                if (nf) {
                    failed = nf;
                    failed[nr_failed++] = op->slot;
                }
            }
            break;
        case MS__KVM_OP_FLAGS:
            if ((kvm->slots[t].s.flags & MS__KVM_LOG) &&
                !(op->slot.flags & MS__KVM_LOG)) {
                record(&first, sync_slot(kvm, &kvm->slots[t]));
            }
            err = do_set(kvm, &op->slot, false);
            if (err == 0) {
                kvm->stats.slot_updates++;
                kvm->slots[t].s.flags = op->slot.flags;
                if (!(op->slot.flags & MS__KVM_LOG)) {
                    free(kvm->slots[t].dirty);
                    kvm->slots[t].dirty = NULL;
                }
            }
            break;
        case MS__KVM_OP_CREATE: {
            bool blocked = false;
            for (size_t k = 0; k < nr_failed && !blocked; k++) {
                blocked = overlaps(&failed[k], &op->slot);
            }
            if (blocked) {
                err = -EEXIST; /* the old slot is still there */
                break;
            }
            err = table_insert(kvm, &op->slot);
            if (err < 0) {
                break; /* not issued: the table could not record it */
            }
            err = do_set(kvm, &op->slot, false);
            if (err == 0) {
                kvm->stats.slot_creates++;
            } else {
                /* Not in the kernel: forget it again. */
                for (size_t k = 0; k < kvm->nr_slots; k++) {
                    if (kvm->slots[k].s.id == op->slot.id) {
                        table_remove(kvm, k);
                        break;
                    }
                }
            }
            break;
        }
        }
        if (err < 0) {
            const ms_region *mr = (const ms_region *)op->slot.key;
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM: %s of slot %u (gpa 0x%" PRIx64 ", size 0x%" PRIx64
                    ", region '%s') failed (errno %d)",
                    op->kind == MS__KVM_OP_DELETE  ? "deletion"
                    : op->kind == MS__KVM_OP_FLAGS ? "flag update"
                                                   : "creation",
                    op->slot.id, op->slot.gpa, op->slot.size,
                    ms_region_name(mr), -err);
            record(&first, err);
        }
    }
    if (paused) {
        resume_vcpus(kvm);
    }
    free(failed);
    return first;
}

int ms__kvm_apply(ms_kvm *kvm, const struct ms__kvm_piece *want, size_t nr_want)
{
    struct ms__kvm_slot *old = NULL;
    if (kvm->nr_slots) {
        old = malloc(kvm->nr_slots * sizeof(*old));
        if (!old) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < kvm->nr_slots; i++) {
            old[i] = kvm->slots[i].s;
        }
    }
    struct ms__kvm_plan_opts o = {
        .page_size = kvm->page_size,
        .max_slot_size = kvm->max_slot_size,
        .max_slots = kvm->max_slots,
    };
    struct ms__kvm_plan pl;
    int err = ms__kvm_plan(old, kvm->nr_slots, want, nr_want, &o, &pl);
    free(old);
    if (err < 0) {
        ms__log(kvm->sys, MS_LOG_ERROR,
                "KVM: memslot planning failed (errno %d)", -err);
        return err;
    }
    kvm->stats.commits++;
    err = execute(kvm, &pl);
    if (pl.nr_unplaced) {
        ms__log(kvm->sys, MS_LOG_ERROR,
                "KVM: no free memslot: %zu slot(s) in use, limit %u; %zu "
                "range(s) stay unmapped and are served through exits",
                kvm->nr_slots, kvm->max_slots, pl.nr_unplaced);
        if (err == 0) {
            err = -ENOSPC;
        }
    }
    ms__kvm_plan_free(&pl);
    kvm->stats.slots_used = (uint32_t)kvm->nr_slots;
    return err;
}

/* ---- dirty logging ------------------------------------------------------- */

int ms__kvm_sync_range(ms_kvm *kvm, uint64_t gpa, uint64_t last)
{
    int first = 0;
    struct ms__range want = {gpa, last};
    for (size_t i = 0; i < kvm->nr_slots; i++) {
        struct ms__kvm_live *l = &kvm->slots[i];
        struct ms__range r = {l->s.gpa, l->s.gpa + (l->s.size - 1)};
        if ((l->s.flags & MS__KVM_LOG) && ms__range_overlaps(r, want)) {
            record(&first, sync_slot(kvm, l));
        }
    }
    return first;
}

int ms__kvm_clear_range(ms_kvm *kvm, uint64_t gpa, uint64_t last)
{
    if (!kvm->caps.manual_dirty_log) {
        return 0; /* KVM_GET_DIRTY_LOG already re-protected */
    }
    int first = 0;
    struct ms__range want = {gpa, last};
    for (size_t i = 0; i < kvm->nr_slots; i++) {
        struct ms__kvm_live *l = &kvm->slots[i];
        struct ms__range r = {l->s.gpa, l->s.gpa + (l->s.size - 1)}, x;
        if (!(l->s.flags & MS__KVM_LOG) || !ms__range_intersect(r, want, &x)) {
            continue;
        }
        uint64_t p0 = (x.first - r.first) / kvm->page_size;
        uint64_t p1 = (x.last - r.first) / kvm->page_size;
        record(&first, clear_slot(kvm, l, p0, p1));
    }
    return first;
}

/* ---- queries ------------------------------------------------------------- */

bool ms__kvm_covered(const ms_kvm *kvm, uint64_t gpa, uint64_t last)
{
    size_t lo = 0, hi = kvm->nr_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ms__kvm_slot *s = &kvm->slots[mid].s;
        if (s->gpa + (s->size - 1) < gpa) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    uint64_t cur = gpa;
    for (size_t i = lo; i < kvm->nr_slots; i++) {
        const struct ms__kvm_slot *s = &kvm->slots[i].s;
        uint64_t sl = s->gpa + (s->size - 1);
        if (s->gpa > cur) {
            return false;
        }
        if (sl >= last) {
            return true;
        }
        cur = sl + 1;
    }
    return false;
}

void ms__kvm_slots_drop_all(ms_kvm *kvm)
{
    while (kvm->nr_slots) {
        table_remove(kvm, kvm->nr_slots - 1);
    }
    free(kvm->slots);
    kvm->slots = NULL;
    kvm->cap_slots = 0;
}

/* ---- ioeventfds ---------------------------------------------------------- */

int ms__kvm_ioeventfd(ms_kvm *kvm, const struct ms_kvm_ioeventfd *e)
{
    uint64_t t0 = ms__kvm_now_ns();
    int rc = kvm->ops.ioeventfd(kvm->ops_opaque, e);
    uint64_t ns = ms__kvm_now_ns() - t0;
    kvm->stats.ioctl_ns += ns;
    kvm->stats.ioeventfd_ioctls++;
    if (rc < 0) {
        kvm->stats.ioctl_errors++;
    }
    struct ms_kvm_event ev = {
        .kind = MS_KVM_EV_IOEVENTFD, .result = rc, .ns = ns, .ioeventfd = e};
    trace(kvm, &ev);
    return rc;
}

/* ---- public introspection ------------------------------------------------ */

MS_EXPORT size_t ms_kvm_nr_slots(const ms_kvm *kvm)
{
    return kvm ? kvm->nr_slots : 0;
}

MS_EXPORT int ms_kvm_slot(const ms_kvm *kvm, size_t i,
                          struct ms_kvm_memslot *out)
{
    if (!kvm || !out) {
        return -EINVAL;
    }
    if (i >= kvm->nr_slots) {
        return -ERANGE;
    }
    const struct ms__kvm_slot *s = &kvm->slots[i].s;
    *out = (struct ms_kvm_memslot){.slot = s->id,
                                   .flags = s->flags,
                                   .gpa = s->gpa,
                                   .size = s->size,
                                   .host = s->host};
    return 0;
}

MS_EXPORT int ms_kvm_get_stats(const ms_kvm *kvm, struct ms_kvm_stats *out)
{
    if (!kvm || !out) {
        return -EINVAL;
    }
    *out = kvm->stats;
    out->slots_used = (uint32_t)kvm->nr_slots;
    out->slots_max = kvm->max_slots;
    return 0;
}

MS_EXPORT void ms_kvm_reset_stats(ms_kvm *kvm)
{
    if (kvm) {
        memset(&kvm->stats, 0, sizeof(kvm->stats));
    }
}
