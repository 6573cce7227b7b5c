/* SPDX-License-Identifier: MIT */
/*
 * Memory listeners: what a commit tells the world.
 *
 * A listener is a caller-owned struct of optional callbacks with a priority,
 * registered on one address space.  At every outermost commit that changed
 * the topology, memspace diffs each address space's old and new flat views
 * and calls the listeners in a precise order (docs/listeners.md, following
 * QEMU 7.2):
 *
 *   begin (every listener, ascending priority)
 *   per address space, in creation order:
 *     region_del for vanished/changed ranges (descending priority)
 *     region_add / region_nop (+ log_start / log_stop) (ascending)
 *     eventfd_del (ascending) / eventfd_add (descending)
 *   commit (every listener, ascending priority)
 *
 * Callbacks return 0 or a negative errno.  A failing callback does not stop
 * the commit: every other callback is still delivered, the new topology is
 * published, and the commit returns the first error; ms_system_last_error()
 * says which listener, callback and section failed.  A range whose
 * region_add failed is remembered: the listener gets region_add again
 * (instead of region_nop) at the next commit, or at once with
 * ms_listener_resync(), and no region_del if the range goes away first.
 *
 * From inside any callback the topology cannot be edited: editing calls,
 * transactions, registration and address-space creation return -EBUSY.
 */
#ifndef MEMSPACE_LISTENER_H
#define MEMSPACE_LISTENER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * What a listener is told about one range.  Derived from a flat range, or,
 * for ioeventfd callbacks, only @fv, @gpa, @size and @last are set.
 */
struct ms_section {
    ms_region *mr;  /**< terminating region; NULL in eventfd callbacks */
    const ms_flatview *fv; /**< view the range belongs to (old view for
                                region_del, new view otherwise) */
    ms_as *as;      /**< address space the listener listens to */
    uint64_t offset_within_region;
    uint64_t gpa;   /**< offset within the address space */
    uint64_t size;  /**< bytes; MS_SIZE_FULL stands for 2^64 */
    uint64_t last;  /**< gpa + size - 1, exact */
    bool readonly;
    bool nonvolatile;
};

struct ms__listener_priv;

/** Dirty-log clients, as bit numbers of a mask. */
#define MS_DIRTY_VGA 0
#define MS_DIRTY_CODE 1
#define MS_DIRTY_MIGRATION 2
#define MS_DIRTY_MASK_ALL 7u

/**
 * A memory listener.  Zero-initialise, set the callbacks you need, register
 * with ms_listener_register().  The struct must stay alive and unmodified
 * while registered.
 */
struct ms_listener {
    /** Name used in error reports and logs (may be NULL). */
    const char *name;
    /** Ascending for additions, descending for deletions. */
    unsigned priority;
    /** Free for the caller. */
    void *opaque;

    int (*begin)(struct ms_listener *l);
    int (*commit)(struct ms_listener *l);
    int (*region_add)(struct ms_listener *l, const struct ms_section *s);
    int (*region_del)(struct ms_listener *l, const struct ms_section *s);
    int (*region_nop)(struct ms_listener *l, const struct ms_section *s);
    int (*log_start)(struct ms_listener *l, const struct ms_section *s,
                     unsigned old_mask, unsigned new_mask);
    int (*log_stop)(struct ms_listener *l, const struct ms_section *s,
                    unsigned old_mask, unsigned new_mask);
    int (*log_sync)(struct ms_listener *l, const struct ms_section *s);
    int (*log_sync_global)(struct ms_listener *l);
    int (*log_clear)(struct ms_listener *l, const struct ms_section *s);
    int (*log_global_start)(struct ms_listener *l);
    int (*log_global_stop)(struct ms_listener *l);
    int (*log_global_after_sync)(struct ms_listener *l);
    int (*eventfd_add)(struct ms_listener *l, const struct ms_section *s,
                       bool match_data, uint64_t data, int fd);
    int (*eventfd_del)(struct ms_listener *l, const struct ms_section *s,
                       bool match_data, uint64_t data, int fd);
    int (*coalesced_io_add)(struct ms_listener *l,
                            const struct ms_section *s, uint64_t gpa,
                            uint64_t size);
    int (*coalesced_io_del)(struct ms_listener *l,
                            const struct ms_section *s, uint64_t gpa,
                            uint64_t size);

    /**
     * Accelerator name printed after flat-view ranges by `info mtree -f`
     * (e.g. "KVM") for which has_memory() answers true.
     */
    const char *accel_name;
    bool (*has_memory)(struct ms_listener *l, const ms_as *as, uint64_t gpa,
                       uint64_t size);

    /** Library-private; leave NULL. */
    struct ms__listener_priv *priv_;
};

/**
 * ms_listener_register() - start listening to @as.
 *
 * The listener alone is replayed, at once, the current published view of
 * @as: begin, log_global_start if global dirty tracking is on, then per
 * range region_add (and log_start if the range is logged), then commit.
 * Changes pending in an open transaction arrive later as a normal diff.
 * Existing ioeventfds are not replayed (QEMU 7.2).
 *
 * Context: owner thread; not from inside a callback.
 * Return: 0; -EINVAL for NULL, or if both log_sync and log_sync_global are
 * set; -EEXIST if @l is already registered; -ENOMEM; -EBUSY from inside a
 * callback; or the first error a replay callback returned (the listener is
 * then registered anyway, see ms_listener_resync()).
 */
MS_EXPORT MS_WUR int ms_listener_register(ms_as *as, struct ms_listener *l);

/**
 * ms_listener_unregister() - stop listening.
 *
 * The listener alone receives: begin, per range log_stop (if logged) and
 * region_del, commit.  No-op if @l is not registered.  Callback errors are
 * ignored (the listener is removed either way).
 *
 * Context: owner thread; not from inside a callback.
 * Return: 0; -EINVAL for NULL; -EBUSY from inside a callback.
 */
MS_EXPORT int ms_listener_unregister(struct ms_listener *l);

/** Information about the first listener error of the last commit. */
struct ms_error_info {
    int error;                  /**< negative errno, 0 if none */
    const struct ms_listener *listener;
    const char *callback;       /**< e.g. "region_add" */
    ms_as *as;
    uint64_t gpa;               /**< section start, if any */
    uint64_t size;              /**< section size, if any */
    const char *region;         /**< region name, if any */
};

/**
 * ms_system_last_error() - details of the first listener error reported by
 * the most recent commit, registration or sync (error 0 if it had none).
 * The strings stay valid until the next such operation.
 * Context: owner thread.
 */
MS_EXPORT void ms_system_last_error(const ms_system *sys,
                                    struct ms_error_info *out);

/**
 * ms_listener_resync() - retry the region_add calls @l failed.
 *
 * Sends @l (alone) begin, region_add for every range of the published view
 * whose region_add failed earlier, and commit.  Does nothing (no callbacks)
 * if there is no such range.
 *
 * Context: owner thread; not from inside a callback.
 * Return: 0; -EINVAL; -EBUSY; or the first callback error (resync can be
 * retried).
 */
MS_EXPORT MS_WUR int ms_listener_resync(struct ms_listener *l);

#ifdef __cplusplus
}
#endif

#endif
