/* SPDX-License-Identifier: MIT */
/*
 * Address spaces and flat views.
 *
 * An address space (ms_as) is a name and a root region.  At every commit
 * that changes the topology, each address space's tree is rendered into a
 * flat view: the sorted, non-overlapping list of ranges a guest sees, each
 * naming the terminating region that answers it and the offset inside that
 * region.  Address spaces whose roots resolve to the same rendering root
 * share one view object (see docs/model.md, "view sharing").
 *
 * Flat views are immutable once published and reference counted.
 */
#ifndef MEMSPACE_AS_H
#define MEMSPACE_AS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One range of a flat view. */
struct ms_flat_range {
    uint64_t gpa;    /**< first address, in address-space coordinates */
    uint64_t last;   /**< last address, inclusive (no overflow at 2^64) */
    uint64_t offset; /**< offset of @gpa inside @mr */
    ms_region *mr;   /**< terminating region (never an alias/container) */
    bool readonly;   /**< OR of readonly along the render path */
    bool nonvolatile; /**< OR of nonvolatile along the render path */
    bool romd;       /**< @mr's ROMD mode at render time */
    uint8_t dirty_log_mask; /**< @mr's effective log clients (dirty.h) */
};

/**
 * ms_as_new() - create an address space.
 * @sys:  the system.
 * @root: the root region (referenced by the address space); it may itself
 *        have a container, whose placement then shifts the view (QEMU).
 * @name: required, non-empty; copied; need not be unique.
 * @out:  receives the address space.
 *
 * The new address space gets its view at once (without rebuilding the views
 * of the others, even inside a transaction); no listener is called.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or an empty name; -EXDEV if @root belongs to
 * another system; -ENOMEM; -EBUSY from inside a listener callback.
 */
MS_EXPORT MS_WUR int ms_as_new(ms_system *sys, ms_region *root,
                               const char *name, ms_as **out);

/**
 * ms_as_destroy() - destroy an address space.
 *
 * Its view and its reference on the root are released.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL; -EBUSY if listeners are still registered
 * on it, or from inside a listener callback.
 */
MS_EXPORT MS_WUR int ms_as_destroy(ms_as *as);

/** Name of @as.  Context: owner thread. */
MS_EXPORT const char *ms_as_name(const ms_as *as);
/** Root region of @as.  Context: owner thread. */
MS_EXPORT ms_region *ms_as_root(const ms_as *as);
/** The system @as belongs to. */
MS_EXPORT ms_system *ms_as_system(const ms_as *as);

/**
 * ms_as_flatview() - the currently published view of @as.
 *
 * The pointer is borrowed: it stays valid until the next commit that
 * changes the topology, or for longer with ms_flatview_ref().
 *
 * Context: owner thread.
 */
MS_EXPORT const ms_flatview *ms_as_flatview(const ms_as *as);

/** Take a reference on @fv.  Context: owner thread.  Return: @fv. */
MS_EXPORT const ms_flatview *ms_flatview_ref(const ms_flatview *fv);
/** Drop a reference.  Context: owner thread.  NULL is a no-op. */
MS_EXPORT void ms_flatview_unref(const ms_flatview *fv);

/** Number of ranges of @fv. */
MS_EXPORT size_t ms_flatview_nr_ranges(const ms_flatview *fv);

/**
 * ms_flatview_range() - read range @i (ascending address order).
 * Return: 0; -EINVAL for NULL; -ERANGE if @i is out of bounds.
 */
MS_EXPORT MS_WUR int ms_flatview_range(const ms_flatview *fv, size_t i,
                                       struct ms_flat_range *out);

/**
 * ms_flatview_lookup() - find the range containing @gpa.
 * @index: if not NULL, receives the range's index.
 * Return: 0; -EINVAL for NULL; -ENOENT if @gpa is unassigned.
 */
MS_EXPORT MS_WUR int ms_flatview_lookup(const ms_flatview *fv, uint64_t gpa,
                                        struct ms_flat_range *out,
                                        size_t *index);

/**
 * ms_flatview_root() - the region the view was rendered from (the
 * "flat-view root"), or NULL for the shared empty view.
 */
MS_EXPORT ms_region *ms_flatview_root(const ms_flatview *fv);

#ifdef __cplusplus
}
#endif

#endif
