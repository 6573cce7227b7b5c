/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging.
 *
 * Three clients, as bit numbers of a mask (listener.h): MS_DIRTY_VGA (a
 * display model asked for it with ms_region_set_log()), MS_DIRTY_CODE
 * (reserved for emulators that cache translated code), MS_DIRTY_MIGRATION
 * (on for every RAM block while global dirty tracking runs).  Every
 * RAM-backed region keeps one bitmap per client, one bit per target page of
 * its RAM block.  Writes through the access path, ms_region_set_dirty() and
 * backends (ms_region_merge_dirty()) set bits for the clients in the
 * region's effective mask; readers test, snapshot or clear them per client.
 *
 * Listeners hear about masks through region_nop + log_start/log_stop on
 * ranges whose mask changed, log_global_start/stop, and are asked to fetch
 * dirty state from their backends through log_sync / log_sync_global.
 */
#ifndef MEMSPACE_DIRTY_H
#define MEMSPACE_DIRTY_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Reasons for global dirty tracking (flags of ms_dirty_global_start()). */
#define MS_GLOBAL_DIRTY_MIGRATION 1u
#define MS_GLOBAL_DIRTY_DIRTY_RATE 2u
#define MS_GLOBAL_DIRTY_LIMIT 4u
#define MS_GLOBAL_DIRTY_ALL 7u

/**
 * ms_region_set_log() - start (@on) or stop logging @r for @client.
 *
 * Only MS_DIRTY_VGA may be set explicitly; the calls are counted, and only
 * the first start and the last stop change the mask (listeners then get
 * region_nop + log_start / log_stop for the region's ranges).
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or another client; -EBUSY; -EOVERFLOW when
 * stopping more often than started; or a listener error from the implicit
 * commit.
 */
MS_EXPORT MS_WUR int ms_region_set_log(ms_region *r, bool on,
                                       unsigned client);

/**
 * ms_region_log_mask() - the effective dirty-log mask of @r: its explicit
 * clients, MIGRATION while global tracking runs (RAM-backed regions and
 * IOMMUs, as in QEMU).
 */
MS_EXPORT unsigned ms_region_log_mask(const ms_region *r);

/**
 * ms_dirty_global_start() - start global dirty tracking for @flags.
 *
 * A stop postponed while the VM was not running (ms_system_set_running())
 * is first cancelled for the flags given.  When tracking goes from off to
 * on, every listener gets log_global_start (ascending priority) and a
 * topology commit tells them which ranges are now logged.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or @flags 0 or outside MS_GLOBAL_DIRTY_ALL;
 * -EBUSY; or the first listener error (tracking is on anyway).
 */
MS_EXPORT MS_WUR int ms_dirty_global_start(ms_system *sys, unsigned flags);

/**
 * ms_dirty_global_stop() - stop global dirty tracking for @flags.
 *
 * While the VM is not running the stop is postponed until it runs again
 * (QEMU's rule, so a stopped guest's final sync still sees the log).  When
 * tracking goes from on to off, a topology commit tells listeners which
 * ranges stopped logging, then every listener gets log_global_stop
 * (descending priority).
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or bits that are not on; -EBUSY; or the first
 * listener error.
 */
MS_EXPORT MS_WUR int ms_dirty_global_stop(ms_system *sys, unsigned flags);

/** The global dirty tracking flags in effect. */
MS_EXPORT unsigned ms_dirty_global_flags(const ms_system *sys);

/**
 * ms_system_set_running() - tell memspace whether the VM runs (default:
 * running).  Switching to running applies a postponed global stop.
 *
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY; or a listener error.
 */
MS_EXPORT MS_WUR int ms_system_set_running(ms_system *sys, bool running);

/**
 * ms_dirty_sync() - ask listeners to bring dirty state up to date.
 * @filter: only ranges of this region, or NULL for all.
 *
 * Each listener with log_sync gets one call per logged range of its
 * address space (matching @filter); a listener with log_sync_global gets one
 * call.  Then every listener gets log_global_after_sync.
 *
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY; or the first
 * listener error (every listener is still called).
 */
MS_EXPORT MS_WUR int ms_dirty_sync(ms_system *sys, ms_region *filter);

/**
 * ms_region_set_dirty() - mark [@offset, @offset + @size) of @r's RAM block
 * dirty for every client in its effective mask.
 * Context: any thread.  Return: 0; -EINVAL (NULL, no RAM block); -ERANGE.
 */
MS_EXPORT MS_WUR int ms_region_set_dirty(ms_region *r, uint64_t offset,
                                         uint64_t size);

/**
 * ms_region_get_dirty() - is any page of [@offset, @offset + @size) dirty
 * for @client?  Returns false for invalid arguments.
 * Context: any thread.
 */
MS_EXPORT bool ms_region_get_dirty(const ms_region *r, uint64_t offset,
                                   uint64_t size, unsigned client);

/**
 * ms_region_test_and_clear_dirty() - report and clear @client's dirty bits
 * over [@offset, @offset + @size).
 *
 * Listeners with log_clear are told about the cleared range of each logged
 * range of @r (so e.g. KVM can re-protect those pages).
 *
 * Context: owner thread.
 * Return: 1 if any page was dirty, 0 if none; -EINVAL; -ERANGE; -EBUSY.
 */
MS_EXPORT MS_WUR int ms_region_test_and_clear_dirty(ms_region *r,
                                                    uint64_t offset,
                                                    uint64_t size,
                                                    unsigned client);

/** A copy of a client's dirty bits over part of a region. */
typedef struct ms_dirty_snapshot ms_dirty_snapshot;

/**
 * ms_region_snapshot_and_clear_dirty() - sync, then copy and clear
 * @client's bits of [@offset, @offset + @size) widened outwards to
 * multiples of 64 pages (QEMU's rule), then log_global_after_sync.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0 and *@out (free with ms_dirty_snapshot_free()); -EINVAL;
 * -ERANGE; -ENOMEM; -EBUSY.
 */
MS_EXPORT MS_WUR int
ms_region_snapshot_and_clear_dirty(ms_region *r, uint64_t offset,
                                   uint64_t size, unsigned client,
                                   ms_dirty_snapshot **out);

/**
 * ms_dirty_snapshot_get() - was any page of [@offset, @offset + @size)
 * (region offsets) dirty in the snapshot?  False outside it.
 */
MS_EXPORT bool ms_dirty_snapshot_get(const ms_dirty_snapshot *snap,
                                     uint64_t offset, uint64_t size);

/** Free a snapshot (NULL is a no-op). */
MS_EXPORT void ms_dirty_snapshot_free(ms_dirty_snapshot *snap);

/**
 * ms_region_merge_dirty() - for backends: OR a bitmap of dirty pages into
 * @r's bitmaps.
 * @offset:    region offset of the first page (page-aligned).
 * @bitmap:    one bit per @page_size bytes, little-endian 64-bit words (the
 *             KVM_GET_DIRTY_LOG layout).
 * @npages:    number of bits.
 * @page_size: bytes per bit (a power of two, at least the target page).
 *
 * Bits go to VGA always, to MIGRATION while global tracking runs, to CODE
 * never (no translated code here).
 *
 * Context: any thread.  Return: 0; -EINVAL; -ERANGE.
 */
MS_EXPORT MS_WUR int ms_region_merge_dirty(ms_region *r, uint64_t offset,
                                           const uint64_t *bitmap,
                                           uint64_t npages,
                                           uint32_t page_size);

#ifdef __cplusplus
}
#endif

#endif
