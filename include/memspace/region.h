/* SPDX-License-Identifier: MIT */
/*
 * Regions: the nodes of the memory tree.
 *
 * A region is a container, RAM, ROM, ROM device, RAM device, MMIO/PIO
 * region, alias, reservation or IOMMU (enum ms_region_kind).  Each region
 * sits in at most one container ("parent") at an offset with a priority;
 * siblings are ordered by priority, highest first, and among equal
 * priorities the most recently added first.  Rendering (see as.h and docs/model.md) walks
 * that order and the first region to claim an address wins.
 *
 * Regions are reference counted.  ms_region_new() returns one reference
 * owned by the caller; a container holds one on each subregion, an alias on
 * its target, a flat view on every region it shows and an address space on
 * its root.  Dropping the caller's last reference of a region that is still
 * mapped keeps it alive until it is unmapped and no flat view shows it.
 *
 * Every editing function runs as its own transaction: outside
 * ms_txn_begin()/ms_txn_commit() it takes effect at once, inside one it is
 * batched.  Editing functions return -EBUSY when called from inside a
 * listener callback (see listener.h).
 */
#ifndef MEMSPACE_REGION_H
#define MEMSPACE_REGION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a region is.  The kind is fixed at creation. */
enum ms_region_kind {
    /** No storage, no callbacks: holes let lower siblings show through. */
    MS_REGION_CONTAINER = 0,
    /** RAM: host memory, accessed directly. */
    MS_REGION_RAM,
    /** ROM: RAM that guests can read but not write (writes are dropped). */
    MS_REGION_ROM,
    /**
     * ROM device: a RAM block plus MMIO ops.  In ROMD mode (the default)
     * reads come from the RAM block and writes go to the ops; with ROMD
     * mode off every access goes to the ops.
     */
    MS_REGION_ROM_DEVICE,
    /**
     * RAM device: caller memory (e.g. a device BAR mapped from the host)
     * accessed with exactly-sized single loads and stores, never memcpy.
     */
    MS_REGION_RAM_DEVICE,
    /** MMIO or PIO: every access calls the ops. */
    MS_REGION_IO,
    /** A window of size bytes onto another region at alias_offset. */
    MS_REGION_ALIAS,
    /**
     * Reservation: claims its range (hides lower siblings) but rejects
     * every access like unassigned memory.
     */
    MS_REGION_RESERVATION,
    /**
     * IOMMU: claims its range like an I/O region, and every access to it
     * is translated by ms_region_config.iommu_ops and continues in the
     * address space the translation names (docs/access.md).  `info mtree`
     * prints it as "i/o"; KVM gets no memslot for it.
     */
    MS_REGION_IOMMU,
};

/** How a RAM block gets its memory (RAM, ROM, ROM device). */
enum ms_ram_backing {
    /** The library allocates zeroed, page-aligned anonymous memory. */
    MS_RAM_ANON = 0,
    /** Caller memory at ms_region_config.host (not freed by the library). */
    MS_RAM_HOST,
    /** mmap() of ms_region_config.fd at fd_offset (e.g. a memfd). */
    MS_RAM_FD,
};

/**
 * MMIO/PIO callbacks and access rules (QEMU's MemoryRegionOps).
 *
 * Offsets passed to callbacks are relative to the start of the region that
 * owns the ops.  Zero means "not specified" in every size field: valid.max
 * 0 accepts any size; impl.min 0 means 1; impl.max 0 means 4.
 */
struct ms_region_ops {
    /** Plain read; used if set, else read_with_attrs. */
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    /** Plain write; used if set, else write_with_attrs. */
    void (*write)(void *opaque, uint64_t offset, uint64_t value,
                  unsigned size);
    /** Read that sees attributes and reports a result. */
    ms_tx_result (*read_with_attrs)(void *opaque, uint64_t offset,
                                    uint64_t *value, unsigned size,
                                    struct ms_attrs attrs);
    /** Write that sees attributes and reports a result. */
    ms_tx_result (*write_with_attrs)(void *opaque, uint64_t offset,
                                     uint64_t value, unsigned size,
                                     struct ms_attrs attrs);
    /** Register byte order. */
    enum ms_endian endianness;
    /** What the guest may do; other accesses are rejected. */
    struct {
        unsigned min_access_size;
        unsigned max_access_size;
        bool unaligned;
        /** Optional veto, called before every access. */
        bool (*accepts)(void *opaque, uint64_t offset, unsigned size,
                        bool is_write, struct ms_attrs attrs);
    } valid;
    /** What the callbacks implement; other sizes are synthesised. */
    struct {
        unsigned min_access_size;
        unsigned max_access_size;
        bool unaligned;
    } impl;
};

/** Directions an IOMMU translation permits (QEMU's IOMMUAccessFlags). */
enum ms_iommu_perm {
    MS_IOMMU_NONE = 0,
    MS_IOMMU_RO = 1, /**< reads */
    MS_IOMMU_WO = 2, /**< writes */
    MS_IOMMU_RW = 3,
};

/** One IOMMU translation (QEMU's IOMMUTLBEntry). */
struct ms_iommu_entry {
    /**
     * The address space the access continues in; it must belong to the
     * IOMMU's system and outlive every access that can reach it.  NULL
     * refuses the access like a missing permission.
     */
    ms_as *target_as;
    /** Where the page starts in @target_as (bits under @addr_mask ignored). */
    uint64_t translated_addr;
    /**
     * Page offset mask, e.g. 0xfff for a 4 KiB page: the access keeps these
     * bits of its address and stops at the end of the page (the rest of a
     * longer access is translated again).
     */
    uint64_t addr_mask;
    /** enum ms_iommu_perm bits; an access in another direction is refused. */
    unsigned perm;
};

/**
 * IOMMU callbacks (QEMU's IOMMUMemoryRegionClass translate and
 * attrs_to_index).  They run on the accessing thread, inside its access;
 * they may access memory (walk page tables), and an access that reaches the
 * same IOMMU again from inside them is refused like a re-entrant device
 * access (access.h).
 */
struct ms_iommu_ops {
    /**
     * Required: translate @addr, an offset into the IOMMU region, for a read
     * (@flag MS_IOMMU_RO) or a write (MS_IOMMU_WO); @index comes from
     * attrs_to_index (0 without it).  Denying: return perm MS_IOMMU_NONE;
     * the access is then refused as unassigned memory (reads 0,
     * MS_TX_DECODE_ERROR).
     */
    struct ms_iommu_entry (*translate)(void *opaque, uint64_t addr,
                                       enum ms_iommu_perm flag, int index);
    /** Optional: the IOMMU index of an access with these attributes. */
    int (*attrs_to_index)(void *opaque, struct ms_attrs attrs);
};

/**
 * Options for ms_region_new().  Zero-initialise, set kind, name and size,
 * and the fields of that kind.
 */
struct ms_region_config {
    enum ms_region_kind kind;
    /** Required, non-empty; copied.  Names need not be unique. */
    const char *name;
    /**
     * Bytes; MS_SIZE_FULL (UINT64_MAX) means 2^64.  0 is allowed for
     * containers, aliases, I/O regions and reservations (they then render
     * nothing); RAM-backed kinds need at least one byte and at most 2^63.
     */
    uint64_t size;
    /**
     * Optional owner label, copied, printed by `info mtree -o` after the
     * region (e.g. "owner:{dev id=net0}"); NULL prints "orphan".
     */
    const char *owner;

    /* RAM, ROM, ROM device, RAM device (usually MS_RAM_HOST: a device's
     * memory mapped by the caller; MS_RAM_ANON serves tests). */
    enum ms_ram_backing backing;
    void *host;         /**< MS_RAM_HOST: at least size bytes */
    int fd;             /**< MS_RAM_FD: file descriptor (not closed) */
    uint64_t fd_offset; /**< MS_RAM_FD: page-aligned offset in the file */
    bool shared;        /**< MS_RAM_FD: MAP_SHARED instead of private */

    /* I/O (required), ROM device (required); RAM device: ignored. */
    const struct ms_region_ops *ops;
    void *opaque; /**< passed to every callback (IOMMU: to iommu_ops) */
    /**
     * I/O, IOMMU: re-entrancy guard key (access.h).  Regions with the same
     * key are one device: an access that reaches a device from inside one
     * of that device's callbacks on the same thread is refused.  NULL means
     * @opaque, or the region itself if @opaque is NULL too.
     */
    const void *device;
    /** I/O, IOMMU: the callbacks are re-entrant; no re-entrancy guard. */
    bool reentrant;

    /* Alias: the target (referenced) and the window's offset in it. */
    ms_region *alias_target;
    uint64_t alias_offset;

    /* Initial flags (also settable later). */
    bool readonly;    /**< forced on for ROM */
    bool nonvolatile; /**< printed as nv- */
    bool disabled;    /**< start disabled (default: enabled) */
    bool romd_off;    /**< ROM device: start with ROMD mode off */

    /** IOMMU (required): the translation callbacks. */
    const struct ms_iommu_ops *iommu_ops;
};

/**
 * ms_region_new() - create a region.
 * @sys: the system the region belongs to (for its whole life).
 * @cfg: what to create.
 * @out: receives the region, holding one reference for the caller.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for a NULL argument, an unknown kind or backing, a
 * NULL or empty name, size 0 or above 2^63 for a RAM-backed kind, a missing
 * host pointer, ops, IOMMU ops (with a translate callback) or alias target
 * where the kind needs one, or a negative
 * fd; -ERANGE if an alias window does not lie inside its target (see
 * ms_region_set_alias_offset()); -EXDEV if the alias target belongs to
 * another system; -ENOMEM; the
 * negative errno of mmap() for MS_RAM_FD and MS_RAM_ANON; -EBUSY from inside
 * a listener callback.
 */
MS_EXPORT MS_WUR int ms_region_new(ms_system *sys,
                                   const struct ms_region_config *cfg,
                                   ms_region **out);

/**
 * ms_region_ref() - take a reference.
 * Context: owner thread.  Return: @r (NULL-safe).
 */
MS_EXPORT ms_region *ms_region_ref(ms_region *r);

/**
 * ms_region_unref() - drop a reference; the region is freed with its last
 * reference (its subregions are then removed and released, its alias target
 * released, its RAM unmapped).
 * Context: owner thread.  NULL is a no-op.
 */
MS_EXPORT void ms_region_unref(ms_region *r);

/**
 * ms_region_add() - place @sub in @container at @offset with priority 0.
 *
 * Same as ms_region_add_prio(container, offset, sub, 0).
 */
MS_EXPORT MS_WUR int ms_region_add(ms_region *container, uint64_t offset,
                                   ms_region *sub);

/**
 * ms_region_add_prio() - place @sub in @container at @offset.
 * @priority: replaces @sub's priority; higher wins among siblings, and among
 *            equal priorities the most recently added sibling wins.
 *
 * Overlapping siblings are legal.  The container takes a reference on @sub.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL arguments; -EXDEV if the two regions belong to
 * different systems; -EEXIST if @sub already has a container (including
 * @container); -ELOOP if @sub is @container, contains it, or reaches it
 * through aliases (the render would never end); -EBUSY if @sub is the root
 * of an address space, or from inside a listener callback.  On error
 * nothing changes.  A listener error from the implicit commit is returned
 * with the edit applied (see ms_txn_commit()).
 */
MS_EXPORT MS_WUR int ms_region_add_prio(ms_region *container, uint64_t offset,
                                        ms_region *sub, int32_t priority);

/**
 * ms_region_del() - remove @sub from @container and drop the container's
 * reference on it.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL arguments; -ENOENT if @sub is not a child of
 * @container; -EBUSY from inside a listener callback.
 */
MS_EXPORT MS_WUR int ms_region_del(ms_region *container, ms_region *sub);

/**
 * ms_region_set_address() - move @r to @offset inside its container.
 *
 * A no-op if unchanged.  A mapped region is removed and re-added with the
 * same priority in one transaction, so it becomes the newest of its
 * equal-priority siblings.  An unmapped region only records the offset.
 *
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_address(ms_region *r, uint64_t offset);

/**
 * ms_region_set_size() - change the size (MS_SIZE_FULL means 2^64).
 *
 * Does not resize a RAM block: for RAM-backed kinds the new size must not
 * exceed the size the block was created with.
 *
 * Context: owner thread.  Return: 0; -EINVAL for NULL, or size 0 for a
 * RAM-backed kind; -ERANGE if a RAM-backed region would outgrow its block
 * or an alias window would leave its target; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_size(ms_region *r, uint64_t size);

/**
 * ms_region_set_alias_offset() - move an alias's window inside its target.
 *
 * Window rule: when an alias window is defined (ms_region_new(), this
 * function, ms_region_set_size() on the alias) it must lie inside its
 * target: alias_offset + size <= target size.  A target that shrinks later
 * is allowed; the part of a window beyond it then renders nothing (QEMU's
 * clipping).
 *
 * Context: owner thread.  Return: 0; -EINVAL for NULL or a region that is
 * not an alias; -ERANGE if the window would leave its target; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_alias_offset(ms_region *r,
                                                uint64_t offset);

/**
 * ms_region_set_enabled() - show or hide @r and its whole subtree.
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_enabled(ms_region *r, bool enabled);

/**
 * ms_region_set_readonly() - mark @r read-only.
 *
 * On a container or alias, every range rendered through it is read-only in
 * the flat view (mtree -f prints "rom"); the access path and KVM slots
 * consult only the terminating region's own flag (as QEMU does).  A ROM
 * whose flag is cleared behaves as RAM.
 *
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_readonly(ms_region *r, bool readonly);

/**
 * ms_region_set_nonvolatile() - mark @r non-volatile (printed as nv-).
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_nonvolatile(ms_region *r, bool nv);

/**
 * ms_region_set_romd() - switch a ROM device in or out of ROMD mode.
 * Context: owner thread.  Return: 0; -EINVAL (NULL or not a ROM device);
 * -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_set_romd(ms_region *r, bool romd);

/* Queries.  Context: owner thread (or any thread that keeps @r alive and
 * does not race with edits).  NULL @r returns 0/false/NULL. */

/** Kind given at creation. */
MS_EXPORT enum ms_region_kind ms_region_kind(const ms_region *r);
/** Name (never NULL for a valid region). */
MS_EXPORT const char *ms_region_name(const ms_region *r);
/** Owner label or NULL. */
MS_EXPORT const char *ms_region_owner(const ms_region *r);
/** Size; MS_SIZE_FULL for 2^64. */
MS_EXPORT uint64_t ms_region_size(const ms_region *r);
/** Offset inside the container (kept while unmapped). */
MS_EXPORT uint64_t ms_region_addr(const ms_region *r);
/** Priority among siblings. */
MS_EXPORT int32_t ms_region_priority(const ms_region *r);
/** Own enabled flag. */
MS_EXPORT bool ms_region_enabled(const ms_region *r);
/** Own read-only flag. */
MS_EXPORT bool ms_region_readonly(const ms_region *r);
/** Own non-volatile flag. */
MS_EXPORT bool ms_region_nonvolatile(const ms_region *r);
/** ROMD mode (meaningful for ROM devices). */
MS_EXPORT bool ms_region_romd(const ms_region *r);
/** The region answers accesses itself (RAM, ROM, I/O, reservation...). */
MS_EXPORT bool ms_region_terminates(const ms_region *r);
/** Container or NULL. */
MS_EXPORT ms_region *ms_region_container(const ms_region *r);
/** Alias target, or NULL if @r is not an alias. */
MS_EXPORT ms_region *ms_region_alias_target(const ms_region *r);
/** Alias offset (0 if not an alias). */
MS_EXPORT uint64_t ms_region_alias_offset(const ms_region *r);
/** Has a container, or is the target of a mapped alias chain. */
MS_EXPORT bool ms_region_is_mapped(const ms_region *r);
/** Number of subregions. */
MS_EXPORT size_t ms_region_nr_subregions(const ms_region *r);
/**
 * Subregion @i in list order (priority descending, newest first), or NULL.
 * O(i).
 */
MS_EXPORT ms_region *ms_region_subregion(const ms_region *r, size_t i);
/**
 * Host pointer of the RAM block (RAM, ROM, ROM device, RAM device),
 * following an alias chain and adding its offsets; NULL otherwise.
 */
MS_EXPORT void *ms_region_host(const ms_region *r);
/** The system @r belongs to. */
MS_EXPORT ms_system *ms_region_system(const ms_region *r);
/**
 * Type name as `info mtree` prints it: "ram", "rom", "romd", "ramd" or
 * "i/o" (an alias reports its final target's type).
 */
MS_EXPORT const char *ms_region_type_name(const ms_region *r);

#ifdef __cplusplus
}
#endif

#endif
