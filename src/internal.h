/* SPDX-License-Identifier: MIT */
/*
 * Private definitions shared by the library's source files.
 *
 * Object graph (see docs/design.md):
 *   ms_system owns every region (intrusive list, so ms_system_free() can
 *   reclaim all of them), every address space (creation-ordered list, the
 *   order that matters for commits and printing) and the global listener
 *   list (priority-ordered).
 *   ms_region: reference counted; a container holds a reference on each
 *   subregion, an alias on its target, a flat view on each region it shows,
 *   an address space on its root.
 *   ms_flatview: immutable once built; reference counted; shared between
 *   address spaces with the same flat-view root.
 */
#ifndef MS_INTERNAL_H
#define MS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memspace/as.h"
#include "memspace/common.h"
#include "memspace/listener.h"
#include "memspace/region.h"
#include "memspace/system.h"
#include "range.h"
#include "rcu.h"

#define MS__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MS__UNUSED __attribute__((unused))

/*
 * Something readers on other threads may still see after the owner thread
 * dropped it: freed by free_fn after a grace period (rcu.h, flatview.c).
 */
struct ms__retired {
    struct ms__retired *next;
    void (*free_fn)(struct ms__retired *obj);
};

/* One ioeventfd registration on a region (region-relative address). */
struct ms__ioeventfd {
    uint64_t addr;
    uint64_t size;
    bool match_data;
    uint64_t data; /* in the region's register order */
    int fd;
    /* Placements of this entry some listener took (atomic; ioeventfd.c). */
    unsigned taken;
};

/* A region's ioeventfds: immutable once published, replaced on change. */
struct ms__evarray {
    struct ms__retired retired;
    size_t nr;
    struct ms__ioeventfd e[];
};

/* A region-relative coalesced MMIO range. */
struct ms__coalesced {
    uint64_t addr;
    uint64_t size;
};

struct ms_region {
    ms_system *sys;
    unsigned long refcnt; /* atomic: maps from other threads take refs */
    enum ms_region_kind kind;
    char *name;
    char *owner;
    uint64_t size; /* API convention: UINT64_MAX = 2^64 */
    uint64_t addr; /* offset in the container */
    int32_t priority;
    bool enabled;
    bool readonly;
    bool nonvolatile;
    bool romd_mode;
    bool terminates;
    bool ram;       /* direct RAM: RAM, ROM, RAM device */
    bool has_block; /* has a RAM block: RAM, ROM, ROM device, RAM device */
    bool dying;     /* being freed by ms_system_free() */

    ms_region *container;
    ms_region *sub_first; /* subregion list: priority desc, newest first */
    ms_region *sub_last;
    ms_region *sib_prev;
    ms_region *sib_next;
    size_t nr_subregions;

    ms_region *alias;
    uint64_t alias_offset;
    unsigned mapped_via_alias;

    ms_region *sys_prev; /* all regions of the system */
    ms_region *sys_next;

    const struct ms_region_ops *ops;
    const struct ms_iommu_ops *iommu_ops; /* IOMMU regions */
    void *opaque;

    /* RAM block. */
    void *host;
    uint64_t block_size; /* bytes usable at host */
    size_t map_len;      /* bytes to munmap, 0 if not ours */
    enum ms_ram_backing backing;

    /* Number of address spaces whose root this region is. */
    unsigned as_root_count;
    /* Number of live flat views rendered from this region. */
    unsigned fv_root_views;

    /* ioeventfds sorted in QEMU's order; published for readers (RCU). */
    struct ms__evarray *evs;

    /* Coalesced MMIO ranges, insertion order. */
    struct ms__coalesced *coalesced;
    size_t nr_coalesced;

    /* Dirty logging: explicit VGA client counter. */
    unsigned vga_log_count;
    uint8_t dirty_log_mask; /* explicit mask (VGA bit only) */
    /* Per-client dirty bitmaps of the RAM block (lazily allocated). */
    unsigned long *dirty[3];

    /* Scratch state of graph walks (cycle checks), by generation. */
    uint64_t walk_gen;
    /* Flat-view cache of the current render generation. */
    uint64_t fv_gen;
    ms_flatview *fv_cache;

    /* Access path (access.c): re-entrancy guard key (never NULL). */
    const void *guard_key;
    bool guard_off;      /* ms_region_config.reentrant */
    bool reentry_logged; /* atomic: a refused re-entry was logged */
    /*
     * DMA mappings of the RAM block still outstanding (atomic, any
     * thread).  A region whose last reference goes while pinned is only
     * detached; its block and struct wait on sys->zombies (region.c).
     */
    unsigned long pins;
    ms_region *zombie_next;
};

/* A flat range (public struct ms_flat_range plus nothing else). */
typedef struct ms_flat_range ms__fr;

/*
 * Access path: a view's dispatch table (dispatch.c), immutable once the
 * view is published and read lock-free by access.c.  One entry per flat
 * range with everything an access needs, snapshotted when the view is
 * built (region flags the owner may change later are never read by
 * readers), plus an address index (see dispatch.c for the encoding).
 */
struct ms__dent {
    uint64_t gpa;    /* first address */
    uint64_t last;   /* last address, inclusive */
    uint64_t offset; /* region offset of gpa */
    union {
        uint8_t *host;         /* the RAM block at gpa (has_block) */
        const void *guard_key; /* I/O: re-entrancy guard key */
    };
    ms_region *mr;                   /* terminating region */
    const struct ms_region_ops *ops; /* used when not direct */
    void *opaque;                    /* passed to ops */
    uint32_t flags;                  /* MS__D_* */
    uint32_t mmio; /* MMIO fast path summary (access.c), 0: none */
};

#define MS__D_DIRECT_READ 0x01u  /* reads copy from host */
#define MS__D_DIRECT_WRITE 0x02u /* writes copy to host */
#define MS__D_RAM 0x04u          /* RAM, ROM, RAM device: clamp, attrs */
#define MS__D_ROMD 0x08u         /* ROM device in ROMD mode */
#define MS__D_GUARD 0x10u        /* re-entrancy guard applies */
#define MS__D_IOMMU 0x20u        /* an IOMMU: translate and look up again */
/* Bits 8-15: the view's dirty-log mask of a RAM range (RAM writes mark). */
#define MS__D_LOG_SHIFT 8u
#define MS__D_DIRTY (0xffu << MS__D_LOG_SHIFT)
#define MS__D_LOG(f) (((f)&MS__D_DIRTY) >> MS__D_LOG_SHIFT)
/*
 * Bits 16-27, on an entry lying inside one 4 KiB page (dispatch.c): the
 * page is a sheet, all RAM read directly, in ranges back to back whose
 * host memory is too (one host address = gpa + addend for the page), and
 * a - 1, with a (2 to 2048) the largest power of two dividing every range
 * boundary in the page; 0: not so.  An access inside one a-aligned block
 * then crosses no range end, which is what the TLB of access.c needs to
 * cache the page.
 * MS__D_PAGE_W: and every range is written directly, unlogged.
 */
#define MS__PAGE_BITS 12u
#define MS__D_PAGE_SHIFT 16u
#define MS__D_PAGE_LOW (0xfffu << MS__D_PAGE_SHIFT)
#define MS__D_PAGE_W (1u << 28)
/* The range meets a page of the table's first level that is a sheet. */
#define MS__D_SHEET (1u << 29)

/*
 * A page of the TLB's first level that is a sheet (dispatch.c), with a
 * page size above 4 KiB: tag, the page's address | (a - 1), as
 * MS__D_PAGE_LOW says for a 4 KiB page; w, as MS__D_PAGE_W.
 */
struct ms__sheet {
    uint64_t tag;
    bool w;
};

struct ms__dnode {
    uint64_t base;           /* first address the node covers */
    uint64_t span;           /* last address it covers - base */
    const uint32_t *buckets; /* bucket i: (gpa - base) >> shift == i */
    uint32_t shift;
    uint32_t pad_;
};

#define MS__DB_NODE 0x80000000u /* bucket: index of a child node */
#define MS__DB_IDX_BITS 28      /* bucket: first candidate entry */
#define MS__DB_IDX_MASK ((1u << MS__DB_IDX_BITS) - 1)

/* Entries of each TLB level (access.c); largest first-level page (log2). */
#define MS__TLB_SIZE 1024u
#define MS__TLB_BIG_MAX 30u

struct ms__dispatch {
    /*
     * Never 0 and never reused (a global counter, dispatch.c): names this
     * table in the per-thread TLBs of access.c, which must never take one
     * table's entries for another's (a freed table's memory is reused, so
     * its address would not do).
     */
    uint64_t gen;
    /*
     * log2 of the page size of the TLB's first level for this table
     * (MS__PAGE_BITS to MS__TLB_BIG_MAX): the size whose pages, each
     * inside one RAM range or a sheet, the MS__TLB_SIZE entries reach
     * most of (dispatch.c).
     */
    unsigned big_shift;
    uint64_t big_mask; /* (1 << big_shift) - 1, kept for the hit path */
    const struct ms__dent *dents;
    size_t nr;
    const struct ms__sheet *sheets; /* in address order; NULL: none */
    size_t nr_sheets;
    size_t dents_map_len;          /* dents are mmap()ed (huge pages), or 0 */
    const struct ms__dnode *nodes; /* NULL: no index (binary search) */
    uint32_t *buckets_;            /* storage of all nodes' buckets */
};

struct ms_flatview {
    ms_system *sys;
    unsigned long refcnt; /* owner thread only; readers use RCU */
    ms_region *root;      /* flat-view root, referenced; NULL: empty */
    ms__fr *ranges;
    size_t nr;
    struct ms__retired retired; /* on sys->retired once unreferenced */
    struct ms__dispatch disp;   /* access path (dispatch.c) */
};

/* Listener private state. */
struct ms__listener_priv {
    struct ms_listener *l;
    ms_as *as;
    struct ms__listener_priv *g_prev, *g_next;   /* global list */
    struct ms__listener_priv *as_prev, *as_next; /* the AS's list */
    /* Ranges whose region_add failed (retried later). */
    ms__fr *failed;
    size_t nr_failed;
    size_t cap_failed;
};

struct ms_as {
    ms_system *sys;
    char *name;
    ms_region *root;
    ms_flatview *view; /* published: ms__rcu_publish / ms__rcu_deref */
    ms_as *prev, *next;
    struct ms__listener_priv *l_first, *l_last;
    size_t nr_listeners;
    struct ms__as_ioeventfd *ioeventfds;
    size_t nr_ioeventfds;
    bool destroyed;
    /* Bounce budget (access.c), atomics; max 0: the system's buffer. */
    uint64_t bounce_max;
    uint64_t bounce_used;
};

/* An ioeventfd translated into address-space coordinates. */
struct ms__as_ioeventfd {
    uint64_t gpa;
    uint64_t size;
    bool match_data;
    uint64_t data;
    int fd;
    bool taken;     /* a listener's eventfd_add returned 1 */
    ms_region *mr;  /* region it came from (alive: it is in the view) */
    uint64_t raddr; /* its region-relative address */
};

/*
 * An object built on a system that must let go of it if the system is
 * freed first (the KVM backend): system_gone() runs at the start of
 * ms_system_free(), while everything still exists, after the object has
 * been taken off the list.
 */
struct ms__dependent {
    void (*system_gone)(struct ms__dependent *d);
    struct ms__dependent *next;
};

struct ms_system {
    struct ms__dependent *dependents;
    ms_log_fn log;
    void *log_opaque;
    bool big_endian;
    uint32_t target_page_size;

    unsigned depth;
    bool topology_pending;
    bool ioeventfd_pending;
    unsigned in_callback; /* > 0 while listener callbacks run */

    ms_region *reg_first, *reg_last;
    size_t nr_regions;

    ms_as *as_first, *as_last;
    size_t nr_as;

    struct ms__listener_priv *l_first, *l_last;

    ms_flatview *empty_view;
    /* Views of the current render generation, one per flat-view root
     * (referenced); region->fv_cache points into it when fv_gen matches. */
    ms_flatview **fv_table;
    size_t fv_nr, fv_cap;

    uint64_t render_gen;
    uint64_t walk_gen;

    /* Global dirty tracking flags (dirty.h). */
    unsigned global_dirty;
    unsigned postponed_stop;
    bool vm_running;

    /* Objects waiting for a grace period before being freed (rcu.h). */
    struct ms__retired *retired;
    /* TSan happens-before anchor for grace periods (rcu.h). */
    char rcu_token;

    /* Access path (access.c): the bounce buffer and its map clients. */
    bool bounce_in_use;                /* atomic */
    int map_lock;                      /* atomic spinlock of the list */
    struct ms_map_client *map_clients; /* registration order */
    /* Regions released while DMA-pinned (region.c). */
    ms_region *zombies;

    /* First listener error of the last commit (or held operation). */
    struct ms_error_info last_error;
    unsigned error_hold;
    char last_error_region[64];
    char last_error_callback[32];
};

/* system.c */
void ms__log(const ms_system *sys, enum ms_log_level level, const char *fmt,
             ...) MS__PRINTF(3, 4);
void ms__txn_begin(ms_system *sys);
int ms__txn_commit(ms_system *sys);
static inline bool ms__busy(const ms_system *sys)
{
    return sys->in_callback > 0;
}

/* region.c */
void ms__region_free_all(ms_system *sys);
uint64_t ms__region_last(const ms_region *r); /* size must not be 0 */
const char *ms__region_type(const ms_region *r);

/* render.c */
int ms__render(ms_system *sys, ms_region *root, ms_flatview **out);
/* The ranges before the merge of 2.5 (the KVM backend's slot units). */
int ms__render_unmerged(ms_region *root, ms__fr **out, size_t *nr);
ms_region *ms__flatview_root_of(ms_region *as_root);
uint8_t ms__region_log_mask(const ms_region *r);

/* flatview.c */
int ms__flatview_new(ms_system *sys, ms_region *root, ms__fr *ranges, size_t nr,
                     ms_flatview **out);
ms_flatview *ms__flatview_get(ms_flatview *fv);
void ms__flatview_put(ms_flatview *fv);
void ms__retire(ms_system *sys, struct ms__retired *obj,
                void (*free_fn)(struct ms__retired *obj));
void ms__flatview_reclaim(ms_system *sys);
void ms__flatview_reclaim_force(ms_system *sys);
void ms__flatview_free_now(ms_flatview *fv);
const ms__fr *ms__flatview_find(const ms_flatview *fv, uint64_t gpa);

/* commit.c */
int ms__commit_outermost(ms_system *sys);
int ms__as_install_view(ms_as *as);
void ms__view_table_free(ms_system *sys);
int ms__call_simple(ms_system *sys, struct ms_listener *l,
                    int (*fn)(struct ms_listener *), const char *cb);
int ms__call_section(ms_system *sys, struct ms_listener *l,
                     int (*fn)(struct ms_listener *, const struct ms_section *),
                     const char *cb, const struct ms_section *s);
int ms__call_log(ms_system *sys, struct ms_listener *l, bool start,
                 const struct ms_section *s, unsigned old_mask,
                 unsigned new_mask);
void ms__call_coalesced(ms_system *sys, struct ms_listener *l, bool add,
                        const struct ms_section *s, uint64_t gpa,
                        uint64_t size);
bool ms__failed_take(struct ms__listener_priv *p, const ms__fr *fr);
void ms__failed_put(struct ms__listener_priv *p, const ms__fr *fr);

/* listener.c */
void ms__listeners_detach_all(ms_system *sys);

/* system.c: see struct ms__dependent. */
void ms__dependent_add(ms_system *sys, struct ms__dependent *d);
void ms__dependent_del(ms_system *sys, struct ms__dependent *d);
void ms__error_clear(ms_system *sys);
void ms__error_record(ms_system *sys, int err, const struct ms_listener *l,
                      const char *callback, ms_as *as,
                      const struct ms_section *s);
void ms__section_from_fr(struct ms_section *s, const ms__fr *fr,
                         const ms_flatview *fv, ms_as *as);

/* ioeventfd.c */
int ms__as_update_ioeventfds(ms_as *as);
void ms__region_ioeventfds_free(ms_region *r);
/*
 * Userspace ioeventfd fallback for the access path (any thread, inside an
 * RCU read section): @data is already in the region's register order.
 * True if an entry no listener took matched; its eventfd was signalled and
 * the write must not reach the device.
 */
bool ms__ioeventfd_consume(ms_region *r, uint64_t offset, unsigned size,
                           uint64_t data);

_Static_assert(sizeof(struct ms__dent) == 64, "one cache line per entry");

/* access.c: fill a dispatch entry from a flat range (owner thread). */
void ms__access_dent_init(struct ms__dent *e, const ms__fr *fr);

/* dispatch.c: build and free a view's dispatch table. */
int ms__dispatch_build(ms_flatview *fv);
void ms__dispatch_free(ms_flatview *fv);
const struct ms__dent *ms__dispatch_bsearch(const struct ms__dispatch *d,
                                            uint64_t gpa);

/*
 * The entry containing @gpa, or NULL (unassigned).  Any thread, inside the
 * read-side section that keeps the view alive.
 */
static inline const struct ms__dent *
ms__dispatch_find(const struct ms__dispatch *d, uint64_t gpa)
{
    const struct ms__dnode *n = d->nodes;
    if (__builtin_expect(!n, 0)) {
        return ms__dispatch_bsearch(d, gpa);
    }
    for (;;) {
        uint64_t off = gpa - n->base;
        if (off > n->span) {
            return NULL;
        }
        uint32_t b = n->buckets[off >> n->shift];
        if (b & MS__DB_NODE) {
            n = &d->nodes[b & ~MS__DB_NODE];
            continue;
        }
        const struct ms__dent *e = &d->dents[b & MS__DB_IDX_MASK];
        const struct ms__dent *end = e + (b >> MS__DB_IDX_BITS);
        for (;;) {
            if (gpa <= e->last) {
                return gpa >= e->gpa ? e : NULL;
            }
            if (e == end) {
                return NULL;
            }
            e++;
        }
    }
}

/* region.c: free pinned regions whose mappings are gone (owner thread). */
void ms__region_reap(ms_system *sys);

/* dirty.c */
int ms__dirty_init(ms_region *r);
/* Free @r's dirty bitmaps (owner thread, when the region goes). */
void ms__dirty_free(ms_region *r);
/*
 * Mark [offset, offset + len) of @r's RAM block dirty for the clients in
 * @mask (the log mask of the view the access used).  Any thread; reads
 * only fields fixed at creation and the bitmaps; bounds already checked.
 */
void ms__dirty_mark(ms_region *r, unsigned mask, uint64_t offset, uint64_t len);

/* helpers */
char *ms__strdup(const char *s);

#endif
