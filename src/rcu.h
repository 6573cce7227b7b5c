/* SPDX-License-Identifier: MIT */
/*
 * RCU glue: lock-free readers of published flat views (liburcu, "bp"
 * flavour, so reader threads need no registration), and deferred
 * reclamation of retired views.
 *
 * Publication is a release store of the view pointer and reading it an
 * acquire load (C11 atomics, which ThreadSanitizer understands).  A view
 * whose last owner-side reference goes is retired onto a per-system list;
 * at the end of each commit (and at ms_system_free()) the owner thread
 * waits for one grace period and frees the retired views, dropping their
 * region references.  So region and view lifetimes only ever change on the
 * owner thread, and no helper thread is involved.  A commit made from
 * inside a read-side section (an MMIO callback) skips the wait; its views
 * are freed by a later commit.
 *
 * ThreadSanitizer cannot see liburcu's grace periods (they synchronise
 * through membarrier and uninstrumented code), so TSan builds annotate
 * them: every read-side unlock releases the system's token, every grace
 * period end acquires it.
 */
#ifndef MS_RCU_H
#define MS_RCU_H

#include <urcu/urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
#define MS__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MS__TSAN 1
#endif
#endif

#ifdef MS__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define MS__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define MS__TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define MS__TSAN_ACQUIRE(p) ((void)(p))
#define MS__TSAN_RELEASE(p) ((void)(p))
#endif

static inline void ms__rcu_read_lock(void)
{
    urcu_bp_read_lock();
}

/* @token: the system's rcu_token (TSan happens-before anchor). */
static inline void ms__rcu_read_unlock(void *token)
{
    MS__TSAN_RELEASE(token);
    urcu_bp_read_unlock();
}

#define ms__rcu_publish(pp, v) __atomic_store_n((pp), (v), __ATOMIC_RELEASE)
#define ms__rcu_deref(pp) __atomic_load_n((pp), __ATOMIC_ACQUIRE)

#endif
