/* SPDX-License-Identifier: MIT */
/*
 * ms_system: the per-VM context, and transactions.
 *
 * Everything memspace keeps hangs off an ms_system: regions, address spaces,
 * listeners, the transaction depth and pending flags, the flat-view cache
 * and the log hook.  There is no global mutable state, so two systems in one
 * process never see each other.
 *
 * Threading: all edits, commits and listener registrations happen on one
 * thread at a time (the "owner thread", or under a lock the caller holds).
 * Guest-side accesses (access.h) may run on any thread.
 */
#ifndef MEMSPACE_SYSTEM_H
#define MEMSPACE_SYSTEM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options for ms_system_new(); zero-initialise and set what you need. */
struct ms_system_config {
    /** Log hook, or NULL for silence. */
    ms_log_fn log;
    /** Passed to @log. */
    void *log_opaque;
    /** The target is big-endian (MS_ENDIAN_NATIVE means big then). */
    bool big_endian;
    /**
     * Target page size for dirty bitmaps, a power of two >= 512; 0 means
     * 4096.
     */
    uint32_t target_page_size;
};

/**
 * ms_system_new() - create a system.
 * @cfg: options, or NULL for the defaults.
 * @out: receives the new system.
 *
 * Context: any thread; the calling thread becomes the owner thread.
 * Return: 0; -EINVAL if @out is NULL or @cfg has an invalid page size;
 * -ENOMEM.
 */
MS_EXPORT MS_WUR int ms_system_new(const struct ms_system_config *cfg,
                                   ms_system **out);

/**
 * ms_system_free() - destroy a system and everything it owns.
 * @sys: the system, or NULL (no-op).
 *
 * Unregisters every listener (each receives its unregistration callbacks),
 * destroys every address space and frees every region of the system,
 * including regions the caller still holds references to: after this call
 * every ms_region, ms_as and ms_flatview pointer obtained from @sys is
 * invalid.  If regions were still referenced by the caller a warning naming
 * how many is sent to the log hook; nothing leaks either way.  Calling it
 * from inside a listener callback is refused (the call does nothing and logs
 * an error).
 *
 * Context: owner thread, outside any transaction (an open transaction is
 * abandoned without a commit).
 */
MS_EXPORT void ms_system_free(ms_system *sys);

/**
 * ms_system_set_log() - replace the log hook.
 * Context: owner thread.
 */
MS_EXPORT void ms_system_set_log(ms_system *sys, ms_log_fn log,
                                 void *opaque);

/**
 * ms_txn_begin() - open a (possibly nested) transaction.
 *
 * Edits made inside a transaction are rendered and reported to listeners
 * only when the outermost ms_txn_commit() runs.  Every editing call opens
 * and commits its own transaction, so edits made outside any transaction
 * take effect at once.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL if @sys is NULL; -EBUSY from inside a listener
 * callback; -EOVERFLOW if nesting exceeds UINT32_MAX.
 */
MS_EXPORT MS_WUR int ms_txn_begin(ms_system *sys);

/**
 * ms_txn_commit() - close a transaction.
 *
 * Only the outermost commit acts: it re-renders every address space's flat
 * view if the topology changed, diffs old against new and calls the
 * listeners (see docs/listeners.md for the order), then updates ioeventfds.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL if @sys is NULL or no transaction is open; -EBUSY from
 * inside a listener callback; -ENOMEM if a flat view could not be built (the
 * previous views stay published and the changes stay pending, so a later
 * commit retries); or the first error a listener callback returned (the new
 * topology is in place and every other callback was still delivered; see
 * ms_system_last_error()).
 */
MS_EXPORT MS_WUR int ms_txn_commit(ms_system *sys);

/**
 * ms_txn_depth() - current transaction nesting depth (0: none open).
 * Context: owner thread.
 */
MS_EXPORT unsigned ms_txn_depth(const ms_system *sys);

#ifdef __cplusplus
}
#endif

#endif
