/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging: per-client bitmaps of RAM blocks, explicit VGA logging,
 * global tracking (with QEMU's postponed stop), sync and clear through the
 * listeners (docs/model.md section 6).
 *
 * Bitmaps: every RAM-backed region gets, at creation, one bitmap per
 * client that can be set here (VGA and MIGRATION; CODE belongs to
 * emulators with translated code and is never set), one bit per target
 * page of its block.  Bits are set and cleared with atomic word operations,
 * so the access path may mark pages from any thread while the owner thread
 * snapshots and clears them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "memspace/dirty.h"

#define WBITS (sizeof(unsigned long) * 8)

struct ms_dirty_snapshot {
    uint64_t first_page;
    uint64_t npages;
    uint32_t page_size;
    unsigned long bits[];
};

static uint64_t block_pages(const ms_region *r)
{
    uint32_t ps = r->sys->target_page_size;
    return r->block_size / ps + (r->block_size % ps != 0);
}

/*
 * Bitmaps of this many bytes or more are mapped, like RAM blocks: their
 * pages read as zero until written, so the bitmap of a huge region costs
 * only what its dirty pages reach (a 64 TiB region's is 2 GiB), and no
 * allocator's limit or zeroing of large calloc()s is involved.
 */
#define DIRTY_MAP_MIN ((uint64_t)1 << 20)

/* The size of @r's bitmaps in bytes (0 if it cannot be allocated). */
static uint64_t bitmap_bytes(const ms_region *r)
{
    uint64_t words = (block_pages(r) + WBITS - 1) / WBITS;
    return words > SIZE_MAX / sizeof(unsigned long)
               ? 0
               : words * sizeof(unsigned long);
}

/*
 * A client's bitmap is allocated when the client starts logging the region
 * (ms_region_set_log(), global logging, or creation while global logging
 * is on) and kept until the region goes: most regions are never logged,
 * and a bitmap costs a bit per target page.  Access-path threads load the
 * pointer with acquire and skip a NULL one (nothing logs there yet).
 */
static int dirty_alloc(ms_region *r, unsigned client)
{
    if (!r->has_block || r->dirty[client]) {
        return 0;
    }
    uint64_t bytes = bitmap_bytes(r);
    if (!bytes) {
        return -ENOMEM;
    }
    unsigned long *map;
    if (bytes >= DIRTY_MAP_MIN) {
        void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        map = p == MAP_FAILED ? NULL : p;
    } else {
        map = calloc(1, (size_t)bytes);
    }
    if (!map) {
        ms__log(r->sys, MS_LOG_ERROR,
                "region '%s': no memory for a dirty bitmap of %llu pages",
                r->name, (unsigned long long)block_pages(r));
        return -ENOMEM;
    }
    __atomic_store_n(&r->dirty[client], map, __ATOMIC_RELEASE);
    return 0;
}

void ms__dirty_free(ms_region *r)
{
    uint64_t bytes = bitmap_bytes(r);
    for (unsigned i = 0; i < 3; i++) {
        if (bytes >= DIRTY_MAP_MIN && r->dirty[i]) {
            munmap(r->dirty[i], (size_t)bytes);
        } else {
            free(r->dirty[i]);
        }
        r->dirty[i] = NULL;
    }
}

int ms__dirty_init(ms_region *r)
{
    return r->sys->global_dirty ? dirty_alloc(r, MS_DIRTY_MIGRATION) : 0;
}

/* The bits of word @w that lie in [first, last]. */
static unsigned long word_mask(uint64_t w, uint64_t first, uint64_t last)
{
    uint64_t lo = w == first / WBITS ? first % WBITS : 0;
    uint64_t hi = w == last / WBITS ? last % WBITS : WBITS - 1;
    return hi - lo + 1 == WBITS ? ~0UL : ((1UL << (hi - lo + 1)) - 1) << lo;
}

static void set_bits(unsigned long *map, uint64_t first, uint64_t last)
{
    for (uint64_t w = first / WBITS; w <= last / WBITS; w++) {
        unsigned long m = word_mask(w, first, last);
        if ((__atomic_load_n(&map[w], __ATOMIC_RELAXED) & m) != m) {
            __atomic_fetch_or(&map[w], m, __ATOMIC_RELAXED);
        }
    }
}

/* Test (and with @clear, clear) bits [first, last]; true if any set. */
static bool test_bits(unsigned long *map, uint64_t first, uint64_t last,
                      bool clear)
{
    bool any = false;
    for (uint64_t w = first / WBITS; w <= last / WBITS; w++) {
        unsigned long m = word_mask(w, first, last);
        unsigned long old =
            clear ? __atomic_fetch_and(&map[w], ~m, __ATOMIC_RELAXED)
                  : __atomic_load_n(&map[w], __ATOMIC_RELAXED);
        any |= (old & m) != 0;
    }
    return any;
}

static void mark_pages(ms_region *r, unsigned mask, uint64_t first,
                       uint64_t last)
{
    static const unsigned clients[] = {MS_DIRTY_VGA, MS_DIRTY_MIGRATION};
    for (size_t i = 0; i < 2; i++) {
        unsigned long *map =
            mask & (1u << clients[i])
                ? __atomic_load_n(&r->dirty[clients[i]], __ATOMIC_ACQUIRE)
                : NULL;
        if (map) {
            set_bits(map, first, last);
        }
    }
}

void ms__dirty_mark(ms_region *r, unsigned mask, uint64_t offset, uint64_t len)
{
    if (!len || !mask || !r->has_block) {
        return;
    }
    uint32_t ps = r->sys->target_page_size;
    mark_pages(r, mask, offset / ps, (offset + (len - 1)) / ps);
}

/* Validate a byte range of @r's block; page range out. */
static int block_range(const ms_region *r, uint64_t offset, uint64_t size,
                       uint64_t *first, uint64_t *last)
{
    if (!r || !r->has_block) {
        return -EINVAL;
    }
    if (size == 0 || !ms__window_fits(offset, size, r->block_size)) {
        return -ERANGE;
    }
    uint32_t ps = r->sys->target_page_size;
    *first = offset / ps;
    *last = (offset + (size - 1)) / ps;
    return 0;
}

MS_EXPORT int ms_region_set_dirty(ms_region *r, uint64_t offset, uint64_t size)
{
    uint64_t first, last;
    int err = block_range(r, offset, size, &first, &last);
    if (err < 0) {
        return err;
    }
    mark_pages(r, ms__region_log_mask(r), first, last);
    return 0;
}

MS_EXPORT bool ms_region_get_dirty(const ms_region *r, uint64_t offset,
                                   uint64_t size, unsigned client)
{
    uint64_t first, last;
    if (client > MS_DIRTY_MIGRATION ||
        block_range(r, offset, size, &first, &last) < 0) {
        return false;
    }
    /* Any thread: the owner may be allocating the map (dirty_alloc()). */
    unsigned long *map = __atomic_load_n(&r->dirty[client], __ATOMIC_ACQUIRE);
    return map && test_bits(map, first, last, false);
}

MS_EXPORT unsigned ms_region_log_mask(const ms_region *r)
{
    return r ? ms__region_log_mask(r) : 0;
}

MS_EXPORT int ms_region_set_log(ms_region *r, bool on, unsigned client)
{
    if (!r || client != MS_DIRTY_VGA) {
        if (r) {
            ms__log(r->sys, MS_LOG_ERROR,
                    "set_log on '%s': only the VGA client can be set", r->name);
        }
        return -EINVAL;
    }
    ms_system *sys = r->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (!on && r->vga_log_count == 0) {
        ms__log(sys, MS_LOG_ERROR,
                "set_log on '%s': stopped more often "
                "than started",
                r->name);
        return -EOVERFLOW;
    }
    if (on && r->vga_log_count == UINT32_MAX) {
        return -EOVERFLOW;
    }
    if (on && r->vga_log_count == 0) {
        int err = dirty_alloc(r, MS_DIRTY_VGA);
        if (err < 0) {
            return err;
        }
    }
    ms__txn_begin(sys);
    if (on) {
        if (r->vga_log_count++ == 0) {
            /* Atomic: read by ms_region_set_dirty() on any thread. */
            __atomic_or_fetch(&r->dirty_log_mask, 1u << MS_DIRTY_VGA,
                              __ATOMIC_RELAXED);
            if (r->enabled) {
                sys->topology_pending = true;
            }
        }
    } else if (--r->vga_log_count == 0) {
        __atomic_and_fetch(&r->dirty_log_mask, (uint8_t) ~(1u << MS_DIRTY_VGA),
                           __ATOMIC_RELAXED);
        if (r->enabled) {
            sys->topology_pending = true;
        }
    }
    return ms__txn_commit(sys);
}

/*
 * Several steps (callbacks, then a commit) report their first error
 * together: the error record is cleared once and held across the steps.
 */
static void hold_errors(ms_system *sys)
{
    ms__error_clear(sys);
    sys->error_hold++;
}

static int release_errors(ms_system *sys)
{
    sys->error_hold--;
    return sys->last_error.error;
}

static void call_all(ms_system *sys, bool reverse, const char *what,
                     size_t offset_of_cb)
{
    struct ms__listener_priv *p = reverse ? sys->l_last : sys->l_first;
    while (p) {
        int (*fn)(struct ms_listener *);
        memcpy(&fn, (char *)p->l + offset_of_cb, sizeof(fn));
        (void)ms__call_simple(sys, p->l, fn, what);
        p = reverse ? p->g_prev : p->g_next;
    }
}

#define CALL_ALL(sys, rev, cb)                                                 \
    call_all((sys), (rev), #cb, offsetof(struct ms_listener, cb))

static void topology_commit(ms_system *sys)
{
    ms__txn_begin(sys);
    sys->topology_pending = true;
    (void)ms__txn_commit(sys);
}

static void do_stop(ms_system *sys, unsigned flags)
{
    /* Atomic: read by the dirty-marking calls on any thread. */
    __atomic_and_fetch(&sys->global_dirty, ~flags, __ATOMIC_RELAXED);
    if (sys->global_dirty == 0) {
        topology_commit(sys);
        CALL_ALL(sys, true, log_global_stop);
    }
}

MS_EXPORT int ms_dirty_global_start(ms_system *sys, unsigned flags)
{
    if (!sys || !flags || (flags & ~MS_GLOBAL_DIRTY_ALL)) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    /* While tracking is on, every RAM block already has its bitmap. */
    for (ms_region *r = sys->reg_first; !sys->global_dirty && r;
         r = r->sys_next) {
        int err = dirty_alloc(r, MS_DIRTY_MIGRATION);
        if (err < 0) {
            return err;
        }
    }
    hold_errors(sys);
    if (sys->postponed_stop) {
        unsigned rest = sys->postponed_stop & ~flags;
        sys->postponed_stop = 0;
        if (rest) {
            do_stop(sys, rest);
        }
    }
    flags &= ~sys->global_dirty;
    if (flags) {
        bool was_off = sys->global_dirty == 0;
        __atomic_or_fetch(&sys->global_dirty, flags, __ATOMIC_RELAXED);
        if (was_off) {
            CALL_ALL(sys, false, log_global_start);
            topology_commit(sys);
        }
    }
    return release_errors(sys);
}

MS_EXPORT int ms_dirty_global_stop(ms_system *sys, unsigned flags)
{
    if (!sys || !flags || (flags & ~MS_GLOBAL_DIRTY_ALL)) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if ((flags & (sys->global_dirty & ~sys->postponed_stop)) != flags) {
        ms__log(sys, MS_LOG_ERROR,
                "global dirty stop for flags 0x%x that are not on", flags);
        return -EINVAL;
    }
    if (!sys->vm_running) {
        sys->postponed_stop |= flags;
        return 0;
    }
    hold_errors(sys);
    do_stop(sys, flags);
    return release_errors(sys);
}

MS_EXPORT unsigned ms_dirty_global_flags(const ms_system *sys)
{
    return sys ? sys->global_dirty : 0;
}

MS_EXPORT int ms_system_set_running(ms_system *sys, bool running)
{
    if (!sys) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    hold_errors(sys);
    sys->vm_running = running;
    if (running && sys->postponed_stop) {
        unsigned flags = sys->postponed_stop;
        sys->postponed_stop = 0;
        do_stop(sys, flags);
    }
    return release_errors(sys);
}

/* log_sync / log_sync_global on every listener (section 6.4). */
static void sync_listeners(ms_system *sys, const ms_region *filter)
{
    for (struct ms__listener_priv *p = sys->l_first; p; p = p->g_next) {
        struct ms_listener *l = p->l;
        if (l->log_sync) {
            const ms_flatview *fv = p->as->view;
            for (size_t i = 0; i < fv->nr; i++) {
                const ms__fr *fr = &fv->ranges[i];
                if (!fr->dirty_log_mask || (filter && fr->mr != filter)) {
                    continue;
                }
                struct ms_section s;
                ms__section_from_fr(&s, fr, fv, p->as);
                (void)ms__call_section(sys, l, l->log_sync, "log_sync", &s);
            }
        } else if (l->log_sync_global) {
            (void)ms__call_simple(sys, l, l->log_sync_global,
                                  "log_sync_global");
        }
    }
}

MS_EXPORT int ms_dirty_sync(ms_system *sys, ms_region *filter)
{
    if (!sys || (filter && filter->sys != sys)) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    ms__error_clear(sys);
    sync_listeners(sys, filter);
    CALL_ALL(sys, false, log_global_after_sync);
    return sys->last_error.error;
}

/* memory_region_clear_dirty_bitmap(): tell log_clear listeners. */
static void clear_listeners(ms_region *r, uint64_t offset, uint64_t size)
{
    ms_system *sys = r->sys;
    struct ms__range want;
    if (!ms__range_make(offset, size, &want)) {
        return;
    }
    for (struct ms__listener_priv *p = sys->l_first; p; p = p->g_next) {
        struct ms_listener *l = p->l;
        if (!l->log_clear) {
            continue;
        }
        const ms_flatview *fv = p->as->view;
        for (size_t i = 0; i < fv->nr; i++) {
            const ms__fr *fr = &fv->ranges[i];
            struct ms__range ext = {fr->offset,
                                    fr->offset + (fr->last - fr->gpa)};
            struct ms__range x;
            if (fr->mr != r || !fr->dirty_log_mask ||
                !ms__range_intersect(want, ext, &x)) {
                continue;
            }
            ms__fr shrunk = *fr;
            shrunk.gpa = fr->gpa + (x.first - fr->offset);
            shrunk.last = shrunk.gpa + (x.last - x.first);
            shrunk.offset = x.first;
            struct ms_section s;
            ms__section_from_fr(&s, &shrunk, fv, p->as);
            (void)ms__call_section(sys, l, l->log_clear, "log_clear", &s);
        }
    }
}

MS_EXPORT int ms_region_test_and_clear_dirty(ms_region *r, uint64_t offset,
                                             uint64_t size, unsigned client)
{
    uint64_t first, last;
    int err = block_range(r, offset, size, &first, &last);
    if (err < 0) {
        return err;
    }
    if (client > MS_DIRTY_MIGRATION) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    bool any =
        r->dirty[client] && test_bits(r->dirty[client], first, last, true);
    ms__error_clear(r->sys);
    clear_listeners(r, offset, size);
    return any ? 1 : 0;
}

MS_EXPORT int ms_region_snapshot_and_clear_dirty(ms_region *r, uint64_t offset,
                                                 uint64_t size, unsigned client,
                                                 ms_dirty_snapshot **out)
{
    uint64_t first, last;
    int err = block_range(r, offset, size, &first, &last);
    if (err < 0) {
        return err;
    }
    if (client > MS_DIRTY_MIGRATION || !out) {
        return -EINVAL;
    }
    ms_system *sys = r->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    /* Widen outwards to multiples of 64 pages (one word per 64). */
    uint64_t wfirst = first / 64 * 64;
    uint64_t wlast = last / 64 * 64 + 63;
    uint64_t npages = wlast - wfirst + 1;
    uint64_t words = npages / WBITS + (npages % WBITS != 0);
    ms_dirty_snapshot *snap =
        calloc(1, sizeof(*snap) + (size_t)words * sizeof(unsigned long));
    if (!snap) {
        return -ENOMEM;
    }
    snap->first_page = wfirst;
    snap->npages = npages;
    snap->page_size = sys->target_page_size;

    ms__error_clear(sys);
    sync_listeners(sys, r);
    uint64_t limit = block_pages(r) - 1;
    unsigned long *map = r->dirty[client];
    for (uint64_t pg = wfirst; map && pg <= wlast && pg <= limit;) {
        /* wfirst is a multiple of 64, so whole words line up. */
        uint64_t hi = pg + WBITS - 1 < limit ? pg + WBITS - 1 : limit;
        unsigned long m =
            hi - pg + 1 == WBITS ? ~0UL : (1UL << (hi - pg + 1)) - 1;
        snap->bits[(pg - wfirst) / WBITS] =
            __atomic_fetch_and(&map[pg / WBITS], ~m, __ATOMIC_RELAXED) & m;
        pg += WBITS;
    }
    clear_listeners(r, offset, size);
    CALL_ALL(sys, false, log_global_after_sync);
    *out = snap;
    return 0;
}

MS_EXPORT bool ms_dirty_snapshot_get(const ms_dirty_snapshot *snap,
                                     uint64_t offset, uint64_t size)
{
    if (!snap || size == 0) {
        return false;
    }
    uint64_t first = offset / snap->page_size;
    uint64_t last = ms__add_overflows(offset, size - 1)
                        ? UINT64_MAX / snap->page_size
                        : (offset + size - 1) / snap->page_size;
    uint64_t s_last = snap->first_page + snap->npages - 1;
    if (last < snap->first_page || first > s_last) {
        return false;
    }
    if (first < snap->first_page) {
        first = snap->first_page;
    }
    if (last > s_last) {
        last = s_last;
    }
    for (uint64_t pg = first; pg <= last; pg++) {
        uint64_t b = pg - snap->first_page;
        if (snap->bits[b / WBITS] & (1UL << (b % WBITS))) {
            return true;
        }
    }
    return false;
}

MS_EXPORT void ms_dirty_snapshot_free(ms_dirty_snapshot *snap)
{
    free(snap);
}

MS_EXPORT int ms_region_merge_dirty(ms_region *r, uint64_t offset,
                                    const uint64_t *bitmap, uint64_t npages,
                                    uint32_t page_size)
{
    if (!r || !r->has_block || !bitmap || page_size == 0 ||
        (page_size & (page_size - 1)) != 0 || offset % page_size != 0) {
        return -EINVAL;
    }
    if (npages == 0) {
        return 0;
    }
    uint64_t span_pages =
        r->block_size / page_size + (r->block_size % page_size != 0);
    if (offset / page_size > span_pages ||
        npages > span_pages - offset / page_size) {
        return -ERANGE;
    }
    unsigned mask = 1u << MS_DIRTY_VGA;
    if (__atomic_load_n(&r->sys->global_dirty, __ATOMIC_RELAXED)) {
        mask |= 1u << MS_DIRTY_MIGRATION;
    }
    uint32_t tps = r->sys->target_page_size;
    uint64_t block_last = (r->block_size - 1) / tps;
    for (uint64_t w = 0; w < (npages + 63) / 64; w++) {
        uint64_t word = bitmap[w];
        while (word) {
            unsigned b = (unsigned)__builtin_ctzll(word);
            word &= word - 1;
            uint64_t i = w * 64 + b;
            if (i >= npages) {
                break;
            }
            uint64_t byte = offset + i * page_size;
            uint64_t first = byte / tps;
            uint64_t last = (byte + page_size - 1) / tps;
            if (first > block_last) {
                continue;
            }
            mark_pages(r, mask, first, last > block_last ? block_last : last);
        }
    }
    return 0;
}
